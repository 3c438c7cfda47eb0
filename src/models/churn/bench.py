"""``ppx bench churn``: ours vs logistic regression vs LightGBM (vs the oracle on worlds).

(a) The default world, split by time (train / validation / last six months as test),
scored on P(churn within 30 days), where the oracle is the month's true hazard. ``ppx``
is the served model (the survival network blended with a sparse survival logistic
regression, :mod:`ppx.models.churn.blend`); ``ppx_network`` the network alone.
(b) IBM Telco, stratified 5-fold cross-validation; inside each fold 20% of the training
part is the validation set every method tunes (Optuna, the same number of trials)
and early-stops on, so no test fold is ever used for a decision. Ours then trains the
chosen configuration as a cross-fitted ensemble on the fold's training part (train +
validation, see ``fit_crossfit_table``: networks plus a logistic member, blended with
a weight fitted on the training part's out-of-fold logits), as ``ppx train churn
--table`` does. Mean and std over folds.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

from ppx.features import churn as F
from ppx.models.churn.config import ChurnConfig
from ppx.models.churn.evaluate import (
    METRICS,
    fit_lightgbm,
    fit_logreg,
    fit_ppx,
    metrics,
    oracle_p30,
)
from ppx.models.churn.train import TABLE_CROSSFIT


def machine() -> str:
    import os

    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"


def bench_world(
    world_path: str | Path, n_trials: int = 6, seed: int = 0, progress: bool = True
) -> dict:
    """Time-based benchmark on a world or a store; the oracle row needs a world's truth/."""
    from ppx.data.io import load_tables, load_truth_if_any
    from ppx.models.churn.train import blend_world, fit_world, world_encoder, world_splits

    tables = load_tables(world_path, validate=False)
    truth = load_truth_if_any(world_path)
    sp = world_splits(tables, progress=progress)
    if truth is not None:
        oracle = oracle_p30(sp.test, truth["truth_subscription_months"])
        keep = ~np.isnan(oracle)
    else:  # a store: every observed test row, no oracle
        oracle, keep = None, (sp.test["observed_30"] > 0).to_numpy()
    test = sp.test[keep]
    y = test["churn_30"].to_numpy()
    out: dict[str, dict] = {}
    network = fit_world(sp, n_trials=n_trials, seed=seed, blend=False)
    fitted = blend_world(network, sp)
    out["ppx"] = {**metrics(y, fitted.predict(test)[:, 0]), "train_seconds": fitted.train_seconds}
    # The survival network alone (what the blend starts from) and the blend's choices.
    out["ppx_network"] = {
        **metrics(y, network.predict(test)[:, 0]),
        "train_seconds": network.train_seconds,
    }
    info = fitted.model.info
    out["_blend"] = {k: info[k] for k in ("blend_weight", "logistic_C", "val_roc_auc") if k in info}
    # Ablation: the same network as a plain 30-day classifier (no survival structure).
    enc = world_encoder(sp.train)
    tr30 = sp.train[sp.train["observed_30"] > 0]
    va30 = sp.val[sp.val["observed_30"] > 0]
    clf = fit_ppx(
        tr30, va30, enc, [30], "subscriptions", config=ChurnConfig(**fitted.params), seed=seed
    )
    out["ppx_classifier"] = {
        **metrics(y, clf.predict(test)[:, 0]),
        "train_seconds": clf.train_seconds,
    }
    yt, yv = tr30["churn_30"].to_numpy(), va30["churn_30"].to_numpy()
    for fit in (fit_logreg, fit_lightgbm):
        f = fit(tr30, yt, va30, yv, enc, n_trials=n_trials, seed=seed)
        out[f.name] = {**metrics(y, f.predict(test)), "train_seconds": f.train_seconds}
    if oracle is not None:
        out["oracle"] = {**metrics(y, oracle[keep]), "train_seconds": 0.0}
    out["_rows"] = {
        "test_rows": len(test),
        "test_churners": int(y.sum()),
        "test_start": str(sp.test_start.date()),
    }
    return out


def bench_telco(
    n_trials: int = 3, folds: int = 5, seed: int = 0, path=None, progress: bool = True
) -> dict:
    """Stratified k-fold CV on Telco (:func:`bench_table`): mean and std per method."""
    from ppx.data.adapters.telco import ID_COLUMN, TARGET_COLUMN, telco_file

    if path is None:
        files, target, id_column = dataset_table("telco")
    else:
        files, target, id_column = [telco_file(path)], TARGET_COLUMN, ID_COLUMN
    out = bench_table(files, target, id_column, n_trials, folds, seed, progress)
    out.pop("_rows")
    return out


#: Public customer tables of ``ppx bench churn-table``: dataset folder, files (read
#: and stacked), target, id column.
TABLE_DATASETS = {
    "telco": ("telco_churn", ("WA_Fn-UseC_-Telco-Customer-Churn.csv",), "Churn", "customerID"),
    "orange": (
        "orange_telecom_churn",
        ("churn-bigml-80.csv", "churn-bigml-20.csv"),
        "Churn",
        None,
    ),
}


