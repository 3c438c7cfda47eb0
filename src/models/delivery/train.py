"""Fit, evaluate, log, register and gate the delivery model.

``train()`` is what ``ppx train delivery`` and ``make demo`` run: time-split the world
(train | validation = calibration | test = the last months), optionally tune with
Optuna on validation, fit the hazard network, calibrate on validation, score on test,
log everything to the ``ppx-delivery`` experiment, register a pyfunc version and let
:func:`ppx.tracking.promote` decide whether it becomes ``champion``: lower ``pinball_0_9``
than the carrier SLA and the lane quantile of the same run, and than the champion on the
same test holdout (champion rescored with the same features).
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.features import delivery as fd
from ppx.models.delivery import evaluate as ev
from ppx.models.delivery.config import DeliveryConfig
from ppx.models.delivery.dataset import DeliveryData, make_data
from ppx.models.delivery.model import DeliveryModel, fit

log = logging.getLogger(__name__)
GATE_METRIC = "pinball_0_9"


def load_data(world_path: str | Path, cfg: DeliveryConfig, validate: bool = True):
    """Tables, truth and time-split labelled frames of a world folder."""
    from ppx.data.io import load_tables, load_truth_if_any

    tables = load_tables(world_path, validate=validate)
    truth = load_truth_if_any(world_path) or {}
    data = make_data(
        tables,
        d_max=cfg.d_max,
        val_months=cfg.val_months,
        test_months=cfg.test_months,
        transit_rows=cfg.transit_rows,
        seed=cfg.seed,
    )
    return tables, truth, data


def checkout_rows(df: pd.DataFrame, delivered: bool = True) -> pd.DataFrame:
    m = df["stage"] == "checkout"
    if delivered:
        m &= df["event"] > 0
    return df[m]


def transit_eval_rows(df: pd.DataFrame) -> pd.DataFrame:
    """In-transit snapshots whose SLA is still reachable (lateness not yet decided)."""
    m = (df["stage"] == "transit") & (df["event"] > 0)
    m &= df["start_day"] <= df[C.PROMISED_DAYS]
    return df[m]


def val_objective(model: DeliveryModel, data: DeliveryData) -> float:
    """Validation loss used to tune both ppx and LightGBM: mean of the 0.5 and 0.9
    pinball losses of the raw (uncalibrated) quantiles on delivered checkout parcels."""
    rows = checkout_rows(data.val)
    cdf = model.raw_cdf(fd.delivery_features(rows, data.history))
    y = rows["y_day"].to_numpy()
    return 0.5 * (
        ev.pinball(y, ev.first_reach(cdf, 0.5), 0.5) + ev.pinball(y, ev.first_reach(cdf, 0.9), 0.9)
    )


def suggest_config(trial, base: DeliveryConfig) -> DeliveryConfig:
    width = trial.suggest_categorical("width", [64, 128, 256])
    return replace(
        base,
        lr=trial.suggest_float("lr", 1e-3, 1e-2, log=True),
        emb_dim=trial.suggest_int("emb_dim", 3, 12),
        hidden=(width, max(16, width // 2)),
        dropout=trial.suggest_float("dropout", 0.0, 0.3),
        weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
        extra={},
    )


def network_objective(data: DeliveryData, base: DeliveryConfig):
    """``trial -> validation loss`` (:func:`val_objective`) of one network fit with the
    trial's hyper-parameters (:func:`suggest_config`); never reads the test months."""

    def objective(trial) -> float:
        cfg = suggest_config(trial, base)
        model = fit(data.train, data.val, data.history, cfg, progress=False)
        return val_objective(model, data)

    return objective


def best_config(base: DeliveryConfig, params: dict) -> DeliveryConfig:
    """The configuration a trial with these parameters fitted (``width`` -> ``hidden``)."""
    return suggest_config(_FixedTrial(params), base)


def tune_ppx(data: DeliveryData, base: DeliveryConfig, trials: int) -> DeliveryConfig:
    """Optuna over the network's hyper-parameters (each trial a nested MLflow run)."""
    from ppx import tracking

    study = tracking.run_study(
        "delivery",
        network_objective(data, base),
        trials,
        direction="minimize",
        study_name=_study_name("ppx"),
        seed=base.seed,
    )
    return best_config(base, study.best_params)


