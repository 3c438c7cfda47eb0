"""Policy simulator: replay a world's history through the decision functions, offline.

Product teams ask "what would this policy have cost, and what would it have bought?"
before shipping it. The simulator answers by replaying a synthetic world's orders,
shipments, deliveries, reviews, referrals, returns, claims and daily triggers (birthdays,
anniversaries, lapsed customers, consumables running out) in time order through the very
same ``decide_*`` functions the decision service runs, for one or two policies on the
identical event stream, and reports side by side:

* cost of points (net points awarded x ``point_value``), by ledger type;
* messages per customer per week (all outbound, and marketing), and how many were
  suppressed by opt-outs or caps;
* fraud loss avoided (fraudulent returns/claims routed to inspection or investigation,
  assuming inspection catches them) and fraud loss still paid;
* honest customers affected (honest requests delayed by inspection or investigation);
* expected churn reduction under the world's true hazard.

Scores. When no models are given, the world's ground truth stands in for them, made
imperfect with seeded noise so the result is not an oracle (``StandInScores``): delivery
estimates are the true transit distribution's median and 90th percentile; a
subscriber's churn risk is the true 90-day cancellation probability from
``truth_subscription_months``, a one-off buyer's is P(no order in 90 days) under the
world's true order rate; fraud risk is each request's true fraud probability; ring
membership is the true ring id, found with ``ring_recall`` and with a small false-positive
rate. Probabilities get N(0, ``score_noise``) noise on the logit. The output says so.

Churn assumption. The world's hazard lowers the logit by ``churn_redeem_effect`` for a
subscriber who redeemed points in the three calendar months before the hazard month.
The simulator assumes retention gestures (apology points, win-back points, a surprise
tier-up) in those three months act the same way, with a strength
``s = min(1, gesture points / redeem_threshold)`` (a gift worth one redemption acts like
one; a tier-up counts as 1), on a share ``uptake`` of the customers reached (default
0.5), unless they redeemed anyway:
``h' = uptake * s * sigmoid(logit(h) + effect) + (1 - uptake * s) * h``. Expected
cancellations are the sum of monthly hazards over the world's subscription months (a
first-order estimate that ignores the extra months a retained subscriber would add).

Deterministic by seed: the customer sample, the score noise and the ring flags all come
from ``numpy.random.default_rng(seed)``; the event order is a stable sort.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.io import load_manifest, load_truth, read_table_file
from ppx.rules.decisions import decide_claim, decide_daily, decide_order_event, decide_return
from ppx.rules.messaging import as_sent
from ppx.rules.models import (
    ClaimRequest,
    CustomerContext,
    DeliveryEstimate,
    OrderEvent,
    ReplenishmentItem,
    ReturnRequest,
    Scores,
)
from ppx.rules.policy import Policy, load_policy

Z90 = 1.2815515655446004
RETENTION_TYPES = ("apology", "win_back_bonus")
# Event kinds in processing order when two share a timestamp.
KINDS = ("placed", "shipped", "delivered", "lost", "referral", "review", "return", "claim", "daily")
DAILY_HOUR = 10


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of a replay. Defaults are what ``ppx simulate`` uses."""

    seed: int = 7
    sample: float = 1.0  # share of customers replayed (seeded); 1.0 = everyone
    score_noise: float = 0.5  # sd of N(0, s) noise on the logit of stand-in probabilities
    ring_recall: float = 0.8  # share of true ring members the stand-in ring flag finds
    ring_false_positive: float = 0.002  # honest customers wrongly flagged as ring members
    uptake: float = 0.5  # share of customers on whom a retention gesture works
    win_back_recheck_days: int = 30  # a lapsed customer is re-checked this often

    def __post_init__(self):
        for name in ("sample", "ring_recall", "ring_false_positive", "uptake"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {v}")
        if self.sample <= 0:
            raise ValueError("sample must be > 0")
        if self.score_noise < 0:
            raise ValueError(f"score_noise must be >= 0, got {self.score_noise}")
        if self.win_back_recheck_days < 1:
            raise ValueError("win_back_recheck_days must be >= 1")


@dataclass
class SimulationResult:
    """Side-by-side figures; every frame has one column per policy."""

    summary: pd.DataFrame  # metric x policy
    points_by_type: pd.DataFrame  # ledger type x policy (points)
    outcomes: pd.DataFrame  # (request, outcome) x policy (counts)
    messages: pd.DataFrame  # message type x policy (sent)
    notes: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "meta": self.meta,
            "notes": self.notes,
            "summary": {
                p: {k: _plain(v) for k, v in self.summary[p].items()} for p in self.summary
            },
        }


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v)
    return v


# --- inputs -------------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _read(path: Path, name: str) -> pd.DataFrame:
    return read_table_file(path / "tables" / f"{name}.parquet")


def _pydt(s: pd.Series) -> np.ndarray:
    """Timestamps -> an object array of datetime (None for NaT), for the pydantic models."""
    out = np.empty(len(s), dtype=object)
    vals = pd.to_datetime(s)
    mask = vals.isna().to_numpy()
    out[~mask] = vals[~mask].dt.to_pydatetime()
    out[mask] = None
    return out


