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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.features import churn as F
from ppx.models.churn.blend import blend_logistic
from ppx.models.churn.config import ChurnConfig
from ppx.models.churn.evaluate import Fitted, fit_logreg, fit_ppx, metrics
from ppx.models.churn.hygiene import (
    TableNotes,
    bootstrap_auc,
    duplicate_ids,
    guess_id_column,
    index_like_columns,
    read_user_table,
    resolve_column,
)
from ppx.models.churn.model import ChurnModel
from ppx.models.churn.tabular import (
    LEAKAGE_AUC,
    TableError,
    TabularEncoder,
    infer_columns,
    parse_target,
)

MODEL = "churn"
#: Table mode (user tables, Telco): quantile bins per numeric column in the network's
#: wide part, and the number of cross-fitted ensemble members trained on train +
#: validation after tuning (random splits only; a --time split keeps one network).
#: Five parts: each member is itself a TabM ensemble, so ten parts doubled the cost
#: for little gain.
TABLE_BINS = 8
TABLE_CROSSFIT = 5
#: Piecewise-linear encoding bins per numeric column (the network's input).
TABLE_PLE_BINS = 16
#: The table network: a TabM ensemble of 8 weight-sharing MLPs over piecewise-linear
#: encodings; a small version of the TabM paper's defaults (set once, not tuned on
#: the benchmark tables). Optuna (``--trials``) searches around it on validation.
TABLE_CONFIG = ChurnConfig(
    arch="tabm", members=8, hidden=64, depth=2, dropout=0.1, lr=2e-3, weight_decay=1e-3
)


def table_encoder(plan, frame: pd.DataFrame) -> TabularEncoder:
    """The encoder of a table model, fitted on its training rows."""
    return TabularEncoder(
        plan.numeric, plan.categorical, n_bins=TABLE_BINS, ple_bins=TABLE_PLE_BINS
    ).fit(frame)


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
    signature=None,
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
            signature=signature or (_request_signature() if history is not None else None),
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
        if "roc_auc" not in res:
            raise ValueError(
                f"{world_path}: the test months ({splits.test_start.date()} on) hold no "
                "subscriber with a known 30-day outcome of both kinds (churned and stayed); "
                "the data is too short or too small to measure a churn model"
            )
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
        raise ValueError(
            f"no ppx-churn model with alias {alias!r} "
            f"({tracking.missing_alias_hint(MODEL, alias)}); run `ppx train churn` first"
        )
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
    say: Callable[[str], None] | None = None,
):
    """Validate a user table and decide its columns; raises TableError with the reason.

    Returns ``(rows, y, plan, info)``: the labelled rows, the 0/1 target, the column
    plan and ``info`` (target labels, the id column used, duplicate-id counts, the
    ``groups`` array that keeps one customer's rows together, or None). Every
    decision is also passed to ``say`` as one line.
    """
    say = say or (lambda line: None)
    target = resolve_column(df, target, "--target")
    if id_column is not None:
        id_column = resolve_column(df, id_column, "--id")
    if time_column is not None:
        time_column = resolve_column(df, time_column, "--time")
        time_values(df, time_column)  # on the file's own rows, so the message can name them
    y, info = parse_target(df[target], target)
    keep = ~np.isnan(y)
    if info["blank_rows"]:
        say(f"target {target!r}: {info['blank_rows']} rows with a blank target left out")
    df, y = df.loc[keep].reset_index(drop=True), y[keep]
    if id_column is None:
        id_column = guess_id_column(df, [target, *([time_column] if time_column else [])])
        if id_column is not None:
            say(f"id column {id_column!r} (named like an id; --id chooses another)")
    groups = None
    info.update(id_column=id_column, duplicate_rows=0, duplicate_ids=0)
    if id_column is not None:
        ids = df[id_column].astype(str).str.strip()
        rows, n_ids = duplicate_ids(ids)
        info.update(duplicate_rows=rows, duplicate_ids=n_ids)
        if rows:
            say(
                f"duplicate ids: {rows} rows repeat {n_ids} customer ids of {id_column!r}; "
                "each customer's rows stay on one side of every split"
            )
            groups = pd.factorize(ids)[0]
    exclude = [target, *(c for c in (id_column, time_column) if c)]
    index_like = index_like_columns(df, exclude + list(force_columns or []))
    for col, why in index_like.items():
        say(f"dropped {col!r}: {why}")
    plan = infer_columns(df, y, exclude=exclude + list(index_like), force=force_columns)
    plan.dropped = {**index_like, **plan.dropped}
    for col, why in plan.dropped.items():
        if col not in index_like:
            say(f"dropped {col!r}: {why}")
    for col, auc in plan.leakage.items():
        say(
            f"refused {col!r} as probable leakage: alone it predicts the target with ROC AUC "
            f"{auc:.3f} (>= {LEAKAGE_AUC}); --force-column {col!r} keeps it"
        )
    info["groups"] = groups
    return df, y, plan, info


