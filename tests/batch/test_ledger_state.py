"""The nightly decisions on the ledger's loyalty state: what the ledger knows about a
customer (points earned or spent since the store's export, a stored tier) changes that
customer's decision; a customer it does not know keeps the store's figures.

No models here: the decisions run on a bucket's tables with empty scores, the ledger
state staged and read back through the files both engines use. The end-to-end night
with ``ledger_url`` is in ``test_nightly.py`` (slow).
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from ppx.batch.ledger_state import read_ledger_state, stage_ledger_state
from ppx.data import columns as C
from ppx.rules.ledger import Ledger, _add_entry
from ppx.rules.loyalty.expiry import add_months
from ppx.rules.policy import load_policy


def _ledger(tmp_path) -> tuple[str, Ledger]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    return url, Ledger(url)


def _state(url: str, tmp_path, customer_ids, now, n_buckets: int = 3):
    """The ledger's state as of ``now``, staged per bucket and read back as the bucket of
    the customers' first id reads it (every id given must share that bucket)."""
    staging = tmp_path / "staging"
    stage_ledger_state(url, staging, n_buckets, pd.Timestamp(now))
    buckets = {int(c) % n_buckets for c in customer_ids}
    assert len(buckets) == 1, "the test's customers must share a bucket"
    return read_ledger_state(staging, buckets.pop())


def _night(world, policy, now, customers, ledger_state=None) -> dict[str, pd.DataFrame]:
    from ppx.batch.nightly import decisions

    churn = pd.DataFrame({C.CUSTOMER_ID: pd.Series([], dtype="int64"), "p_churn_90": []})
    recs = pd.DataFrame({C.CUSTOMER_ID: pd.Series([], dtype="int64"), "product_ids": []})
    return decisions(
        policy,
        world.tables,
        np.asarray(customers),
        churn,
        recs,
        pd.Timestamp(now),
        "k",
        ledger_state,
    )


def _decision(out, cid) -> dict:
    d = out["decisions"].set_index(C.CUSTOMER_ID)
    return d.loc[cid].to_dict()


def test_the_ledger_state_is_read_as_of_the_night_by_bucket(tmp_path):
    url, lg = _ledger(tmp_path)
    now = datetime(2025, 6, 1)
    lg.award(4, 100, "a", at=datetime(2025, 1, 10))
    lg.award(4, 30, "b", at=datetime(2025, 3, 5))
    with lg.engine.begin() as conn:  # a reversal is not activity: the date stays 5 March
        _add_entry(conn, 4, -20, "reversal", "r", None, "refund", datetime(2025, 4, 1))
    lg.award(4, 999, "late", at=now)  # written at the night itself: not before it
    lg.award(7, 50, "c", at=datetime(2025, 5, 1))
    lg.award(5, 10, "other-bucket", at=datetime(2025, 5, 1))
    from ppx.rules.loyalty.tiers import review_tier

    policy = load_policy()
    review_tier(lg, policy, 4, 10_000.0, datetime(2025, 2, 1))  # enters the top tier
    review_tier(lg, policy, 7, 10_000.0, datetime(2025, 7, 1))  # after the night
    lg.dispose()

    state = _state(url, tmp_path, [4, 7], now)
    points = state.points.set_index(C.CUSTOMER_ID)
    assert points[["balance"]].to_dict()["balance"] == {4: 110, 7: 50}
    assert points.loc[4, "last_activity_at"] == pd.Timestamp("2025-03-05")
    assert state.tiers.set_index(C.CUSTOMER_ID)[C.TIER].to_dict() == {4: policy.tiers[-1].name}
    # customer 5 lives in another bucket, with its own file
    other = read_ledger_state(tmp_path / "staging", 2)
    assert other.points[C.CUSTOMER_ID].tolist() == [5] and other.tiers.empty


def _reminder_case(world, policy):
    """A customer of the tiny world holding points on their reminder day (by the store)."""
    from ppx.batch.nightly import last_activity

    ev = world.tables[C.LOYALTY_EVENTS]
    last = last_activity(ev, ev[C.EVENT_AT].max() + pd.Timedelta(days=1))
    exp = policy.points.expiry
    for cid, at in sorted(last.items()):
        day = pd.Timestamp(add_months(at, exp.inactivity_months).date())
        remind = day - pd.Timedelta(days=exp.reminder_days)
        balance = int(
            ev.loc[(ev[C.CUSTOMER_ID] == cid) & (ev[C.EVENT_AT] < remind), C.POINTS].sum()
        )
        if balance > 0:
            return cid, remind, balance
    pytest.skip("no customer of the tiny world holds points at a reminder day")


def _same_bucket_customer(world, cid, now, n_buckets=3):
    """Another customer signed up before ``now`` in ``cid``'s bucket."""
    cust = world.tables[C.CUSTOMERS]
    ids = cust.loc[cust[C.SIGNUP_AT] < now, C.CUSTOMER_ID].to_numpy(dtype=np.int64)
    ids = ids[(ids % n_buckets == cid % n_buckets) & (ids != cid)]
    return int(ids[0])


