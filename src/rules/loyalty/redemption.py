"""Redeeming catalogue rewards through the ledger, and giving the points back on a refund.

A redemption is two rows written in one transaction under the ledger's per-customer
lock: a negative ``redeem`` ledger entry and a ``loyalty_redemptions`` row carrying the
voucher code. The client's idempotency key is unique on the redemption row (and, as
``redeem:<key>``, on the ledger entry), so a retried request returns the first voucher
and spends nothing more; a balance that does not cover the reward is refused with the
numbers. A refund of the order the voucher was spent on returns the points (a
``redemption_reversal`` entry, once per redemption).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from ppx.rules.ledger import Ledger, LedgerError, Posting, _add_entry, _now, _prior
from ppx.rules.loyalty.catalogue import eligible
from ppx.rules.loyalty.expiry import expire_in
from ppx.rules.loyalty.store import ensure_tables
from ppx.rules.loyalty.tables import CustomerTier, Redemption
from ppx.rules.policy import Policy

T = TypeVar("T")


@dataclass(frozen=True)
class RedemptionResult:
    """A redemption as stored, and whether this call created it."""

    redemption_id: int
    customer_id: int
    reward_id: str
    points: int
    voucher_code: str
    source: str
    status: str
    order_id: int | None
    created_at: datetime
    expires_at: datetime
    idempotency_key: str
    created: bool
    balance: int | None = None

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        for k in ("created_at", "expires_at"):
            out[k] = out[k].isoformat()
        return out


def _result(r: Redemption, created: bool, balance: int | None = None) -> RedemptionResult:
    return RedemptionResult(
        redemption_id=r.id,
        customer_id=r.customer_id,
        reward_id=r.reward_id,
        points=r.points,
        voucher_code=r.voucher_code,
        source=r.source,
        status=r.status,
        order_id=r.order_id,
        created_at=r.created_at,
        expires_at=r.expires_at,
        idempotency_key=r.idempotency_key,
        created=created,
        balance=balance,
    )


def locked_tx(ledger: Ledger, customer_ids: list[int], fn: Callable[[Session], T]) -> T:
    """Run ``fn`` in one transaction holding the per-customer locks (retried when busy).

    Locks are taken in ascending id order so two transactions over the same customers
    cannot deadlock.
    """
    ensure_tables(ledger)

    def attempt() -> T:
        with Session(ledger.engine) as s, s.begin():
            for cid in sorted(set(int(c) for c in customer_ids)):
                ledger._locked(s, cid)
            return fn(s)

    return ledger._retry(attempt)


def stored_tier(s: Session, customer_id: int) -> str | None:
    return s.scalar(select(CustomerTier.tier).where(CustomerTier.customer_id == int(customer_id)))


def new_voucher_code() -> str:
    """An unguessable voucher code (60 random bits, upper-case hex in groups)."""
    raw = secrets.token_hex(8).upper()[:15]
    return f"PPX-{raw[:5]}-{raw[5:10]}-{raw[10:]}"


def keyed_voucher_code(secret: str, idempotency_key: str) -> str:
    """The voucher code of a gift composed ahead of its issue (the nightly batch): an
    HMAC of its idempotency key, unguessable without ``secret``, in the format of
    :func:`new_voucher_code`, and the same on every worker that composes it."""
    if not secret:
        raise LedgerError("a keyed voucher code needs a non-empty secret")
    digest = hmac.new(secret.encode(), idempotency_key.encode(), hashlib.sha256).hexdigest()
    raw = digest.upper()[:15]
    return f"PPX-{raw[:5]}-{raw[5:10]}-{raw[10:]}"


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > 180:
        raise LedgerError("idempotency_key must be a non-empty string of at most 180 characters")
    return key


def redeem_reward(
    ledger: Ledger,
    policy: Policy,
    customer_id: int,
    reward_id: str,
    idempotency_key: str,
    *,
    tier: str | None = None,
    order_id: int | None = None,
    at: datetime | None = None,
) -> RedemptionResult:
    """Spend points on a catalogue reward; the same key returns the same voucher.

    Raises:
        LedgerError: unknown reward, a tier below the reward's ``min_tier``, a balance
            below its cost, or the key already used for another customer or reward.
    """
    if int(customer_id) < 1:
        raise LedgerError(f"customer_id must be a positive integer, got {customer_id!r}")
    _check_key(idempotency_key)
    try:
        reward = policy.reward(reward_id)
    except ValueError as err:
        raise LedgerError(str(err)) from None
    cid = int(customer_id)
    when = at or _now()

    def work(s: Session) -> RedemptionResult | LedgerError:
        prior = s.scalars(
            select(Redemption).where(Redemption.idempotency_key == idempotency_key)
        ).one_or_none()
        if prior is not None:
            if prior.customer_id != cid or prior.reward_id != reward.id:
                raise LedgerError(
                    f"idempotency_key {idempotency_key!r} was already used for customer "
                    f"{prior.customer_id}, reward {prior.reward_id!r}"
                )
            return _result(prior, False, ledger._balance(s, cid))
        current = stored_tier(s, cid) or tier or policy.tiers[0].name
        if not eligible(policy, reward, current):
            raise LedgerError(
                f"reward {reward.id!r} needs tier {reward.min_tier}; customer {cid} is {current}"
            )
        lapsed = expire_in(s, ledger, policy, cid, when)
        bal = ledger._balance(s, cid)
        if bal < reward.points:
            note = f" ({-lapsed.points} just expired)" if lapsed and lapsed.created else ""
            # Returned, not raised: raising would roll back the expiry written above.
            return LedgerError(
                f"customer {cid} has {bal} points{note}; reward {reward.id!r} costs {reward.points}"
            )
        entry = _add_entry(
            s,
            cid,
            -reward.points,
            "redeem",
            f"redeem:{idempotency_key}",
            order_id,
            f"redeemed {reward.name} ({reward.id})",
            when,
        )
        row = Redemption(
            customer_id=cid,
            reward_id=reward.id,
            points=reward.points,
            idempotency_key=idempotency_key,
            ledger_entry_id=entry.entry_id,
            voucher_code=new_voucher_code(),
            source="points",
            status="issued",
            order_id=order_id,
            created_at=when,
            expires_at=when + timedelta(days=reward.valid_days),
            reversal_reason="",
        )
        s.add(row)
        s.flush()
        return _result(row, True, bal - reward.points)

    out = locked_tx(ledger, [cid], work)
    if isinstance(out, LedgerError):
        raise out
    return out


def issue_gift(
    ledger: Ledger,
    policy: Policy,
    customer_id: int,
    reward_id: str,
    idempotency_key: str,
    source: str,
    at: datetime | None = None,
    voucher_code: str | None = None,
) -> RedemptionResult:
    """Issue a catalogue reward free of points (a birthday or anniversary gift), once per key.

    ``voucher_code`` (default: a new random one) lets a batch that composed the gift's
    message beforehand store the code the message already carries.
    """
    reward = policy.reward(reward_id)
    cid = int(customer_id)
    when = at or _now()

    def work(s: Session) -> RedemptionResult:
        prior = s.scalars(
            select(Redemption).where(Redemption.idempotency_key == idempotency_key)
        ).one_or_none()
        if prior is not None:
            return _result(prior, False)
        row = Redemption(
            customer_id=cid,
            reward_id=reward.id,
            points=0,
            idempotency_key=idempotency_key,
            ledger_entry_id=None,
            voucher_code=voucher_code or new_voucher_code(),
            source=source,
            status="issued",
            order_id=None,
            created_at=when,
            expires_at=when + timedelta(days=reward.valid_days),
            reversal_reason="",
        )
        s.add(row)
        s.flush()
        return _result(row, True)

    return locked_tx(ledger, [cid], work)


def _reverse_in(s: Session, r: Redemption, reason: str, when: datetime) -> Posting | None:
    """Give a redemption's points back inside the caller's locked transaction (once)."""
    key = f"unredeem:{r.id}"
    prior = _prior(s, key)
    if prior is not None or r.status == "reversed":
        return prior
    r.status = "reversed"
    r.reversed_at = when
    r.reversal_reason = reason[:500]
    if r.points <= 0:
        return None
    return _add_entry(
        s,
        r.customer_id,
        r.points,
        "redemption_reversal",
        key,
        r.order_id,
        f"{reason}: {r.points} points of {r.reward_id} returned",
        when,
    )


def reverse_redemption(
    ledger: Ledger, redemption_id: int, reason: str = "reversed", at: datetime | None = None
) -> Posting | None:
    """Return a redemption's points (a cancelled voucher); repeats change nothing."""
    with Session(ensure_tables(ledger).engine) as s:
        r = s.get(Redemption, int(redemption_id))
        if r is None:
            raise LedgerError(f"redemption_id {redemption_id} does not exist")
        cid = r.customer_id

    def work(s: Session) -> Posting | None:
        row = s.get(Redemption, int(redemption_id))
        return _reverse_in(s, row, reason, at or _now())

    return locked_tx(ledger, [cid], work)


