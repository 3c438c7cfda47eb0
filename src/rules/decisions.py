"""Pure decision functions: event + customer + model scores + policy -> Decision.

Nothing here does I/O, reads a clock or touches the ledger: the decision service applies
the returned actions (ledger writes, sends) and the policy simulator replays history
through exactly these functions. Every action and message carries a sentence saying why
("late by 3 days; churn risk 0.42 >= 0.30 -> 150 apology points"), and every model score
that was missing is replaced by the policy's documented fallback, which the reasons name.

Idempotency keys are derived from the event (``earn:<order_id>``), so a retried or
duplicated event can never award twice once the ledger enforces key uniqueness.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

from ppx.rules.messaging import plan_message
from ppx.rules.policy import Policy
from ppx.rules.types import (
    Action,
    ClaimEvent,
    CustomerContext,
    Decision,
    OrderEvent,
    PlannedMessage,
    ReturnEvent,
    Scores,
    SuppressedMessage,
)


class _Builder:
    """Accumulates one decision's actions, messages and reasons."""

    def __init__(self, kind: str, customer: CustomerContext, policy: Policy, now: datetime):
        self.kind = kind
        self.customer = customer
        self.policy = policy
        self.now = now
        self.actions: list[Action] = []
        self.messages: list[PlannedMessage] = []
        self.suppressed: list[SuppressedMessage] = []
        self.reasons: list[str] = []
        self.fallbacks: list[str] = []
        self.outcome: str | None = None

    def act(self, kind: str, reason: str, **fields) -> Action:
        a = Action(kind=kind, reason=reason, **fields)
        self.actions.append(a)
        self.reasons.append(reason)
        return a

    def award(self, ledger_type: str, points: int, key: str, reason: str, **fields) -> None:
        if points <= 0:
            return
        self.act(
            "award_points",
            reason,
            points=int(points),
            ledger_type=ledger_type,
            idempotency_key=key,
            **fields,
        )

    def message(self, mtype: str, reason: str, content: dict | None = None) -> bool:
        m = plan_message(
            mtype, self.customer, self.now, self.policy, reason, self.messages, content
        )
        if isinstance(m, SuppressedMessage):
            self.suppressed.append(m)
            self.reasons.append(m.reason)
            return False
        self.messages.append(m)
        self.reasons.append(m.reason)
        return True

    def actions_of_kind(self, kind: str) -> list[Action]:
        return [a for a in self.actions if a.kind == kind]

    def fallback(self, text: str) -> None:
        self.fallbacks.append(text)
        self.reasons.append(text)

    def build(self) -> Decision:
        return Decision(
            decision=self.kind,
            customer_id=self.customer.customer_id,
            policy_version=self.policy.version,
            outcome=self.outcome,
            actions=self.actions,
            messages=self.messages,
            suppressed=self.suppressed,
            reasons=self.reasons,
            fallbacks=self.fallbacks,
        )


# --- score resolution with documented fallbacks -------------------------------------------


def _why(scores: Scores, model: str) -> str:
    err = scores.errors.get(model)
    return f"{model} model unavailable ({err})" if err else f"{model} model unavailable"


def _churn(b: _Builder, scores: Scores) -> float:
    if scores.churn_risk is not None:
        return float(scores.churn_risk)
    risk = b.policy.fallbacks.churn_risk
    b.fallback(f"{_why(scores, 'churn')}; policy fallback: neutral churn risk {risk:.2f}")
    return risk


def _fraud(b: _Builder, scores: Scores) -> tuple[float, bool, bool]:
    """(fraud probability, ring member, whether a fallback was used)."""
    used = False
    prob = scores.fraud_prob
    if prob is None:
        prob = b.policy.fallbacks.fraud_prob
        b.fallback(f"{_why(scores, 'fraud')}; policy fallback: neutral fraud risk {prob:.2f}")
        used = True
    ring = scores.ring_member
    if ring is None:
        ring = b.policy.fallbacks.ring_member
        if not used:
            b.fallback(f"ring linkage unknown; policy fallback: ring member = {ring}")
    return float(prob), bool(ring), used