def test_points_earned_after_the_export_move_the_expiry_reminder(tiny_world, tmp_path):
    world, _ = tiny_world
    policy = load_policy()
    exp = policy.points.expiry
    cid, night, balance = _reminder_case(world, policy)
    other = _same_bucket_customer(world, cid, night)
    store_only = _night(world, policy, night, [cid, other])
    box = store_only["outbox"].set_index([C.CUSTOMER_ID, "message_type"])
    assert (cid, "points_expiring") in box.index, store_only["decisions"]["reasons"].tolist()

    # the ledger: cid earned 40 points three days ago (after the export), which renews
    # the expiry; `other` earned 120 points exactly so long ago that they lapse in
    # reminder_days; a customer the ledger does not know is not in it at all
    url, lg = _ledger(tmp_path)
    lg.award(cid, 40, "since-export", at=(night - pd.Timedelta(days=3)).to_pydatetime())
    earned = add_months(
        (night + pd.Timedelta(days=exp.reminder_days)).to_pydatetime(), -exp.inactivity_months
    )
    lg.award(other, 120, "a-year-ago", at=earned)
    lg.dispose()
    live = _night(world, policy, night, [cid, other], _state(url, tmp_path, [cid, other], night))

    mine = _decision(live, cid)
    assert "points_expiring" not in mine["messages"].split(",")
    assert "points expire on" not in mine["reasons"], mine["reasons"]
    box = live["outbox"].set_index([C.CUSTOMER_ID, "message_type"])
    assert (other, "points_expiring") in box.index, _decision(live, other)["reasons"]
    content = json.loads(box.loc[(other, "points_expiring"), "content"])
    assert content["points"] == 120 and content["days_left"] == exp.reminder_days
    assert (other, "points_expiring") not in store_only["outbox"].set_index(
        [C.CUSTOMER_ID, "message_type"]
    ).index
    # without the ledger the store decides, as before
    assert f"{balance} points expire on" in _decision(store_only, cid)["reasons"]


def test_a_customer_the_ledger_does_not_know_keeps_the_store_state(tiny_world, tmp_path):
    world, _ = tiny_world
    policy = load_policy()
    cid, night, _ = _reminder_case(world, policy)
    other = _same_bucket_customer(world, cid, night)
    url, lg = _ledger(tmp_path)
    lg.award(other, 5, "someone-else", at=(night - pd.Timedelta(days=1)).to_pydatetime())
    lg.dispose()
    store_only = _night(world, policy, night, [cid])
    live = _night(world, policy, night, [cid], _state(url, tmp_path, [cid, other], night))
    for name in ("decisions", "ledger", "outbox", "gifts", "tiers"):
        pd.testing.assert_frame_equal(store_only[name], live[name])
    assert "points_expiring" in _decision(live, cid)["messages"].split(",")


def test_a_stored_tier_decides_the_birthday_gift(tiny_world, tmp_path):
    from ppx.rules.loyalty.tiers import review_tier

    world, _ = tiny_world
    policy = load_policy()
    needed = policy.birthday.min_tier
    assert needed is not None and policy.tier_rank(needed) > 0
    ctx_tiers = world.tables[C.LOYALTY_EVENTS]
    upgraded = set(ctx_tiers.loc[ctx_tiers[C.EVENT_TYPE] == "tier_change", C.CUSTOMER_ID])
    cust = world.tables[C.CUSTOMERS].dropna(subset=[C.BIRTH_DATE])
    cust = cust.loc[~cust[C.CUSTOMER_ID].isin(upgraded)]  # the store's entry tier
    end = world.tables[C.ORDERS][C.ORDERED_AT].max()
    for row in cust.itertuples():
        born = pd.Timestamp(getattr(row, C.BIRTH_DATE))
        night = pd.Timestamp(year=end.year, month=born.month, day=min(born.day, 28))
        if (born.month, born.day) != (2, 29) and night > pd.Timestamp(getattr(row, C.SIGNUP_AT)):
            cid = int(getattr(row, C.CUSTOMER_ID))
            break
    else:
        pytest.skip("no entry-tier customer with a birthday after signing up")
    store_only = _night(world, policy, night, [cid])
    assert store_only["gifts"].empty
    assert f"birthday gift needs tier {needed}" in _decision(store_only, cid)["reasons"]

    url, lg = _ledger(tmp_path)
    top = policy.tiers[-1]
    review_tier(lg, policy, cid, top.min_spend_12m, (night - pd.Timedelta(days=2)).to_pydatetime())
    lg.dispose()
    live = _night(world, policy, night, [cid], _state(url, tmp_path, [cid], night))
    assert live["gifts"]["idempotency_key"].tolist() == [f"birthday_gift:{cid}:{night.year}"]
    assert f"tier {top.name}: the customer's persisted tier" in _decision(live, cid)["reasons"]
