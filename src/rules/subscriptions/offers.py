"""The save offer made before a cancel: chosen from churn risk and reasons, with its cost.

Why reasons and not risk alone: a subscriber leaving over price is kept by a discount, one
drowning in coffee by a skip or a longer cadence, one tired of the product by a swap; the
wrong offer costs money and saves nobody. The reasons come from two places, in this
order: what the customer says ("why are you leaving?", mapped by
``save_offers.stated_reasons``), then the churn model's reason codes (features that raise
this customer's risk, strongest first, mapped by ``save_offers.reason_features``). Risk
gates the costly offers: the default policy gives a discount only from risk 0.25, since a
low-risk subscriber who clicks "cancel" is served as well by a free skip or cadence change.

Matching: for each reason in priority order, the first rule that names it, whose risk band
holds the risk and whose offer is feasible wins; then rules naming no reason (catch-alls).
Feasible: a skip needs an active subscription with skips left; a pause an active one; a
discount no discount running; a swap a recommended product other than the current one; a
cadence change a longer cadence on offer. No offer within ``cooldown_days`` of the last.

Cost to the brand: ``cost`` is money given up (discount: price x percent x deliveries; a
swap's handling cost); ``deferred_revenue`` is revenue moved later (a skip's delivery, a
pause's deliveries); ``revenue_change_90d`` what a cadence change does to the next 90 days.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from ppx.rules.policy import Policy
from ppx.rules.subscriptions.lifecycle import Subscription, TransitionError


class SaveOffer(BaseModel):
    """An offer shown before the cancel is confirmed."""

    model_config = ConfigDict(extra="forbid")

    offer_id: str
    kind: str
    reason_group: str
    description: str
    terms: dict
    cost: float
    deferred_revenue: float
    revenue_change_90d: float
    churn_risk: float
    made_at: datetime
    expires_at: datetime
    reasons: list[str]


class OfferChoice(BaseModel):
    """The offer (None when no rule applies) and why."""

    model_config = ConfigDict(extra="forbid")

    offer: SaveOffer | None
    reasons: list[str]
    reason_groups: list[str]


def reason_groups(
    stated: str | None, model_reasons: list[dict] | None, policy: Policy
) -> tuple[list[str], list[str]]:
    """(reason groups in priority order, sentences saying where each came from)."""
    so = policy.save_offers
    groups: list[str] = []
    notes: list[str] = []
    if stated is not None:
        if stated not in so.stated_reasons:
            raise TransitionError(
                422,
                f"unknown cancel reason {stated!r}; expected one of {sorted(so.stated_reasons)}",
            )
        g = so.stated_reasons[stated]
        groups.append(g)
        notes.append(f"customer says {stated!r} -> reason {g}")
    by_feature = {f: g for g, feats in so.reason_features.items() for f in feats}
    raising = [r for r in model_reasons or [] if float(r.get("contribution") or 0.0) > 0]
    raising.sort(key=lambda r: -float(r["contribution"]))
    for r in raising:
        g = by_feature.get(str(r.get("feature")))
        if g is None or g in groups:
            continue
        groups.append(g)
        label = r.get("label") or r.get("feature")
        notes.append(
            f"churn model: {label} raises the risk (+{float(r['contribution']):.2f}) -> {g}"
        )
    return groups, notes


def _next_cadence(sub: Subscription, policy: Policy) -> int | None:
    longer = [c for c in policy.subscriptions.cadence_days if c > sub.cadence_days]
    return longer[0] if longer else None


def _swap_target(sub: Subscription, candidates: list[int] | None) -> int | None:
    for pid in candidates or []:
        if int(pid) != sub.product_id:
            return int(pid)
    return None


def _feasible(kind: str, sub: Subscription, policy: Policy, swap: list[int] | None) -> str | None:
    """None when the offer can be made, else why not."""
    if kind == "skip":
        if sub.status != "active":
            return "skip needs an active subscription"
        if sub.consecutive_skips >= policy.subscriptions.max_consecutive_skips:
            return "no skips left in a row"
    elif kind == "pause" and sub.status != "active":
        return "already paused"
    elif kind == "discount" and sub.discount_orders_left > 0:
        return "a discount is already running"
    elif kind == "swap" and _swap_target(sub, swap) is None:
        return "no other product recommended"
    elif kind == "cadence" and _next_cadence(sub, policy) is None:
        return f"no cadence longer than {sub.cadence_days} days on offer"
    return None


def _offer_id(sub: Subscription, now: datetime) -> str:
    raw = f"{sub.subscription_id}:{sub.version}:{now.isoformat()}"
    return "so_" + hashlib.sha256(raw.encode()).hexdigest()[:16]


def build_offer(
    kind: str,
    group: str,
    sub: Subscription,
    risk: float,
    now: datetime,
    policy: Policy,
    swap: list[int] | None,
    reasons: list[str],
) -> SaveOffer:
    """The offer's terms, description and cost for this subscription."""
    so = policy.save_offers
    price, cadence, cur = sub.price, sub.cadence_days, policy.currency
    cost = deferred = change = 0.0
    if kind == "discount":
        pct, n = so.discount.percent, so.discount.orders
        terms = {"percent": pct, "orders": n}
        cost = price * pct / 100.0 * n
        desc = f"{pct:g} % off your next {n} deliveries"
    elif kind == "skip":
        terms = {"skip_delivery_at": sub.next_delivery_at.isoformat()}
        deferred = sub.next_price
        desc = f"skip the delivery of {sub.next_delivery_at:%Y-%m-%d}"
    elif kind == "pause":
        days = so.pause.days
        resume_on = (now + timedelta(days=days)).date()
        terms = {"resume_on": resume_on.isoformat(), "days": days}
        deferred = price * max(1, math.floor(days / cadence))
        desc = f"pause for {days} days, until {resume_on:%Y-%m-%d}"
    elif kind == "cadence":
        new = _next_cadence(sub, policy)
        assert new is not None
        terms = {"cadence_days": new}
        change = price * 90.0 / new - price * 90.0 / cadence
        desc = f"deliver every {new} days instead of every {cadence}"
    else:  # swap
        target = _swap_target(sub, swap)
        terms = {"product_id": target}
        cost = so.swap.handling_cost
        desc = f"switch to product {target} at the same price"
    return SaveOffer(
        offer_id=_offer_id(sub, now),
        kind=kind,
        reason_group=group,
        description=desc,
        terms=terms,
        cost=round(cost, 2),
        deferred_revenue=round(deferred, 2),
        revenue_change_90d=round(change, 2),
        churn_risk=round(risk, 4),
        made_at=now,
        expires_at=now + timedelta(hours=so.offer_valid_hours),
        reasons=[
            *reasons,
            f"offer: {desc}; cost {cost:,.2f} {cur}, deferred revenue {deferred:,.2f} {cur}",
        ],
    )


