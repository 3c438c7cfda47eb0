"""Referral codes, attribution and payout: rings from a generated world are refused."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from ppx.data import columns as C
from ppx.features.fraud.linkage import LinkageGraph
from ppx.features.identity import hash_identities
from ppx.rules.ledger import Ledger, LedgerError
from ppx.rules.loyalty.redemption import refund_order
from ppx.rules.loyalty.referrals import (
    attribute_referral,
    record_delivery,
    referral_code,
    referrals_of,
    settle_referrals,
)

T0 = datetime(2026, 3, 1, 10, 0)


@pytest.fixture(scope="module")
def world_graph(tiny_world):
    world, _ = tiny_world
    customers = world["customers"]
    truth = world["truth_customers"]
    return customers, truth, LinkageGraph.build(hash_identities(customers))


@pytest.fixture()
def ledger(tmp_path):
    lg = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield lg
    lg.dispose()


def _ring_pair(truth, graph):
    """Two members of one planted ring that share no identifier directly (a leader-less
    pair): refusing them needs the graph's paths, not just a shared field."""
    for _, g in truth[truth[C.RING_ID] >= 0].groupby(C.RING_ID):
        ids = g[C.CUSTOMER_ID].to_numpy()
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                ia, ib = graph.nodes(np.array([a, b]))
                if not graph.adjacency[ia, ib]:
                    return int(a), int(b)
    raise AssertionError("the tiny world has no ring of three or more")


def _honest_pair(truth, graph):
    honest = truth[truth[C.FRAUD_TYPE] == "none"][C.CUSTOMER_ID].to_numpy()
    comp = graph.static_component[graph.nodes(honest)]
    a = next(int(c) for c, k in zip(honest, comp, strict=True) if (comp == k).sum() == 1)
    b = next(int(c) for c, k in zip(honest, comp, strict=True) if (comp == k).sum() == 1 and c != a)
    return a, b


def test_codes_are_unique_stable_and_linked(ledger, policy):
    a = referral_code(ledger, policy, 1)
    assert referral_code(ledger, policy, 1) == a
    codes = {referral_code(ledger, policy, c)["code"] for c in range(1, 200)}
    assert len(codes) == 199
    assert len(a["code"]) >= 12
    assert a["url"] == f"{policy.referral.base_url}?ref={a['code']}"


def test_ring_from_the_world_is_refused_with_its_reason(ledger, policy, world_graph):
    _, truth, graph = world_graph
    referrer, referee = _ring_pair(truth, graph)
    code = referral_code(ledger, policy, referrer)["code"]
    r = attribute_referral(ledger, policy, referee, code, 900, T0, graph=graph)
    assert r.status == "refused"
    assert "linked accounts (fraud linkage graph)" in r.reason
    assert f"accounts {referrer} and {referee} are linked through other accounts" in r.reason
    # The reason names the identifiers of each hop.
    assert any(w in r.reason for w in ("device", "payment fingerprint", "address", "e-mail"))
    # Nothing is paid, however long we wait.
    record_delivery(ledger, policy, 900, T0 + timedelta(days=3))
    assert settle_referrals(ledger, policy, T0 + timedelta(days=400)) == []
    assert ledger.balance(referrer) == 0 and ledger.balance(referee) == 0


def test_direct_links_and_self_referral_are_refused(ledger, policy, world_graph):
    _, truth, graph = world_graph
    ring = truth[truth[C.RING_ID] >= 0]
    for _, g in ring.groupby(C.RING_ID):
        ids = g[C.CUSTOMER_ID].to_numpy()
        if len(ids) >= 2:
            break
    leader_link = [
        (int(a), int(b))
        for a in ids
        for b in ids
        if a != b and graph.adjacency[tuple(graph.nodes(np.array([a, b])))]
    ][0]
    a, b = leader_link
    code = referral_code(ledger, policy, a)["code"]
    r = attribute_referral(ledger, policy, b, code, 901, T0, graph=graph)
    assert r.status == "refused" and f"accounts {a} and {b} share a " in r.reason
    own = attribute_referral(ledger, policy, a, code, 902, T0, graph=graph)
    assert own.status == "refused" and own.reason.startswith("self-referral")
    with pytest.raises(LedgerError, match="is not a referral code"):
        attribute_referral(ledger, policy, 77, "guessed-code", 903, T0, graph=graph)


