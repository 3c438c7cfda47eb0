"""Metrics, baselines and the oracle for the fraud heads.

Metrics per head (``return`` and ``claim``), all on the time-based test split:

* ``pr_auc`` — average precision (fraud is rare; ROC AUC flatters).
* ``recall_at_1pct_fpr`` — share of fraud caught when at most 1 % of honest requests
  are flagged (the friction budget a brand typically accepts).
* ``ring_recall`` — of the ring-member accounts (world truth ``ring_id``) that filed a
  request of this kind in the test period, the share whose highest-scored request is
  in the top 1 % of that head's test scores (ties broken at random, seeded).
* ``net_savings`` — with a review threshold chosen on the validation split for each
  method: fraud amounts stopped minus ``friction_cost_ratio`` × the amounts of honest
  requests sent to review (the stated cost ratio of friction to loss).
* ``review_rate`` — share of test requests sent to review at that threshold.
* ``ece`` — expected calibration error (10 bins) for methods that output probabilities.

Baselines: ``rules`` (what peers ship: serial-returner and repeat-claimer thresholds,
high value, new account, a block-list of confirmed fraudsters), ``lightgbm_no_linkage``
and ``lightgbm`` (with linkage), one model per head. ``oracle``: the Bayes posterior
of fraud given the generator's ``true_fraud_prob`` and the observable return lag,
return reason, claim delay and claim type, under the generator's own densities
(:func:`posterior_oracle_scores`); ``oracle_prior``: ``true_fraud_prob`` itself, which
the generator fixes *before* drawing that timing, so learned models can beat it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx import metrics as M
from ppx.data import columns as C
from ppx.features import fraud as F
from ppx.models.fraud.config import FraudConfig

HEADS = (F.RETURN, F.CLAIM)


# ----------------------------------------------------------------------------------------
# split
# ----------------------------------------------------------------------------------------


def split_masks(requests: pd.DataFrame, cfg: FraudConfig) -> dict[str, np.ndarray]:
    """Train / val / test masks by request time (fractions of the observed span)."""
    t = pd.to_datetime(requests[C.REQUESTED_AT])
    t0, t1 = t.min(), t.max()
    v = t0 + (t1 - t0) * cfg.val_start
    s = t0 + (t1 - t0) * cfg.test_start
    return {
        "train": (t < v).to_numpy(),
        "val": ((t >= v) & (t < s)).to_numpy(),
        "test": (t >= s).to_numpy(),
        "val_start": v,
        "test_start": s,
    }


# ----------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------


def top_share_mask(score: np.ndarray, share: float = 0.01, seed: int = 0) -> np.ndarray:
    """Boolean mask of the top ``share`` of rows (at least one), ties broken at random."""
    n = len(score)
    k = max(1, int(np.ceil(share * n)))
    jitter = np.random.default_rng(seed).random(n)
    order = np.lexsort((jitter, -np.asarray(score, dtype=float)))
    mask = np.zeros(n, dtype=bool)
    mask[order[:k]] = True
    return mask


def ring_recall_ceiling(customer: np.ndarray, is_ring: np.ndarray) -> float:
    """Best reachable ring_recall: the top 1 % holds only so many rows."""
    members = len(np.unique(customer[is_ring]))
    k = max(1, int(np.ceil(0.01 * len(customer))))
    return float(min(1.0, k / members)) if members else float("nan")


def ring_recall(score: np.ndarray, customer: np.ndarray, is_ring: np.ndarray) -> float:
    """Share of ring-member accounts with a request in the top 1 % of scores."""
    members = np.unique(customer[is_ring])
    if len(members) == 0:
        return float("nan")
    top = top_share_mask(score)
    caught = np.unique(customer[top & is_ring])
    return float(len(caught) / len(members))


def net_savings(
    y: np.ndarray, score: np.ndarray, amount: np.ndarray, threshold: float, ratio: float
) -> tuple[float, float]:
    """(fraud amount stopped - ratio x honest amount reviewed, review rate)."""
    flag = np.asarray(score) >= threshold
    y = np.asarray(y, dtype=bool)
    gain = amount[flag & y].sum() - ratio * amount[flag & ~y].sum()
    return float(gain), float(flag.mean())


def best_threshold(y: np.ndarray, score: np.ndarray, amount: np.ndarray, ratio: float) -> float:
    """The review threshold that maximises net savings (chosen on validation)."""
    cands = np.unique(np.asarray(score, dtype=float))
    if len(cands) > 400:
        cands = np.unique(np.quantile(score, np.linspace(0.5, 1.0, 401)))
    best, best_t = 0.0, float("inf")
    for t in cands:
        g, _ = net_savings(y, score, amount, t, ratio)
        if g > best:
            best, best_t = g, float(t)
    return best_t


def head_metrics(
    y: np.ndarray,
    score: np.ndarray,
    amount: np.ndarray,
    customer: np.ndarray,
    is_ring: np.ndarray,
    threshold: float,
    ratio: float,
    probabilistic: bool,
) -> dict[str, float]:
    """All benchmark metrics of one method on one head's test rows."""
    y = np.asarray(y, dtype=bool)
    gain, rate = net_savings(y, score, amount, threshold, ratio)
    out = {
        "pr_auc": M.pr_auc(y, score),
        "roc_auc": M.roc_auc(y, score),
        "recall_at_1pct_fpr": M.recall_at_fpr(y, score, max_fpr=0.01),
        "ring_recall": ring_recall(score, customer, is_ring),
        "net_savings": gain,
        "review_rate": rate,
    }
    if probabilistic:
        out["ece"] = M.ece(y, np.clip(score, 0, 1))
    return out