def dataset_table(name: str) -> tuple[list[Path], str, str | None]:
    """(files, target, id column) of a named public table."""
    from ppx.data.adapters import dataset_path

    if name not in TABLE_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(TABLE_DATASETS)}")
    folder, files, target, id_col = TABLE_DATASETS[name]
    root = dataset_path(folder)
    return [root / f for f in files], target, id_col


def bench_table(
    files: list[Path],
    target: str,
    id_column: str | None = None,
    n_trials: int = 3,
    folds: int = 5,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Stratified k-fold CV of a customer table, the same folds for every method.

    The table goes through the same reading and hygiene as ``ppx train churn --table``
    (files are stacked). Inside each outer fold 20 % of the training part is the inner
    validation set on which every method is tuned (Optuna, ``n_trials`` each, the
    first trial its defaults) and early-stopped; the test fold is never used for a
    decision. ``ppx`` then trains the chosen configuration as the cross-fitted
    ensemble that ``ppx train churn --table`` registers (TabM networks blended with a
    logistic member); ``ppx_network`` is the same fit's networks alone, calibrated on
    their own out-of-fold logits.
    """
    import pandas as pd
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

    from ppx.models.churn.hygiene import read_user_table
    from ppx.models.churn.train import TABLE_CONFIG, prepare_table, table_encoder

    raw = pd.concat([read_user_table(f) for f in files], ignore_index=True)
    df, y, plan, info = prepare_table(raw, target, id_column)
    groups = info["groups"]
    scores: dict[str, list[dict]] = {"ppx": [], "ppx_network": [], "logreg": [], "lightgbm": []}
    if groups is None:
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(df, y))
    else:
        cv = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
        splits = list(cv.split(df, y, groups))
    it = splits
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(splits, desc=f"{files[0].parent.name} folds", leave=False)
    for tr, te in it:
        itr, iva = train_test_split(tr, test_size=0.2, stratify=y[tr], random_state=seed)
        a, b, c = df.iloc[itr], df.iloc[iva], df.iloc[te]
        enc = table_encoder(plan, a)
        f = fit_ppx(
            a,
            b,
            enc,
            [0],
            "table",
            y[itr],
            y[iva],
            n_trials=n_trials,
            config=TABLE_CONFIG.replace(seed=seed),
            seed=seed,
            crossfit=TABLE_CROSSFIT,
            groups=None if groups is None else np.concatenate([groups[itr], groups[iva]]),
        )
        secs = f.train_seconds
        scores["ppx"].append({**metrics(y[te], f.predict(c)[:, 0]), "train_seconds": secs})
        p_net = f.model.network_only_proba(enc.numeric_frame(c))
        scores["ppx_network"].append({**metrics(y[te], p_net), "train_seconds": secs})
        for fit in (fit_logreg, fit_lightgbm):
            g = fit(a, y[itr], b, y[iva], enc, n_trials=n_trials, seed=seed)
            scores[g.name].append(
                {**metrics(y[te], g.predict(c)), "train_seconds": g.train_seconds}
            )
    out = {}
    for method, rows in scores.items():
        out[method] = {}
        for m in (*METRICS, "train_seconds"):
            vals = np.array([r[m] for r in rows])
            out[method][m] = float(vals.mean())
            if m != "train_seconds":
                out[method][f"{m}_std"] = float(vals.std())
    out["_rows"] = {"rows": len(df), "positives": int(y.sum()), "columns": plan.__dict__}
    return out


def run_table_bench(datasets: list[str], tables: list[Path], target, id_column, n_trials, command):
    """The ``ppx bench churn-table`` payload: one entry per dataset or table file."""
    import os

    t0 = time.perf_counter()
    payload: dict = {"meta": {"command": command, "machine": machine(), "trials": n_trials}}
    payload["meta"]["load_start"] = os.getloadavg()[0]
    jobs = [(n, *dataset_table(n)) for n in datasets]
    jobs += [(Path(t).stem, [Path(t)], target, id_column) for t in tables]
    for name, files, tgt, idc in jobs:
        t1 = time.perf_counter()
        res = bench_table(files, tgt, idc, n_trials=n_trials)
        payload["meta"][name] = {**res.pop("_rows"), "seconds": time.perf_counter() - t1}
        payload[f"{name}_cv5"] = res
    payload["meta"]["seconds"] = time.perf_counter() - t0
    payload["meta"]["load_end"] = os.getloadavg()[0]
    return payload


def run_bench(
    world_path: str | Path | None,
    n_trials: int,
    telco_trials: int,
    command: str,
    telco: bool = True,
) -> dict:
    """The full ``ppx bench churn`` payload (world and/or Telco)."""
    t0 = time.perf_counter()
    payload: dict = {"meta": {"command": command, "machine": machine()}}
    if world_path is not None:
        w = bench_world(world_path, n_trials=n_trials)
        payload["meta"]["world"] = {"path": str(world_path), **w.pop("_rows")}
        payload["meta"]["world_blend"] = w.pop("_blend")
        payload["world"] = w
    if telco:
        t1 = time.perf_counter()
        payload["telco_cv5"] = bench_telco(n_trials=telco_trials)
        payload["meta"]["telco_seconds"] = time.perf_counter() - t1
    payload["meta"]["seconds"] = time.perf_counter() - t0
    payload["meta"]["features"] = list(F.MODEL_NUMERIC_FEATURES + F.CATEGORICAL_FEATURES)
    return payload
