"""Birthday and signup-anniversary gifts: a catalogue reward issued free, once a year.

The policy's top-level ``birthday`` and ``anniversary`` sections name the reward (and an
optional ``min_tier``); the points of ``daily.birthday`` / ``daily.anniversary`` are
awarded by the daily decision as before. The idempotency key holds the customer and the
year, so however often the daily pass runs, one voucher is issued per year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ppx.rules.decisions import _same_day
from ppx.rules.ledger import Ledger
from ppx.rules.loyalty.catalogue import eligible
from ppx.rules.loyalty.redemption import RedemptionResult, issue_gift
from ppx.rules.policy import Policy


@dataclass(frozen=True)
class GiftDue:
    """A yearly gift due today: ``reward_id`` None when the tier does not qualify."""

    kind: str  # birthday | anniversary
    reward_id: str | None
    idempotency_key: str
    reason: str


def gifts_due(
    policy: Policy,
    customer_id: int,
    today: date,
    *,
    tier: str,
    birth_date: date | None = None,
    signup_at: datetime | date | None = None,
) -> list[GiftDue]:
    """Which birthday/anniversary gifts are due today (nothing is issued here)."""
    out = []
    cid = int(customer_id)
    gift = policy.birthday
    if gift is not None and birth_date is not None and _same_day(birth_date, today):
        key = f"birthday_gift:{cid}:{today.year}"
        if gift.min_tier and not eligible(policy, _Tiered(gift.min_tier), tier):
            why = f"birthday gift needs tier {gift.min_tier}; is {tier}"
            out.append(GiftDue("birthday", None, key, why))
        else:
            out.append(
                GiftDue(
                    "birthday", gift.reward, key, f"birthday gift {gift.reward} for {today.year}"
                )
            )
    gift = policy.anniversary
    if gift is not None and signup_at is not None:
        start = signup_at.date() if isinstance(signup_at, datetime) else signup_at
        years = today.year - start.year
        if _same_day(start, today) and years >= policy.daily.anniversary.min_years:
            key = f"anniversary_gift:{cid}:{today.year}"
            if gift.min_tier and not eligible(policy, _Tiered(gift.min_tier), tier):
                why = f"anniversary gift needs tier {gift.min_tier}; is {tier}"
                out.append(GiftDue("anniversary", None, key, why))
            else:
                why = f"{years}-year anniversary gift {gift.reward}"
                out.append(GiftDue("anniversary", gift.reward, key, why))
    return out


def yearly_gifts(
    ledger: Ledger,
    policy: Policy,
    customer_id: int,
    today: date,
    *,
    tier: str,
    birth_date: date | None = None,
    signup_at: datetime | date | None = None,
) -> list[tuple[str, RedemptionResult | None, str]]:
    """Issue today's birthday/anniversary gifts; ``(kind, voucher or None, reason)`` each."""
    out = []
    for g in gifts_due(
        policy, customer_id, today, tier=tier, birth_date=birth_date, signup_at=signup_at
    ):
        v = None
        if g.reward_id is not None:
            v = issue_gift(ledger, policy, int(customer_id), g.reward_id, g.idempotency_key, g.kind)
        out.append((g.kind, v, g.reason))
    return out


def attach_gift(
    decision, kind: str, policy: Policy, reward_id: str, voucher_code: str, expires_at
) -> None:
    """Put a gift's voucher into the decision's birthday/anniversary message (the outbox
    row then carries it)."""
    for m in decision.messages:
        if m.message_type == kind:
            m.content["gift"] = {
                "reward_id": reward_id,
                "reward": policy.reward(reward_id).name,
                "voucher_code": voucher_code,
                "expires_at": expires_at.isoformat(),
            }


class _Tiered:
    """Anything with a ``min_tier``, for :func:`eligible`."""

    def __init__(self, min_tier: str) -> None:
        self.min_tier = min_tier