def mean_pr_auc(y: np.ndarray, score: np.ndarray, is_claim: np.ndarray) -> float:
    """Average of the two heads' PR AUC: the selection and promotion metric."""
    vals = []
    for head in (False, True):
        m = is_claim == head
        if m.any() and y[m].any() and not y[m].all():
            vals.append(M.pr_auc(y[m], score[m]))
    return float(np.mean(vals)) if vals else float("nan")


# ----------------------------------------------------------------------------------------
# baselines and oracle
# ----------------------------------------------------------------------------------------


def rules_score(X: pd.DataFrame) -> np.ndarray:
    """Points from the rules peers ship; higher means more suspicious.

    Returns: serial-returner thresholds (3+ returns in 90 days, a return rate above
    30 % with 3+ returns), a high refund (> 100), a new account (< 30 days), a
    block-list hit (the account has confirmed fraud). Claims: a repeat claimer (2+
    earlier claims), a high amount without signature, a new account, a claim against
    a delivered scan, a block-list hit.
    """
    claim = X["is_claim"].to_numpy() > 0.5
    amount = np.expm1(X["amount_log"].to_numpy())
    new = X["account_age_days"].to_numpy() < 30
    blocked = X["own_fraud_known"].to_numpy() > 0
    ret_pts = (
        2.0 * (X["n_returns_90d"].to_numpy() >= 3)
        + 2.0 * ((X["return_rate"].to_numpy() > 0.3) & (X["n_returns"].to_numpy() >= 3))
        + 1.0 * (amount > 100)
        + 1.0 * new
        + 3.0 * blocked
    )
    claim_pts = (
        2.0 * (X["n_claims"].to_numpy() >= 2)
        + 1.0 * ((amount > 100) & (X["signature"].to_numpy() < 0.5))
        + 1.0 * new
        + 1.0 * (X["delivered_scan"].to_numpy() > 0.5)
        + 3.0 * blocked
    )
    return np.where(claim, claim_pts, ret_pts)


