"""One bucket of the nightly run: features, scores, decisions, and the rows to write.

:func:`run_bucket` is the whole pipeline for one customer-hash bucket and is all either
engine runs per bucket:

1. churn features of every active subscription as of ``now``
   (:func:`ppx.features.churn.churn_features`, the function the served model computes
   online) scored by the registered churn champion's network and calibration;
2. top-k recommendations for every active customer through the served recommender
   (:class:`ppx.models.recs.serve.ServedRecommender`, the object the endpoint answers
   with) built on the bucket's own interactions and returns and the store's catalogue;
3. the daily pass (:func:`ppx.rules.decisions.decide_daily`) over the customer context
   (:func:`ppx.features.context.daily_contexts`) with those scores and the loyalty
   state (the store's ``loyalty_events``, or the ledger's figures for the customers the
   ledger knows), the policy's experiments applied as the decision service applies them;
4. the ledger awards (with their idempotency keys) and outbox rows the decisions imply.

An *active* customer has an active subscription at ``now`` or an order in the year
before it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C

OUTPUTS: tuple[str, ...] = (
    "churn",
    "recs",
    "decisions",
    "ledger",
    "outbox",
    "gifts",
    "tiers",
)
STAGES: tuple[str, ...] = ("churn", "recs", "decisions")
RECS_K = 10
ACTIVE_DAYS = 365


@dataclass(frozen=True)
class NightlyJob:
    """Everything a worker needs to run a bucket (picklable: sent to Spark executors)."""

    store: str
    out: str
    now: pd.Timestamp
    n_buckets: int
    tracking_uri: str
    churn_uri: str
    recs_uri: str
    churn_version: str
    recs_version: str
    policy_path: str | None = None
    recs_k: int = RECS_K
    torch_threads: int = 1
    #: What to compute: any of "churn", "recs", "decisions" (decisions need both scores).
    stages: tuple[str, ...] = STAGES
    #: Key of the yearly gifts' voucher codes (HMAC of the gift's idempotency key): the
    #: code is unguessable, and the same whichever worker or engine composes the message.
    voucher_secret: str = ""
    #: The ledger whose loyalty state (balance, last activity, stored tier) the decisions
    #: use instead of the store's ``loyalty_events`` where it knows the customer; None:
    #: the store's alone. Only the driver connects: it stages the state with the buckets.
    ledger_url: str | None = None


# --- models, loaded once per process -----------------------------------------------------

_LOADED: dict[tuple, object] = {}


def _load(tracking_uri: str, model_uri: str):
    """The registered model's wrapped object, loaded once per worker process."""
    key = (tracking_uri, model_uri)
    if key not in _LOADED:
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)
        _LOADED[key] = mlflow.pyfunc.load_model(model_uri).unwrap_python_model().model
    return _LOADED[key]


def _policy(path: str | None):
    key = ("policy", path)
    if key not in _LOADED:
        from ppx.rules.policy import load_policy

        _LOADED[key] = load_policy(path)
    return _LOADED[key]


# --- the stages ----------------------------------------------------------------------------


