"""Referral codes and links, attribution on the first order, and payout after returns close.

* Every customer gets one code from ``secrets.token_urlsafe`` (``referral.code_bytes``
  random bytes: unguessable, so codes cannot be enumerated) and a link
  ``referral.base_url?ref=CODE``.
* A referred customer's first order is attributed to the code's owner, or refused with
  the reason: the code is the customer's own (self-referral); the two accounts are
  joined in the fraud linkage graph (shared device, payment fingerprint, address, e-mail
  or phone, directly or through other accounts: a ring); the referrer was themselves
  referred, directly or up the chain, by this customer (a referral cycle); or the order
  is not the customer's first.
* Both sides are paid only ``settle_after_days`` (default: the return window) after the
  first order's delivery, and never when that order was refunded; the award keys are
  those of the ``referral`` order event, so neither path can pay twice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd
from scipy.sparse.csgraph import breadth_first_order
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ppx.data import columns as C
from ppx.features.fraud.linkage import LinkageGraph
from ppx.features.identity import hash_identities
from ppx.rules.ledger import Ledger, LedgerEntry, LedgerError, _add_entry, _now, _prior
from ppx.rules.loyalty.redemption import locked_tx
from ppx.rules.loyalty.store import ensure_tables
from ppx.rules.loyalty.tables import Referral, ReferralCode
from ppx.rules.policy import Policy

#: How an identifier kind reads in a refusal reason.
KIND_WORDS = {
    C.DEVICE_ID: "device",
    C.PAYMENT_FINGERPRINT: "payment fingerprint",
    C.ADDRESS: "address",
    C.EMAIL: "e-mail",
    C.PHONE: "phone",
}


# --- codes and links -----------------------------------------------------------------------


def referral_url(policy: Policy, code: str) -> str:
    """``base_url`` with ``ref=CODE`` added to its query (existing parameters kept)."""
    parts = urlsplit(policy.referral.base_url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("ref", code)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def existing_referral_code(ledger: Ledger, policy: Policy, customer_id: int) -> dict | None:
    """The customer's code and link when one was created, else None (a read only)."""
    cid = int(customer_id)
    with Session(ledger.engine) as s:
        row = s.get(ReferralCode, cid)
    if row is None:
        return None
    return {"customer_id": cid, "code": row.code, "url": referral_url(policy, row.code)}


def referral_code(ledger: Ledger, policy: Policy, customer_id: int) -> dict:
    """The customer's code and link, created on first request (the same ever after)."""
    cid = int(customer_id)
    if cid < 1:
        raise LedgerError(f"customer_id must be a positive integer, got {customer_id!r}")
    ensure_tables(ledger)
    for _ in range(5):
        found = existing_referral_code(ledger, policy, cid)
        if found is not None:
            return found
        try:
            code = secrets.token_urlsafe(policy.referral.code_bytes)

            def insert(s: Session, code=code) -> None:
                s.add(ReferralCode(customer_id=cid, code=code, created_at=_now()))
                s.flush()

            locked_tx(ledger, [cid], insert)
        except IntegrityError:
            # Another request created this customer's code first (or, astronomically
            # rarely, the random code collided): read again.
            continue
    raise LedgerError(f"could not create a referral code for customer {cid}")


def code_owner(s: Session, code: str) -> int | None:
    return s.scalar(select(ReferralCode.customer_id).where(ReferralCode.code == code))


# --- the linkage check ----------------------------------------------------------------------


def linkage_graph_from_store(path: str | Path) -> LinkageGraph:
    """The account-linkage graph of a world's or store's customers table (hashed first)."""
    from ppx.data.io import load_tables

    customers = load_tables(path)["customers"]
    return LinkageGraph.build(hash_identities(customers))


def with_accounts(graph: LinkageGraph, accounts: pd.DataFrame) -> LinkageGraph:
    """The graph plus accounts it does not hold yet (raw identifiers, hashed here)."""
    new = accounts[graph.nodes(accounts[C.CUSTOMER_ID].to_numpy()) < 0]
    if new.empty:
        return graph
    if C.SIGNUP_AT not in new.columns:
        new = new.assign(**{C.SIGNUP_AT: pd.Timestamp.now()})
    return graph.extend(hash_identities(new))


def linkage_reason(graph: LinkageGraph, a: int, b: int) -> str | None:
    """Why accounts ``a`` and ``b`` are linked (None: they are not).

    Direct links name the shared identifiers; indirect ones name the accounts in
    between and the identifiers of each hop (a ring shares different identifiers with
    different members).
    """
    ia, ib = graph.nodes(np.array([a, b]))
    if ia < 0 or ib < 0:
        return None
    shared = [KIND_WORDS[k] for k, m in graph.by_kind.items() if m[ia, ib]]
    if shared:
        return f"accounts {a} and {b} share a {', '.join(shared)}"
    if graph.static_component[ia] != graph.static_component[ib]:
        return None
    _, pred = breadth_first_order(graph.adjacency, ia, directed=False)
    path = [ib]
    while path[-1] != ia:
        path.append(pred[path[-1]])
    path.reverse()
    hops = []
    for u, v in zip(path, path[1:], strict=False):
        kinds = [KIND_WORDS[k] for k, m in graph.by_kind.items() if m[u, v]]
        hops.append(f"{graph.customer_ids[u]}-{graph.customer_ids[v]} ({', '.join(kinds)})")
    return f"accounts {a} and {b} are linked through other accounts: " + "; ".join(hops)