def time_values(df: pd.DataFrame, time_column: str) -> pd.Series:
    """The ``--time`` column as timestamps (or numbers, e.g. a month index); a value that
    is neither is an error naming the rows and showing the values."""
    t = pd.to_datetime(df[time_column], errors="coerce")
    if t.isna().all():
        t = pd.to_numeric(df[time_column], errors="coerce")
    if t.isna().any():
        bad = t.isna().to_numpy()
        rows = np.flatnonzero(bad)[:5].tolist()
        examples = df[time_column][bad].head(3).tolist()
        raise TableError(
            f"--time column {time_column!r}: {int(bad.sum())} value(s) are neither dates in "
            f"one format (e.g. 2025-11-03) nor numbers, at data rows {rows} (0 = the first "
            f"row under the header), e.g. {examples}; fix or drop those rows"
        )
    return t


def split_table(
    df: pd.DataFrame,
    y: np.ndarray,
    time_column: str | None,
    seed: int = 0,
    groups: np.ndarray | None = None,
):
    """60/20/20 train/validation/test: by time when a time column is given, else
    stratified at random (by customer when ``groups`` says rows share a customer)."""
    n = len(df)
    if time_column:
        t = time_values(df, time_column)
        order = np.argsort(t.to_numpy(), kind="stable")
        a, b = int(0.6 * n), int(0.8 * n)
        idx = order[:a], order[a:b], order[b:]
    elif groups is not None:
        from sklearn.model_selection import StratifiedGroupKFold

        rest, te = next(
            StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(np.zeros(n), y, groups)
        )
        tr, va = next(
            StratifiedGroupKFold(4, shuffle=True, random_state=seed).split(
                np.zeros(len(rest)), y[rest], groups[rest]
            )
        )
        idx = rest[tr], rest[va], te
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


#: Registered-model tag of a table model; the model service finds its routes by it.
TABLE_MODEL_TAG = ("ppx.kind", "churn-table")


def table_model_name(path: str | Path, name: str | None = None) -> str:
    """The registered name of a table model: ``--name`` (``telco`` -> ``ppx-churn-telco``,
    a ``ppx-`` name as given), else from the file name without repeating "churn"
    (``telco_churn.csv`` -> ``ppx-churn-telco``)."""
    if name:
        name = name.strip()
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
            raise TableError(f"--name {name!r}: use letters, digits, '-', '_' or '.'")
        full = name if name.startswith("ppx-") else f"ppx-churn-{name}"
    else:
        words = [w for w in re.split(r"[^a-z0-9]+", Path(path).stem.lower()) if w]
        words = [w for w in words if w not in ("churn", "ppx")]
        full = "ppx-churn-" + ("-".join(words) or "table")
    if full == f"ppx-{MODEL}":
        raise TableError(f"--name {full!r} is the subscription churn model's name; choose another")
    return full


