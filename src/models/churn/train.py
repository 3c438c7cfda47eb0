"""Train, evaluate, log, register and gate churn models (world subscriptions or a table).

The world split is by time, like production: the model is trained on early snapshots
with labels censored at the start of validation, tuned and calibrated on the next
months (labels censored at the start of test), and scored on the last months. Nothing
from a later split leaks into an earlier one, labels included.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.features import churn as F
from ppx.models.churn.blend import blend_logistic
from ppx.models.churn.config import ChurnConfig
from ppx.models.churn.evaluate import Fitted, fit_logreg, fit_ppx, metrics
from ppx.models.churn.model import ChurnModel
from ppx.models.churn.tabular import (
    TableError,
    TabularEncoder,
    infer_columns,
    parse_target,
    read_table,
)

MODEL = "churn"
#: Table mode (user tables, Telco): quantile bins per numeric column in the network's
#: wide part, and the number of cross-fitted ensemble members trained on train +
#: validation after tuning (random splits only; a --time split keeps one network).
#: Ten rather than five: each member trains on 90% instead of 80% of the rows; on
#: Telco the out-of-fold ROC AUC inside every outer training part rose (0.8490 ->
#: 0.8499, mean of 5), see docs/benchmarks/churn.md.
TABLE_BINS = 8
TABLE_CROSSFIT = 10


@dataclass
class WorldSplits:
    """Snapshot frames of a world, split by time and censored at each boundary."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    history: dict
    val_start: pd.Timestamp
    test_start: pd.Timestamp