def fit_lightgbm(
    X: pd.DataFrame,
    y: np.ndarray,
    masks: dict,
    columns: list[str],
    cfg: FraudConfig,
    params: dict | None = None,
) -> dict:
    """One LightGBM per head on ``columns``, early-stopped on validation.

    Returns a dict head -> fitted model (``predict_proba``) for :func:`lightgbm_scores`.
    """
    import lightgbm as lgb

    params = {
        "n_estimators": cfg.lgb_estimators,
        "learning_rate": cfg.lgb_learning_rate,
        "num_leaves": cfg.lgb_num_leaves,
        "min_child_samples": cfg.lgb_min_child_samples,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": cfg.lgb_colsample_bytree,
        "n_jobs": cfg.threads,
        "random_state": cfg.seed,
        "verbose": -1,
        **(params or {}),
    }
    claim = X["is_claim"].to_numpy() > 0.5
    models = {}
    for head, is_claim in ((F.RETURN, False), (F.CLAIM, True)):
        tr = masks["train"] & (claim == is_claim)
        va = masks["val"] & (claim == is_claim)
        if not (y[tr].any() and not y[tr].all() and y[va].any() and not y[va].all()):
            models[head] = _Prior(float(y[tr].mean()) if tr.any() else 0.0)
            continue
        m = lgb.LGBMClassifier(**params)
        m.fit(
            X.loc[tr, columns],
            y[tr],
            eval_X=(X.loc[va, columns],),
            eval_y=(y[va],),
            callbacks=[lgb.early_stopping(50, verbose=False)],
        )
        models[head] = m
    models["columns"] = list(columns)
    return models


class _Prior:
    """Stand-in when a head's split lacks a class (tiny worlds): the base rate."""

    def __init__(self, rate: float):
        self.rate = rate

    def predict_proba(self, X) -> np.ndarray:
        return np.column_stack([np.full(len(X), 1 - self.rate), np.full(len(X), self.rate)])


def lightgbm_scores(models: dict, X: pd.DataFrame) -> np.ndarray:
    claim = X["is_claim"].to_numpy() > 0.5
    out = np.zeros(len(X))
    cols = models["columns"]
    for head, is_claim in ((F.RETURN, False), (F.CLAIM, True)):
        m = claim == is_claim
        if m.any():
            out[m] = models[head].predict_proba(X.loc[m, cols])[:, 1]
    return out


def oracle_scores(requests: pd.DataFrame, truth: dict[str, pd.DataFrame]) -> np.ndarray:
    """The generator's fraud probability of each offline request row."""
    tr = truth[C.TRUTH_RETURNS].set_index(C.RETURN_ID)[C.TRUE_FRAUD_PROB]
    tc = truth[C.TRUTH_CLAIMS].set_index(C.CLAIM_ID)[C.TRUE_FRAUD_PROB]
    rid = requests[F.REQUEST_ID]
    claim = (requests[F.KIND] == F.CLAIM).to_numpy()
    return np.where(claim, rid.map(tc).to_numpy(dtype=float), rid.map(tr).to_numpy(dtype=float))


# The generator's timing and reason distributions (src/data/world/returns_claims.py:
# ``draw_returns`` and ``draw_claims``). They are literals in the generator, not WorldParams, so they are
# restated here; ``tests/models/fraud`` checks them against a generated world.
#: Wardrobing fraud returns: lag after delivery ~ uniform(18, 29.5) days.
WARDROBE_LAG = (18.0, 29.5)
#: Ring fraud returns: lag ~ uniform(0.5, 10) days.
RING_LAG = (0.5, 10.0)
#: Honest returns: lag ~ min(exponential(mean 7), 29.5) days (a point mass at the cap).
HONEST_LAG_MEAN, LAG_CAP = 7.0, 29.5
#: Reasons: fraud draws from three, honest from all of C.RETURN_REASONS.
FRAUD_REASONS = {"not_as_described": 0.45, "damaged": 0.35, "changed_mind": 0.2}
HONEST_REASONS = dict(zip(C.RETURN_REASONS, (0.4, 0.15, 0.2, 0.1, 0.15), strict=True))
#: Claims: days from the delivered scan to the claim, shift + exponential(mean).
FRAUD_CLAIM_DELAY = (0.05, 1.2)
HONEST_CLAIM_DELAY = (0.1, 2.5)
#: Honest claims on delivered parcels say "item not received" 85 % of the time, fraud always.
HONEST_NOT_RECEIVED = 0.85
_TIE_DAYS = 3.0 / 86_400  # timestamps are rounded to seconds: +-3 s around the lag cap