# --- attribution ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferralResult:
    referee_id: int
    referrer_id: int
    code: str
    first_order_id: int
    status: str
    reason: str
    ordered_at: datetime
    delivered_at: datetime | None
    pay_after: datetime | None
    settled_at: datetime | None
    created: bool

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        for k, v in out.items():
            if isinstance(v, datetime):
                out[k] = v.isoformat()
        return out


def _result(r: Referral, policy: Policy, created: bool) -> ReferralResult:
    pay_after = (
        r.delivered_at + timedelta(days=policy.referral_settle_days)
        if r.delivered_at is not None and r.status == "pending"
        else None
    )
    return ReferralResult(
        referee_id=r.referee_id,
        referrer_id=r.referrer_id,
        code=r.code,
        first_order_id=r.first_order_id,
        status=r.status,
        reason=r.reason,
        ordered_at=r.ordered_at,
        delivered_at=r.delivered_at,
        pay_after=pay_after,
        settled_at=r.settled_at,
        created=created,
    )


def _referral_cycle(s: Session, referrer: int, referee: int) -> list[int] | None:
    """The chain referee -> ... -> referrer when the referrer was referred (up the chain)
    by the referee: attributing would close a cycle of accounts referring each other."""
    chain, cur, seen = [referrer], referrer, {referrer}
    while True:
        up = s.scalar(
            select(Referral.referrer_id).where(
                Referral.referee_id == cur, Referral.status.in_(("pending", "paid"))
            )
        )
        if up is None or up in seen:
            return None
        chain.append(up)
        if up == referee:
            return list(reversed(chain))
        seen.add(up)
        cur = up


def _other_orders(s: Session, customer_id: int, order_id: int) -> list[int]:
    rows = s.scalars(
        select(LedgerEntry.order_id)
        .where(
            LedgerEntry.customer_id == customer_id,
            LedgerEntry.entry_type == "earn",
            LedgerEntry.order_id.is_not(None),
            LedgerEntry.order_id != order_id,
        )
        .distinct()
        .limit(3)
    ).all()
    return [int(r) for r in rows]


def attribute_referral(
    ledger: Ledger,
    policy: Policy,
    referee_id: int,
    code: str,
    first_order_id: int,
    ordered_at: datetime,
    *,
    graph: LinkageGraph | None = None,
    delivered_at: datetime | None = None,
    at: datetime | None = None,
) -> ReferralResult:
    """Attribute a referred customer's first order to the code's owner, or refuse it.

    ``delivered_at`` starts the payout clock when the order is already delivered
    (otherwise :func:`record_delivery` does, later).

    A refusal is stored too (status ``refused`` with the reason), so a retried or
    repeated attribution returns the same answer. Without a linkage graph only the
    self-referral, cycle and first-order checks run, and the reason says so.

    Raises:
        LedgerError: the code does not exist.
    """
    ensure_tables(ledger)
    referee, oid = int(referee_id), int(first_order_id)
    if referee < 1:
        raise LedgerError(f"referee_id must be a positive integer, got {referee_id!r}")
    with Session(ledger.engine) as s:
        referrer = code_owner(s, code)
    if referrer is None:
        raise LedgerError(f"code {code!r} is not a referral code")
    when = at or _now()
    link = None
    if referrer != referee and graph is not None and policy.referral.refuse_linked:
        link = linkage_reason(graph, referrer, referee)

    def work(s: Session) -> ReferralResult:
        prior = s.get(Referral, referee)
        if prior is not None:
            return _result(prior, policy, False)
        refusal = None
        if referrer == referee:
            refusal = f"self-referral: code {code!r} belongs to customer {referee} themselves"
        elif link is not None:
            refusal = f"linked accounts (fraud linkage graph): {link}"
        else:
            cycle = _referral_cycle(s, referrer, referee)
            if cycle is not None:
                refusal = "referral ring: " + " -> ".join(map(str, cycle)) + f" -> {referee}"
            else:
                others = _other_orders(s, referee, oid)
                if others:
                    refusal = f"order {oid} is not customer {referee}'s first (earlier: {others})"
        if refusal is None:
            checks = "linkage, cycle and first-order checks passed"
            if graph is None or not policy.referral.refuse_linked:
                checks = "cycle and first-order checks passed; no linkage graph was consulted"
            reason = (
                f"first order {oid} attributed to customer {referrer}; both sides are paid "
                f"{policy.referral_settle_days} days after delivery unless refunded ({checks})"
            )
        row = Referral(
            referee_id=referee,
            referrer_id=referrer,
            code=code,
            first_order_id=oid,
            ordered_at=ordered_at,
            delivered_at=None if refusal else delivered_at,
            status="refused" if refusal else "pending",
            reason=(refusal or reason)[:500],
            settled_at=None,
            created_at=when,
        )
        s.add(row)
        s.flush()
        return _result(row, policy, True)

    return locked_tx(ledger, [referee, referrer], work)