def use_voucher(
    ledger: Ledger, voucher_code: str, order_id: int, at: datetime | None = None
) -> RedemptionResult:
    """Record the order a voucher was spent on (so that order's refund returns the points).

    Raises:
        LedgerError: unknown, reversed or expired voucher, or one already spent on
            another order.
    """
    when = at or _now()
    with Session(ensure_tables(ledger).engine) as s:
        r = s.scalars(
            select(Redemption).where(Redemption.voucher_code == voucher_code)
        ).one_or_none()
        if r is None:
            raise LedgerError(f"voucher_code {voucher_code!r} does not exist")
        cid = r.customer_id

    def work(s: Session) -> RedemptionResult:
        row = s.scalars(select(Redemption).where(Redemption.voucher_code == voucher_code)).one()
        if row.order_id == int(order_id):
            return _result(row, False)
        if row.status != "issued":
            raise LedgerError(f"voucher_code {voucher_code!r} was {row.status}")
        if row.order_id is not None:
            raise LedgerError(f"voucher_code {voucher_code!r} was spent on order {row.order_id}")
        if when > row.expires_at:
            raise LedgerError(f"voucher_code {voucher_code!r} expired on {row.expires_at.date()}")
        row.order_id = int(order_id)
        return _result(row, True)

    return locked_tx(ledger, [cid], work)