def _recs(b: _Builder, scores: Scores, k: int) -> list[int]:
    if k <= 0:
        return []
    if scores.recommendations is not None:
        return list(scores.recommendations)[:k]
    recs = list(b.policy.fallbacks.recommendations)[:k]
    b.fallback(
        f"{_why(scores, 'recs')}; policy fallback: "
        + (f"recommend {recs}" if recs else "message sent without recommendations")
    )
    return recs


def _estimate(b: _Builder, event: OrderEvent, scores: Scores) -> tuple[date | None, str]:
    """Estimated delivery date and a phrase saying where it came from."""
    if scores.delivery is not None and event.ordered_at is not None:
        eta = event.ordered_at + timedelta(days=scores.delivery.p50_days)
        return eta.date(), (
            f"model estimate {eta:%Y-%m-%d} (median {scores.delivery.p50_days:.1f} days, "
            f"90% by {scores.delivery.p90_days:.1f} days)"
        )
    if scores.delivery is not None and event.ordered_at is None:
        b.fallback("delivery estimate given without ordered_at; carrier's promise used")
    elif scores.delivery is None:
        b.fallback(f"{_why(scores, 'delivery')}; policy fallback: the carrier's promise")
    if event.promised_date is None:
        return None, "no promise and no estimate"
    return event.promised_date, f"carrier's promise {event.promised_date:%Y-%m-%d}"


# --- helpers -------------------------------------------------------------------------------


def _tier(policy: Policy, name: str) -> str:
    if name not in policy.tier_names:
        raise ValueError(f"customer tier {name!r} is not one of the policy's {policy.tier_names}")
    return name


def _churn_multiplier(policy: Policy, risk: float) -> tuple[float, float]:
    mult, thr = 1.0, 0.0
    for m in policy.apology.churn_multipliers:
        if risk >= m.min_churn_risk:
            mult, thr = m.multiplier, m.min_churn_risk
    return mult, thr


def _earn_points(policy: Policy, tier: str, value: float) -> int:
    rate = policy.points.per_currency_unit * policy.tier(tier).points_multiplier
    return int(math.floor(value * rate + 1e-9))


def _surprise_tier_up(b: _Builder, tier: str, risk: float, trigger: str) -> None:
    rule = b.policy.surprise_tier_up
    c = b.customer
    rank = b.policy.tier_rank(tier)
    if rank + 1 >= len(b.policy.tiers):
        return
    target = b.policy.tiers[rank + 1].name
    if b.policy.tier_rank(target) > b.policy.tier_rank(rule.max_tier):
        return
    if c.spend_12m < rule.min_spend_12m or risk < rule.min_churn_risk:
        return
    if c.last_surprise_tier_up_at is not None and (
        b.now - c.last_surprise_tier_up_at < timedelta(days=rule.cooldown_days)
    ):
        b.reasons.append(
            f"surprise tier-up skipped: last one {c.last_surprise_tier_up_at:%Y-%m-%d} is within "
            f"the {rule.cooldown_days}-day cooldown"
        )
        return
    why = (
        f"{trigger}: spend {c.spend_12m:,.0f} >= {rule.min_spend_12m:,.0f} and churn risk "
        f"{risk:.2f} >= {rule.min_churn_risk:.2f} -> surprise tier-up {tier} -> {target} for "
        f"{rule.duration_days} days"
    )
    b.act("set_tier", why, tier=target, until=b.now + timedelta(days=rule.duration_days))
    b.award(
        "tier_up_bonus",
        rule.bonus_points,
        f"tier_up:{c.customer_id}:{b.now:%Y-%m-%d}",
        f"surprise tier-up welcome gift -> {rule.bonus_points} points",
    )
    b.message(
        "tier_upgrade",
        f"surprise tier-up to {target}",
        {"tier": target, "surprise": True, "days": rule.duration_days},
    )


# --- order events --------------------------------------------------------------------------