def record_delivery(
    ledger: Ledger, policy: Policy, order_id: int, delivered_at: datetime
) -> ReferralResult | None:
    """Start the payout clock of the referral whose first order was delivered (if any)."""
    with Session(ensure_tables(ledger).engine) as s, s.begin():
        r = s.scalars(select(Referral).where(Referral.first_order_id == int(order_id))).first()
        if r is None:
            return None
        if r.status == "pending" and r.delivered_at is None:
            r.delivered_at = delivered_at
        return _result(r, policy, False)


def cancel_referral_in(s: Session, order_id: int, reason: str, at: datetime) -> int | None:
    """Cancel the pending referral whose first order this is, inside the caller's transaction."""
    r = s.scalars(
        select(Referral).where(
            Referral.first_order_id == int(order_id), Referral.status == "pending"
        )
    ).first()
    if r is None:
        return None
    r.status = "cancelled"
    r.reason = f"{reason}; no referral reward is paid"[:500]
    r.settled_at = at
    return r.referee_id


def settle_referrals(
    ledger: Ledger, policy: Policy, now: datetime | None = None
) -> list[ReferralResult]:
    """Pay every pending referral whose first order was delivered ``settle_days`` ago.

    Each is settled in its own transaction under both customers' locks: a referral is
    cancelled instead when points of its first order were reversed (a refund) and the
    cancellation was not recorded yet.
    """
    now = now or _now()
    days = policy.referral_settle_days
    with Session(ensure_tables(ledger).engine) as s:
        due = s.scalars(
            select(Referral.referee_id).where(
                Referral.status == "pending",
                Referral.delivered_at.is_not(None),
                Referral.delivered_at <= now - timedelta(days=days),
            )
        ).all()
    out = []
    r_pts, e_pts = policy.referral.referrer_points, policy.referral.referee_points
    for referee in due:
        with Session(ledger.engine) as s:
            referrer = s.get(Referral, referee).referrer_id

        def work(s: Session, referee=referee) -> ReferralResult:
            r = s.get(Referral, referee)
            if r.status != "pending":
                return _result(r, policy, False)
            refunded = s.scalar(
                select(LedgerEntry.id).where(
                    LedgerEntry.order_id == r.first_order_id,
                    LedgerEntry.entry_type == "reversal",
                )
            )
            if refunded is not None:
                r.status, r.settled_at = "cancelled", now
                r.reason = f"first order {r.first_order_id} was refunded; no referral reward"
                return _result(r, policy, True)
            oid = r.first_order_id
            if _prior(s, f"referral:{referee}") is None and r_pts > 0:
                _add_entry(
                    s,
                    r.referrer_id,
                    r_pts,
                    "referral_bonus",
                    f"referral:{referee}",
                    oid,
                    f"referred customer {referee}: first order {oid} kept past the return "
                    f"window -> {r_pts} points",
                    now,
                )
            if _prior(s, f"referee:{referee}") is None and e_pts > 0:
                _add_entry(
                    s,
                    referee,
                    e_pts,
                    "referral_bonus",
                    f"referee:{referee}",
                    oid,
                    f"welcome bonus for joining through customer {r.referrer_id}'s referral "
                    f"-> {e_pts} points",
                    now,
                )
            r.status, r.settled_at = "paid", now
            r.reason = (
                f"paid {r_pts} points to customer {r.referrer_id} and {e_pts} to customer "
                f"{referee}: first order {oid} delivered {r.delivered_at.date()} and not "
                f"refunded within {days} days"
            )
            return _result(r, policy, True)

        out.append(locked_tx(ledger, [referee, referrer], work))
    return out


def referrals_of(ledger: Ledger, policy: Policy, customer_id: int) -> dict:
    """The customer's own attribution (as referee) and the referrals they made."""
    cid = int(customer_id)
    with Session(ensure_tables(ledger).engine) as s:
        own = s.get(Referral, cid)
        made = s.scalars(
            select(Referral).where(Referral.referrer_id == cid).order_by(Referral.created_at)
        ).all()
        return {
            "referred_by": None if own is None else _result(own, policy, False).to_dict(),
            "referrals": [_result(r, policy, False).to_dict() for r in made],
        }