@dataclass(frozen=True)
class RefundOutcome:
    """What a refund took back and gave back, and the balance after it."""

    customer_id: int
    order_id: int
    postings: list[Posting]
    reversed_redemptions: list[int]
    cancelled_referral: int | None
    balance: int

    def to_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "order_id": self.order_id,
            "postings": [p.__dict__ for p in self.postings],
            "reversed_redemptions": self.reversed_redemptions,
            "cancelled_referral": self.cancelled_referral,
            "balance": self.balance,
        }


def refund_order(
    ledger: Ledger,
    customer_id: int,
    order_id: int,
    idempotency_key: str,
    *,
    points: int | None = None,
    full: bool = True,
    reason: str = "order refunded",
    at: datetime | None = None,
) -> RefundOutcome:
    """Everything a refund undoes, in one transaction.

    * the points the order earned (all of them, or ``points`` for a partial refund;
      never more than the order's net earnings);
    * on a full refund, the points of every voucher spent on the order;
    * on a full refund of a referred customer's first order, the pending referral
      (neither side is paid).
    """
    _check_key(idempotency_key)
    cid, oid = int(customer_id), int(order_id)
    when = at or _now()

    def work(s: Session) -> RefundOutcome:
        out: list[Posting] = []
        p = ledger._reverse_in(s, cid, oid, points, f"refund:{idempotency_key}", reason, when)
        if p is not None:
            out.append(p)
        undone: list[int] = []
        cancelled = None
        if full:
            postings, undone, cancelled = undo_order_rewards_in(s, cid, oid, "refunded", when)
            out += postings
        return RefundOutcome(cid, oid, out, undone, cancelled, ledger._balance(s, cid))

    return locked_tx(ledger, [cid], work)


def undo_order_rewards_in(
    s: Session, customer_id: int, order_id: int, why: str, when: datetime
) -> tuple[list[Posting], list[int], int | None]:
    """What a fully refunded (or fully returned) order undoes beyond its own points, inside
    the caller's locked transaction: every voucher spent on it is cancelled and its points
    returned, and a pending referral whose first order it was is cancelled.

    Returns the new postings, the ids of the vouchers cancelled now and the referee id of
    the cancelled referral (None: none). Repeats find everything done and return nothing.
    """
    from ppx.rules.loyalty.referrals import cancel_referral_in

    cid, oid = int(customer_id), int(order_id)
    out: list[Posting] = []
    undone: list[int] = []
    rows = s.scalars(
        select(Redemption)
        .where(Redemption.order_id == oid, Redemption.customer_id == cid)
        .order_by(Redemption.id)
    ).all()
    for r in rows:
        was = r.status
        q = _reverse_in(s, r, f"order {oid} {why}", when)
        if q is not None and q.created:
            out.append(q)
        if was == "issued":
            undone.append(r.id)
    cancelled = cancel_referral_in(s, oid, f"first order {oid} {why}", when)
    return out, undone, cancelled


def redemptions_of(ledger: Ledger, customer_id: int, limit: int = 50) -> list[dict]:
    """The customer's vouchers, newest first."""
    with Session(ensure_tables(ledger).engine) as s:
        rows = s.scalars(
            select(Redemption)
            .where(Redemption.customer_id == int(customer_id))
            .order_by(Redemption.id.desc())
            .limit(limit)
        ).all()
        return [_result(r, False).to_dict() for r in rows]
