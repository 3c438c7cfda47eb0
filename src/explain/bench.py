"""Benchmark of the explanations: report build time per model and reason-code latency.

Run::

    python -m ppx.explain.bench --world data/worlds/demo --json docs/bench/explain.json

For every model with a champion in the registry it builds the report (timed end to end:
load, features of the world sample, SHAP, plots, HTML, MLflow logging) and times
``reason_codes`` on single requests sampled from the world, both the whole path
(``features(raw)`` + contributions) and the contributions alone (features already
computed, as serving has them), in wall and in CPU milliseconds, and the load average before
and after the run. Output follows the ppx benchmark contract
``{"meta": ..., DATASET: {METHOD: {METRIC: value}}}`` with one METHOD per model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np


def reason_latency(model, model_name: str, world: Path, n: int = 100, seed: int = 0) -> dict:
    """p50 / p99 milliseconds of reason codes for one request, with and without features."""
    from ppx.data.io import load_tables
    from ppx.explain.reason_codes import reason_codes
    from ppx.explain.sources import world_requests

    tables = load_tables(world, validate=False)
    hook = getattr(model, "explain_requests", None)
    raw = (
        hook(tables, n, seed) if callable(hook) else world_requests(model_name, tables, n, seed)[0]
    )
    reason_codes(model, raw.iloc[:1], model_name=model_name)  # warm-up: caches references
    full, only, full_cpu, only_cpu = [], [], [], []
    for i in range(len(raw)):
        one = raw.iloc[i : i + 1]
        t, c = time.perf_counter(), time.process_time()
        X = model.features(one)
        reason_codes(model, one, X=X, model_name=model_name)
        full.append(time.perf_counter() - t)
        full_cpu.append(time.process_time() - c)
        t, c = time.perf_counter(), time.process_time()
        reason_codes(model, one, X=X, model_name=model_name)
        only.append(time.perf_counter() - t)
        only_cpu.append(time.process_time() - c)
    ms = lambda v, q: float(np.quantile(np.asarray(v) * 1000, q))  # noqa: E731
    # CPU time (all of the process's threads) beside wall time: on a shared machine the
    # wall p99 measures the other processes as much as the code.
    return {
        "reason_ms_p50": ms(only, 0.5),
        "reason_ms_p99": ms(only, 0.99),
        "reason_with_features_ms_p50": ms(full, 0.5),
        "reason_with_features_ms_p99": ms(full, 0.99),
        "reason_cpu_ms_p50": ms(only_cpu, 0.5),
        "reason_cpu_ms_p99": ms(only_cpu, 0.99),
        "reason_with_features_cpu_ms_p50": ms(full_cpu, 0.5),
        "reason_with_features_cpu_ms_p99": ms(full_cpu, 0.99),
    }


def shap_self_agreement(model, model_name: str, world: Path, rows: int | None = None) -> float:
    """Share of rows whose top SHAP feature is the same under two seeds (other background
    rows and permutations): the ceiling of the reason codes' agreement with SHAP. With
    many features of similar weight, SHAP's own top feature is partly noise."""
    from ppx.explain.shapley import DEFAULT_ROWS, compute_shap
    from ppx.explain.sources import world_features

    X, _ = world_features(model_name, model, world, n=rows or DEFAULT_ROWS, seed=0)
    a, b = (compute_shap(model, X, max_rows=len(X), seed=s).values for s in (0, 1))
    return float(np.mean(np.argmax(np.abs(a), axis=1) == np.argmax(np.abs(b), axis=1)))


def run(world: Path, models: list[str] | None = None, rows: int | None = None) -> dict:
    """Reports and reason-code timings for every model that has a champion."""
    import torch

    from ppx import tracking
    from ppx.explain.report import build_report
    from ppx.explain.shapley import DEFAULT_ROWS
    from ppx.explain.sources import load_explainable
    from ppx.models import registry

    models = models or registry.explainable()
    torch.set_num_threads(2)
    load_before = os.getloadavg()
    tracking.configure()
    started = time.perf_counter()
    out: dict[str, dict] = {}
    for name in models:
        if tracking.get_alias_version(name) is None:
            print(f"{name}: no champion, skipped", file=sys.stderr)
            continue
        t = time.perf_counter()
        path = build_report(name, world, max_rows=rows or DEFAULT_ROWS, progress=False)
        wall = time.perf_counter() - t
        numbers = json.loads(path.with_suffix(".json").read_text())
        model = load_explainable(name).model
        out[name] = {
            "report_seconds": wall,
            "shap_seconds": numbers["shap_seconds"],
            "rows": numbers["rows"],
            "features": len(model.feature_names),
            "additivity_error": numbers["additivity_error"],
            "reason_top1_agreement": numbers["reason_code_top1_agreement"],
            "reason_top1_in_shap_top3": numbers["reason_code_top1_in_shap_top3"],
            "shap_seed_top1_agreement": shap_self_agreement(model, name, world, rows),
            **reason_latency(model, name, world),
        }
        print(f"{name}: {out[name]}", file=sys.stderr)
    total = time.perf_counter() - started
    return {
        "meta": {
            "command": "python -m ppx.explain.bench " + " ".join(sys.argv[1:]),
            "seconds": total,
            "reports_seconds_total": sum(v["report_seconds"] for v in out.values()),
            "machine": f"{platform.machine()} {platform.system()}, torch threads 2",
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        Path(world).name: out,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--models", nargs="*", default=None, help="Default: every model.")
    args = parser.parse_args(argv)
    payload = run(args.world, args.models, args.rows)
    text = json.dumps(payload, indent=2, default=float)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":  # pragma: no cover
    main()