def canonical_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by every column: a bucket's tables read the same whichever order the
    engine delivered them in (ties in event times would otherwise reorder histories).

    A table whose first column is a unique id is sorted by that column alone (the same
    order, without comparing the other columns); the others sort on every column's
    sorted codes (missing values first).
    """
    if len(df) < 2:
        return df.reset_index(drop=True)
    first = df[df.columns[0]]
    if first.is_unique:
        order = np.argsort(first.to_numpy(), kind="stable")
    else:
        order = np.lexsort([_sort_key(df[c]) for c in reversed(df.columns)])
    return df.take(order).reset_index(drop=True)


def _sort_key(s: pd.Series) -> np.ndarray:
    """Values that sort like the column: numbers as they are, times as integers (NaT
    first), anything else (strings, missing values) as its sorted codes (-1 first)."""
    kind = s.dtype.kind if isinstance(s.dtype, np.dtype) else ""
    if kind in "iub":
        return s.to_numpy()
    if kind == "M":
        return s.to_numpy().view(np.int64)
    if kind == "f" and not s.isna().any():
        return s.to_numpy()
    return pd.factorize(s, sort=True)[0]


def active_customers(tables: dict[str, pd.DataFrame], now: pd.Timestamp) -> np.ndarray:
    o = tables[C.ORDERS]
    recent = (o[C.ORDERED_AT] < now) & (o[C.ORDERED_AT] >= now - pd.Timedelta(days=ACTIVE_DAYS))
    s = tables[C.SUBSCRIPTIONS]
    live = (s[C.STARTED_AT] < now) & ~(s[C.CANCELLED_AT] < now)
    ids = np.union1d(
        o.loc[recent.to_numpy(dtype=bool), C.CUSTOMER_ID].to_numpy(dtype=np.int64),
        s.loc[live.to_numpy(dtype=bool), C.CUSTOMER_ID].to_numpy(dtype=np.int64),
    )
    return ids.astype(np.int64)


def churn_scores(model, tables: dict[str, pd.DataFrame], now: pd.Timestamp) -> pd.DataFrame:
    """Churn probabilities of every subscription active at ``now`` (one per customer:
    the latest subscription, as the served model scores a customer)."""
    from ppx.features.churn import churn_features

    feats = churn_features(tables, now)
    feats = feats.drop_duplicates(C.CUSTOMER_ID, keep="last").reset_index(drop=True)
    if feats.empty:
        cols = [f"p_churn_{h}" for h in model.horizons] + ["expected_lifetime_days"]
        return pd.DataFrame(
            {C.CUSTOMER_ID: [], C.SUBSCRIPTION_ID: [], **{c: [] for c in cols}}
        ).astype({C.CUSTOMER_ID: np.int64, C.SUBSCRIPTION_ID: np.int64})
    scores = model.predict_table(feats).reset_index(drop=True)
    keys = feats[[C.CUSTOMER_ID, C.SUBSCRIPTION_ID]].astype(np.int64)
    return pd.concat([keys, scores], axis=1)


def recommendations(
    served, tables: dict[str, pd.DataFrame], customer_ids: np.ndarray, now, k: int
) -> pd.DataFrame:
    """Top-k products per customer from the bucket's own history: the served
    recommender's events, repeat boost and filters, its network run on batches."""
    from ppx.models.recs.serve import ServedRecommender

    hist = tables[C.INTERACTIONS]
    hist = hist.loc[(hist[C.EVENT_AT] < now).to_numpy(dtype=bool)]
    returns = tables[C.RETURNS]
    returns = returns.loc[(returns[C.REQUESTED_AT] < now).to_numpy(dtype=bool)]
    bucket = ServedRecommender(served.rec, hist, tables[C.PRODUCTS], returns, now)
    rows = bucket.recommend_many(customer_ids, k, now)
    return pd.DataFrame(
        {
            C.CUSTOMER_ID: np.asarray(customer_ids, dtype=np.int64),
            "product_ids": [r["product_ids"] for r in rows],
            "scores": [r["scores"] for r in rows],
            "source": [r["source"] for r in rows],
        }
    )


def last_activity(loyalty_events: pd.DataFrame, now: pd.Timestamp) -> dict[int, object]:
    """Each customer's last earning or redemption before ``now`` (what renews the points'
    expiry; reversals and expiries do not, and a tier change is not a ledger entry), for
    a whole bucket in one pass."""
    from ppx.rules.loyalty.expiry import NOT_ACTIVITY

    ev = loyalty_events
    keep = (ev[C.EVENT_AT] < now) & ~ev[C.EVENT_TYPE].isin([*NOT_ACTIVITY, "tier_change"])
    last = ev.loc[keep.to_numpy(dtype=bool)].groupby(C.CUSTOMER_ID)[C.EVENT_AT].max()
    return {int(c): t.to_pydatetime() for c, t in last.items()}