class StandInScores:
    """The world's ground truth as stand-in model scores, with seeded noise.

    Built once per replay and shared by every policy, so both policies see identical
    scores. Arrays are aligned with the event tables of :class:`_Events`.
    """

    def __init__(self, ev: _Events, truth: dict[str, pd.DataFrame], cfg: SimulationConfig, rng):
        self.cfg = cfg
        noise = cfg.score_noise
        # Delivery: median and 90th percentile of the true log-normal transit time.
        ts = truth[C.TRUTH_SHIPMENTS].set_index(C.SHIPMENT_ID)
        mu = ts[C.TRUE_MU].reindex(ev.orders[C.ORDER_ID]).to_numpy()
        sg = ts[C.TRUE_SIGMA].reindex(ev.orders[C.ORDER_ID]).to_numpy()
        self.p50 = np.exp(mu)
        self.p90 = np.exp(mu + Z90 * sg)
        # Fraud: the request's true fraud probability, noised on the logit.
        tr = truth[C.TRUTH_RETURNS].set_index(C.RETURN_ID)[C.TRUE_FRAUD_PROB]
        tc = truth[C.TRUTH_CLAIMS].set_index(C.CLAIM_ID)[C.TRUE_FRAUD_PROB]
        pr = tr.reindex(ev.returns[C.RETURN_ID]).fillna(0).to_numpy()
        pc = tc.reindex(ev.claims[C.CLAIM_ID]).fillna(0).to_numpy()
        self.return_fraud = _sigmoid(_logit(pr) + rng.normal(0, noise, len(pr)))
        self.claim_fraud = _sigmoid(_logit(pc) + rng.normal(0, noise, len(pc)))
        # Ring flags per customer.
        cust = truth[C.TRUTH_CUSTOMERS].set_index(C.CUSTOMER_ID)
        ids = ev.customers[C.CUSTOMER_ID].to_numpy()
        is_ring = cust[C.RING_ID].reindex(ids).fillna(-1).to_numpy() >= 0
        u = rng.random(len(ids))
        flag = np.where(is_ring, u < cfg.ring_recall, u < cfg.ring_false_positive)
        self.ring = dict(zip(ids.tolist(), flag.tolist(), strict=True))
        # Churn: one-off buyers' P(no order in 90 days); subscribers' true 90-day risk.
        rate = ev.params.get("order_rate_per_month", 0.36)
        act = cust["activity"].reindex(ids).fillna(1.0).to_numpy()
        self.oneoff_risk = dict(zip(ids.tolist(), np.exp(-3.0 * rate * act).tolist(), strict=True))
        self.sub_risk = _subscriber_risk(ev, truth)
        self.noise = noise
        self._cache: dict[tuple[int, int], float] = {}

    def churn(self, customer_id: int, at: datetime) -> float:
        mi = at.year * 12 + at.month - 1
        hit = self._cache.get((customer_id, mi))
        if hit is not None:
            return hit
        r = self.sub_risk.get((customer_id, mi))
        if r is None:
            r = self.oneoff_risk.get(customer_id, 0.15)
        # Noise keyed by (customer, month) so both policies and repeated looks agree.
        z = _hash_normal(self.cfg.seed, customer_id, mi) * self.noise if self.noise else 0.0
        p = min(max(r, 1e-4), 1 - 1e-4)
        out = 1.0 / (1.0 + math.exp(-(math.log(p / (1 - p)) + z)))
        self._cache[(customer_id, mi)] = out
        return out


def _hash_normal(seed: int, a: int, b: int) -> float:
    """A deterministic N(0, 1) draw for a (customer, month) pair under a seed."""
    g = np.random.default_rng([seed, a, b])
    return float(g.standard_normal())


def _subscriber_risk(ev: _Events, truth) -> dict[tuple[int, int], float]:
    """(customer, month index) -> P(cancel within 90 days), from the true monthly hazard."""
    sm = truth[C.TRUTH_SUBSCRIPTION_MONTHS]
    subs = ev.subs[[C.SUBSCRIPTION_ID, C.CUSTOMER_ID]]
    sm = sm.merge(subs, on=C.SUBSCRIPTION_ID).sort_values([C.SUBSCRIPTION_ID, C.MONTH])
    g = sm.groupby(C.SUBSCRIPTION_ID)[C.TRUE_HAZARD]
    h0 = sm[C.TRUE_HAZARD]
    h1 = g.shift(-1).fillna(h0)
    h2 = g.shift(-2).fillna(h1)
    risk = 1 - (1 - h0) * (1 - h1) * (1 - h2)
    month = pd.to_datetime(sm[C.MONTH])
    mi = (month.dt.year * 12 + month.dt.month - 1).to_numpy()
    frame = pd.DataFrame({"c": sm[C.CUSTOMER_ID].to_numpy(), "mi": mi, "r": risk.to_numpy()})
    frame = frame.groupby(["c", "mi"], sort=False)["r"].max()
    return {(int(c), int(m)): float(r) for (c, m), r in frame.items()}


@dataclass
class _Events:
    """The world's observable tables, restricted to the sampled customers."""

    customers: pd.DataFrame
    products: pd.DataFrame
    orders: pd.DataFrame
    items: pd.DataFrame
    subs: pd.DataFrame
    returns: pd.DataFrame
    claims: pd.DataFrame
    reviews: pd.DataFrame
    loyalty: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    params: dict


def _load(world: Path, cfg: SimulationConfig, rng) -> tuple[_Events, dict]:
    manifest = load_manifest(world)
    params = manifest.get("params", {})
    truth = load_truth(world)
    customers = _read(world, C.CUSTOMERS)
    if cfg.sample < 1.0:
        keep = rng.random(len(customers)) < cfg.sample
        customers = customers[keep].reset_index(drop=True)
    else:
        rng.random(len(customers))  # same stream position whatever the sample
    ids = set(customers[C.CUSTOMER_ID].tolist())

    def only(df: pd.DataFrame) -> pd.DataFrame:
        return df[df[C.CUSTOMER_ID].isin(ids)].reset_index(drop=True)

    orders = only(_read(world, C.ORDERS))
    ships = _read(world, C.SHIPMENTS)[
        [C.ORDER_ID, C.SHIPPED_AT, C.DELIVERED_AT, C.STATUS, C.SIGNATURE]
    ]
    orders = orders.merge(ships, on=C.ORDER_ID, how="left")
    items = _read(world, C.ORDER_ITEMS)
    items = items[items[C.ORDER_ID].isin(set(orders[C.ORDER_ID].tolist()))].reset_index(drop=True)
    start = pd.Timestamp(params.get("start", orders[C.ORDERED_AT].min().normalize()))
    end = start + pd.DateOffset(months=int(params.get("months", 24)))
    ev = _Events(
        customers=customers,
        products=_read(world, C.PRODUCTS),
        orders=orders,
        items=items,
        subs=only(_read(world, C.SUBSCRIPTIONS)),
        returns=only(_read(world, C.RETURNS)),
        claims=only(_read(world, C.CLAIMS)),
        reviews=only(_read(world, C.REVIEWS)),
        loyalty=only(_read(world, C.LOYALTY_EVENTS)),
        start=start,
        end=end,
        params=params,
    )
    return ev, truth