def test_honest_referral_is_paid_only_after_the_return_window(ledger, policy, world_graph):
    _, truth, graph = world_graph
    referrer, referee = _honest_pair(truth, graph)
    code = referral_code(ledger, policy, referrer)["code"]
    r = attribute_referral(ledger, policy, referee, code, 910, T0, graph=graph)
    assert r.status == "pending", r.reason
    assert attribute_referral(ledger, policy, referee, code, 910, T0, graph=graph).created is False
    delivered = T0 + timedelta(days=4)
    record_delivery(ledger, policy, 910, delivered)
    window = policy.returns.window_days
    assert settle_referrals(ledger, policy, delivered + timedelta(days=window - 1)) == []
    assert ledger.balance(referrer) == 0
    paid = settle_referrals(ledger, policy, delivered + timedelta(days=window))
    assert [p.status for p in paid] == ["paid"]
    assert ledger.balance(referrer) == policy.referral.referrer_points
    assert ledger.balance(referee) == policy.referral.referee_points
    # Settling again pays nothing more.
    settle_referrals(ledger, policy, delivered + timedelta(days=window + 5))
    assert ledger.balance(referrer) == policy.referral.referrer_points
    assert referrals_of(ledger, policy, referrer)["referrals"][0]["status"] == "paid"


def test_refunded_first_order_pays_nobody(ledger, policy):
    code = referral_code(ledger, policy, 501)["code"]
    r = attribute_referral(ledger, policy, 502, code, 920, T0)
    assert r.status == "pending" and "no linkage graph was consulted" in r.reason
    record_delivery(ledger, policy, 920, T0 + timedelta(days=2))
    ledger.award(502, 40, "earn:920", order_id=920, at=T0 + timedelta(days=2))
    out = refund_order(ledger, 502, 920, "refund-920", at=T0 + timedelta(days=10))
    assert out.cancelled_referral == 502 and out.balance == 0
    assert settle_referrals(ledger, policy, T0 + timedelta(days=90)) == []
    assert ledger.balance(501) == 0
    assert referrals_of(ledger, policy, 502)["referred_by"]["status"] == "cancelled"


def test_attribution_after_delivery_starts_the_clock(ledger, policy):
    code = referral_code(ledger, policy, 701)["code"]
    delivered = T0 + timedelta(days=3)
    r = attribute_referral(ledger, policy, 702, code, 930, T0, delivered_at=delivered)
    assert r.pay_after == delivered + timedelta(days=policy.returns.window_days)
    assert [p.status for p in settle_referrals(ledger, policy, r.pay_after)] == ["paid"]


def test_referral_cycle_is_refused(ledger, policy):
    c1 = referral_code(ledger, policy, 601)["code"]
    c2 = referral_code(ledger, policy, 602)["code"]
    c3 = referral_code(ledger, policy, 603)["code"]
    assert attribute_referral(ledger, policy, 602, c1, 1, T0).status == "pending"
    assert attribute_referral(ledger, policy, 603, c2, 2, T0).status == "pending"
    r = attribute_referral(ledger, policy, 601, c3, 3, T0)
    assert r.status == "refused" and r.reason == "referral ring: 601 -> 602 -> 603 -> 601"


@pytest.mark.postgres
def test_referrals_on_postgres_concurrently(postgres_url, policy):
    """Codes, attribution and settlement on PostgreSQL, with racing duplicate requests."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    lg = Ledger(postgres_url, pool_size=8)
    base = 30_000_000 + uuid.uuid4().int % 1_000_000_000
    a, b = base, base + 1
    with ThreadPoolExecutor(8) as pool:
        codes = set(pool.map(lambda _: referral_code(lg, policy, a)["code"], range(16)))
    assert len(codes) == 1
    (code,) = codes
    delivered = T0 + timedelta(days=1)
    with ThreadPoolExecutor(8) as pool:
        out = list(
            pool.map(
                lambda _: attribute_referral(lg, policy, b, code, base, T0, delivered_at=delivered),
                range(8),
            )
        )
    assert sum(r.created for r in out) == 1 and {r.status for r in out} == {"pending"}
    due = delivered + timedelta(days=policy.referral_settle_days)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: settle_referrals(lg, policy, due), range(4)))
    assert lg.balance(a) == policy.referral.referrer_points
    assert lg.balance(b) == policy.referral.referee_points
    lg.dispose()