def decisions(
    policy,
    tables: dict[str, pd.DataFrame],
    customer_ids: np.ndarray,
    churn: pd.DataFrame,
    recs: pd.DataFrame,
    now: pd.Timestamp,
    voucher_secret: str = "",
    ledger_state=None,
) -> dict[str, pd.DataFrame]:
    """The daily pass as the decision service runs it with a ledger: the loyalty summary
    (the points-expiring reminder), today's yearly gifts (their vouchers in the
    birthday/anniversary messages) and the tier changes to store.

    The loyalty state (balance, last earning or redemption, tier) is the store's
    ``loyalty_events``; with ``ledger_state`` (a bucket's
    :class:`~ppx.batch.ledger_state.LedgerState`) the ledger's figures replace it for
    the customers the ledger knows (:func:`~ppx.batch.ledger_state.apply_ledger_state`).

    Returns the ``decisions``, ``ledger`` (awards), ``outbox``, ``gifts`` and ``tiers``
    rows; the driver writes the last four to the databases under their keys.
    """
    from datetime import timedelta

    from ppx.features.context import context_of, daily_contexts
    from ppx.rules.decisions import decide_daily
    from ppx.rules.experiments.assign import apply_experiments
    from ppx.rules.loyalty.gifts import attach_gift, gifts_due
    from ppx.rules.loyalty.redemption import keyed_voucher_code
    from ppx.rules.loyalty.summary import summarize
    from ppx.rules.messages.compose import outbox_rows
    from ppx.rules.types import Scores

    cats = {k: v.category for k, v in policy.messages.catalogue.items()}
    ctx = daily_contexts(tables, now, customer_ids=customer_ids, categories=cats)
    horizon = f"p_churn_{policy.churn_horizon_days}"
    risk = dict(zip(churn[C.CUSTOMER_ID].to_numpy(), churn[horizon].to_numpy(float), strict=True))
    top = dict(zip(recs[C.CUSTOMER_ID].to_numpy(), recs["product_ids"], strict=True))
    last = last_activity(tables[C.LOYALTY_EVENTS], now)
    tier_why: dict[int, str] = {}
    if ledger_state is not None:
        from ppx.batch.ledger_state import apply_ledger_state

        ctx, last, tier_why = apply_ledger_state(ctx, last, ledger_state, policy.tier_names)
    at = now.to_pydatetime()
    today = at.date()
    rows, awards, outbox, gifts, tiers = [], [], [], [], []
    for rec in ctx.to_dict("records"):
        c = context_of(rec)
        cid = c.customer_id
        p = risk.get(cid)
        if p is not None and np.isfinite(p):
            scores = Scores(churn_risk=float(p), recommendations=list(top.get(cid, [])))
        else:
            why = "no subscription to score" if c.subscription_id is None else "no churn score"
            scores = Scores(recommendations=list(top.get(cid, [])), errors={"churn": why})
        # without points nothing can expire: the summary would change no decision
        summary = (
            summarize(policy, cid, c.points_balance, last.get(cid), c.tier, at)
            if c.points_balance > 0
            else None
        )
        d = decide_daily(c, at, scores, policy, summary)
        if cid in tier_why:
            d.reasons.append(tier_why[cid])
        for g in gifts_due(
            policy, cid, today, tier=c.tier, birth_date=c.birth_date, signup_at=c.signup_at
        ):
            if g.reward_id is None:
                d.reasons.append(f"{g.kind}: {g.reason}")
                continue
            code = keyed_voucher_code(voucher_secret, g.idempotency_key)
            expires = at + timedelta(days=policy.reward(g.reward_id).valid_days)
            d.reasons.append(f"{g.kind}: {g.reason}: voucher {code}")
            attach_gift(d, g.kind, policy, g.reward_id, code, expires)
            gifts.append(
                {
                    C.CUSTOMER_ID: cid,
                    "kind": g.kind,
                    "reward_id": g.reward_id,
                    "idempotency_key": g.idempotency_key,
                    "voucher_code": code,
                    "expires_at": pd.Timestamp(expires),
                }
            )
        d = apply_experiments(d, policy, at)
        rows.append(
            {
                C.CUSTOMER_ID: cid,
                "outcome": d.outcome,
                "points": int(d.points),
                "messages": ",".join(m.message_type for m in d.messages),
                "actions": ",".join(a.kind for a in d.actions),
                "reasons": " | ".join(d.reasons),
                "policy_version": d.policy_version,
            }
        )
        for a in d.actions:
            if a.kind == "award_points" and a.points > 0:
                awards.append(
                    {
                        C.CUSTOMER_ID: int(a.customer_id or cid),
                        "points": int(a.points),
                        "entry_type": a.ledger_type or "earn",
                        "idempotency_key": a.idempotency_key,
                        C.ORDER_ID: a.order_id,
                        "reason": a.reason[:500],
                        "arm": a.arm,
                    }
                )
            elif a.kind == "set_tier" and a.tier is not None:
                tiers.append(
                    {
                        C.CUSTOMER_ID: int(a.customer_id or cid),
                        C.TIER: a.tier,
                        "until": pd.Timestamp(a.until) if a.until is not None else pd.NaT,
                        "spend_12m": float(c.spend_12m),
                        "reason": a.reason[:500],
                    }
                )
        for m in outbox_rows(d, c):
            outbox.append(
                {
                    "message_key": m.message_key,
                    C.CUSTOMER_ID: m.customer_id,
                    "message_type": m.message_type,
                    "channel": m.channel,
                    "category": m.category,
                    "content": json.dumps(m.content, sort_keys=True, default=str),
                    "send_after": pd.Timestamp(m.send_after),
                    "locale": m.locale,
                    "time_zone": m.time_zone,
                    "utc_offset_minutes": int(m.utc_offset_minutes),
                    "to_address": m.to_address,
                    "arm": m.arm,
                }
            )
    return {
        "decisions": pd.DataFrame(rows, columns=DECISION_COLUMNS),
        "ledger": pd.DataFrame(awards, columns=LEDGER_COLUMNS).astype({C.ORDER_ID: "Int64"}),
        "outbox": pd.DataFrame(outbox, columns=OUTBOX_COLUMNS).astype(
            {"send_after": "datetime64[ns]"}
        ),
        "gifts": pd.DataFrame(gifts, columns=list(GIFT_COLUMNS)).astype(GIFT_COLUMNS),
        "tiers": pd.DataFrame(tiers, columns=list(TIER_COLUMNS)).astype(TIER_COLUMNS),
    }


