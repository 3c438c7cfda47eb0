"""``ppx bench delivery``: ppx vs baselines vs oracle on a world's time split (and Olist).

Both learners get the same Optuna budget on the same validation loss; everything is
calibrated on the same validation months and scored on the same test months. The
in-process latency of one checkout estimate (raw request dict in, estimate out) is
measured here, as a benchmark figure, never as a test.
"""

from __future__ import annotations

import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ppx.data import columns as C
from ppx.features import delivery as fd
from ppx.models.delivery import evaluate as ev
from ppx.models.delivery import train as tr
from ppx.models.delivery.config import DeliveryConfig
from ppx.models.delivery.model import DeliveryModel, fit, fit_promise_rules
from ppx.models.delivery.oracle_bound import week_blind_cdf

BLIND_DAYS = 2  # the bound's blind days per week (Monday and Tuesday)


def latency_ms(model, data, n: int = 400) -> dict[str, float]:
    """p50 / p99 milliseconds of one checkout estimate from a raw request dict."""
    import torch

    torch.set_num_threads(1)
    rows = tr.checkout_rows(data.test).head(n)
    cols = [C.WAREHOUSE, C.DEST_REGION, C.CARRIER, C.SERVICE_LEVEL, C.ORDERED_AT, C.WEIGHT_KG]
    reqs = [
        {**{c: r[c] for c in cols}, C.DISTANCE_KM: r[C.DISTANCE_KM]}
        for r in rows[[*cols, C.DISTANCE_KM]].to_dict("records")
    ]
    for r in reqs[:20]:
        model.estimate(r)  # warm-up
    times = []
    for r in reqs:
        t = time.perf_counter()
        model.estimate(r)
        times.append((time.perf_counter() - t) * 1000)
    torch.set_num_threads(model.cfg.threads)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def _reference_metrics(cdf, val_cdf, vrows, y, late, late_score) -> dict:
    """Metrics of a reference distribution (oracle, bound): its promise uses the same
    Mondrian conformal rule as ppx, fitted on the validation months."""
    rules, edges = fit_promise_rules(
        val_cdf,
        vrows["y_day"].to_numpy(),
        np.zeros(len(vrows), int),
        np.ones(len(vrows)),
        "checkout",
    )
    shell = DeliveryModel.__new__(DeliveryModel)  # a model shell carrying only the rules
    shell.rules = rules
    shell.rule_edges = {} if edges is None else {"checkout": edges}
    chk = np.zeros(len(cdf), dtype=bool)
    p90 = shell.promise(cdf, 0.9, chk)
    return ev.metrics(
        y,
        ev.first_reach(cdf, 0.5),
        p90,
        shell.promise(cdf, 0.95, chk),
        p90,
        None if late_score is None else late,
        late_score,
        None,
        q90=ev.first_reach(cdf, 0.9),
    )