def decide_order_event(
    event: OrderEvent,
    customer: CustomerContext,
    scores: Scores,
    policy: Policy,
) -> Decision:
    """Points, tiers, apologies, notifications and thank-yous for one order event.

    ``placed`` confirms with an estimated date; ``shipped``/``in_transit`` notify and, when
    the delivery estimate is later than the promise, send a proactive delay notice with the
    re-estimated window; ``out_for_delivery`` and ``delivered`` notify each stage (so a
    customer can turn each one off); ``delivered`` also earns points, apologises for lateness (scaled by lateness and churn
    risk), upgrades tiers and thanks on-time customers with recommendations; ``lost``
    apologises; ``refunded`` reverses the refunded share of the points; ``review`` and
    ``referral`` pay their bonuses.
    """
    if event.customer_id != customer.customer_id:
        raise ValueError(
            f"event.customer_id {event.customer_id} does not match customer.customer_id "
            f"{customer.customer_id}"
        )
    b = _Builder("order_event", customer, policy, event.occurred_at)
    tier = _tier(policy, customer.tier)
    oid = event.order_id
    kind = event.event_type
    b.outcome = kind

    if kind == "placed":
        eta, source = _estimate(b, event, scores)
        b.message(
            "order_confirmation",
            f"order {oid} placed; {source}",
            {"order_id": oid, "estimated_delivery": eta.isoformat() if eta else None},
        )

    elif kind == "out_for_delivery":
        b.message(
            "out_for_delivery",
            f"order {oid} out for delivery",
            {"order_id": oid, "estimated_delivery": event.occurred_at.date().isoformat()},
        )

    elif kind in ("shipped", "in_transit"):
        eta, source = _estimate(b, event, scores)
        content = {"order_id": oid, "estimated_delivery": eta.isoformat() if eta else None}
        if scores.delivery is not None and event.ordered_at is not None:
            # The re-estimated window the delay notice shows: median to 90 % date.
            latest = event.ordered_at + timedelta(days=scores.delivery.p90_days)
            content["estimated_latest"] = latest.date().isoformat()
        if kind == "shipped":
            b.message("shipped", f"order {oid} shipped; {source}", content)
        promised = event.promised_date
        if eta is not None and promised is not None and eta > promised:
            late = (eta - promised).days
            if event.delay_notice_sent:
                b.reasons.append(
                    f"{source} is {late} day(s) after the promise; notice already sent"
                )
            else:
                b.message(
                    "delay_notice",
                    f"{source} is {late} day(s) after the promise {promised:%Y-%m-%d}",
                    content,
                )

    elif kind == "delivered":
        if event.delivered_at is None:
            raise ValueError("delivered event needs delivered_at")
        b.message(
            "delivered",
            f"order {oid} delivered",
            {"order_id": oid, "delivered_at": event.delivered_at.isoformat()},
        )
        pts = _earn_points(policy, tier, event.order_value)
        mult = policy.tier(tier).points_multiplier
        b.award(
            "earn",
            pts,
            f"earn:{oid}",
            f"order {oid} delivered; {event.order_value:,.2f} {policy.currency} x "
            f"{policy.points.per_currency_unit:g} x {tier} multiplier {mult:g} -> {pts} points",
            order_id=oid,
        )
        late = 0
        if event.promised_date is not None:
            late = (event.delivered_at.date() - event.promised_date).days
        if late > policy.apology.grace_days:
            risk = _churn(b, scores)
            band = max(
                (x for x in policy.apology.bands if late >= x.min_late_days),
                key=lambda x: x.min_late_days,
                default=None,
            )
            if band is not None:
                mult, thr = _churn_multiplier(policy, risk)
                raw = int(round(band.points * mult))
                pts = min(raw, policy.apology.max_points)
                cap = f" (capped at {policy.apology.max_points})" if raw > pts else ""
                why = (
                    f"late by {late} day(s) (band >= {band.min_late_days}: {band.points}); "
                    f"churn risk {risk:.2f} >= {thr:.2f} -> x{mult:g} -> {pts} apology points{cap}"
                )
                b.award("apology", pts, f"apology:{oid}", why, order_id=oid)
                b.message("apology", f"late by {late} day(s)", {"order_id": oid, "points": pts})
            organic = policy.tier_for_spend(customer.spend_12m + event.order_value)
            if policy.tier_rank(organic) <= policy.tier_rank(tier):  # no tier-up by spend
                _surprise_tier_up(b, tier, risk, f"late delivery of order {oid}")
        else:
            recs = _recs(b, scores, policy.messages.catalogue["thank_you"].recommendations)
            on_time = "on time" if event.promised_date is not None else "delivered"
            b.message(
                "thank_you",
                f"order {oid} {on_time}; {len(recs)} recommendation(s)",
                {"order_id": oid, "recommendations": recs},
            )
            b.message(
                "review_request",
                f"order {oid} delivered",
                {"order_id": oid, "review_points": policy.review.points},
            )
        new_spend = customer.spend_12m + event.order_value
        new_tier = policy.tier_for_spend(new_spend)
        if policy.tier_rank(new_tier) > policy.tier_rank(tier):
            b.act(
                "set_tier",
                f"12-month spend {new_spend:,.0f} >= {policy.tier(new_tier).min_spend_12m:,.0f} "
                f"-> tier {tier} -> {new_tier}",
                tier=new_tier,
            )
            b.message("tier_upgrade", f"tier {new_tier} reached", {"tier": new_tier})

    elif kind == "lost":
        risk = _churn(b, scores)
        mult, thr = _churn_multiplier(policy, risk)
        pts = min(int(round(policy.apology.lost_parcel_points * mult)), policy.apology.max_points)
        b.award(
            "apology",
            pts,
            f"apology:{oid}",
            f"parcel lost ({policy.apology.lost_parcel_points}); churn risk {risk:.2f} >= "
            f"{thr:.2f} -> x{mult:g} -> {pts} apology points",
            order_id=oid,
        )
        b.message("apology", "parcel lost", {"order_id": oid, "points": pts})
        _surprise_tier_up(b, tier, risk, f"lost parcel {oid}")

    elif kind == "refunded":
        if event.refund_amount is None:
            raise ValueError("refunded event needs refund_amount")
        pts = _earn_points(policy, tier, event.refund_amount)
        ref = event.refund_id if event.refund_id is not None else "full"
        b.act(
            "reverse_points",
            f"order {oid} refunded {event.refund_amount:,.2f} {policy.currency} -> reverse "
            f"{pts} points (never more than the order earned)",
            points=-pts,
            ledger_type="reversal",
            idempotency_key=f"reversal:{oid}:{ref}",
            order_id=oid,
        )

    elif kind == "review":
        key = f"review:{oid}" if policy.review.once_per_order else f"review:{event.review_id}"
        rv = policy.review
        # The text/star split rewards effort; the rating never changes the award.
        if event.review_has_text and rv.text_points is not None:
            pts, what = rv.text_points, "written review"
        else:
            pts, what = rv.points, "star rating" if not event.review_has_text else "review"
        b.award("review_bonus", pts, key, f"{what} of order {oid} -> {pts} points", order_id=oid)
        b.message("points_earned", "review bonus", {"points": pts})

    elif kind == "referral":
        if event.referee_id is None:
            raise ValueError("referral event needs referee_id (the referred customer)")
        r = policy.referral
        b.award(
            "referral_bonus",
            r.referrer_points,
            f"referral:{event.referee_id}",
            f"referred customer {event.referee_id} received a first order -> "
            f"{r.referrer_points} points",
            order_id=oid,
        )
        b.award(
            "referral_bonus",
            r.referee_points,
            f"referee:{event.referee_id}",
            f"welcome bonus for referred customer {event.referee_id} -> {r.referee_points} points",
            customer_id=event.referee_id,
            order_id=oid,
        )
        b.message("points_earned", "referral bonus", {"points": r.referrer_points})
    return b.build()