DECISION_COLUMNS = [
    C.CUSTOMER_ID,
    "outcome",
    "points",
    "messages",
    "actions",
    "reasons",
    "policy_version",
]
LEDGER_COLUMNS = [
    C.CUSTOMER_ID,
    "points",
    "entry_type",
    "idempotency_key",
    C.ORDER_ID,
    "reason",
    "arm",
]
#: Column -> type of the gifts and tiers outputs (typed, so an empty bucket's file has
#: the same schema as a full one).
GIFT_COLUMNS = {
    C.CUSTOMER_ID: "int64",
    "kind": "str",
    "reward_id": "str",
    "idempotency_key": "str",
    "voucher_code": "str",
    "expires_at": "datetime64[ns]",
}
TIER_COLUMNS = {
    C.CUSTOMER_ID: "int64",
    C.TIER: "str",
    "until": "datetime64[ns]",
    "spend_12m": "float64",
    "reason": "str",
}
OUTBOX_COLUMNS = [
    "message_key",
    C.CUSTOMER_ID,
    "message_type",
    "channel",
    "category",
    "content",
    "send_after",
    "locale",
    "time_zone",
    "utc_offset_minutes",
    "to_address",
    "arm",
]


# --- one bucket ----------------------------------------------------------------------------


def bucket_file(out: str | Path, output: str, bucket: int) -> Path:
    """Where a bucket's rows of one output go (``OUT/<output>/bucket=<b>/part.parquet``)."""
    return Path(out) / output / f"bucket={bucket:05d}" / "part.parquet"


def _write(df: pd.DataFrame, path: Path) -> None:
    """Replace the file atomically: a retried task leaves one complete copy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def run_bucket(
    job: NightlyJob, bucket: int, tables: dict[str, pd.DataFrame], ledger_state=None
) -> dict:
    """The nightly pipeline for one bucket's tables (and, with a ledger, its customers'
    :class:`~ppx.batch.ledger_state.LedgerState`); writes its outputs, returns counts
    and the seconds each stage took."""
    import time

    import torch

    torch.set_num_threads(job.torch_threads)
    t = time.perf_counter()
    tables = {k: canonical_order(v) for k, v in tables.items()}
    ordered = time.perf_counter() - t
    now = pd.Timestamp(job.now)
    stages = set(job.stages)
    if "decisions" in stages:
        stages |= {"churn", "recs"}
    t = time.perf_counter()
    churn_model = _load(job.tracking_uri, job.churn_uri) if "churn" in stages else None
    recs_model = _load(job.tracking_uri, job.recs_uri) if "recs" in stages else None
    policy = _policy(job.policy_path) if "decisions" in stages else None
    seconds = {"order": ordered, "load": time.perf_counter() - t}
    frames: dict[str, pd.DataFrame] = {}

    active = active_customers(tables, now)
    if churn_model is not None:
        t = time.perf_counter()
        churn = churn_scores(churn_model, tables, now)
        churn = churn[churn[C.CUSTOMER_ID].isin(active)].reset_index(drop=True)
        churn["model_version"] = f"ppx-churn v{job.churn_version}"
        frames["churn"] = churn
        seconds["churn"] = time.perf_counter() - t
    if recs_model is not None:
        t = time.perf_counter()
        recs = recommendations(recs_model, tables, active, now, job.recs_k)
        recs["model_version"] = f"ppx-recs v{job.recs_version}"
        frames["recs"] = recs
        seconds["recs"] = time.perf_counter() - t
    if policy is not None:
        t = time.perf_counter()
        frames.update(
            decisions(policy, tables, active, churn, recs, now, job.voucher_secret, ledger_state)
        )
        seconds["decisions"] = time.perf_counter() - t

    for name, df in frames.items():
        df.insert(0, "as_of", np.full(len(df), now.to_datetime64()).astype("datetime64[ns]"))
        _write(df, bucket_file(job.out, name, bucket))
    return {
        "bucket": bucket,
        "customers": len(active),
        **{f"rows_{k}": len(frames[k]) if k in frames else 0 for k in OUTPUTS},
        **{f"seconds_{k}": seconds.get(k, 0.0) for k in ("order", "load", *STAGES)},
    }
