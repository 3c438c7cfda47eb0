"""Tiers with entry and retention rules, persisted with their history.

Rules (per tier in the policy's ``tiers`` list):

* **entry**: a customer whose 12-month spend reaches a tier's ``min_spend_12m`` enters
  it at once (upgrades are never delayed);
* **hold**: a tier reached or retained is held ``hold_months`` before its review, so a
  quiet month does not demote anyone;
* **retention**: at the review, the customer keeps the highest tier at or below the
  current one whose ``retain_spend_12m`` the 12-month spend reaches (never lower than
  the tier the spend would enter), and the tier is held again.

A surprise tier-up (the decision rules' gesture for a valuable customer at risk) is
held until its end date and then reviewed by the same retention rule.

Every change (entry, upgrade, surprise, retained, downgrade) is a row of ``loyalty_tier_history``
written in the same locked transaction as ``loyalty_tiers``; a review that changes
nothing writes nothing, so repeats are harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ppx.rules.ledger import Ledger, LedgerError, _now
from ppx.rules.loyalty.expiry import add_months
from ppx.rules.loyalty.redemption import locked_tx
from ppx.rules.loyalty.store import ensure_tables
from ppx.rules.loyalty.tables import CustomerTier, TierChange
from ppx.rules.policy import Policy


@dataclass(frozen=True)
class TierResult:
    customer_id: int
    tier: str
    previous: str | None
    change: str  # entry | upgrade | surprise | retained | downgrade | unchanged
    since: datetime
    review_at: datetime
    spend_12m: float
    reason: str

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["since"] = self.since.isoformat()
        out["review_at"] = self.review_at.isoformat()
        return out


def retained_tier(policy: Policy, current: str, spend_12m: float) -> str:
    """The tier kept at a review: the highest at or below ``current`` whose retention
    threshold the spend reaches, but never below the tier the spend would enter."""
    rank = policy.tier_rank(current)
    kept = policy.tiers[0].name
    for t in policy.tiers[: rank + 1]:
        if spend_12m >= t.retention_spend:
            kept = t.name
    entry = policy.tier_for_spend(spend_12m)
    return entry if policy.tier_rank(entry) > policy.tier_rank(kept) else kept


def review_tier(
    ledger: Ledger,
    policy: Policy,
    customer_id: int,
    spend_12m: float,
    now: datetime | None = None,
) -> TierResult:
    """Apply the entry and retention rules to a customer's 12-month spend as of ``now``."""
    cid = int(customer_id)
    if cid < 1:
        raise LedgerError(f"customer_id must be a positive integer, got {customer_id!r}")
    if spend_12m is None or not spend_12m >= 0:
        raise LedgerError(f"spend_12m must be a non-negative number, got {spend_12m!r}")
    now = now or _now()
    spend = float(spend_12m)

    def hold(name: str) -> datetime:
        return add_months(now, policy.tier(name).hold_months)

    def work(s: Session) -> TierResult:
        row = s.get(CustomerTier, cid)
        entry = policy.tier_for_spend(spend)
        if row is None:
            change, new, prev = "entry", entry, None
            reason = f"12-month spend {spend:g} enters {entry}"
            row = CustomerTier(customer_id=cid, tier=entry, since=now, review_at=hold(entry))
            row.updated_at = now
            s.add(row)
        else:
            prev = row.tier
            # A tier the policy no longer has ranks below every tier: the spend re-enters.
            prev_rank = policy.tier_rank(prev) if prev in policy.tier_names else -1
            if policy.tier_rank(entry) > prev_rank:
                change, new = "upgrade", entry
                reason = (
                    f"12-month spend {spend:g} reaches {entry} "
                    f"(min_spend_12m {policy.tier(entry).min_spend_12m:g})"
                )
            elif now < row.review_at:
                return TierResult(
                    cid,
                    prev,
                    prev,
                    "unchanged",
                    row.since,
                    row.review_at,
                    spend,
                    f"{prev} is held until its review on {row.review_at.date()}",
                )
            else:
                new = retained_tier(policy, prev, spend)
                if new == prev:
                    change = "retained"
                    reason = (
                        f"review: 12-month spend {spend:g} keeps {prev} "
                        f"(retain_spend_12m {policy.tier(prev).retention_spend:g})"
                    )
                else:
                    change = "downgrade"
                    reason = (
                        f"review: 12-month spend {spend:g} is below {prev}'s retention "
                        f"threshold {policy.tier(prev).retention_spend:g}; moved to {new}"
                    )
            if change != "retained":
                row.since = now
            row.tier, row.review_at, row.updated_at = new, hold(new), now
        s.add(
            TierChange(
                customer_id=cid,
                from_tier=prev,
                to_tier=new,
                change=change,
                spend_12m=spend,
                reason=reason,
                at=now,
            )
        )
        s.flush()
        return TierResult(cid, new, prev, change, row.since, row.review_at, spend, reason)

    return locked_tx(ledger, [cid], work)


