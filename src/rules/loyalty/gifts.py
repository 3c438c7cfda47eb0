"""Birthday and signup-anniversary gifts: a catalogue reward issued free, once a year.

The policy's top-level ``birthday`` and ``anniversary`` sections name the reward (and an
optional ``min_tier``); the points of ``daily.birthday`` / ``daily.anniversary`` are
awarded by the daily decision as before. The idempotency key holds the customer and the
year, so however often the daily pass runs, one voucher is issued per year.
"""

from __future__ import annotations

from datetime import date, datetime

from ppx.rules.decisions import _same_day
from ppx.rules.ledger import Ledger
from ppx.rules.loyalty.catalogue import eligible
from ppx.rules.loyalty.redemption import RedemptionResult, issue_gift
from ppx.rules.policy import Policy


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
    cid = int(customer_id)
    gift = policy.birthday
    if gift is not None and birth_date is not None and _same_day(birth_date, today):
        if gift.min_tier and not eligible(policy, _Tiered(gift.min_tier), tier):
            out.append(("birthday", None, f"birthday gift needs tier {gift.min_tier}; is {tier}"))
        else:
            v = issue_gift(
                ledger, policy, cid, gift.reward, f"birthday_gift:{cid}:{today.year}", "birthday"
            )
            out.append(("birthday", v, f"birthday gift {gift.reward} for {today.year}"))
    gift = policy.anniversary
    if gift is not None and signup_at is not None:
        start = signup_at.date() if isinstance(signup_at, datetime) else signup_at
        years = today.year - start.year
        if _same_day(start, today) and years >= policy.daily.anniversary.min_years:
            if gift.min_tier and not eligible(policy, _Tiered(gift.min_tier), tier):
                out.append(
                    ("anniversary", None, f"anniversary gift needs tier {gift.min_tier}; is {tier}")
                )
            else:
                v = issue_gift(
                    ledger,
                    policy,
                    cid,
                    gift.reward,
                    f"anniversary_gift:{cid}:{today.year}",
                    "anniversary",
                )
                out.append(("anniversary", v, f"{years}-year anniversary gift {gift.reward}"))
    return out


class _Tiered:
    """Anything with a ``min_tier``, for :func:`eligible`."""

    def __init__(self, min_tier: str) -> None:
        self.min_tier = min_tier