def _table_signature(columns: list[str]):
    """Every model column optional and of any type: a table's own export (numbers
    with blanks, booleans, codes) is read as the model was trained, not by MLflow."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    return ModelSignature(inputs=Schema([ColSpec(AnyType(), c, required=False) for c in columns]))


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
    name: str | None = None,
    say: Callable[[str], None] | None = None,
) -> dict:
    """Bring-your-own-table training: hygiene, fit, evaluate on a holdout, log.

    The run goes to the ``ppx-churn`` experiment; the model is registered under
    :func:`table_model_name` so a user's table never competes with the subscription
    model for the ``champion`` alias of ``ppx-churn``. ``say`` receives one line per
    decision (columns dropped or refused, duplicates, split sizes, the AUC interval).
    """
    import mlflow
    from ppx import tracking

    say = say or (lambda line: None)
    path = Path(path)
    registered = table_model_name(path, name)
    notes = TableNotes()
    raw = read_user_table(path, notes)
    for line in notes.lines:
        say(line)
    df, y, plan, tinfo = prepare_table(raw, target, id_column, time_column, force_columns, say)
    target = resolve_column(raw, target, "--target")
    id_column = tinfo["id_column"]
    groups = tinfo.pop("groups")
    tr, va, te = split_table(df, y, time_column, seed, groups)
    say(
        f"split ({'by ' + repr(time_column) if time_column else 'stratified at random'}): "
        f"train {len(tr):,}, validation {len(va):,}, test {len(te):,} rows "
        f"({int(y[te].sum())} positives in test)"
    )
    enc = table_encoder(plan, df.iloc[tr])
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
        config=config or TABLE_CONFIG.replace(seed=seed),
        seed=seed,
        crossfit=0 if time_column else TABLE_CROSSFIT,
        groups=None if groups is None else np.concatenate([groups[tr], groups[va]]),
    )
    model: ChurnModel = fitted.model
    p = model.predict_table(df.iloc[te])["p_churn"].to_numpy()
    res = metrics(y[te], p)
    res["train_seconds"] = time.perf_counter() - t0
    lo, hi = bootstrap_auc(y[te], p, seed=seed)
    res["roc_auc_ci_low"], res["roc_auc_ci_high"] = lo, hi
    say(f"holdout ROC AUC {res['roc_auc']:.3f} (bootstrap 95 % interval {lo:.3f}-{hi:.3f})")
    model.info.update(
        id_column=id_column,
        target=target,
        table=str(path),
        target_info={k: v for k, v in tinfo.items() if k in ("positive_label", "labels")},
        columns=plan.__dict__,
        registered_model=registered,
        column_types=column_types(df, plan),
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
        "id_column": id_column,
        "duplicate_rows": tinfo["duplicate_rows"],
        "split": {"train": len(tr), "validation": len(va), "test": len(te)},
        "metrics": res,
    }
    if register:
        tracking.configure()
        with tracking.start_run(MODEL, run_name=f"train-table-{path.stem}", dataset=df):
            mlflow.log_params(
                {"table": str(path), "target": target, "id": id_column, "time": time_column}
            )
            mlflow.log_metrics({k: float(v) for k, v in res.items()})
            tracking.log_json(report, "table_report.json")
            inputs = [*([id_column] if id_column else []), *plan.numeric, *plan.categorical]
            example = {c: _native(df[c].iloc[0], c in plan.numeric) for c in inputs}
            holdout = df.iloc[te]
            lr = fit_logreg(df.iloc[tr], y[tr], df.iloc[va], y[va], enc, seed=seed)
            res["logreg_roc_auc"] = float(metrics(y[te], lr.predict(holdout))["roc_auc"])
            mlflow.log_metric("logreg_roc_auc", res["logreg_roc_auc"])
            version, gate = _log_and_register(
                model,
                registered,
                holdout,
                y[te],
                "p_churn",
                res["roc_auc"],
                None,
                example,
                [logreg_check(res["roc_auc"], res["logreg_roc_auc"])],
                signature=_table_signature(inputs),
            )
            from mlflow import MlflowClient

            MlflowClient().set_registered_model_tag(registered, *TABLE_MODEL_TAG)
            report["registered_model"] = registered
            report["version"] = int(version.version)
            report["promoted"] = gate.promoted
            report["gate"] = gate.reason
            report["alias"] = gate.alias
    report["model"] = model
    return report


def column_types(df: pd.DataFrame, plan) -> dict[str, str]:
    """Column -> ``number`` or ``string``, and the categories of each categorical column
    (for request schemas generated from the table)."""
    from ppx.models.churn.tabular import coerce_numeric

    out = {c: "number" for c in plan.numeric}
    for c in plan.categorical:
        out[c] = "string"
    for c in plan.numeric:
        x = coerce_numeric(df[c])
        if x is not None and np.all(np.isnan(x) | (x == np.round(x))):
            out[c] = "integer"
    return out


def _native(value, numeric: bool):
    """One cell of a table read as text -> the value a user's own frame would hold."""
    if numeric:
        try:
            return float(str(value).replace(",", ""))
        except ValueError:
            return None
    return value.item() if hasattr(value, "item") else value


def report_json(report: dict) -> str:
    return json.dumps({k: v for k, v in report.items() if k != "model"}, indent=2, default=str)