def surprise_tier(
    ledger: Ledger,
    policy: Policy,
    customer_id: int,
    tier: str,
    until: datetime,
    spend_12m: float,
    reason: str,
    now: datetime | None = None,
) -> TierResult:
    """Record a surprise tier-up: ``tier`` held until ``until``, then reviewed as usual.

    At that review the retention rule decides: a customer whose spend reaches the
    tier's ``retain_spend_12m`` keeps it, anyone else drops to the tier they qualify
    for. A tier-up that would not raise the stored tier changes nothing.
    """
    cid = int(customer_id)
    policy.tier(tier)  # unknown tier -> ValueError naming the policy's tiers
    now = now or _now()

    def work(s: Session) -> TierResult:
        row = s.get(CustomerTier, cid)
        prev = row.tier if row is not None else None
        higher = prev in policy.tier_names and policy.tier_rank(prev) >= policy.tier_rank(tier)
        if row is not None and higher:
            return TierResult(
                cid, prev, prev, "unchanged", row.since, row.review_at, spend_12m, reason
            )
        if row is None:
            row = CustomerTier(customer_id=cid)
            s.add(row)
        row.tier, row.since, row.review_at, row.updated_at = tier, now, until, now
        s.add(
            TierChange(
                customer_id=cid,
                from_tier=prev,
                to_tier=tier,
                change="surprise",
                spend_12m=float(spend_12m),
                reason=reason[:500],
                at=now,
            )
        )
        s.flush()
        return TierResult(cid, tier, prev, "surprise", now, until, float(spend_12m), reason)

    return locked_tx(ledger, [cid], work)


def persist_tier_actions(ledger: Ledger, policy: Policy, decision, spend_12m: float, now) -> list:
    """Store a decision's ``set_tier`` actions: a spend upgrade (entry rules) or a surprise."""
    out = []
    for a in decision.actions:
        if a.kind != "set_tier" or a.tier is None:
            continue
        cid = int(a.customer_id or decision.customer_id)
        out.append(persist_tier(ledger, policy, cid, a.tier, a.until, spend_12m, a.reason, now))
    return out


def persist_tier(
    ledger: Ledger,
    policy: Policy,
    customer_id: int,
    tier: str,
    until: datetime | None,
    spend_12m: float,
    reason: str,
    now: datetime,
) -> TierResult:
    """One ``set_tier`` action stored: a surprise tier-up (it has an end date) or a spend
    upgrade (the entry rules). Repeating it changes nothing more."""
    if until is not None:
        return surprise_tier(ledger, policy, customer_id, tier, until, spend_12m, reason, now)
    return review_tier(ledger, policy, customer_id, spend_12m, now)


def current_tier(ledger: Ledger, customer_id: int) -> dict | None:
    with Session(ensure_tables(ledger).engine) as s:
        row = s.get(CustomerTier, int(customer_id))
        if row is None:
            return None
        return {
            "customer_id": row.customer_id,
            "tier": row.tier,
            "since": row.since.isoformat(),
            "review_at": row.review_at.isoformat(),
        }


def tier_history(ledger: Ledger, customer_id: int, limit: int = 100) -> list[dict]:
    """The customer's tier changes, oldest first."""
    with Session(ensure_tables(ledger).engine) as s:
        rows = s.scalars(
            select(TierChange)
            .where(TierChange.customer_id == int(customer_id))
            .order_by(TierChange.at, TierChange.id)
            .limit(limit)
        ).all()
        return [
            {
                "from_tier": r.from_tier,
                "to_tier": r.to_tier,
                "change": r.change,
                "spend_12m": r.spend_12m,
                "reason": r.reason,
                "at": r.at.isoformat(),
            }
            for r in rows
        ]