def _uniform_pdf(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.where((x >= lo) & (x <= hi), 1.0 / (hi - lo), 0.0)


def _shifted_exp_pdf(x: np.ndarray, shift: float, mean: float) -> np.ndarray:
    z = x - shift
    return np.where(z >= 0, np.exp(-np.maximum(z, 0) / mean) / mean, 0.0)


def return_likelihood_ratio(
    lag_days: np.ndarray, reason: np.ndarray, fraud_type: np.ndarray
) -> np.ndarray:
    """p(lag, reason | fraud) / p(lag, reason | honest) under the generator's densities.

    ``fraud_type`` (world truth, per account) selects the fraud lag density: wardrober
    or ring; other accounts have a prior of 0 anyway. At the honest lag cap (29.5 days,
    up to second rounding) the honest distribution has a point mass, so the ratio uses
    the probability of the +-3 s window instead of densities.
    """
    lag = np.asarray(lag_days, dtype=float)
    ft = np.asarray(fraud_type).astype(object)
    f_fraud = np.where(
        ft == "wardrober", _uniform_pdf(lag, *WARDROBE_LAG), _uniform_pdf(lag, *RING_LAG)
    )
    f_honest = np.where(lag < LAG_CAP, np.exp(-lag / HONEST_LAG_MEAN) / HONEST_LAG_MEAN, 0.0)
    at_cap = np.abs(lag - LAG_CAP) <= _TIE_DAYS
    w = 2 * _TIE_DAYS
    f_fraud = np.where(at_cap, f_fraud * w, f_fraud)
    f_honest = np.where(at_cap, np.exp(-LAG_CAP / HONEST_LAG_MEAN) + f_honest * w, f_honest)
    r = np.asarray(reason).astype(object)
    g_fraud = np.array([FRAUD_REASONS.get(x, 0.0) for x in r])
    g_honest = np.array([HONEST_REASONS.get(x, 0.0) for x in r])
    num, den = f_fraud * g_fraud, f_honest * g_honest
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 1.0))


def claim_likelihood_ratio(delay_days: np.ndarray, claim_type: np.ndarray) -> np.ndarray:
    """p(delay, type | fraud) / p(delay, type | honest) for claims on delivered parcels."""
    d = np.asarray(delay_days, dtype=float)
    f_fraud = _shifted_exp_pdf(d, *FRAUD_CLAIM_DELAY)
    f_honest = _shifted_exp_pdf(d, *HONEST_CLAIM_DELAY)
    nr = np.asarray(claim_type).astype(object) == "item_not_received"
    g_fraud = nr.astype(float)
    g_honest = np.where(nr, HONEST_NOT_RECEIVED, 1 - HONEST_NOT_RECEIVED)
    num, den = f_fraud * g_fraud, f_honest * g_honest
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 1.0))


