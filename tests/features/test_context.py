"""The daily pass's customer context: as of a moment, per customer, nothing after it."""

from __future__ import annotations

import pandas as pd

from ppx.data import columns as C
from ppx.features.context import context_of, daily_contexts


def _now(world) -> pd.Timestamp:
    return world.tables[C.ORDERS][C.ORDERED_AT].max().normalize() - pd.Timedelta(days=30)


def test_events_after_the_moment_change_nothing(tiny_world):
    world, _ = tiny_world
    now = _now(world)
    before = daily_contexts(world.tables, now)
    cut = {
        **world.tables,
        C.ORDERS: world.tables[C.ORDERS][world.tables[C.ORDERS][C.ORDERED_AT] < now],
        C.LOYALTY_EVENTS: world.tables[C.LOYALTY_EVENTS][
            world.tables[C.LOYALTY_EVENTS][C.EVENT_AT] < now
        ],
        C.MESSAGES: world.tables[C.MESSAGES][world.tables[C.MESSAGES][C.SENT_AT] < now],
    }
    pd.testing.assert_frame_equal(daily_contexts(cut, now), before)


def test_a_subset_of_customers_gets_the_same_rows(tiny_world):
    world, _ = tiny_world
    now = _now(world)
    whole = daily_contexts(world.tables, now)
    some = whole[C.CUSTOMER_ID].iloc[::7].to_numpy()
    part = daily_contexts(world.tables, now, customer_ids=some)
    expected = whole[whole[C.CUSTOMER_ID].isin(some)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expected)


def test_rows_become_valid_customer_contexts(tiny_world):
    world, _ = tiny_world
    now = _now(world)
    rows = daily_contexts(world.tables, now)
    contexts = [context_of(r) for r in rows.to_dict("records")]
    assert len(contexts) == len(rows) > 0
    subs = [c for c in contexts if c.subscription_id is not None]
    assert subs and all(c.has_active_subscription for c in subs)
    assert any(c.replenishment_due for c in contexts)
    assert all(c.last_order_at is None or c.last_order_at < now for c in contexts)
    spend = world.tables[C.ORDERS]
    spend = spend[
        (spend[C.ORDERED_AT] < now) & (spend[C.ORDERED_AT] >= now - pd.Timedelta(days=365))
    ]
    by_cust = spend.groupby(C.CUSTOMER_ID)[C.ORDER_VALUE].sum()
    c = contexts[0]
    assert abs(c.spend_12m - by_cust.get(c.customer_id, 0.0)) < 0.01


def test_contexts_carry_each_channels_contact(tiny_world):
    """SMS and push rows are addressed from the customer's phone and device id."""
    world, _ = tiny_world
    rows = daily_contexts(world.tables, _now(world))
    contexts = {c.customer_id: c for c in (context_of(r) for r in rows.to_dict("records"))}
    cust = world.tables[C.CUSTOMERS].set_index(C.CUSTOMER_ID)
    with_phone = [cid for cid in contexts if pd.notna(cust.at[cid, C.PHONE])]
    with_device = [cid for cid in contexts if pd.notna(cust.at[cid, C.DEVICE_ID])]
    assert with_phone and with_device
    assert all(contexts[cid].phone == cust.at[cid, C.PHONE] for cid in with_phone)
    assert all(contexts[cid].device_id == cust.at[cid, C.DEVICE_ID] for cid in with_device)
    assert all(contexts[cid].phone is None for cid in contexts if pd.isna(cust.at[cid, C.PHONE]))
