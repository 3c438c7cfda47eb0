"""In-process latency of one fraud request through the served scorer.

``python -m ppx.models.fraud.latency --world /tmp/worlds/demo --model DIR_OR_URI``
loads the scorer (a folder written by ``FraudScorer.save`` or a model URI such as
``models:/ppx-fraud@champion``), draws ``--n`` test-split requests of the world
(seeded), sends each alone, in the served wire form and as the model service passes it
(field -> one JSON value, unset fields left out), through
``FraudScorer.predict_columns`` (validation, features from the snapshot, network,
thresholds) and prints p50 / p99 / max wall-clock and CPU milliseconds next to the load
average. Serving overhead (HTTP, JSON, batching) is not included: ``ppx bench serve``
measures that.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def load(model: str):
    from ppx.models.fraud.pyfunc import FraudScorer, load_scorer

    if os.path.isdir(model):
        return FraudScorer.load(model)
    from ppx import tracking

    tracking.configure()
    return load_scorer(model)


def measure(scorer, raw, n: int, seed: int = 0, warmup: int = 5) -> dict[str, float]:
    """Wall and CPU milliseconds of ``n`` single-row predicts (rows drawn at random)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(raw), n + warmup)
    records = raw.to_dict("records")
    wall, cpu = [], []
    for i, r in enumerate(rows):
        one = {k: [v] for k, v in records[int(r)].items() if not _unset(v)}
        t0, c0 = time.perf_counter(), time.process_time()
        scorer.predict_columns(one)
        if i >= warmup:
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    w, c = np.array(wall) * 1e3, np.array(cpu) * 1e3
    return {
        "n": n,
        "wall_p50_ms": float(np.percentile(w, 50)),
        "wall_p99_ms": float(np.percentile(w, 99)),
        "wall_max_ms": float(w.max()),
        "cpu_p50_ms": float(np.percentile(c, 50)),
        "cpu_p99_ms": float(np.percentile(c, 99)),
        "load_avg_1m": os.getloadavg()[0],
    }


def _unset(v) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def main() -> None:
    import torch

    from ppx.models.fraud.train import prepare, raw_requests

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", required=True)
    ap.add_argument("--model", required=True, help="scorer folder or model URI")
    ap.add_argument("--n", type=int, default=500)
    args = ap.parse_args()
    torch.set_num_threads(1)
    P = prepare(args.world)
    raw = raw_requests(P.requests.loc[P.masks["test"]]).reset_index(drop=True)
    scorer = load(args.model)
    print(f"load average before: {os.getloadavg()}")
    for name, X in (
        ("returns", raw[raw["kind"] == "return"]),
        ("claims", raw[raw["kind"] == "claim"]),
    ):
        out = measure(scorer, X.reset_index(drop=True), args.n)
        print(name, {k: round(v, 2) for k, v in out.items()})


if __name__ == "__main__":
    main()