def lightgbm_objective(data: DeliveryData, seed: int = 0):
    """``trial -> validation loss`` of LightGBM quantile models (the same loss and rows as
    :func:`network_objective`), for tuning the baseline with the same budget."""
    f_tr = fd.delivery_features(data.train[data.train["event"] > 0], data.history)
    y_tr = data.train.loc[data.train["event"] > 0, "y_day"].to_numpy()
    rows = checkout_rows(data.val)
    f_va = fd.delivery_features(rows, data.history)
    y_va = rows["y_day"].to_numpy()
    X = ev.lgbm_matrix(f_tr)
    Xv = ev._align_categories(ev.lgbm_matrix(f_va), X)

    def objective(trial) -> float:
        p = ev.lgbm_params(trial)
        q50 = np.rint(ev.lgbm_fit(X, y_tr, 0.5, p, seed).predict(Xv))
        q90 = np.ceil(ev.lgbm_fit(X, y_tr, 0.9, p, seed).predict(Xv) - 1e-9)
        return 0.5 * (ev.pinball(y_va, q50, 0.5) + ev.pinball(y_va, q90, 0.9))

    return objective


def tune_lightgbm(data: DeliveryData, trials: int, seed: int = 0) -> dict:
    """Optuna over LightGBM with the same budget and validation loss as ppx."""
    from ppx import tracking

    study = tracking.run_study(
        "delivery",
        lightgbm_objective(data, seed),
        trials,
        direction="minimize",
        study_name=_study_name("lightgbm"),
        seed=seed,
    )
    return dict(study.best_params)


def _study_name(learner: str) -> str:
    """One study per learner per run (ppx and LightGBM must not share trials)."""
    import mlflow

    return f"ppx-delivery-{learner}-{mlflow.active_run().info.run_id[:8]}"


class _FixedTrial:
    """Replays best parameters through ``suggest_config``."""

    def __init__(self, params: dict):
        self.params = params

    def suggest_float(self, name, *a, **k):
        return self.params[name]

    suggest_int = suggest_categorical = suggest_float


def ppx_outputs(model: DeliveryModel, data: DeliveryData) -> dict[str, np.ndarray]:
    """Our integer-day outputs on the test rows (same shape as every baseline's)."""
    rows = checkout_rows(data.test)
    feats = fd.delivery_features(rows, data.history)
    cdf = model.cdf(feats)
    tr = transit_eval_rows(data.test)
    t_feats = fd.delivery_features(tr, data.history)
    t_cdf = model.cdf(t_feats)
    sla = tr[C.PROMISED_DAYS].to_numpy(int)
    p_late = 1.0 - t_cdf[np.arange(len(tr)), np.clip(sla, 0, model.cfg.d_max)]
    checkout = np.zeros(len(cdf), dtype=bool)
    return {
        "p50": ev.first_reach(cdf, 0.5),
        "q90": ev.first_reach(cdf, 0.9),
        "promise_90": model.promise(cdf, 0.9, checkout),
        "promise_95": model.promise(cdf, 0.95, checkout),
        "headline": model.promise(cdf, model.cfg.target, checkout),
        "late_score": p_late,
    }


def test_labels(data: DeliveryData) -> tuple[np.ndarray, np.ndarray]:
    rows = checkout_rows(data.test)
    tr = transit_eval_rows(data.test)
    return rows["y_day"].to_numpy(), (tr["y_day"] > tr[C.PROMISED_DAYS]).to_numpy()


def evaluate_model(model: DeliveryModel, data: DeliveryData) -> dict[str, float | None]:
    y, late = test_labels(data)
    o = ppx_outputs(model, data)
    return ev.metrics(
        y,
        o["p50"],
        o["promise_90"],
        o["promise_95"],
        o["headline"],
        late,
        o["late_score"],
        model.train_seconds,
        q90=o["q90"],
    )


def baseline_metrics(data: DeliveryData) -> dict[str, dict[str, float | None]]:
    """The simple baselines on the same test rows: the carrier's SLA and the lane quantile."""
    rows = checkout_rows(data.test)
    trows = transit_eval_rows(data.test)
    y, late = test_labels(data)
    hist = pd.concat([checkout_rows(data.train), checkout_rows(data.val)])
    lq = ev.lane_quantile(hist, rows)
    sla = rows[C.PROMISED_DAYS].to_numpy(int)
    start = trows["start_day"].to_numpy(float)
    return {
        "lane_quantile": ev.metrics(
            y, lq[0.5], lq[0.9], lq[0.95], lq[0.9], late, ev.lane_late_prob(hist, trows)
        ),
        "carrier_sla": ev.metrics(
            y, sla, sla, None, sla, late, start - trows[C.PROMISED_DAYS].to_numpy(float)
        ),
    }


def baseline_checks(model_metrics: dict, baselines: dict) -> list:
    """The gate's comparisons: our pinball loss at 0.9 against each simple baseline's."""
    from ppx import tracking

    return [
        tracking.BaselineCheck(
            "delivery",
            GATE_METRIC,
            float(model_metrics[GATE_METRIC]),
            name,
            float(m[GATE_METRIC]),
            greater_is_better=False,
        )
        for name, m in baselines.items()
    ]