# --- returns ----------------------------------------------------------------------------


def decide_return(
    request: ReturnEvent,
    customer: CustomerContext,
    scores: Scores,
    policy: Policy,
) -> Decision:
    """Instant refund for the best customers, inspection for abuse, standard otherwise.

    Order of rules: outside the return window -> manual review; ring member -> inspection;
    fraud risk at or above the segment's threshold -> inspection; fraud model unavailable
    -> standard refund on receipt (no instant refund on a neutral guess); clean history and
    amount within the segment's limit -> instant refund (and the points are reversed now);
    otherwise refund on receipt.
    """
    if request.customer_id != customer.customer_id:
        raise ValueError("request.customer_id does not match customer.customer_id")
    b = _Builder("return", customer, policy, request.requested_at)
    tier = _tier(policy, customer.tier)
    seg_name = policy.segment(tier)
    seg = policy.returns.segments[seg_name]
    prob, ring, fallback = _fraud(b, scores)
    amount = request.amount
    who = f"{seg_name} customer ({tier})"
    if request.delivered_at is not None and (
        request.requested_at - request.delivered_at > timedelta(days=policy.returns.window_days)
    ):
        days = (request.requested_at - request.delivered_at).days
        b.outcome = "manual_review"
        b.act(
            "manual_review",
            f"requested {days} days after delivery > window {policy.returns.window_days}",
        )
    elif ring and policy.returns.inspect_ring_members:
        b.outcome = "inspect"
        b.act("inspect", f"{who} linked to a fraud ring -> inspect before refund", amount=amount)
    elif prob >= seg.inspect_fraud_threshold:
        b.outcome = "inspect"
        b.act(
            "inspect",
            f"fraud risk {prob:.2f} >= {seg.inspect_fraud_threshold:.2f} ({seg_name}) -> inspect "
            "before refund",
            amount=amount,
        )
    else:
        clean = (
            customer.confirmed_fraud <= seg.max_confirmed_fraud
            and customer.return_rate <= seg.max_return_rate
        )
        history = (
            f"{customer.confirmed_fraud} confirmed fraud, return rate {customer.return_rate:.2f}"
        )
        if fallback and not policy.fallbacks.instant_on_fallback:
            b.outcome = "refund_on_receipt"
            b.act(
                "refund_on_receipt",
                "fraud score missing -> no instant refund on a neutral guess; refund on receipt",
                amount=amount,
            )
        elif clean and amount <= seg.instant_refund_max_amount:
            b.outcome = "instant_refund"
            b.act(
                "instant_refund",
                f"{who}, clean history ({history}), fraud risk {prob:.2f} < "
                f"{seg.inspect_fraud_threshold:.2f}, {amount:,.2f} <= "
                f"{seg.instant_refund_max_amount:,.0f} -> instant refund",
                amount=amount,
            )
            pts = _earn_points(policy, tier, amount)
            b.act(
                "reverse_points",
                f"refund of {amount:,.2f} -> reverse {pts} points",
                points=-pts,
                ledger_type="reversal",
                idempotency_key=f"reversal:{request.order_id}:return:{request.return_id}",
                order_id=request.order_id,
            )
        else:
            why = (
                f"history not clean ({history})"
                if not clean
                else f"{amount:,.2f} > instant limit {seg.instant_refund_max_amount:,.0f}"
            )
            b.outcome = "refund_on_receipt"
            b.act("refund_on_receipt", f"{who}; {why} -> refund on receipt", amount=amount)
    b.message(
        "return_update",
        f"return {request.return_id}: {b.outcome}",
        {"outcome": b.outcome, "return_id": request.return_id, "order_id": request.order_id},
    )
    return b.build()