def posterior(prior: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Bayes: prior odds x likelihood ratio -> probability (prior 0 or 1 stays put)."""
    p = np.asarray(prior, dtype=float)
    lr = np.asarray(ratio, dtype=float)
    out = p.copy()
    mid = (p > 0) & (p < 1)
    num = p[mid] * np.where(np.isinf(lr[mid]), 1.0, lr[mid])
    den = num + (1 - p[mid]) * np.where(np.isinf(lr[mid]), 0.0, 1.0)
    out[mid] = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return out


def posterior_oracle_scores(
    requests: pd.DataFrame, truth: dict[str, pd.DataFrame], tables: dict[str, pd.DataFrame]
) -> np.ndarray:
    """The honest oracle: P(fraud | generator prior, observed timing and reason).

    ``true_fraud_prob`` is the generator's probability *before* it draws the return
    lag, the reason, the claim delay and the claim type, all of which it draws
    conditionally on the outcome. This oracle applies Bayes' rule with the generator's
    own densities to what is observable in the request, so it is the Bayes-optimal
    score given everything the generator knows: an upper bound in expectation.
    """
    prior = oracle_scores(requests, truth)
    claim = (requests[F.KIND] == F.CLAIM).to_numpy()
    deliv = tables[C.SHIPMENTS].set_index(C.ORDER_ID)[C.DELIVERED_AT]
    d = pd.to_datetime(requests[C.ORDER_ID].map(deliv))
    t = pd.to_datetime(requests[C.REQUESTED_AT])
    delay = ((t - d) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)
    ftype = requests[C.CUSTOMER_ID].map(
        truth[C.TRUTH_CUSTOMERS].set_index(C.CUSTOMER_ID)[C.FRAUD_TYPE]
    )
    reason = requests[C.REASON] if C.REASON in requests.columns else pd.Series(None)
    ctype = requests[C.CLAIM_TYPE] if C.CLAIM_TYPE in requests.columns else pd.Series(None)
    lr = np.ones(len(requests))
    r = ~claim & np.isfinite(delay)
    lr[r] = return_likelihood_ratio(delay[r], reason.to_numpy()[r], ftype.to_numpy(dtype=object)[r])
    c = claim & np.isfinite(delay)
    lr[c] = claim_likelihood_ratio(delay[c], ctype.to_numpy()[c])
    return posterior(prior, lr)


def ring_members(requests: pd.DataFrame, truth: dict[str, pd.DataFrame]) -> np.ndarray:
    """Whether each request's account belongs to a planted ring (world truth)."""
    tc = truth[C.TRUTH_CUSTOMERS].set_index(C.CUSTOMER_ID)[C.RING_ID]
    return requests[C.CUSTOMER_ID].map(tc).fillna(-1).to_numpy() >= 0


def compare(
    scores: dict[str, np.ndarray],
    requests: pd.DataFrame,
    masks: dict,
    cfg: FraudConfig,
    is_ring: np.ndarray,
    probabilistic: set[str],
    extra: dict[str, dict[str, float]] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Per-head tables ``{head: {method: {metric: value}}}`` on the test split.

    Each method's review threshold is picked on the validation split (net savings),
    then applied to test.
    """
    y = F.label_of(requests)
    amount = requests[C.AMOUNT].to_numpy(dtype=float)
    customer = requests[C.CUSTOMER_ID].to_numpy()
    claim = (requests[F.KIND] == F.CLAIM).to_numpy()
    out: dict[str, dict[str, dict[str, float]]] = {}
    for head, is_claim in ((F.RETURN, False), (F.CLAIM, True)):
        va = masks["val"] & (claim == is_claim)
        te = masks["test"] & (claim == is_claim)
        table = {}
        for method, s in scores.items():
            thr = best_threshold(y[va], s[va], amount[va], cfg.friction_cost_ratio)
            table[method] = head_metrics(
                y[te],
                s[te],
                amount[te],
                customer[te],
                is_ring[te],
                thr,
                cfg.friction_cost_ratio,
                method in probabilistic,
            )
            for k, v in ((extra or {}).get(method) or {}).items():
                table[method][k] = v
        out[head] = table
    return out


def evaluate_registered(world_path, alias: str = "champion") -> dict:
    """Score a registered ``ppx-fraud`` version on a world's test split via its pyfunc.

    The served path (raw request -> snapshot features -> network) is what is measured,
    next to the oracle when the world has ground truth.

    Raises:
        LookupError: no model version carries ``alias``.
    """
    import mlflow
    from ppx import tracking
    from ppx.models.fraud.train import prepare, raw_requests

    tracking.configure()
    if tracking.get_alias_version("fraud", alias) is None:
        raise LookupError(
            f"ppx-fraud has no version with alias {alias!r} "
            f"({tracking.missing_alias_hint('fraud', alias)}); run `ppx train fraud`"
        )
    cfg = FraudConfig()
    P = prepare(world_path, cfg=cfg)
    model = mlflow.pyfunc.load_model(tracking.model_uri("fraud", alias))
    # Score the validation split too so the review threshold comparison is like-for-like.
    rows = P.masks["val"] | P.masks["test"]
    out = model.predict(raw_requests(P.requests.loc[rows]))
    s = np.zeros(len(P.requests))
    s[rows] = out["p_fraud"].to_numpy(dtype=float)
    scores = {f"ppx@{alias}": s}
    if P.truth is not None:
        scores["oracle"] = posterior_oracle_scores(P.requests, P.truth, P.tables)
        scores["oracle_prior"] = oracle_scores(P.requests, P.truth)
        is_ring = ring_members(P.requests, P.truth)
    else:
        is_ring = np.zeros(len(P.requests), dtype=bool)
    return compare(scores, P.requests, P.masks, cfg, is_ring, set(scores))