def score_uri(uri: str, data: DeliveryData) -> float:
    """Gate metric of a registered model on the same holdout, same as-of features."""
    import mlflow

    loaded = mlflow.pyfunc.load_model(uri)
    model = loaded.unwrap_python_model().model
    if len(model.num_mean) != len(fd.NUMERIC):
        # Trained on an older feature set: this code cannot score (or serve) it at all.
        log.warning("champion %s uses an older delivery feature set; not comparable", uri)
        return float("inf")
    model.history = data.history  # every model sees the same as-of history
    return float(evaluate_model(model, data)[GATE_METRIC])


def example_request(model: DeliveryModel, example: dict) -> dict:
    """``example`` with each strict categorical swapped for one the model knows when the
    model never saw it (a brand's own warehouses and carriers are not the demo's), so the
    input example logged with the model is one it accepts."""
    from ppx.models.delivery.model import STRICT, UNK

    out = dict(example)
    for col in STRICT:
        known = [v for v in model.vocab.get(col, []) if v != UNK]
        if known and out.get(col) not in known:
            out[col] = known[0]
    return out


def train(
    world_path: str | Path,
    cfg: DeliveryConfig | None = None,
    trials: int = 0,
    register: bool = True,
    progress: bool = True,
):
    """Train (optionally tune), evaluate on the test months, log, register and gate.

    Returns a :class:`~ppx.models.spec.TrainResult`; ``details["model"]`` is the fitted
    model and ``details["baselines"]`` the simple baselines' metrics.
    """
    import mlflow
    from ppx import tracking

    cfg = cfg or DeliveryConfig()
    tracking.configure()
    tables, _truth, data = load_data(world_path, cfg)
    digest_frame = data.train[["y_day", "event", "start_day"]]
    with tracking.start_run(
        "delivery", run_name="train", world_path=world_path, dataset=digest_frame
    ) as run:
        if trials > 0:
            cfg = tune_ppx(data, cfg, trials)
        snapshot = data.history.snapshot()
        model = fit(data.train, data.val, data.history, cfg, progress, snapshot_history=snapshot)
        model_metrics = evaluate_model(model, data)
        mlflow.log_params(cfg.to_params())
        mlflow.log_metrics({k: float(v) for k, v in model_metrics.items() if v is not None})
        mlflow.log_metric("val_nll", float(model.cfg.extra.get("val_nll", np.nan)))
        baselines = baseline_metrics(data)
        mlflow.log_metrics(
            {
                f"{name}.{k}": float(v)
                for name, m in baselines.items()
                for k, v in m.items()
                if v is not None
            }
        )
        tracking.log_json(
            {
                "split": {k: str(v) for k, v in vars(data.split).items()},
                "rows": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
            },
            "split.json",
        )
        version = gate = None
        if register:
            from ppx.models.delivery.pyfunc import (
                REQUEST_EXAMPLE,
                DeliveryPyfunc,
                save_artifacts,
                signature,
            )

            with tempfile.TemporaryDirectory() as tmp:
                arts = save_artifacts(model, tmp)
                version = tracking.log_pyfunc_model(
                    "delivery",
                    DeliveryPyfunc(),
                    artifacts=arts,
                    input_example=pd.DataFrame([example_request(model, REQUEST_EXAMPLE)]),
                    signature=signature(),
                )
            gate = tracking.promote(
                "delivery",
                version,
                GATE_METRIC,
                float(model_metrics[GATE_METRIC]),
                lambda uri: score_uri(uri, data),
                baseline_checks(model_metrics, baselines),
                heads=("delivery",),
                greater_is_better=False,
            )
    return tracking.train_result(
        "delivery",
        run.info.run_id,
        model_metrics,
        version,
        gate,
        model=model,
        baselines=baselines,
    )


def evaluate_registered(world_path: str | Path, alias: str = "champion") -> dict[str, float]:
    """Metrics of the registered model (by alias) on the world's test months."""
    import mlflow
    from ppx import tracking

    tracking.configure()
    if tracking.get_alias_version("delivery", alias) is None:
        raise ValueError(
            f"ppx-delivery has no version with alias {alias!r} "
            f"({tracking.missing_alias_hint('delivery', alias)}); run `ppx train delivery`"
        )
    model = mlflow.pyfunc.load_model(tracking.model_uri("delivery", alias))
    model = model.unwrap_python_model().model
    _t, _truth, data = load_data(world_path, DeliveryConfig(d_max=model.cfg.d_max))
    model.history = data.history
    return {k: v for k, v in evaluate_model(model, data).items() if v is not None}


def timed(fn, *a, **k):
    t = time.perf_counter()
    out = fn(*a, **k)
    return out, time.perf_counter() - t
