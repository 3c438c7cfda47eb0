"""Replaying one policy over the event stream: per-customer state and effects."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ppx.rules.decisions import decide_claim, decide_daily, decide_order_event, decide_return
from ppx.rules.experiments.assign import apply_experiments
from ppx.rules.messaging import as_sent
from ppx.rules.policy import Policy
from ppx.rules.simulator.inputs import WorldEvents
from ppx.rules.simulator.referrals import ReferralBook
from ppx.rules.simulator.saves import SaveAssumptions, SaveTally, replay_cancel
from ppx.rules.simulator.scores import StandInScores
from ppx.rules.simulator.stream import KINDS
from ppx.rules.types import (
    ClaimEvent,
    CustomerContext,
    DeliveryEstimate,
    OrderEvent,
    ReplenishmentItem,
    ReturnEvent,
    Scores,
)

RETENTION_TYPES = ("apology", "win_back_bonus")


class CustomerState:
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


class Replay:
    def __init__(self, name, policy: Policy, ev: WorldEvents, scores: StandInScores, contacts):
        self.name = name
        self.policy = policy
        self.ev = ev
        self.scores = scores
        self.contacts = contacts
        self.state: dict[int, CustomerState] = defaultdict(CustomerState)
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
        # Honest requests per kind ("return", "claim"), and those settled the fast way.
        self.honest: dict[str, int] = defaultdict(int)
        self.honest_fast: dict[str, int] = defaultdict(int)
        self.surprises = 0
        self.decisions = 0
        self.redeem_unit = float(ev.params.get("redeem_threshold", 500))
        self.saves = SaveTally()
        self.referrals = ReferralBook(policy)
        # orders whose earned points were (partly) reversed: a refunded first order
        # cancels its referral
        self.refunded: set[int] = set()

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
        d = apply_experiments(d, self.policy, now)  # holdouts and arms, as the engine does
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
                    self.refunded.add(a.order_id)
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
            self.suppressed[_suppression(sm.reason)] += 1


def _suppression(reason: str) -> str:
    if "holdout arm" in reason:
        return "holdout"
    if "opted out" in reason or "turned off" in reason:
        return "opt-out"
    return "cap"


def run_policy(
    name,
    policy,
    ev: WorldEvents,
    scores: StandInScores,
    stream,
    arrays,
    progress,
    assume: SaveAssumptions | None = None,
):
    assume = assume or SaveAssumptions()
    contacts = arrays["contacts"]
    r = Replay(name, policy, ev, scores, contacts)
    for cid, spans in arrays["subs"].items():
        r.state[cid].subs = spans
    o = arrays["orders"]
    rv = arrays["reviews"]
    dly = arrays["daily"]
    due = arrays["due"]
    ref = arrays["referrals"]
    kinds, rows, times = stream

    def pay_referral(row, payday) -> None:
        ev = OrderEvent.model_construct(
            event_type="referral",
            order_id=row.order_id,
            customer_id=row.referrer,
            occurred_at=payday,
            referee_id=row.referee,
            delay_notice_sent=False,
        )
        ctx = r.context(row.referrer, payday)
        r.apply(decide_order_event(ev, ctx, known_scores(), policy), payday)

    for i in range(len(kinds)):
        kind = KINDS[kinds[i]]
        j = rows[i]
        now = times[i]
        if r.referrals.due and r.referrals.due[0][0] <= now:
            r.referrals.settle(now, r.refunded, pay_referral)
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
                sc = known_scores(churn_risk=scores.churn(cid, now), recommendations=o["recs"][j])
            elif kind == "lost":
                sc = known_scores(churn_risk=scores.churn(cid, now))
            else:
                sc = known_scores(
                    delivery=DeliveryEstimate.model_construct(
                        p50_days=scores.p50[j], p90_days=scores.p90[j]
                    )
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
            r.referrals.attribute(ref[j])  # paid on its payday, above
        elif kind == "review":
            cid = rv["cid"][j]
            ev = OrderEvent.model_construct(
                event_type="review",
                order_id=rv["oid"][j],
                customer_id=cid,
                occurred_at=now,
                review_id=rv["rid"][j],
                rating=rv["rating"][j],
                review_has_text=bool(rv["has_text"][j]),
                delay_notice_sent=False,
            )
            r.apply(
                decide_order_event(ev, r.context(cid, now), known_scores(), policy),
                now,
            )
        elif kind in REQUESTS:
            spec = REQUESTS[kind]
            a = arrays[spec.arrays]
            cid = a["customer_id"][j]
            req = spec.request(a, j, now)
            fraud_prob = float(spec.fraud_scores(scores)[j])
            sc = known_scores(fraud_prob=fraud_prob, ring_member=scores.ring[cid])
            d = spec.decide(req, r.context(cid, now), sc, policy)
            r.apply(d, now)
            fraud = bool(a["fraud"][j])
            caught = settle_request(r, spec, d.outcome, req.amount, cid, fraud)
            if kind == "return":
                _refund_later(r, d.outcome, caught, fraud, req, policy, now)
                r.state[cid].returns.append(now)
            if a["confirmed"][j]:
                r.state[cid].fraud += 1
        elif kind == "cancel":
            replay_cancel(r, arrays["cancels"], j, now, assume)
        else:  # daily
            cid, day = dly[j]
            items = [
                ReplenishmentItem.model_construct(product_id=pid, due_at=when)
                for pid, when in due.get((cid, day), ())
            ]
            sc = known_scores(churn_risk=scores.churn(cid, now))
            r.apply(decide_daily(r.context(cid, now, items), now, sc, policy), now)
        if progress is not None and i % 20_000 == 0:
            progress(i)
    if progress is not None:
        progress(len(kinds))
    return r


@dataclass(frozen=True)
class RequestKind:
    """How a return or a claim is replayed: its request, decision and outcome names."""

    name: str  # "return" or "claim", as in the outcome counts
    arrays: str  # key of its columns in the replay's arrays (named as the fields)
    model: type[ReturnEvent] | type[ClaimEvent]
    time_field: str  # the field set to the event's time
    fields: tuple[str, ...]  # the fields read from the arrays
    fraud_scores: Callable[[StandInScores], Any]
    decide: Callable
    caught: str  # the outcome that stops a fraudulent request (assumed to catch it)
    fast: str  # the outcome an honest customer hopes for
    delaying: tuple[str, ...]  # outcomes that keep an honest customer waiting

    def request(self, a: dict, j: int, now: datetime) -> ReturnEvent | ClaimEvent:
        """Row ``j`` of the arrays as the decision function's input, at time ``now``."""
        values = {f: a[f][j] for f in self.fields}
        return self.model.model_construct(**values, **{self.time_field: now})