def world_benchmark(
    world_path: str | Path, trials: int = 5, cfg: DeliveryConfig | None = None, progress=True
) -> dict[str, dict]:
    """All methods on one world; returns {METHOD: {METRIC: value}}."""
    from ppx import tracking

    cfg = cfg or DeliveryConfig()
    tracking.configure()
    tables, truth, data = tr.load_data(world_path, cfg, validate=False)
    y, late = tr.test_labels(data)
    rows = tr.checkout_rows(data.test)
    trows = tr.transit_eval_rows(data.test)
    out: dict[str, dict] = {}
    with tracking.start_run("delivery", run_name="bench", world_path=world_path):
        best_cfg = tr.tune_ppx(data, cfg, trials) if trials > 0 else cfg
        lgb_params = tr.tune_lightgbm(data, trials, cfg.seed) if trials > 0 else {}

        # ppx
        model = fit(data.train, data.val, data.history, replace(best_cfg), progress)
        out["ppx"] = tr.evaluate_model(model, data)
        out["ppx"].update(latency_ms(model, data))

        # LightGBM quantile regression (same features; censored rows cannot be used)
        known = data.train["event"] > 0
        f_tr = fd.delivery_features(data.train[known], data.history)
        f_va = fd.delivery_features(data.val, data.history)
        lgbm = ev.LightGBMBaseline(lgb_params, cfg.seed).fit(
            f_tr,
            data.train.loc[known, "y_day"].to_numpy(),
            f_va,
            data.val["y_day"].to_numpy(),
            data.val["event"].to_numpy() * (data.val["stage"] == "checkout").to_numpy(),
        )
        f_te = fd.delivery_features(rows, data.history)
        f_tt = fd.delivery_features(trows, data.history)
        p90 = lgbm.predict(f_te, 0.9)
        out["lightgbm"] = ev.metrics(
            y,
            lgbm.predict(f_te, 0.5),
            p90,
            lgbm.predict(f_te, 0.95),
            p90,
            late,
            lgbm.predict(f_tt, 0.5, raw=True) - trows[C.PROMISED_DAYS].to_numpy(float),
            lgbm.train_seconds,
            q90=lgbm.predict(f_te, 0.9, raw=True),
        )

        # Lane historical quantile (everything delivered before the test start)
        t0 = time.perf_counter()
        import pandas as pd

        hist = pd.concat([tr.checkout_rows(data.train), tr.checkout_rows(data.val)])
        lq = ev.lane_quantile(hist, rows)
        lq_late = ev.lane_late_prob(hist, trows)
        out["lane_quantile"] = ev.metrics(
            y, lq[0.5], lq[0.9], lq[0.95], lq[0.9], late, lq_late, time.perf_counter() - t0
        )

        # Carrier SLA (the retailer's own promise in orders.promised_days)
        sla = rows[C.PROMISED_DAYS].to_numpy(int)
        out["carrier_sla"] = ev.metrics(
            y,
            sla,
            sla,
            None,
            sla,
            late,
            trows["start_day"].to_numpy(float) - trows[C.PROMISED_DAYS].to_numpy(float),
            0.0,
        )
        out["carrier_sla"]["promise_days_90"] = None

        # Oracle: the generator's true distribution
        if C.TRUTH_SHIPMENTS in truth:
            ts = truth[C.TRUTH_SHIPMENTS]
            ocdf = ev.oracle_cdf(rows, ts, cfg.d_max)
            vrows = tr.checkout_rows(data.val)
            vcdf = ev.oracle_cdf(vrows, ts, cfg.d_max)
            out["oracle"] = _reference_metrics(
                ocdf, vcdf, vrows, y, late, ev.oracle_late_prob(trows, ts)
            )
            # What an as-of model could reach at best (see oracle_bound): the oracle,
            # blind to each week's shock for the first BLIND_DAYS days of the week.
            orders = tables[C.ORDERS].merge(
                tables[C.SHIPMENTS][[C.ORDER_ID, C.SHIPMENT_ID, C.WEIGHT_KG]], on=C.ORDER_ID
            )
            train_end = data.val[C.ORDERED_AT].min()
            bound = [
                week_blind_cdf(orders, ts, r, train_end, BLIND_DAYS, cfg.d_max)
                for r in (rows, vrows)
            ]
            out[f"oracle_blind{BLIND_DAYS}"] = _reference_metrics(*bound, vrows, y, late, None)
        import mlflow

        for method, vals in out.items():
            mlflow.log_metrics(
                {f"{method}.{k}": float(v) for k, v in vals.items() if v is not None and v == v}
            )
    return out


def run(
    world_path: str | Path | None,
    olist_path: str | Path | None,
    trials: int = 5,
    command: str = "ppx bench delivery",
    plot: str | Path | None = None,
    shift: bool = False,
    details: dict | None = None,
    target_on_time: float | None = None,
) -> dict:
    """The benchmark payload: {"meta": ..., "world": {...}, "olist": {...}}.

    With ``plot`` (and ``olist_path``), the Olist trade-off curves go to that PNG and
    their points to ``NAME_curves.json`` beside it. With ``shift`` the world is a
    disrupted one and the payload's ``shift`` dataset compares the frozen promise rule
    with the online recalibration (weekly rates in ``details["weeks"]``).
    ``target_on_time``: the Olist policy's target (None: the retailer's own rate over
    the validation months).
    """
    t = time.perf_counter()
    payload: dict = {}
    details = {} if details is None else details
    if world_path is not None and shift:
        from ppx.models.delivery.shift_bench import shift_benchmark

        payload["shift"] = shift_benchmark(world_path, details=details)
    elif world_path is not None:
        payload["world"] = world_benchmark(world_path, trials)
    if olist_path is not None:
        from ppx.models.delivery.olist_bench import PromisePolicy, olist_benchmark, write_curves

        policy = PromisePolicy(target_on_time=target_on_time)
        payload["olist"] = olist_benchmark(olist_path, policy=policy, details=details)
        if plot is not None:
            write_curves(details, plot)
    payload["meta"] = {
        "command": command,
        "seconds": round(time.perf_counter() - t, 1),
        "machine": f"{platform.machine()} {platform.system()} python {platform.python_version()}",
    }
    return {"meta": payload.pop("meta"), **payload}
