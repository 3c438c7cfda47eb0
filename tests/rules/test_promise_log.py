"""Promise outcomes recorded by the decision engine, and the on-time gauges per carrier."""

from __future__ import annotations

import asyncio
from datetime import date, datetime

import pytest
from prometheus_client import REGISTRY

from ppx.rules import engine as E
from ppx.rules.promise_log import PromiseLog
from ppx.rules.types import DeliveryEstimate, Scores


def _place(engine, customer, order_id, carrier, p90_days=3.2, day=1):
    req = E.OrderEventRequest(
        event={
            "event_type": "placed",
            "order_id": order_id,
            "customer_id": 42,
            "occurred_at": f"2025-03-{day:02d}T09:00:00",
            "ordered_at": f"2025-03-{day:02d}T09:00:00",
            "carrier": carrier,
        },
        customer=customer,
        scores=Scores(delivery=DeliveryEstimate(p50_days=2.0, p90_days=p90_days)),
        model_inputs={"delivery": {"warehouse": "wh_north", "dest_region": "east"}},
    )
    return asyncio.run(engine.order_event(req))


def _deliver(engine, customer, order_id, when):
    req = E.OrderEventRequest(
        event={
            "event_type": "delivered",
            "order_id": order_id,
            "customer_id": 42,
            "occurred_at": when,
            "delivered_at": when,
        },
        customer=customer,
    )
    return asyncio.run(engine.order_event(req))


def _gauge(name, carrier):
    return REGISTRY.get_sample_value(name, {"carrier": carrier})


@pytest.fixture()
def log(tmp_path):
    book = PromiseLog(f"sqlite:///{tmp_path / 'promises.db'}")
    yield book
    book.dispose()


def test_placed_orders_record_the_p90_promise_and_deliveries_their_outcome(
    policy, log, customer_body
):
    eng = E.DecisionEngine(policy, None, None, promises=log)
    # Ordered 1 March, p90 3.2 days: promised for 5 March (the 4th calendar day after).
    for oid in (101, 102, 103, 104):
        _place(eng, customer_body, oid, "swiftpost")
    _place(eng, customer_body, 201, "parcelgo")
    assert log.count() == 5
    _place(eng, customer_body, 101, "swiftpost", p90_days=9.0)  # a replay changes nothing
    assert log.count() == 5
    _deliver(eng, customer_body, 101, "2025-03-03T10:00:00")  # kept
    _deliver(eng, customer_body, 102, "2025-03-05T20:00:00")  # kept, on the promised day
    _deliver(eng, customer_body, 103, "2025-03-06T08:00:00")  # a day late
    rates = {r.carrier: r for r in log.on_time(datetime(2025, 3, 6, 12))}
    # 104 is still in flight past its promised day (5 March): a miss, known on the 6th.
    assert rates["swiftpost"].scored == 4 and rates["swiftpost"].kept == 2
    assert rates["swiftpost"].stated == pytest.approx(0.9)
    # parcelgo's only promise is also overdue.
    assert rates["parcelgo"].scored == 1 and rates["parcelgo"].kept == 0
    # On the 5th, 104's promise is still open: only the delivered ones count.
    early = {r.carrier: r for r in log.on_time(datetime(2025, 3, 5, 23))}
    assert early["swiftpost"].scored == 2 and early["swiftpost"].kept == 2


def test_gauges_follow_the_outcomes_of_each_carrier(policy, log, customer_body):
    eng = E.DecisionEngine(policy, None, None, promises=log)
    for oid in range(10):
        _place(eng, customer_body, 300 + oid, "econoship", day=2)
    for oid in range(10):
        late = oid >= 7  # three of ten arrive after the promised 6 March
        _deliver(eng, customer_body, 300 + oid, f"2025-03-{8 if late else 4:02d}T10:00:00")
    assert _gauge("ppx_delivery_promise_on_time_rate", "econoship") == pytest.approx(0.7)
    assert _gauge("ppx_delivery_promises_scored", "econoship") == 10
    assert _gauge("ppx_delivery_promise_stated_rate", "econoship") == pytest.approx(0.9)


def test_bad_promises_are_refused_with_the_table_named(log):
    with pytest.raises(ValueError, match="delivery_promises"):
        log.record_promise("9", datetime(2025, 3, 5), date(2025, 3, 1), 0.9, "swiftpost")
    with pytest.raises(ValueError, match="stated_rate"):
        log.record_promise("9", datetime(2025, 3, 5), date(2025, 3, 9), 1.5, "swiftpost")
    assert log.record_outcome("unknown-order", datetime(2025, 3, 9), datetime(2025, 3, 9)) is None
