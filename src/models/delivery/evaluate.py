"""Metrics, baselines and the oracle for delivery-date estimates.

Every method is reduced to the same integer-day outputs on the same test rows, so the
table compares like with like:

* checkout rows: ``p50`` (the point estimate), ``promise_90`` / ``promise_95`` (promise
  lengths meant to be kept 90 % / 95 % of the time) and ``headline`` (the promise the
  method would show: the 0.90 promise for models, the SLA for the carrier);
* in-transit rows: a lateness score (higher = more likely to miss the carrier's SLA).

Baselines: ``carrier_sla`` (the promise in ``orders.promised_days``), ``lane_quantile``
(historical quantiles of the lane's delivery days up to the test start) and
``lightgbm`` (quantile regression on the same features, tuned with Optuna on the same
trial budget, conformalised on the same calibration period). ``oracle`` uses the
world's true log-normal transit distribution.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy.stats import norm

from ppx import metrics as M
from ppx.data import columns as C
from ppx.features import delivery as fd
from ppx.metrics import pinball

METRICS = (
    "mae_days",
    "pinball_0_5",
    "pinball_0_9",
    "coverage_0_9",
    "promise_days_90",
    "promise_days_95",
    "on_time_rate",
    "late_auc_in_transit",
    "train_seconds",
)
LANE = (C.WAREHOUSE, C.CARRIER, C.SERVICE_LEVEL, C.DEST_REGION)


def metrics(
    y: np.ndarray,
    p50: np.ndarray,
    promise_90: np.ndarray | None,
    promise_95: np.ndarray | None,
    headline: np.ndarray,
    late: np.ndarray | None = None,
    late_score: np.ndarray | None = None,
    train_seconds: float | None = None,
    q90: np.ndarray | None = None,
) -> dict[str, float | None]:
    """The benchmark's metrics for one method (None where it does not apply).

    ``q90`` is the 0.9-quantile of the method's predicted distribution (pinball is a
    property of the distribution); ``promise_90`` is its promise meant to be kept 90 %
    of the time (coverage). With whole days the two differ: a discrete 0.9-quantile is
    kept more often than 90 %. Without ``q90`` the promise is scored for both.
    """
    y = np.asarray(y, float)
    q90 = promise_90 if q90 is None else q90
    out: dict[str, float | None] = {
        "mae_days": M.mae(y, p50),
        "pinball_0_5": pinball(y, p50, 0.5),
        "pinball_0_9": pinball(y, q90, 0.9) if q90 is not None else None,
        "coverage_0_9": M.coverage(y, promise_90) if promise_90 is not None else None,
        "promise_days_90": float(np.mean(promise_90)) if promise_90 is not None else None,
        "promise_days_95": float(np.mean(promise_95)) if promise_95 is not None else None,
        "on_time_rate": float(np.mean(y <= headline)),
        "late_auc_in_transit": M.roc_auc(late, late_score) if late is not None else None,
        "train_seconds": train_seconds,
    }
    return out


# --- oracle ------------------------------------------------------------------------------


def oracle_cdf(rows: pd.DataFrame, truth: pd.DataFrame, d_max: int) -> np.ndarray:
    """True ``P(delivery day offset <= d)`` per row, d = 0..d_max (checkout view).

    Transit time T (days from ``ordered_at``) is log-normal(true_mu, true_sigma);
    delivery on calendar offset <= d means ``T < d + 1 - frac_of_day_ordered``.
    """
    tr = truth.set_index(C.SHIPMENT_ID).loc[rows[C.SHIPMENT_ID].to_numpy()]
    mu, sig = tr[C.TRUE_MU].to_numpy(), tr[C.TRUE_SIGMA].to_numpy()
    t = rows[C.ORDERED_AT]
    frac = ((t - t.dt.normalize()).dt.total_seconds() / 86400.0).to_numpy()
    d = np.arange(d_max + 1)[None, :]
    x = np.maximum(d + 1 - frac[:, None], 1e-9)
    cdf = norm.cdf((np.log(x) - mu[:, None]) / sig[:, None])
    cdf[:, -1] = 1.0
    return cdf


def oracle_late_prob(rows: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """True P(delivered after the SLA day | not delivered by ``as_of``)."""
    tr = truth.set_index(C.SHIPMENT_ID).loc[rows[C.SHIPMENT_ID].to_numpy()]
    mu, sig = tr[C.TRUE_MU].to_numpy(), tr[C.TRUE_SIGMA].to_numpy()
    t = rows[C.ORDERED_AT]
    frac = ((t - t.dt.normalize()).dt.total_seconds() / 86400.0).to_numpy()
    elapsed = ((rows[fd.AS_OF] - t).dt.total_seconds() / 86400.0).to_numpy()
    deadline = rows[C.PROMISED_DAYS].to_numpy(float) + 1 - frac
    s_dead = norm.sf((np.log(np.maximum(deadline, 1e-9)) - mu) / sig)
    s_now = norm.sf((np.log(np.maximum(elapsed, 1e-9)) - mu) / sig)
    return np.clip(s_dead / np.maximum(s_now, 1e-300), 0, 1)


def first_reach(cdf: np.ndarray, q: float) -> np.ndarray:
    r = cdf >= q - 1e-12
    r[:, -1] = True
    return r.argmax(1)


# --- lane historical quantile ------------------------------------------------------------


def lane_quantile(
    hist: pd.DataFrame, rows: pd.DataFrame, qs=(0.5, 0.9, 0.95), min_n: int = 30
) -> dict[float, np.ndarray]:
    """Empirical quantiles of delivery days per lane (falls back to carrier x service)."""
    h = hist[hist["event"] > 0]
    out = {}
    for q in qs:
        g = h.groupby(list(LANE))["y_day"]
        by_lane = pd.DataFrame({"n": g.size(), "q": g.quantile(q)})
        by_cs = h.groupby([C.CARRIER, C.SERVICE_LEVEL])["y_day"].quantile(q)
        key = pd.MultiIndex.from_frame(rows[list(LANE)])
        lane = by_lane.reindex(key)
        cs = by_cs.reindex(pd.MultiIndex.from_frame(rows[[C.CARRIER, C.SERVICE_LEVEL]]))
        v = np.where(lane["n"].fillna(0).to_numpy() >= min_n, lane["q"].to_numpy(), cs.to_numpy())
        out[q] = np.ceil(np.nan_to_num(v, nan=float(np.quantile(h["y_day"], q)))).astype(int)
    return out


def lane_late_prob(hist: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Empirical P(D > SLA | D >= current day) from the lane's history."""
    h = hist[hist["event"] > 0]
    groups = {k: np.sort(g["y_day"].to_numpy()) for k, g in h.groupby(list(LANE))}
    allv = np.sort(h["y_day"].to_numpy())
    out = np.empty(len(rows))
    keys = list(rows[list(LANE)].itertuples(index=False, name=None))
    start = rows["start_day"].to_numpy()
    sla = rows[C.PROMISED_DAYS].to_numpy(float)
    for i, k in enumerate(keys):
        v = groups.get(k, allv)
        n_alive = len(v) - np.searchsorted(v, start[i], side="left")
        n_late = len(v) - np.searchsorted(v, sla[i], side="right")
        out[i] = n_late / n_alive if n_alive > 0 else 0.5
    return out