# --- claims ------------------------------------------------------------------------------


def decide_claim(
    request: ClaimEvent,
    customer: CustomerContext,
    scores: Scores,
    policy: Policy,
) -> Decision:
    """Pay honest shoppers fast; investigate ring members and high fraud risk.

    A parcel the carrier itself reports lost is paid at once. Otherwise: ring member or
    fraud risk at or above the segment's threshold -> investigate; fraud model unavailable
    -> standard review (carrier trace); amount within the segment's fast-pay limit -> fast
    payout; otherwise standard review.
    """
    if request.customer_id != customer.customer_id:
        raise ValueError("request.customer_id does not match customer.customer_id")
    b = _Builder("claim", customer, policy, request.claimed_at)
    tier = _tier(policy, customer.tier)
    seg_name = policy.segment(tier)
    seg = policy.claims.segments[seg_name]
    amount = request.amount
    if request.carrier_status == "lost":
        b.outcome = "fast_payout"
        b.act("fast_payout", "the carrier reports the parcel lost -> pay now", amount=amount)
    else:
        prob, ring, fallback = _fraud(b, scores)
        if ring and policy.claims.inspect_ring_members:
            b.outcome = "investigate"
            b.act("investigate", "claimant linked to a fraud ring -> investigate", amount=amount)
        elif prob >= seg.investigate_fraud_threshold:
            b.outcome = "investigate"
            b.act(
                "investigate",
                f"fraud risk {prob:.2f} >= {seg.investigate_fraud_threshold:.2f} ({seg_name}) -> "
                "investigate",
                amount=amount,
            )
        elif fallback and not policy.fallbacks.instant_on_fallback:
            b.outcome = "standard_claim_review"
            b.act(
                "standard_claim_review",
                "fraud score missing -> no fast payout on a neutral guess; carrier trace first",
                amount=amount,
            )
        elif amount <= seg.fast_pay_max_amount:
            b.outcome = "fast_payout"
            b.act(
                "fast_payout",
                f"{seg_name} customer ({tier}), fraud risk {prob:.2f} < "
                f"{seg.investigate_fraud_threshold:.2f}, {amount:,.2f} <= "
                f"{seg.fast_pay_max_amount:,.0f} -> pay now",
                amount=amount,
            )
        else:
            b.outcome = "standard_claim_review"
            b.act(
                "standard_claim_review",
                f"{amount:,.2f} > fast-pay limit {seg.fast_pay_max_amount:,.0f} ({seg_name}) -> "
                "carrier trace first",
                amount=amount,
            )
    b.message(
        "claim_update",
        f"claim {request.claim_id}: {b.outcome}",
        {"outcome": b.outcome, "claim_id": request.claim_id, "order_id": request.order_id},
    )
    return b.build()


