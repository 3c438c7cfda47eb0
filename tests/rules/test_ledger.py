"""The loyalty ledger: idempotent awards under concurrency, derived balances, reversals."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from ppx.rules.ledger import Ledger, LedgerError


def _concurrent_awards(ledger: Ledger, n: int = 1000, dup_share: float = 0.30, seed: int = 3):
    """1,000 award requests from 16 threads, 30 % of them repeats of earlier keys."""
    rng = random.Random(seed)
    n_unique = int(round(n * (1 - dup_share)))
    unique = [(rng.randint(1, 40), rng.randint(1, 500), f"award:{i}") for i in range(n_unique)]
    requests = unique + [rng.choice(unique) for _ in range(n - n_unique)]
    rng.shuffle(requests)
    assert len(requests) == n
    expected: dict[int, int] = {}
    for cid, pts, _ in unique:
        expected[cid] = expected.get(cid, 0) + pts

    def call(req):
        cid, pts, key = req
        return ledger.award(cid, pts, key, "earn", reason="concurrency test")

    with ThreadPoolExecutor(max_workers=16) as pool:
        postings = list(pool.map(call, requests))
    return unique, expected, postings


def _check(ledger: Ledger, unique, expected, postings):
    assert sum(p.created for p in postings) == len(unique), "each key lands exactly once"
    assert ledger.count() == len(unique)
    for cid, want in expected.items():
        assert ledger.balance(cid) == want, f"customer {cid}"
    # Every duplicate got the very entry the first request wrote.
    by_key = {}
    for p in postings:
        by_key.setdefault(p.idempotency_key, set()).add(p.entry_id)
    assert all(len(ids) == 1 for ids in by_key.values())


def test_concurrent_duplicate_awards_sqlite(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    _check(ledger, *_concurrent_awards(ledger))
    _duplicate_decisions(ledger)
    ledger.dispose()


@pytest.mark.postgres
def test_concurrent_duplicate_awards_postgres(postgres_url):
    ledger = Ledger(postgres_url, pool_size=16)
    _check(ledger, *_concurrent_awards(ledger))
    # Concurrent reversals of one order never take back more than it earned.
    ledger.award(7, 100, "earn:order-77", "earn", order_id=77)
    before = ledger.balance(7)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: ledger.reverse_order(7, 77, 30, f"reversal:77:{i % 6}"),
                range(24),
            )
        )
    assert ledger.balance(7) == before - 100
    _duplicate_decisions(ledger)
    ledger.dispose()


def _duplicate_decisions(ledger: Ledger) -> None:
    """The same decisions applied from many threads at once land exactly once."""
    from datetime import date, datetime

    from ppx.rules.decisions import decide_order_event
    from ppx.rules.policy import load_policy
    from ppx.rules.types import CustomerContext, OrderEvent, Scores

    policy = load_policy()
    c = CustomerContext(customer_id=900, tier="silver", spend_12m=450)
    decisions = []
    for oid in range(1, 21):
        ev = OrderEvent(
            event_type="delivered",
            order_id=5000 + oid,
            customer_id=900,
            occurred_at=datetime(2025, 3, 5, 12),
            ordered_at=datetime(2025, 3, 1, 9),
            order_value=80,
            promised_date=date(2025, 3, 2),
            delivered_at=datetime(2025, 3, 5, 12),
        )
        decisions.append(decide_order_event(ev, c, Scores(churn_risk=0.42), policy))
    want = sum(d.points for d in decisions) - sum(
        a.points for d in decisions[1:] for a in d.actions if a.ledger_type == "tier_up_bonus"
    )  # the tier-up gift is keyed by customer and day: paid once
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(ledger.apply, decisions * 4))
    assert ledger.balance(900) == want


def test_reversal_is_capped_and_idempotent(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    ledger.award(1, 120, "earn:10", "earn", order_id=10)
    ledger.award(1, 50, "review:10", "review_bonus", order_id=10)
    p = ledger.reverse_order(1, 10, 80, "reversal:10:a")
    assert p.points == -80 and p.created
    assert ledger.reverse_order(1, 10, 80, "reversal:10:a").created is False  # retry
    assert ledger.balance(1) == 120 + 50 - 80
    # A second refund asks for more than is left: only the remaining 40 go.
    assert ledger.reverse_order(1, 10, 80, "reversal:10:b").points == -40
    assert ledger.reverse_order(1, 10, None, "reversal:10:c") is None  # nothing left
    assert ledger.balance(1) == 50  # the review bonus is not an order earning
    ledger.dispose()


def test_redeem_needs_balance_and_bad_input_is_named(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    ledger.award(2, 300, "k1")
    ledger.redeem(2, 200, "redeem:1")
    with pytest.raises(LedgerError, match="has 100 points"):
        ledger.redeem(2, 200, "redeem:2")
    with pytest.raises(LedgerError, match="points must be positive"):
        ledger.award(2, 0, "k2")
    with pytest.raises(LedgerError, match="customer_id"):
        ledger.award(0, 10, "k3")
    with pytest.raises(LedgerError, match="entry_type"):
        ledger.award(2, 10, "k4", "bonus")
    assert ledger.balance(2) == 100
    ledger.dispose()


def test_refunded_order_points_are_reversed_via_decision(tmp_path, policy, customer):
    from datetime import date, datetime

    from ppx.rules.decisions import decide_order_event
    from ppx.rules.types import OrderEvent, Scores

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    c = customer(tier="bronze", spend_12m=50)
    delivered = OrderEvent(
        event_type="delivered",
        order_id=9,
        customer_id=42,
        occurred_at=datetime(2025, 4, 3, 12),
        ordered_at=datetime(2025, 4, 1, 12),
        order_value=64.5,
        promised_date=date(2025, 4, 4),
        delivered_at=datetime(2025, 4, 3, 12),
    )
    d1 = decide_order_event(delivered, c, Scores(churn_risk=0.1, recommendations=[1]), policy)
    ledger.apply(d1)
    ledger.apply(d1)  # a duplicated webhook
    assert ledger.balance(42) == 64
    refund = delivered.model_copy(
        update={"event_type": "refunded", "refund_amount": 64.5, "refund_id": 1}
    )
    d2 = decide_order_event(refund, c, Scores(), policy)
    assert d2.points == -64
    ledger.apply(d2)
    ledger.apply(d2)
    assert ledger.balance(42) == 0
    ledger.dispose()


def test_balance_reads_a_covering_index_also_on_an_older_ledger(tmp_path):
    """A ledger made before the covering index gets it on open, and the balance query
    then reads the index alone (no table row per entry)."""
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE loyalty_ledger (
            id INTEGER PRIMARY KEY AUTOINCREMENT, customer_id BIGINT NOT NULL,
            points INTEGER NOT NULL, entry_type VARCHAR(32) NOT NULL,
            idempotency_key VARCHAR(200) NOT NULL UNIQUE, order_id BIGINT,
            reason VARCHAR(500) NOT NULL, created_at DATETIME NOT NULL);
        CREATE INDEX ix_loyalty_ledger_customer ON loyalty_ledger (customer_id);
        INSERT INTO loyalty_ledger (customer_id, points, entry_type, idempotency_key,
            order_id, reason, created_at) VALUES (7, 40, 'earn', 'k1', 1, '', '2026-01-01');
        """
    )
    old.commit()
    old.close()

    ledger = Ledger(f"sqlite:///{path}")
    assert ledger.balance(7) == 40  # the old entries count
    ledger.award(7, 2, "k2")
    assert ledger.balance(7) == 42
    with ledger.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT coalesce(sum(points), 0) FROM loyalty_ledger "
            "WHERE customer_id = 7"
        ).fetchall()
    assert any("COVERING INDEX ix_loyalty_ledger_customer_points" in row[-1] for row in plan)
    with ledger.engine.connect() as conn:
        names = {
            r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='index'")
        }
    assert "ix_loyalty_ledger_customer" not in names  # replaced, not kept beside it
    Ledger(f"sqlite:///{path}")  # opening again (or from a second process) is harmless