# --- daily candidates ------------------------------------------------------------------


def _daily_candidates(ev: _Events, policies: list[Policy], cfg: SimulationConfig):
    """(customer, day) pairs on which a daily rule may fire, with replenishment items due.

    decide_daily checks every rule itself; this only avoids calling it on the 14 million
    customer-days where nothing can happen. Candidate days are the union over policies.
    """
    start, end = ev.start, ev.end
    rows: list[pd.DataFrame] = []
    cust = ev.customers
    years = range(start.year, end.year + 1)
    for col in (C.BIRTH_DATE, C.SIGNUP_AT):
        d = pd.to_datetime(cust[col])
        ok = d.notna()
        for y in years:
            month = d[ok].dt.month.to_numpy()
            day = d[ok].dt.day.to_numpy()
            leap = (y % 4 == 0) and (y % 100 != 0 or y % 400 == 0)
            day = np.where((month == 2) & (day == 29) & (not leap), 28, day)
            when = pd.to_datetime(
                pd.DataFrame({"year": y, "month": month, "day": day}), errors="coerce"
            )
            rows.append(pd.DataFrame({"c": cust.loc[ok, C.CUSTOMER_ID].to_numpy(), "day": when}))
    # Lapsed customers: last order + min_days, then every recheck interval.
    o = ev.orders.sort_values([C.CUSTOMER_ID, C.ORDERED_AT])
    c = o[C.CUSTOMER_ID].to_numpy()
    t = o[C.ORDERED_AT].to_numpy()
    nxt = np.r_[t[1:], np.datetime64("NaT")]
    same = np.r_[c[1:] == c[:-1], False]
    nxt = np.where(same, nxt, np.datetime64(end.to_datetime64()))
    day_ns = np.timedelta64(1, "D")
    for wb in {
        (p.daily.win_back.min_days_since_order, p.daily.win_back.max_days_since_order)
        for p in policies
    }:
        first = t + wb[0] * day_ns
        stop = np.minimum(nxt, t + wb[1] * day_ns)
        n = np.maximum(
            ((stop - first) / day_ns // cfg.win_back_recheck_days).astype(np.int64) + 1, 0
        )
        n = np.where(first < stop, n, 0)
        idx = np.repeat(np.arange(len(t)), n)
        k = np.arange(len(idx)) - np.repeat(np.cumsum(n) - n, n)
        when = first[idx] + k * cfg.win_back_recheck_days * day_ns
        rows.append(pd.DataFrame({"c": c[idx], "day": pd.to_datetime(when)}))
    # Consumables running out (one-off lines only; renewals are subscriptions).
    prod = ev.products.set_index(C.PRODUCT_ID)
    li = ev.items.merge(
        ev.orders[[C.ORDER_ID, C.CUSTOMER_ID, C.ORDERED_AT, C.IS_RENEWAL]], on=C.ORDER_ID
    )
    li = li[~li[C.IS_RENEWAL].to_numpy()]
    li = li[prod[C.IS_CONSUMABLE].reindex(li[C.PRODUCT_ID]).fillna(False).to_numpy(dtype=bool)]
    days = prod[C.REPLENISH_DAYS].reindex(li[C.PRODUCT_ID]).to_numpy()
    li = li.assign(due=li[C.ORDERED_AT] + pd.to_timedelta(days, unit="D"))
    li = li.sort_values([C.CUSTOMER_ID, C.PRODUCT_ID, C.ORDERED_AT])
    again = li.groupby([C.CUSTOMER_ID, C.PRODUCT_ID])[C.ORDERED_AT].shift(-1)
    subs = ev.subs
    due_items = []
    for lead in sorted({p.daily.replenishment.lead_days for p in policies}):
        cand = li.assign(day=(li["due"] - pd.Timedelta(days=lead)).dt.normalize())
        ok = again.isna() | (again > cand["day"])
        cand = cand[ok.to_numpy()]
        # Not while subscribed to that product.
        m = cand.merge(
            subs[[C.CUSTOMER_ID, C.PRODUCT_ID, C.STARTED_AT, C.CANCELLED_AT]],
            on=[C.CUSTOMER_ID, C.PRODUCT_ID],
            how="left",
        )
        active = (m[C.STARTED_AT] <= m["due"]) & (
            m[C.CANCELLED_AT].isna() | (m[C.CANCELLED_AT] > m["due"])
        )
        blocked = m.loc[active.to_numpy(), [C.ORDER_ID, C.PRODUCT_ID]].drop_duplicates()
        key = cand[C.ORDER_ID].astype(str) + ":" + cand[C.PRODUCT_ID].astype(str)
        bkey = set(
            (blocked[C.ORDER_ID].astype(str) + ":" + blocked[C.PRODUCT_ID].astype(str)).tolist()
        )
        cand = cand[~key.isin(bkey).to_numpy()]
        due_items.append(cand[[C.CUSTOMER_ID, C.PRODUCT_ID, "due", "day"]])
        rows.append(pd.DataFrame({"c": cand[C.CUSTOMER_ID].to_numpy(), "day": cand["day"]}))
    cand = pd.concat(rows, ignore_index=True).dropna()
    cand["day"] = pd.to_datetime(cand["day"]).dt.normalize()
    cand = cand[(cand["day"] >= start) & (cand["day"] < end)].drop_duplicates()
    signup = ev.customers.set_index(C.CUSTOMER_ID)[C.SIGNUP_AT]
    cand = cand[cand["day"].to_numpy() >= signup.reindex(cand["c"]).dt.normalize().to_numpy()]
    due = pd.concat(due_items, ignore_index=True).drop_duplicates()
    return cand.sort_values(["day", "c"], kind="stable").reset_index(drop=True), due


# --- the replay --------------------------------------------------------------------------


class _State:
    """One customer's state during a replay of one policy."""

    __slots__ = (
        "spend",
        "spend_sum",
        "orders",
        "returns",
        "fraud",
        "last_order",
        "override",
        "override_until",
        "points",
        "marketing",
        "last_surprise",
        "last_win_back",
        "last_repl",
        "subs",
    )

    def __init__(self):
        self.spend: deque = deque()
        self.spend_sum = 0.0
        self.orders: deque = deque()
        self.returns: deque = deque()
        self.fraud = 0
        self.last_order = None
        self.override = None
        self.override_until = None
        self.points = 0
        self.marketing: list = []
        self.last_surprise = None
        self.last_win_back = None
        self.last_repl = None
        self.subs: list = []


YEAR = timedelta(days=365)
WEEK8 = timedelta(days=8)


class _Replay:
    def __init__(self, name, policy: Policy, ev: _Events, scores: StandInScores, contacts):
        self.name = name
        self.policy = policy
        self.ev = ev
        self.scores = scores
        self.contacts = contacts
        self.state: dict[int, _State] = defaultdict(_State)
        self.keys: set[str] = set()
        self.order_net: dict[int, int] = defaultdict(int)
        self.points_by_type: dict[str, int] = defaultdict(int)
        self.messages: dict[str, int] = defaultdict(int)
        self.categories: dict[str, int] = defaultdict(int)
        self.suppressed: dict[str, int] = defaultdict(int)
        self.outcomes: dict[tuple[str, str], int] = defaultdict(int)
        self.retention: dict[int, list] = defaultdict(list)
        self.fraud_loss = 0.0
        self.fraud_avoided = 0.0
        self.honest_affected: set[int] = set()
        self.honest_delayed = 0
        self.honest_returns = 0
        self.honest_instant = 0
        self.honest_claims = 0
        self.honest_fast = 0
        self.surprises = 0
        self.decisions = 0
        self.redeem_unit = float(ev.params.get("redeem_threshold", 500))

    # context ------------------------------------------------------------------------

    def context(self, cid: int, now: datetime, due=None) -> CustomerContext:
        s = self.state[cid]
        while s.spend and now - s.spend[0][0] > YEAR:
            s.spend_sum -= s.spend.popleft()[1]
        while s.orders and now - s.orders[0] > YEAR:
            s.orders.popleft()
        while s.returns and now - s.returns[0] > YEAR:
            s.returns.popleft()
        if s.marketing and now - s.marketing[0].sent_at > WEEK8:
            s.marketing = [m for m in s.marketing if now - m.sent_at <= WEEK8]
        p = self.policy
        tier = p.tier_for_spend(max(s.spend_sum, 0.0))
        if (
            s.override is not None
            and s.override_until > now
            and p.tier_rank(s.override) > p.tier_rank(tier)
        ):
            tier = s.override
        info = self.contacts[cid]
        active_sub = any(a <= now and (b is None or now < b) for a, b in s.subs)
        return CustomerContext.model_construct(
            customer_id=cid,
            tier=tier,
            spend_12m=max(s.spend_sum, 0.0),
            points_balance=s.points,
            orders_12m=len(s.orders),
            returns_12m=len(s.returns),
            confirmed_fraud=s.fraud,
            signup_at=info[0],
            birth_date=info[1],
            last_order_at=s.last_order,
            has_active_subscription=active_sub,
            email_opt_in=info[2],
            sms_opt_in=info[3],
            push_opt_in=info[4],
            preferred_channels=[],
            utc_offset_minutes=0,
            recent_messages=list(s.marketing),
            last_surprise_tier_up_at=s.last_surprise,
            last_win_back_at=s.last_win_back,
            last_replenishment_reminder_at=s.last_repl,
            replenishment_due=due or [],
        )

    # effects --------------------------------------------------------------------------

    def apply(self, d, now: datetime) -> None:
        self.decisions += 1
        cid = d.customer_id
        for a in d.actions:
            if a.kind == "award_points":
                if a.idempotency_key in self.keys:
                    continue
                self.keys.add(a.idempotency_key)
                who = a.customer_id or cid
                self.state[who].points += a.points
                self.points_by_type[a.ledger_type] += a.points
                if a.ledger_type == "earn" and a.order_id is not None:
                    self.order_net[a.order_id] += a.points
                if a.ledger_type in RETENTION_TYPES:
                    self.retention[who].append((now, a.points / self.redeem_unit))
            elif a.kind == "reverse_points":
                if a.idempotency_key in self.keys or a.order_id is None:
                    continue
                self.keys.add(a.idempotency_key)
                take = min(-a.points, self.order_net[a.order_id])
                if take > 0:
                    self.order_net[a.order_id] -= take
                    self.state[cid].points -= take
                    self.points_by_type["reversal"] -= take
            elif a.kind == "set_tier" and a.until is not None:
                s = self.state[cid]
                s.override, s.override_until, s.last_surprise = a.tier, a.until, now
                self.surprises += 1
                self.retention[cid].append((now, 1.0))
        s = self.state[cid]
        for m in d.messages:
            self.messages[m.message_type] += 1
            self.categories[m.category] += 1
            if m.category == "marketing":
                s.marketing.append(as_sent(m))
            if m.message_type == "win_back":
                s.last_win_back = now
            elif m.message_type == "replenishment_reminder":
                s.last_repl = now
        for sm in d.suppressed:
            self.suppressed["opt-out" if "opted out" in sm.reason else "cap"] += 1


def _run_policy(name, policy, ev: _Events, scores: StandInScores, stream, arrays, progress):
    contacts = arrays["contacts"]
    r = _Replay(name, policy, ev, scores, contacts)
    for cid, spans in arrays["subs"].items():
        r.state[cid].subs = spans
    o = arrays["orders"]
    rt = arrays["returns"]
    cl = arrays["claims"]
    rv = arrays["reviews"]
    dly = arrays["daily"]
    due = arrays["due"]
    ref = arrays["referrals"]
    kinds, rows, times = stream
    for i in range(len(kinds)):
        kind = KINDS[kinds[i]]
        j = rows[i]
        now = times[i]
        if kind in ("placed", "shipped", "delivered", "lost"):
            cid = o["cid"][j]
            ctx = r.context(cid, now)
            ev = OrderEvent.model_construct(
                event_type=kind,
                order_id=o["oid"][j],
                customer_id=cid,
                occurred_at=now,
                ordered_at=o["ordered"][j],
                order_value=o["value"][j],
                promised_date=o["promised"][j],
                delivered_at=o["delivered"][j],
                carrier=None,
                delay_notice_sent=False,
                refund_id=None,
                refund_amount=None,
                review_id=None,
                rating=None,
                referee_id=None,
            )
            if kind == "delivered":
                sc = Scores.model_construct(
                    delivery=None,
                    churn_risk=scores.churn(cid, now),
                    fraud_prob=None,
                    ring_member=None,
                    recommendations=o["recs"][j],
                    errors={},
                )
            elif kind == "lost":
                sc = Scores.model_construct(
                    delivery=None,
                    churn_risk=scores.churn(cid, now),
                    fraud_prob=None,
                    ring_member=None,
                    recommendations=None,
                    errors={},
                )
            else:
                sc = Scores.model_construct(
                    delivery=DeliveryEstimate.model_construct(
                        p50_days=scores.p50[j], p90_days=scores.p90[j]
                    ),
                    churn_risk=None,
                    fraud_prob=None,
                    ring_member=None,
                    recommendations=None,
                    errors={},
                )
            d = decide_order_event(ev, ctx, sc, policy)
            r.apply(d, now)
            s = r.state[cid]
            if kind == "placed":
                s.orders.append(now)
                s.last_order = now
            elif kind == "delivered":
                s.spend.append((now, o["value"][j]))
                s.spend_sum += o["value"][j]
        elif kind == "referral":
            cid, oid, referee = ref[j]
            ctx = r.context(cid, now)
            ev = OrderEvent.model_construct(
                event_type="referral",
                order_id=oid,
                customer_id=cid,
                occurred_at=now,
                referee_id=referee,
                delay_notice_sent=False,
            )
            r.apply(decide_order_event(ev, ctx, Scores.model_construct(errors={}), policy), now)
        elif kind == "review":
            cid = rv["cid"][j]
            ev = OrderEvent.model_construct(
                event_type="review",
                order_id=rv["oid"][j],
                customer_id=cid,
                occurred_at=now,
                review_id=rv["rid"][j],
                rating=rv["rating"][j],
                delay_notice_sent=False,
            )
            r.apply(
                decide_order_event(
                    ev, r.context(cid, now), Scores.model_construct(errors={}), policy
                ),
                now,
            )
        elif kind == "return":
            cid = rt["cid"][j]
            req = ReturnRequest.model_construct(
                return_id=rt["rid"][j],
                order_id=rt["oid"][j],
                customer_id=cid,
                requested_at=now,
                delivered_at=rt["delivered"][j],
                amount=rt["amount"][j],
                reason=rt["reason"][j],
            )
            sc = _fraud_only_scores(float(scores.return_fraud[j]), scores.ring[cid])
            d = decide_return(req, r.context(cid, now), sc, policy)
            r.apply(d, now)
            _settle_return(r, d, req, bool(rt["fraud"][j]), policy, now)
            s = r.state[cid]
            s.returns.append(now)
            if rt["confirmed"][j]:
                s.fraud += 1
        elif kind == "claim":
            cid = cl["cid"][j]
            req = ClaimRequest.model_construct(
                claim_id=cl["clid"][j],
                order_id=cl["oid"][j],
                customer_id=cid,
                claimed_at=now,
                claim_type=cl["ctype"][j],
                amount=cl["amount"][j],
                carrier_status=cl["status"][j],
                signature=cl["signature"][j],
            )
            sc = _fraud_only_scores(float(scores.claim_fraud[j]), scores.ring[cid])
            d = decide_claim(req, r.context(cid, now), sc, policy)
            r.apply(d, now)
            fraud = bool(cl["fraud"][j])
            r.outcomes[("claim", d.outcome)] += 1
            caught = d.outcome == "investigate"
            if fraud:
                if caught:
                    r.fraud_avoided += req.amount
                else:
                    r.fraud_loss += req.amount
            else:
                r.honest_claims += 1
                r.honest_fast += d.outcome == "fast_payout"
                if caught:
                    r.honest_delayed += 1
                    r.honest_affected.add(cid)
            if cl["confirmed"][j]:
                r.state[cid].fraud += 1
        else:  # daily
            cid, day = dly[j]
            items = [
                ReplenishmentItem.model_construct(product_id=pid, due_at=when)
                for pid, when in due.get((cid, day), ())
            ]
            sc = Scores.model_construct(
                delivery=None,
                churn_risk=scores.churn(cid, now),
                fraud_prob=None,
                ring_member=None,
                recommendations=None,
                errors={},
            )
            r.apply(decide_daily(r.context(cid, now, items), now, sc, policy), now)
        if progress is not None and i % 20_000 == 0:
            progress(i)
    if progress is not None:
        progress(len(kinds))
    return r


def _settle_return(r: _Replay, d, req, fraud: bool, policy: Policy, now: datetime) -> None:
    """Follow a return to its refund: who is paid, when, and what fraud slips through."""
    out = d.outcome
    r.outcomes[("return", out)] += 1
    caught = out == "inspect"
    if fraud:
        if caught:
            r.fraud_avoided += req.amount
        else:
            r.fraud_loss += req.amount
    else:
        r.honest_returns += 1
        r.honest_instant += out == "instant_refund"
        if out in ("inspect", "manual_review"):
            r.honest_delayed += 1
            r.honest_affected.add(req.customer_id)
    refunded_later = out in ("refund_on_receipt", "manual_review") or (caught and not fraud)
    if refunded_later:
        ev = OrderEvent.model_construct(
            event_type="refunded",
            order_id=req.order_id,
            customer_id=req.customer_id,
            occurred_at=now,
            refund_id=req.return_id,
            refund_amount=req.amount,
            delay_notice_sent=False,
        )
        ctx = r.context(req.customer_id, now)
        r.apply(decide_order_event(ev, ctx, Scores.model_construct(errors={}), policy), now)


# --- churn ------------------------------------------------------------------------------


def _expected_churn(
    ev: _Events, truth, retention: dict[int, list], effect: float, uptake: float
) -> tuple[float, float]:
    """(expected cancellations without, with the policy's retention gestures).

    A subscription month is "reached" with strength s = min(1, sum of the gestures'
    strengths in the three months before it), where a surprise tier-up has strength 1
    and points have strength points / redeem_threshold (a gift worth one redemption acts
    like one). Months after a real redemption are already lowered by the world and get
    no extra effect. h' = uptake * s * sigmoid(logit h + effect) + (1 - uptake * s) * h.
    """
    sm = truth[C.TRUTH_SUBSCRIPTION_MONTHS].merge(
        ev.subs[[C.SUBSCRIPTION_ID, C.CUSTOMER_ID]], on=C.SUBSCRIPTION_ID
    )
    if sm.empty:
        return 0.0, 0.0
    h = sm[C.TRUE_HAZARD].to_numpy()
    month = pd.to_datetime(sm[C.MONTH]).to_numpy().astype("datetime64[ns]")
    lo = (pd.to_datetime(sm[C.MONTH]) - pd.DateOffset(months=3)).to_numpy().astype("datetime64[ns]")
    cust = sm[C.CUSTOMER_ID].to_numpy()
    order = np.argsort(cust, kind="stable")
    cs = cust[order]
    bounds = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1], True])

    def window_sum(events: dict[int, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        out = np.zeros(len(h))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            got = events.get(int(cs[a]))
            if got is None:
                continue
            t, w = got
            cum = np.r_[0.0, np.cumsum(w)]
            rows = order[a:b]
            i = np.searchsorted(t, lo[rows], side="left")
            k = np.searchsorted(t, month[rows], side="left")
            out[rows] = cum[k] - cum[i]
        return out

    red = ev.loyalty[ev.loyalty[C.EVENT_TYPE] == "redeem"]
    redeemed = {
        int(c): (np.sort(g[C.EVENT_AT].to_numpy().astype("datetime64[ns]")), np.ones(len(g)))
        for c, g in red.groupby(C.CUSTOMER_ID)
    }
    acted = {}
    for c, items in retention.items():
        if not items:
            continue
        items = sorted(items, key=lambda x: x[0])
        t = np.array([x[0] for x in items], dtype="datetime64[ns]")
        acted[c] = (t, np.array([x[1] for x in items], dtype=float))
    strength = np.minimum(window_sum(acted), 1.0)
    strength[window_sum(redeemed) > 0] = 0.0
    reach = uptake * strength
    h_new = reach * _sigmoid(_logit(h) + effect) + (1 - reach) * h
    return float(h.sum()), float(h_new.sum())


# --- public API -------------------------------------------------------------------------


def _arrays(ev: _Events, truth, scores: StandInScores, policies: list[Policy], cfg):
    o = ev.orders
    succ = truth.get("truth_products")
    first_item = ev.items.sort_values([C.ORDER_ID, C.LINE_NO]).drop_duplicates(C.ORDER_ID)
    first_item = first_item.set_index(C.ORDER_ID)[C.PRODUCT_ID].reindex(o[C.ORDER_ID])
    if succ is not None:
        nxt = succ.set_index(C.PRODUCT_ID)["successor_id"].reindex(first_item.to_numpy())
        recs = [[int(x)] if pd.notna(x) else [] for x in nxt.to_numpy()]
    else:
        recs = [[] for _ in range(len(o))]
    promised = pd.to_datetime(o[C.PROMISED_DATE]).dt.date.to_numpy()
    arrays = {
        "orders": {
            "oid": o[C.ORDER_ID].to_numpy().tolist(),
            "cid": o[C.CUSTOMER_ID].to_numpy().tolist(),
            "ordered": _pydt(o[C.ORDERED_AT]),
            "delivered": _pydt(o[C.DELIVERED_AT]),
            "promised": promised,
            "value": o[C.ORDER_VALUE].astype(float).to_numpy().tolist(),
            "recs": recs,
        }
    }
    dmap = o.set_index(C.ORDER_ID)[C.DELIVERED_AT]
    rt = ev.returns
    arrays["returns"] = {
        "rid": rt[C.RETURN_ID].tolist(),
        "oid": rt[C.ORDER_ID].tolist(),
        "cid": rt[C.CUSTOMER_ID].tolist(),
        "amount": rt[C.REFUND_AMOUNT].astype(float).tolist(),
        "reason": rt[C.REASON].astype(str).tolist(),
        "delivered": _pydt(dmap.reindex(rt[C.ORDER_ID])),
        "confirmed": rt[C.CONFIRMED_FRAUD].astype(bool).tolist(),
        "fraud": truth[C.TRUTH_RETURNS]
        .set_index(C.RETURN_ID)[C.IS_FRAUD]
        .reindex(rt[C.RETURN_ID])
        .fillna(False)
        .astype(bool)
        .tolist(),
    }
    cl = ev.claims
    smap = o.set_index(C.ORDER_ID)
    arrays["claims"] = {
        "clid": cl[C.CLAIM_ID].tolist(),
        "oid": cl[C.ORDER_ID].tolist(),
        "cid": cl[C.CUSTOMER_ID].tolist(),
        "ctype": cl[C.CLAIM_TYPE].astype(str).tolist(),
        "amount": cl[C.AMOUNT].astype(float).tolist(),
        "status": smap[C.STATUS].reindex(cl[C.ORDER_ID]).astype(str).tolist(),
        "signature": smap[C.SIGNATURE].reindex(cl[C.ORDER_ID]).fillna(False).astype(bool).tolist(),
        "confirmed": cl[C.CONFIRMED_FRAUD].astype(bool).tolist(),
        "fraud": truth[C.TRUTH_CLAIMS]
        .set_index(C.CLAIM_ID)[C.IS_FRAUD]
        .reindex(cl[C.CLAIM_ID])
        .fillna(False)
        .astype(bool)
        .tolist(),
    }
    rv = ev.reviews
    arrays["reviews"] = {
        "rid": rv[C.REVIEW_ID].tolist(),
        "oid": rv[C.ORDER_ID].tolist(),
        "cid": rv[C.CUSTOMER_ID].tolist(),
        "rating": rv[C.RATING].tolist(),
    }
    cu = ev.customers
    birth = pd.to_datetime(cu[C.BIRTH_DATE])
    arrays["contacts"] = {
        int(c): (s, (b.date() if pd.notna(b) else None), bool(e), bool(sm), bool(pu))
        for c, s, b, e, sm, pu in zip(
            cu[C.CUSTOMER_ID].tolist(),
            _pydt(cu[C.SIGNUP_AT]),
            birth,
            cu[C.EMAIL_OPT_IN].tolist(),
            cu[C.SMS_OPT_IN].tolist(),
            cu[C.PUSH_OPT_IN].tolist(),
            strict=True,
        )
    }
    subs: dict[int, list] = defaultdict(list)
    for c, a, b in zip(
        ev.subs[C.CUSTOMER_ID].tolist(),
        _pydt(ev.subs[C.STARTED_AT]),
        _pydt(ev.subs[C.CANCELLED_AT]),
        strict=True,
    ):
        subs[int(c)].append((a, b))
    arrays["subs"] = dict(subs)
    cand, due = _daily_candidates(ev, policies, cfg)
    arrays["daily"] = list(zip(cand["c"].tolist(), cand["day"].dt.date.tolist(), strict=True))
    dd: dict = defaultdict(list)
    for c, pid, when, day in zip(
        due[C.CUSTOMER_ID].tolist(),
        due[C.PRODUCT_ID].tolist(),
        _pydt(due["due"]),
        due["day"].dt.date.tolist(),
        strict=True,
    ):
        dd[(c, day)].append((pid, when))
    arrays["due"] = dict(dd)
    # Referrals: a referred customer's first delivered order rewards the referrer.
    ref_by = cu.set_index(C.CUSTOMER_ID)[C.REFERRED_BY].dropna()
    ids = set(cu[C.CUSTOMER_ID].tolist())
    dl = o[o[C.STATUS] == "delivered"].sort_values(C.DELIVERED_AT)
    firsts = dl.drop_duplicates(C.CUSTOMER_ID)
    firsts = firsts[firsts[C.CUSTOMER_ID].isin(ref_by.index)]
    referrer = ref_by.reindex(firsts[C.CUSTOMER_ID]).astype("int64").to_numpy()
    keep = np.isin(referrer, list(ids))
    firsts = firsts[keep]
    arrays["referrals"] = list(
        zip(
            referrer[keep].tolist(),
            firsts[C.ORDER_ID].tolist(),
            firsts[C.CUSTOMER_ID].tolist(),
            strict=True,
        )
    )
    # The merged, time-ordered stream.
    parts = []

    def add(kind: str, t: pd.Series, rows: np.ndarray | None = None):
        t = pd.to_datetime(t).reset_index(drop=True)
        rows = np.arange(len(t)) if rows is None else rows
        ok = t.notna().to_numpy()
        parts.append(pd.DataFrame({"t": t[ok].to_numpy(), "k": KINDS.index(kind), "row": rows[ok]}))

    add("placed", o[C.ORDERED_AT])
    add("shipped", o[C.SHIPPED_AT])
    status = o[C.STATUS].astype(str).to_numpy()
    add("delivered", o[C.DELIVERED_AT].where(status == "delivered"))
    lost_at = pd.to_datetime(o[C.PROMISED_DATE]) + pd.Timedelta(days=4)
    add("lost", lost_at.where(status == "lost"))
    add("referral", firsts[C.DELIVERED_AT] + pd.Timedelta(minutes=30))
    add("review", rv[C.CREATED_AT])
    add("return", rt[C.REQUESTED_AT])
    add("claim", cl[C.CLAIMED_AT])
    add("daily", cand["day"] + pd.Timedelta(hours=DAILY_HOUR))
    stream = pd.concat(parts, ignore_index=True)
    stream = stream[(stream["t"] >= ev.start) & (stream["t"] < ev.end)]
    stream = stream.sort_values(["t", "k", "row"], kind="stable")
    times = _pydt(stream["t"])
    return arrays, (stream["k"].to_numpy().tolist(), stream["row"].to_numpy().tolist(), times)


def simulate(
    world: str | Path,
    policies: dict[str, Policy] | Policy | str | Path,
    config: SimulationConfig | None = None,
    progress: bool = False,
) -> SimulationResult:
    """Replay ``world`` through each policy and return side-by-side DataFrames.

    Args:
        world: a world folder written by ``ppx data world`` (needs truth/ for scores).
        policies: ``{"name": Policy}`` (one or two, any number works), a Policy, or a path.
        config: replay knobs (seed, sample, noise, churn-effect assumption).
        progress: show a rich progress bar per policy.
    """
    cfg = config or SimulationConfig()
    if isinstance(policies, (str, Path)):
        policies = {Path(policies).stem: load_policy(policies)}
    elif isinstance(policies, Policy):
        policies = {policies.name: policies}
    if not policies:
        raise ValueError("give at least one policy to simulate")
    world = Path(world)
    rng = np.random.default_rng(cfg.seed)
    ev, truth = _load(world, cfg, rng)
    scores = StandInScores(ev, truth, cfg, rng)
    plist = list(policies.values())
    arrays, stream = _arrays(ev, truth, scores, plist, cfg)
    n_events = len(stream[0])
    replays = {}
    for name, pol in policies.items():
        if progress:
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task(f"replaying {name}", total=n_events)
                replays[name] = _run_policy(
                    name,
                    pol,
                    ev,
                    scores,
                    stream,
                    arrays,
                    lambda i, t=task: bar.update(t, completed=i),
                )
        else:
            replays[name] = _run_policy(name, pol, ev, scores, stream, arrays, None)
    effect = float(ev.params.get("churn_redeem_effect", -0.6))
    n_cust = len(ev.customers)
    weeks = (ev.end - ev.start).days / 7.0
    summary: dict[str, dict[str, float]] = {}
    base_churn = None
    for name, r in replays.items():
        pol = policies[name]
        base, with_policy = _expected_churn(ev, truth, r.retention, effect, cfg.uptake)
        base_churn = base
        awarded = sum(v for k, v in r.points_by_type.items() if k != "reversal")
        net = awarded + r.points_by_type.get("reversal", 0)
        sent = sum(r.messages.values())
        summary[name] = {
            "policy version": pol.version,
            "decisions": r.decisions,
            "points awarded": int(awarded),
            "points reversed": int(-r.points_by_type.get("reversal", 0)),
            "cost of points": round(net * pol.point_value, 2),
            "retention points (apology, win-back, tier-up)": int(
                sum(r.points_by_type.get(k, 0) for k in (*RETENTION_TYPES, "tier_up_bonus"))
            ),
            "messages / customer / week": round(sent / n_cust / weeks, 4),
            "marketing messages / customer / week": round(
                r.categories.get("marketing", 0) / n_cust / weeks, 4
            ),
            "messages suppressed: opt-out": r.suppressed.get("opt-out", 0),
            "messages suppressed: cap": r.suppressed.get("cap", 0),
            "surprise tier-ups": r.surprises,
            "win-back offers": r.messages.get("win_back", 0),
            "fraud loss avoided": round(r.fraud_avoided, 2),
            "fraud loss paid": round(r.fraud_loss, 2),
            "honest customers affected": len(r.honest_affected),
            "honest requests delayed": r.honest_delayed,
            "honest returns refunded instantly": round(
                r.honest_instant / max(r.honest_returns, 1), 4
            ),
            "honest claims paid fast": round(r.honest_fast / max(r.honest_claims, 1), 4),
            "expected cancellations (no gestures)": round(base, 2),
            "expected cancellations (policy)": round(with_policy, 2),
            "expected churn reduction": round(base - with_policy, 2),
            "expected churn reduction %": round(100 * (base - with_policy) / base, 3)
            if base
            else 0.0,
        }
    summary_df = pd.DataFrame(summary)
    pts = pd.DataFrame({n: pd.Series(dict(r.points_by_type)) for n, r in replays.items()}).fillna(0)
    outs = pd.DataFrame({n: pd.Series(dict(r.outcomes)) for n, r in replays.items()}).fillna(0)
    msgs = pd.DataFrame({n: pd.Series(dict(r.messages)) for n, r in replays.items()}).fillna(0)
    notes = [
        "Scores: no models given, so the world's ground truth stands in for them "
        f"(logit noise sd {cfg.score_noise}, ring recall {cfg.ring_recall}, ring false "
        f"positives {cfg.ring_false_positive}); delivery estimates are the true transit "
        "median/p90; one-off buyers' churn risk is P(no order in 90 days) at their true rate.",
        "Churn: retention gestures (apology and win-back points, surprise tier-ups) in the "
        "three months before a subscription month act like the world's points redemption "
        f"(churn_redeem_effect {effect:+.2f} on the logit) for {cfg.uptake:.0%} of the "
        f"customers reached, with strength min(1, points / {ev.params.get('redeem_threshold', 500)}) "
        "(a tier-up counts as 1), unless they redeemed anyway; expected cancellations = sum "
        "of the monthly true hazards.",
        "Fraud: inspection and investigation are assumed to catch every fraudulent request; "
        "'fraud loss paid' is fraud refunded or paid out without inspection.",
        "Cost of points = net points (awards minus reversals) x point_value, at face value.",
        f"Customers replayed: {n_cust:,} over {weeks:.0f} weeks; seed {cfg.seed}.",
    ]
    meta = {
        "world": str(world),
        "seed": cfg.seed,
        "customers": n_cust,
        "events": n_events,
        "baseline_expected_cancellations": base_churn,
        "config": cfg.__dict__,
    }
    return SimulationResult(
        summary=summary_df,
        points_by_type=pts.sort_index(),
        outcomes=outs.sort_index(),
        messages=msgs.sort_index(),
        notes=notes,
        meta=meta,
    )


def compare(
    policy: str | Path,
    against: str | Path | None,
    world: str | Path,
    seed: int = 7,
    **config,
) -> SimulationResult:
    """Notebook entry point: ``compare("new.yaml", "default.yaml", "data/worlds/demo")``."""
    pols = {_label(policy, "policy"): load_policy(policy)}
    if against is not None:
        label = _label(against, "against")
        if label in pols:
            label += " (against)"
        pols[label] = load_policy(against)
    return simulate(world, pols, SimulationConfig(seed=seed, **config))


def _label(path: str | Path, fallback: str) -> str:
    stem = Path(path).stem
    return stem or fallback


__all__ = ["SimulationConfig", "SimulationResult", "StandInScores", "compare", "simulate"]


def _fraud_only_scores(fraud_prob: float, ring_member: bool) -> Scores:
    """Scores for a return or claim replay: only the fraud head is known offline."""
    return Scores.model_construct(
        delivery=None,
        churn_risk=None,
        fraud_prob=fraud_prob,
        ring_member=ring_member,
        recommendations=None,
        errors={},
    )