# --- daily --------------------------------------------------------------------------------


def _same_day(d: date, today: date) -> bool:
    if d.month == 2 and d.day == 29:
        leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
        return today.month == 2 and today.day == (29 if leap else 28)
    return (d.month, d.day) == (today.month, today.day)


def decide_daily(
    customer: CustomerContext,
    now: datetime,
    scores: Scores,
    policy: Policy,
    loyalty=None,
) -> Decision:
    """The daily pass over one customer: birthday, anniversary, win-back, replenishment.

    ``loyalty`` (a :class:`ppx.rules.loyalty.LoyaltySummary`, when the caller has the
    ledger) adds the points-expiring reminder, planned on the day exactly
    ``points.expiry.reminder_days`` before the points lapse, so a daily pass sends it once.

    Also re-checks the surprise tier-up (valuable customer, high churn risk). Marketing
    caps apply across these: a birthday and an anniversary on the same day are one
    message under a one-per-day cap; the points of a suppressed birthday message are
    still granted, but a win-back offer is only made if its message can be sent.
    """
    b = _Builder("daily", customer, policy, now)
    tier = _tier(policy, customer.tier)
    today = now.date()
    cid = customer.customer_id
    d = policy.daily
    b.outcome = "none"
    done: list[str] = []
    risk = _churn(b, scores)

    if customer.birth_date is not None and _same_day(customer.birth_date, today):
        if policy.tier_rank(tier) >= policy.tier_rank(d.birthday.min_tier):
            b.award(
                "birthday_bonus",
                d.birthday.points,
                f"birthday:{cid}:{today.year}",
                f"birthday, tier {tier} >= {d.birthday.min_tier} -> {d.birthday.points} points",
            )
            b.message("birthday", "birthday", {"points": d.birthday.points})
            done.append("birthday")
        else:
            b.reasons.append(f"birthday gift needs tier {d.birthday.min_tier}; customer is {tier}")

    if customer.signup_at is not None and _same_day(customer.signup_at.date(), today):
        years = today.year - customer.signup_at.year
        if years >= d.anniversary.min_years:
            b.award(
                "anniversary_bonus",
                d.anniversary.points,
                f"anniversary:{cid}:{today.year}",
                f"{years}-year anniversary -> {d.anniversary.points} points",
            )
            b.message(
                "anniversary",
                f"{years}-year anniversary",
                {"years": years, "points": d.anniversary.points},
            )
            done.append("anniversary")

    if customer.last_order_at is not None:
        idle = (now - customer.last_order_at).days
        wb = d.win_back
        if wb.min_days_since_order <= idle <= wb.max_days_since_order:
            cooling = customer.last_win_back_at is not None and (
                now - customer.last_win_back_at < timedelta(days=wb.cooldown_days)
            )
            if risk < wb.min_churn_risk:
                b.reasons.append(
                    f"no order for {idle} days but churn risk {risk:.2f} < {wb.min_churn_risk:.2f}"
                    " -> no win-back"
                )
            elif cooling:
                b.reasons.append(f"win-back skipped: last offer within {wb.cooldown_days} days")
            else:
                why = (
                    f"no order for {idle} days >= {wb.min_days_since_order}; churn risk "
                    f"{risk:.2f} >= {wb.min_churn_risk:.2f}"
                )
                if b.message("win_back", why, {"offer_points": wb.offer_points}):
                    b.award(
                        "win_back_bonus",
                        wb.offer_points,
                        f"win_back:{cid}:{today.isoformat()}",
                        f"{why} -> {wb.offer_points} win-back points",
                    )
                    done.append("win_back")

    rp = d.replenishment
    due = [
        it for it in customer.replenishment_due if it.due_at - timedelta(days=rp.lead_days) <= now
    ]
    if due:
        cooling = customer.last_replenishment_reminder_at is not None and (
            now - customer.last_replenishment_reminder_at < timedelta(days=rp.cooldown_days)
        )
        if cooling:
            b.reasons.append(
                f"replenishment reminder skipped: one sent within {rp.cooldown_days} days"
            )
        else:
            first = min(due, key=lambda it: it.due_at)
            k = policy.messages.catalogue["replenishment_reminder"].recommendations
            recs = [first.product_id] + [r for r in _recs(b, scores, k) if r != first.product_id]
            if b.message(
                "replenishment_reminder",
                f"product {first.product_id} runs out around {first.due_at:%Y-%m-%d}",
                {"product_ids": recs[: max(k, 1)]},
            ):
                done.append("replenishment_reminder")

    exp = policy.points.expiry
    if loyalty is not None and exp is not None and loyalty.expiring_points > 0:
        remind_on = loyalty.expires_on - timedelta(days=exp.reminder_days)
        if today == remind_on and b.message(
            "points_expiring",
            f"{loyalty.expiring_points} points expire on {loyalty.expires_on} "
            f"(in {exp.reminder_days} days)",
            {
                "points": loyalty.expiring_points,
                "expires_on": loyalty.expires_on.isoformat(),
                "days_left": exp.reminder_days,
                "points_to_next_reward": loyalty.points_to_next_reward,
                "next_reward": loyalty.next_reward_name,
            },
        ):
            done.append("points_expiring")

    if "win_back" not in done:
        _surprise_tier_up(b, tier, risk, "daily review")
        if b.actions_of_kind("set_tier"):
            done.append("surprise_tier_up")
    b.outcome = ",".join(done) if done else "none"
    return b.build()