_KINDS = (
    RequestKind(
        name="return",
        arrays="returns",
        model=ReturnEvent,
        time_field="requested_at",
        fields=("return_id", "order_id", "customer_id", "delivered_at", "amount", "reason"),
        fraud_scores=lambda s: s.return_fraud,
        decide=decide_return,
        caught="inspect",
        fast="instant_refund",
        delaying=("inspect", "manual_review"),
    ),
    RequestKind(
        name="claim",
        arrays="claims",
        model=ClaimEvent,
        time_field="claimed_at",
        fields=(
            "claim_id",
            "order_id",
            "customer_id",
            "claim_type",
            "amount",
            "carrier_status",
            "signature",
        ),
        fraud_scores=lambda s: s.claim_fraud,
        decide=decide_claim,
        caught="investigate",
        fast="fast_payout",
        delaying=("investigate",),
    ),
)
REQUESTS = {k.name: k for k in _KINDS}


def settle_request(
    r: Replay, spec: RequestKind, outcome: str, amount: float, cid: int, fraud: bool
) -> bool:
    """Count a return's or claim's outcome: fraud stopped or paid, honest customers kept.

    Returns whether the request was routed to inspection or investigation.
    """
    kind = spec.name
    r.outcomes[(kind, outcome)] += 1
    caught = outcome == spec.caught
    if fraud:
        if caught:
            r.fraud_avoided += amount
        else:
            r.fraud_loss += amount
    else:
        r.honest[kind] += 1
        r.honest_fast[kind] += outcome == spec.fast
        if outcome in spec.delaying:
            r.honest_delayed += 1
            r.honest_affected.add(cid)
    return caught


def _refund_later(r: Replay, outcome: str, caught: bool, fraud: bool, req, policy, now) -> None:
    """A return refunded on receipt (or cleared by inspection) reverses its points then."""
    if not (outcome in ("refund_on_receipt", "manual_review") or (caught and not fraud)):
        return
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
    r.apply(decide_order_event(ev, ctx, known_scores(), policy), now)


def known_scores(**known) -> Scores:
    """Scores with only ``known`` set: offline, each event kind knows only some heads."""
    return Scores.model_construct(errors={}, **known)