def choose_save_offer(
    sub: Subscription,
    churn_risk: float,
    model_reasons: list[dict] | None,
    stated_reason: str | None,
    now: datetime,
    policy: Policy,
    swap_candidates: list[int] | None = None,
    risk_note: str | None = None,
) -> OfferChoice:
    """The policy's save offer for a subscriber asking to cancel (pure)."""
    so = policy.save_offers
    groups, notes = reason_groups(stated_reason, model_reasons, policy)
    if risk_note:
        notes.insert(0, risk_note)
    notes.insert(0, f"churn risk {churn_risk:.2f}")
    if not so.enabled:
        return OfferChoice(
            offer=None, reasons=[*notes, "save offers are off in the policy"], reason_groups=groups
        )
    if sub.last_offer_at is not None and now - sub.last_offer_at < timedelta(days=so.cooldown_days):
        return OfferChoice(
            offer=None,
            reasons=[
                *notes,
                f"an offer was made on {sub.last_offer_at:%Y-%m-%d}, within the "
                f"{so.cooldown_days}-day cooldown -> no offer",
            ],
            reason_groups=groups,
        )
    order = [*groups, *(["other"] if "other" not in groups else [])]
    candidates = [(g, r) for g in order for r in so.rules if g in r.reasons]
    candidates += [("other" if not groups else groups[0], r) for r in so.rules if not r.reasons]
    for group, rule in candidates:
        if not rule.min_churn_risk <= churn_risk <= rule.max_churn_risk:
            continue
        why_not = _feasible(rule.offer, sub, policy, swap_candidates)
        if why_not is not None:
            notes.append(f"{rule.offer} for {group}: {why_not}")
            continue
        band = f"risk {churn_risk:.2f} in [{rule.min_churn_risk:.2f}, {rule.max_churn_risk:.2f}]"
        notes.append(f"rule: reason {group}, {band} -> {rule.offer}")
        offer = build_offer(rule.offer, group, sub, churn_risk, now, policy, swap_candidates, notes)
        return OfferChoice(offer=offer, reasons=offer.reasons, reason_groups=groups)
    return OfferChoice(
        offer=None, reasons=[*notes, "no save-offer rule applies -> no offer"], reason_groups=groups
    )
