"""Rewards redemption and points expiry: exact under concurrency on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ppx.rules.ledger import Ledger, LedgerEntry, LedgerError
from ppx.rules.loyalty import loyalty_summary
from ppx.rules.loyalty.expiry import add_months, expire_due, expire_points
from ppx.rules.loyalty.redemption import redeem_reward, refund_order, use_voucher
from ppx.rules.loyalty.tables import Redemption

T0 = datetime(2026, 1, 10, 12, 0)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        lg = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    else:
        lg = Ledger(request.getfixturevalue("postgres_url"), pool_size=16)
    yield lg
    lg.dispose()


@pytest.fixture()
def cid():
    """A customer id no other test (or earlier run against the shared server) used."""
    return 10_000_000 + uuid.uuid4().int % 1_000_000_000


def _entries(ledger: Ledger, customer_id: int, entry_type: str) -> list[int]:
    with Session(ledger.engine) as s:
        return list(
            s.scalars(
                select(LedgerEntry.points).where(
                    LedgerEntry.customer_id == customer_id, LedgerEntry.entry_type == entry_type
                )
            )
        )


def test_concurrent_redemptions_spend_exactly_the_balance(ledger, policy, cid):
    ledger.award(cid, 2_750, f"earn:{cid}", order_id=1, at=T0)  # 5 x 500 + 250
    keys = [f"r:{cid}:{i}" for i in range(20)] * 2  # every request sent twice

    def call(key):
        try:
            return redeem_reward(ledger, policy, cid, "eur5_off", key, at=T0 + timedelta(days=1))
        except LedgerError as err:
            return err

    with ThreadPoolExecutor(max_workers=16) as pool:
        out = list(pool.map(call, keys))
    issued = [r for r in out if not isinstance(r, LedgerError)]
    refused = [r for r in out if isinstance(r, LedgerError)]
    assert ledger.balance(cid) == 250
    assert sum(r.created for r in issued) == 5
    assert all("costs 500" in str(e) for e in refused)
    # A repeated key got the very voucher its first request created.
    by_key: dict[str, set[str]] = {}
    for r in issued:
        by_key.setdefault(r.idempotency_key, set()).add(r.voucher_code)
    assert len(by_key) == 5 and all(len(v) == 1 for v in by_key.values())
    assert _entries(ledger, cid, "redeem") == [-500] * 5
    with Session(ledger.engine) as s:
        n = s.scalar(select(func.count()).where(Redemption.customer_id == cid))
    assert n == 5


def test_lapsed_points_expire_once_and_cannot_be_spent_under_concurrency(ledger, policy, cid):
    ledger.award(cid, 700, f"earn:{cid}", order_id=3, at=T0)
    due = add_months(T0, policy.points.expiry.inactivity_months)
    now = due + timedelta(days=1)
    before = loyalty_summary(ledger, policy, cid, now=due - timedelta(days=5))
    assert before.expiring_points == 700 and before.expires_on == due.date()
    assert before.expiry_soon

    def call(i):
        if i % 2:
            return expire_points(ledger, policy, cid, now)
        try:
            return redeem_reward(ledger, policy, cid, "free_shipping", f"x:{cid}:{i}", at=now)
        except LedgerError as err:
            return err

    with ThreadPoolExecutor(max_workers=16) as pool:
        out = list(pool.map(call, range(32)))
    assert _entries(ledger, cid, "expiry") == [-700]
    assert _entries(ledger, cid, "redeem") == []
    assert ledger.balance(cid) == 0
    assert sum(isinstance(r, LedgerError) for r in out) == 16
    assert loyalty_summary(ledger, policy, cid, now=now).balance == 0


def test_activity_renews_expiry_and_the_sweep_is_exact(ledger, policy, cid):
    months = policy.points.expiry.inactivity_months
    idle, active = cid, cid + 1
    ledger.award(idle, 400, f"earn:{idle}", order_id=4, at=T0)
    ledger.award(active, 400, f"earn:{active}", order_id=5, at=T0)
    redeem_reward(ledger, policy, active, "free_shipping", f"fs:{active}", at=T0 + timedelta(60))
    now = add_months(T0, months) + timedelta(days=1)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: expire_due(ledger, policy, now, [idle, active]), range(8)))
    assert _entries(ledger, idle, "expiry") == [-400]
    assert _entries(ledger, active, "expiry") == []  # the redemption was activity
    assert ledger.balance(active) == 100
    s = loyalty_summary(ledger, policy, active, now=now)
    assert s.expires_on == add_months(T0 + timedelta(60), months).date()


def test_refund_returns_redeemed_points_and_takes_back_earned_ones(ledger, policy, cid):
    ledger.award(cid, 900, f"earn:{cid}:1", order_id=11, at=T0)
    v = redeem_reward(ledger, policy, cid, "eur5_off", f"v:{cid}", at=T0 + timedelta(1))
    use_voucher(ledger, v.voucher_code, 12, at=T0 + timedelta(2))
    with pytest.raises(LedgerError, match="spent on order 12"):
        use_voucher(ledger, v.voucher_code, 13)
    ledger.award(cid, 60, f"earn:{cid}:12", order_id=12, at=T0 + timedelta(5))
    assert ledger.balance(cid) == 900 - 500 + 60
    out = refund_order(ledger, cid, 12, f"refund-12:{cid}", at=T0 + timedelta(9))
    assert out.reversed_redemptions == [v.redemption_id]
    assert sorted(p.points for p in out.postings) == [-60, 500]
    assert out.balance == ledger.balance(cid) == 900
    again = refund_order(ledger, cid, 12, f"refund-12:{cid}", at=T0 + timedelta(10))
    assert again.balance == 900 and again.reversed_redemptions == []
    with pytest.raises(LedgerError, match="was reversed"):
        use_voucher(ledger, v.voucher_code, 14)


def test_redemption_refusals_name_the_reason(tmp_path, policy):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    ledger.award(5, 2_000, "e5", at=T0)
    with pytest.raises(LedgerError, match="unknown reward_id 'nope'"):
        redeem_reward(ledger, policy, 5, "nope", "k1", at=T0)
    with pytest.raises(LedgerError, match="needs tier silver; customer 5 is bronze"):
        redeem_reward(ledger, policy, 5, "pct15_off", "k2", at=T0)
    redeem_reward(ledger, policy, 5, "pct15_off", "k3", tier="silver", at=T0)
    with pytest.raises(LedgerError, match="already used for customer 5, reward 'pct15_off'"):
        redeem_reward(ledger, policy, 5, "free_shipping", "k3", at=T0)
    s = loyalty_summary(ledger, policy, 5, now=T0)
    assert (s.balance, s.next_reward_id, s.points_to_next_reward) == (500, "eur12_off", 500)


def test_refund_event_through_the_engine_returns_voucher_points(tmp_path, policy, customer):
    import asyncio

    from ppx.rules.engine import DecisionEngine, OrderEventRequest
    from ppx.rules.types import OrderEvent

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    ledger.award(42, 900, "earn:42:1", order_id=1, at=T0)
    v = redeem_reward(ledger, policy, 42, "eur5_off", "checkout-12", order_id=12, at=T0)
    ledger.award(42, 75, "earn:42:12", order_id=12, at=T0 + timedelta(days=3))
    eng = DecisionEngine(policy, None, ledger)

    def refund(amount: float, refund_id: int):
        ev = OrderEvent(
            event_type="refunded",
            order_id=12,
            customer_id=42,
            occurred_at=T0 + timedelta(days=9),
            order_value=60,
            refund_amount=amount,
            refund_id=refund_id,
        )
        req = OrderEventRequest(event=ev, customer=customer(tier="silver"))
        return asyncio.run(eng.order_event(req))

    partial = refund(20, 1)  # a partial refund keeps the voucher spent
    assert partial.balance == 900 - 500 + 75 - 25
    full = refund(60, 2)
    assert full.balance == ledger.balance(42) == 900
    assert any(f"vouchers [{v.redemption_id}]" in r for r in full.decision.reasons)
    assert refund(60, 2).balance == 900  # a replayed refund changes nothing


def test_summary_from_figures_equals_the_ledger_summary(ledger, policy, cid):
    from ppx.rules.loyalty.expiry import last_activity
    from ppx.rules.loyalty.summary import summarize

    ledger.award(cid, 700, f"earn:{cid}", order_id=21, at=T0)
    redeem_reward(ledger, policy, cid, "eur5_off", f"v:{cid}", at=T0 + timedelta(40))
    ledger.award(cid, 80, f"earn:{cid}:2", order_id=22, at=T0 + timedelta(50))
    ledger.reverse_order(cid, 22, 80, f"rev:{cid}:22", reason="refund", at=T0 + timedelta(70))
    due = add_months(T0 + timedelta(50), policy.points.expiry.inactivity_months)
    days = policy.points.expiry.reminder_days
    for now in (T0 + timedelta(60), due - timedelta(days=days), due - timedelta(1), due):
        with Session(ledger.engine) as s:
            last = last_activity(s, cid)
        got = summarize(policy, cid, ledger.balance(cid), last, "bronze", now)
        assert got == loyalty_summary(ledger, policy, cid, now=now, tier="bronze"), now
    assert last == T0 + timedelta(50)  # the reversal is not activity
    inside = summarize(policy, cid, 200, last, "bronze", due - timedelta(days=days))
    assert inside.expiry_soon and inside.expiring_points == 200
    assert summarize(policy, cid, 200, last, "bronze", due).expiring_points == 0  # lapsed
