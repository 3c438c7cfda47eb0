"""Every customer's loyalty state in two set-based reads: the same balance, last activity
and tier :func:`loyalty_summary` reads one customer at a time, as of a moment, in chunks."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from ppx.data import columns as C
from ppx.rules.ledger import Ledger, _add_entry
from ppx.rules.loyalty import loyalty_summary
from ppx.rules.loyalty.states import points_states, tier_states
from ppx.rules.loyalty.tiers import review_tier

T0 = datetime(2026, 1, 5, 9, 0)


def _fill(lg: Ledger, policy) -> None:
    for i, cid in enumerate(range(11, 16)):
        lg.award(cid, 100 + i, f"earn:{cid}", at=T0 + timedelta(days=i))
    lg.redeem(12, 40, "spend:12")  # written now: after T0's month
    with lg.engine.begin() as conn:  # reversals and expiries are not activity
        _add_entry(conn, 13, -30, "reversal", "rev:13", None, "refund", T0 + timedelta(days=20))
        _add_entry(conn, 14, -103, "expiry", "exp:14", None, "lapsed", T0 + timedelta(days=21))
    review_tier(lg, policy, 11, 300, T0)
    review_tier(lg, policy, 11, 5_000, T0 + timedelta(days=40))  # an upgrade later
    review_tier(lg, policy, 16, 0, T0 + timedelta(days=2))  # a tier, no points


def _all(chunks) -> pd.DataFrame:
    return pd.concat(list(chunks), ignore_index=True).sort_values(C.CUSTOMER_ID)


def test_the_states_are_the_summary_figures_of_every_customer(ledger, policy):
    _fill(ledger, policy)
    later = datetime(2100, 1, 1)
    points = _all(points_states(ledger, later, chunk_rows=2)).set_index(C.CUSTOMER_ID)
    tiers = _all(tier_states(ledger, later, chunk_rows=2)).set_index(C.CUSTOMER_ID)[C.TIER]
    assert list(points.index) == [11, 12, 13, 14, 15]
    assert list(tiers.index) == [11, 16]
    for cid in range(11, 17):
        s = loyalty_summary(ledger, policy, cid, now=later)
        if cid in points.index:
            assert int(points.loc[cid, "balance"]) == ledger.balance(cid)
            got = points.loc[cid, "last_activity_at"]
            assert (None if pd.isna(got) else got.to_pydatetime()) == s.last_activity_at
        if cid in tiers.index:
            assert tiers[cid] == s.tier
    assert points.loc[13, "last_activity_at"] == pd.Timestamp(T0 + timedelta(days=2))
    assert int(points.loc[14, "balance"]) == 0


def test_the_states_are_read_as_of_a_moment(ledger, policy):
    _fill(ledger, policy)
    night = T0 + timedelta(days=3)  # before the redemption, reversal, expiry, upgrade
    points = _all(points_states(ledger, night)).set_index(C.CUSTOMER_ID)
    assert points["balance"].to_dict() == {11: 100, 12: 101, 13: 102}
    tiers = _all(tier_states(ledger, night)).set_index(C.CUSTOMER_ID)[C.TIER].to_dict()
    assert tiers == {11: policy.tier_for_spend(300), 16: policy.tiers[0].name}
    assert list(points_states(ledger, T0)) == []  # nothing before the first entry