# --- LightGBM quantile regression --------------------------------------------------------


def lgbm_matrix(feats: pd.DataFrame) -> pd.DataFrame:
    X = feats[list(fd.NUMERIC)].copy()
    for c in (*fd.CATEGORICAL, fd.LAST_SCAN_TYPE):
        X[c] = pd.Categorical(feats[c].astype(str))
    return X


def _align_categories(X: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
    X = X.copy()
    for c in (*fd.CATEGORICAL, fd.LAST_SCAN_TYPE):
        X[c] = pd.Categorical(X[c].astype(str), categories=ref[c].cat.categories)
    return X


def lgbm_fit(X, y, alpha: float, params: dict, seed: int = 0):
    import lightgbm as lgb

    p = {
        "objective": "quantile",
        "alpha": alpha,
        "verbose": -1,
        "num_threads": 1,  # one thread like the network (a loaded 2-core box stalls OpenMP)
        "seed": seed,
        "n_estimators": 300,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 50,
        "colsample_bytree": 0.9,
        **params,
    }
    return lgb.LGBMRegressor(**p).fit(X, y)


def lgbm_params(trial) -> dict:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 400, step=50),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 15, 127, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 20, 300, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
    }


class LightGBMBaseline:
    """Quantile regressors at 0.5 / 0.9 / 0.95, conformalised (CQR) on validation."""

    def __init__(self, params: dict | None = None, seed: int = 0):
        self.params = params or {}
        self.seed = seed
        self.models: dict[float, object] = {}
        self.shift: dict[float, float] = {}
        self.ref: pd.DataFrame | None = None
        self.train_seconds = 0.0

    def fit(self, f_tr, y_tr, f_va, y_va, ev_va, qs=(0.5, 0.9, 0.95)) -> LightGBMBaseline:
        t = time.perf_counter()
        X = lgbm_matrix(f_tr)
        self.ref = X
        for q in qs:
            self.models[q] = lgbm_fit(X, y_tr, q, self.params, self.seed)
        # Conformal shift so that exactly q of the (delivered) validation parcels are
        # delivered by the promise; the median is left as the point estimate.
        Xv = _align_categories(lgbm_matrix(f_va), X)
        ok = np.asarray(ev_va) > 0
        for q in qs:
            if q == 0.5:
                self.shift[q] = 0.0
                continue
            pred = np.ceil(self.models[q].predict(Xv[ok]) - 1e-9)
            resid = np.asarray(y_va)[ok] - pred
            self.shift[q] = float(np.ceil(np.quantile(resid, q, method="higher")))
        self.train_seconds = time.perf_counter() - t
        return self

    def predict(self, feats: pd.DataFrame, q: float, raw: bool = False) -> np.ndarray:
        v = self.models[q].predict(_align_categories(lgbm_matrix(feats), self.ref))
        if raw:
            return v
        if q == 0.5:
            return np.maximum(np.rint(v), 0).astype(int)
        return np.maximum(np.ceil(v - 1e-9) + self.shift[q], 0).astype(int)
