"""In-process latency of one churn request (``ChurnPyfunc.predict``), p50 and p99.

    python -m ppx.models.churn.latency --uri models:/ppx-churn@champion
    python -m ppx.models.churn.latency --model-dir DIR --history-dir DIR

Three kinds of request, each sent ``--n`` times one at a time for random customers
with an active subscription: ``as_of`` omitted (the model's default, the end of the
training data), ``as_of`` at a month start one month earlier (both in the served
snapshot: a lookup) and ``as_of`` in mid-month (features computed from the customer's
history). Wall-clock and CPU time are printed with the load average; wall-clock on a
shared machine includes waiting for a core, CPU time does not. With ``--uri`` the
MLflow ``PyFuncModel.predict`` (input schema checks included) is timed as well.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd


def _time(predict, requests: list[pd.DataFrame]) -> dict[str, float]:
    wall, cpu = [], []
    for i, req in enumerate(requests):
        c, t = time.process_time(), time.perf_counter()
        predict(req)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        if i >= 5:  # warm-up
            wall.append(dt * 1000)
            cpu.append(dc * 1000)
    return {
        "wall_p50_ms": float(np.percentile(wall, 50)),
        "wall_p99_ms": float(np.percentile(wall, 99)),
        "cpu_p50_ms": float(np.percentile(cpu, 50)),
        "cpu_p99_ms": float(np.percentile(cpu, 99)),
    }


def main(argv: list[str] | None = None) -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uri", help="a registered model URI, e.g. models:/ppx-churn@champion")
    ap.add_argument("--model-dir", help="a ChurnModel.save folder (with --history-dir)")
    ap.add_argument("--history-dir", help="the history artifact folder")
    ap.add_argument("--n", type=int, default=200, help="requests per kind")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    wrapped = None
    if args.uri:
        import mlflow.pyfunc

        from ppx import tracking

        tracking.configure()
        wrapped = mlflow.pyfunc.load_model(args.uri)
        pf = wrapped.unwrap_python_model()
    elif args.model_dir and args.history_dir:
        from ppx.models.churn.pyfunc import ChurnPyfunc

        class _Ctx:
            artifacts = {"model": args.model_dir, "history": args.history_dir}

        pf = ChurnPyfunc()
        pf.load_context(_Ctx())
    else:
        ap.error("give --uri, or --model-dir and --history-dir")
    m = pf.model
    subs = m.history["subs"]
    active = subs[subs["cancelled_at"].isna()]["customer_id"].to_numpy()
    end = pd.Timestamp(m.info["default_as_of"])
    kinds = {
        "as_of omitted": None,
        f"as_of {(end - pd.DateOffset(months=1)).date()} (snapshot)": str(
            (end - pd.DateOffset(months=1)).date()
        ),
        f"as_of {(end - pd.Timedelta(days=17)).date()} (mid-month)": str(
            (end - pd.Timedelta(days=17)).date()
        ),
    }
    rng = np.random.default_rng(0)
    print(f"load average before: {os.getloadavg()}")
    for label, as_of in kinds.items():
        reqs = []
        for cid in rng.choice(active, args.n + 5):
            row = {"customer_id": [int(cid)]}
            if as_of:
                row["as_of"] = [as_of]
            reqs.append(pd.DataFrame(row))
        r = _time(lambda df: pf.predict(None, df), reqs)
        line = ", ".join(f"{k} {v:.1f}" for k, v in r.items())
        print(f"ChurnPyfunc.predict, {label}: {line}")
        if wrapped is not None:
            r = _time(wrapped.predict, reqs)
            line = ", ".join(f"{k} {v:.1f}" for k, v in r.items())
            print(f"mlflow PyFuncModel.predict, {label}: {line}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