def world_splits(
    tables: dict[str, pd.DataFrame],
    test_months: int | None = None,
    val_months: int | None = None,
    progress: bool = False,
) -> WorldSplits:
    """Monthly snapshots -> train / validation / test frames for a time-based benchmark.

    By default the last six months are test and the three before validation; shorter
    worlds (tests use 12 months) keep about a fifth of their snapshots for each.
    """
    h = F.history_tables(tables)
    snaps = F.month_snapshots(h)
    short = len(snaps) < 15
    if test_months is None:
        test_months = max(1, len(snaps) // 5) if short else 6
    if val_months is None:
        val_months = max(1, len(snaps) // 5) if short else 3
    if len(snaps) < test_months + val_months + 3:
        raise ValueError(
            f"the world has {len(snaps)} monthly snapshots; need at least "
            f"{test_months + val_months + 3} for train/validation/test"
        )
    test_start = snaps[-test_months]
    val_start = snaps[-test_months - val_months]
    feats = pd.concat(
        [
            F.churn_features(h, t)
            for t in (_progress(snaps, "churn snapshots") if progress else snaps)
        ],
        ignore_index=True,
    )
    tr = feats[feats[F.AS_OF] < val_start]
    va = feats[(feats[F.AS_OF] >= val_start) & (feats[F.AS_OF] < test_start)]
    te = feats[feats[F.AS_OF] >= test_start]
    return WorldSplits(
        train=F.churn_labels(h, tr, observed_until=val_start).reset_index(drop=True),
        val=F.churn_labels(h, va, observed_until=test_start).reset_index(drop=True),
        test=F.churn_labels(h, te).reset_index(drop=True),
        history=h,
        val_start=val_start,
        test_start=test_start,
    )


def _progress(it, desc):
    from tqdm.auto import tqdm

    return tqdm(list(it), desc=desc, leave=False)


def world_encoder(train: pd.DataFrame) -> TabularEncoder:
    return TabularEncoder(list(F.MODEL_NUMERIC_FEATURES), list(F.CATEGORICAL_FEATURES)).fit(train)


def fit_world(
    splits: WorldSplits,
    config: ChurnConfig | None = None,
    n_trials: int = 0,
    seed: int = 0,
    blend: bool = True,
):
    """Our world model on a world's splits: the survival network (tuned on validation if
    n_trials > 0) blended with a survival logistic regression (:mod:`ppx.models.churn.blend`,
    weight and calibration fitted on validation). ``blend=False``: the network alone."""
    enc = world_encoder(splits.train)
    fitted = fit_ppx(
        splits.train,
        splits.val,
        enc,
        list(F.HORIZONS),
        "subscriptions",
        n_trials=n_trials,
        config=config,
        seed=seed,
    )
    return blend_world(fitted, splits) if blend else fitted


def blend_world(network: Fitted, splits: WorldSplits) -> Fitted:
    """The fitted network of :func:`fit_world` with the logistic member blended in."""
    t0 = time.perf_counter()
    model = blend_logistic(network.model, splits.train, splits.val)
    enc = model.encoder
    return Fitted(
        "ppx",
        lambda df: model.predict_proba_frame(enc.numeric_frame(df)),
        network.train_seconds + time.perf_counter() - t0,
        network.params,
        model,
    )


def _score_uri_on(frame: pd.DataFrame, y: np.ndarray, column: str):
    """A promotion-gate scorer: ROC AUC of a registered model on the same holdout."""

    def score(uri: str) -> float:
        import mlflow.pyfunc

        from ppx.models.churn.evaluate import metrics as M

        pm = mlflow.pyfunc.load_model(uri).unwrap_python_model()
        p = pm.model.predict_table(frame)[column].to_numpy()
        return M(y, p)["roc_auc"]

    return score


def _request_signature():
    """customer_id required, as_of optional (defaults to the end of the training data)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([ColSpec("long", C.CUSTOMER_ID), ColSpec("string", F.AS_OF, required=False)])
    return ModelSignature(inputs=inputs)


def _log_and_register(
    model: ChurnModel,
    registered: str,
    holdout: pd.DataFrame,
    y_holdout: np.ndarray,
    score_column: str,
    candidate_auc: float,
    history: dict | None,
    input_example: dict,
    baselines: list,
):
    from ppx import tracking
    from ppx.models.churn.pyfunc import ChurnPyfunc, save_history

    with tempfile.TemporaryDirectory() as tmp:
        artifacts = {"model": str(model.save(Path(tmp) / "model"))}
        if history is not None:
            artifacts["history"] = str(save_history(history, Path(tmp) / "history"))
        version = tracking.log_pyfunc_model(
            registered,
            ChurnPyfunc(),
            artifacts=artifacts,
            input_example=pd.DataFrame([input_example]),
            signature=_request_signature() if history is not None else None,
        )
    result = tracking.promote(
        registered,
        version,
        "roc_auc",
        candidate_auc,
        _score_uri_on(holdout, y_holdout, score_column),
        baselines,
        heads=("churn",),
    )
    return version, result


def logreg_check(candidate_auc: float, baseline_auc: float):
    """The gate's comparison with the simple baseline: ROC AUC against logistic regression."""
    from ppx import tracking

    return tracking.BaselineCheck("churn", "roc_auc", candidate_auc, "logreg", baseline_auc)


def train_world(
    world_path: str | Path,
    config: ChurnConfig | None = None,
    n_trials: int = 0,
    register: bool = True,
    progress: bool = True,
    seed: int = 0,
):
    """Train the subscription churn model on a world, log it to ``ppx-churn``, gate it.

    Returns a :class:`~ppx.models.spec.TrainResult` with the headline metrics on the
    time-based test months (``logreg_roc_auc``: the simple baseline on the same rows).
    """
    import mlflow
    from ppx import tracking
    from ppx.data.io import load_tables

    tracking.configure()
    tables = load_tables(world_path, validate=False)
    splits = world_splits(tables, progress=progress)
    with tracking.start_run(
        MODEL, run_name="train-world", world_path=world_path, dataset=splits.train
    ) as run:
        t0 = time.perf_counter()
        fitted = fit_world(splits, config, n_trials=n_trials, seed=seed)
        model: ChurnModel = fitted.model
        test = splits.test
        p = model.predict_table(test)
        res = {}
        for h in F.HORIZONS:
            obs = test[f"observed_{h}"].to_numpy() > 0
            y = test[f"churn_{h}"].to_numpy()[obs]
            if len(np.unique(y)) == 2:
                for k, v in metrics(y, p[f"p_churn_{h}"].to_numpy()[obs]).items():
                    res[f"{k}_{h}" if h != 30 else k] = v
        res["train_seconds"] = time.perf_counter() - t0
        res["logreg_roc_auc"] = _world_logreg_auc(splits, seed)
        mlflow.log_params({f"cfg.{k}": v for k, v in model.config.to_dict().items()})
        mlflow.log_params(
            {
                "val_start": str(splits.val_start.date()),
                "test_start": str(splits.test_start.date()),
                "n_trials": n_trials,
            }
        )
        mlflow.log_metrics({k: float(v) for k, v in res.items()})
        model.info.update(
            default_as_of=str(F.data_end(splits.history)),
            test_start=str(splits.test_start),
            features=model.feature_names,
        )
        if register:
            # Served requests at the default as_of (and the months before) look their
            # features up instead of computing them (see ppx.models.churn.pyfunc).
            model.snapshot = F.serving_snapshot(splits.history)
            last = F.data_end(splits.history)
            cust = int(test[C.CUSTOMER_ID].iloc[0]) if len(test) else 1
            example = {C.CUSTOMER_ID: cust, F.AS_OF: str((last - pd.DateOffset(months=1)).date())}
            y30 = test["churn_30"].to_numpy()
            version, gate = _log_and_register(
                model,
                MODEL,
                test,
                y30,
                "p_churn_30",
                res["roc_auc"],
                splits.history,
                example,
                [logreg_check(res["roc_auc"], res["logreg_roc_auc"])],
            )
        else:
            version = gate = None
    return tracking.train_result(MODEL, run.info.run_id, res, version, gate, model=model)


def _world_logreg_auc(splits: WorldSplits, seed: int = 0) -> float:
    """The simple baseline's 30-day ROC AUC on the test rows our 30-day AUC is taken on."""
    tr30 = splits.train[splits.train["observed_30"] > 0]
    va30 = splits.val[splits.val["observed_30"] > 0]
    test = splits.test[splits.test["observed_30"] > 0]
    y = test["churn_30"].to_numpy()
    if len(np.unique(y)) < 2:
        return float("nan")
    enc = world_encoder(splits.train)
    f = fit_logreg(
        tr30, tr30["churn_30"].to_numpy(), va30, va30["churn_30"].to_numpy(), enc, seed=seed
    )
    return float(metrics(y, f.predict(test))["roc_auc"])


def train(
    world_path: str | Path,
    cfg: ChurnConfig | None = None,
    register: bool = True,
    progress: bool = True,
    **kwargs,
):
    """The registry's training entry point (``train_world`` with the uniform signature)."""
    return train_world(world_path, config=cfg, register=register, progress=progress, **kwargs)


def evaluate_registered(world_path: str | Path, alias: str = "champion") -> dict[str, float]:
    """Metrics of the registered model (by alias) per horizon on the world's test months."""
    import mlflow.pyfunc

    from ppx import tracking
    from ppx.data.io import load_tables

    tracking.configure()
    if tracking.get_alias_version(MODEL, alias) is None:
        raise ValueError(f"no ppx-churn model with alias {alias!r}; run `ppx train churn` first")
    pm = mlflow.pyfunc.load_model(tracking.model_uri(MODEL, alias)).unwrap_python_model()
    sp = world_splits(load_tables(world_path, validate=False), progress=False)
    p = pm.model.predict_table(sp.test)
    out: dict[str, float] = {}
    for h in F.HORIZONS:
        obs = sp.test[f"observed_{h}"].to_numpy() > 0
        y = sp.test[f"churn_{h}"].to_numpy()[obs]
        if len(np.unique(y)) == 2:
            for k, v in metrics(y, p[f"p_churn_{h}"].to_numpy()[obs]).items():
                out[f"{k}_{h}"] = float(v)
    return out


def prepare_table(
    df: pd.DataFrame,
    target: str,
    id_column: str | None = None,
    time_column: str | None = None,
    force_columns: list[str] | None = None,
):
    """Validate a user table and decide its columns; raises TableError with the reason."""
    if target not in df.columns:
        raise TableError(f"target column {target!r} not found; columns are {list(df.columns)}")
    for name, col in (("--id", id_column), ("--time", time_column)):
        if col is not None and col not in df.columns:
            raise TableError(f"{name} column {col!r} not found; columns are {list(df.columns)}")
    y, target_info = parse_target(df[target], target)
    keep = ~np.isnan(y)
    df, y = df.loc[keep].reset_index(drop=True), y[keep]
    exclude = [target, *(c for c in (id_column, time_column) if c)]
    plan = infer_columns(df, y, exclude=exclude, force=force_columns)
    return df, y, plan, target_info


def split_table(df: pd.DataFrame, y: np.ndarray, time_column: str | None, seed: int = 0):
    """60/20/20 train/validation/test: by time when a time column is given, else
    stratified at random."""
    n = len(df)
    if time_column:
        t = pd.to_datetime(df[time_column], errors="coerce")
        if t.isna().all():
            t = pd.to_numeric(df[time_column], errors="coerce")
        if t.isna().any():
            raise TableError(
                f"--time column {time_column!r} has {int(t.isna().sum())} unparseable values"
            )
        order = np.argsort(t.to_numpy(), kind="stable")
        a, b = int(0.6 * n), int(0.8 * n)
        idx = order[:a], order[a:b], order[b:]
    else:
        from sklearn.model_selection import train_test_split

        tr, te = train_test_split(np.arange(n), test_size=0.2, stratify=y, random_state=seed)
        tr, va = train_test_split(tr, test_size=0.25, stratify=y[tr], random_state=seed)
        idx = tr, va, te
    for name, ix in zip(("train", "validation", "test"), idx, strict=True):
        if len(np.unique(y[ix])) < 2:
            raise TableError(
                f"the {name} split has one class only; the table is too small or too "
                "imbalanced (or sorted by the target) to train and evaluate a churn model"
            )
    return idx


def train_table(
    path: str | Path,
    target: str,
    id_column: str | None = None,
    time_column: str | None = None,
    force_columns: list[str] | None = None,
    config: ChurnConfig | None = None,
    n_trials: int = 0,
    register: bool = True,
    seed: int = 0,
) -> dict:
    """Bring-your-own-table training: infer columns, fit, evaluate on a holdout, log.

    The run goes to the ``ppx-churn`` experiment; the model is registered as
    ``ppx-churn-<table name>`` so a user's table never competes with the subscription
    model for the ``champion`` alias of ``ppx-churn``.
    """
    import mlflow
    from ppx import tracking

    path = Path(path)
    raw = read_table(path)
    df, y, plan, tinfo = prepare_table(raw, target, id_column, time_column, force_columns)
    tr, va, te = split_table(df, y, time_column, seed)
    enc = TabularEncoder(plan.numeric, plan.categorical, n_bins=TABLE_BINS).fit(df.iloc[tr])
    t0 = time.perf_counter()
    fitted = fit_ppx(
        df.iloc[tr],
        df.iloc[va],
        enc,
        [0],
        "table",
        y[tr],
        y[va],
        n_trials=n_trials,
        config=config,
        seed=seed,
        crossfit=0 if time_column else TABLE_CROSSFIT,
    )
    model: ChurnModel = fitted.model
    p = model.predict_table(df.iloc[te])["p_churn"].to_numpy()
    res = metrics(y[te], p)
    res["train_seconds"] = time.perf_counter() - t0
    model.info.update(
        id_column=id_column,
        target=target,
        table=str(path),
        target_info=tinfo,
        columns=plan.__dict__,
    )
    report = {
        "rows": len(df),
        "positive_label": tinfo["positive_label"],
        "positive_rate": float(y.mean()),
        "numeric": plan.numeric,
        "categorical": plan.categorical,
        "dropped": plan.dropped,
        "leakage": plan.leakage,
        "forced": list(force_columns or []),
        "metrics": res,
    }
    if register:
        tracking.configure()
        slug = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")
        name = f"churn-{slug}"
        with tracking.start_run(MODEL, run_name=f"train-table-{path.stem}", dataset=df):
            mlflow.log_params(
                {"table": str(path), "target": target, "id": id_column, "time": time_column}
            )
            mlflow.log_metrics({k: float(v) for k, v in res.items()})
            tracking.log_json(report, "table_report.json")
            example = {c: df[c].iloc[0] for c in [*plan.numeric, *plan.categorical]}
            example = {k: (v.item() if hasattr(v, "item") else v) for k, v in example.items()}
            holdout = df.iloc[te]
            lr = fit_logreg(df.iloc[tr], y[tr], df.iloc[va], y[va], enc, seed=seed)
            res["logreg_roc_auc"] = float(metrics(y[te], lr.predict(holdout))["roc_auc"])
            mlflow.log_metric("logreg_roc_auc", res["logreg_roc_auc"])
            version, gate = _log_and_register(
                model,
                name,
                holdout,
                y[te],
                "p_churn",
                res["roc_auc"],
                None,
                example,
                [logreg_check(res["roc_auc"], res["logreg_roc_auc"])],
            )
            report["registered_model"] = f"ppx-{name}"
            report["version"] = int(version.version)
            report["promoted"] = gate.promoted
            report["gate"] = gate.reason
    report["model"] = model
    return report


def report_json(report: dict) -> str:
    return json.dumps({k: v for k, v in report.items() if k != "model"}, indent=2, default=str)
