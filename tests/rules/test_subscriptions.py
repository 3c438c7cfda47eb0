"""Subscriber self-service: every transition, every illegal one, save offers, idempotency."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import date, datetime, timedelta

import pytest

from ppx.rules.ledger import Ledger
from ppx.rules.model_client import ModelClient
from ppx.rules.policy import load_policy
from ppx.rules.subscriptions import TransitionError, choose_save_offer
from ppx.rules.subscriptions.actions import (
    CadenceBody,
    CancelBody,
    PauseBody,
    RegisterBody,
    SubscriptionActions,
    _Body,
)
from ppx.rules.subscriptions.lifecycle import Subscription
from ppx.rules.subscriptions.store import SubscriptionStore

NOW = datetime(2025, 6, 1, 9, 0)
SAVE_POLICY = "src/rules/policy/save_offers.yaml"


class FakeModels:
    """The model service's churn (with reason codes) and recs answers, or an outage."""

    def __init__(self, risk=0.6, reasons=(("price_increase_2m", 0.8),), recs=(7, 31), down=False):
        self.risk, self.reasons, self.recs, self.down = risk, reasons, list(recs), down
        self.calls: list[tuple[str, dict]] = []

    async def send(self, path, payload):
        self.calls.append((path, payload))
        if self.down:
            return 503, '{"error": "model missing"}'
        if path == "/churn/score":
            assert payload["explain"] is True
            body = {
                "customer_id": payload["customer_id"],
                "status": "ok",
                "p_churn_90": self.risk,
                "reasons": [
                    {"feature": f, "contribution": c, "label": f.replace("_", " ")}
                    for f, c in self.reasons
                ],
            }
        elif path == "/recs/recommend":
            body = {"customer_id": payload["customer_id"], "product_ids": self.recs}
        else:
            return 404, "{}"
        return 200, json.dumps(body)


@pytest.fixture()
def desk(tmp_path):
    made = []

    def make(policy_path=SAVE_POLICY, **fake):
        fm = FakeModels(**fake)
        made.append(1)  # a fresh database per desk
        ledger = Ledger(f"sqlite:///{tmp_path / f'ledger{len(made)}.db'}")
        store = SubscriptionStore(ledger)
        clock = {"now": NOW}
        actions = SubscriptionActions(
            load_policy(policy_path),
            store,
            ModelClient(send=fm.send),
            clock=lambda: clock["now"],
        )
        actions.register(
            1,
            RegisterBody(
                customer_id=42,
                product_id=7,
                cadence_days=30,
                price=20.0,
                next_delivery_at=NOW + timedelta(days=10),
            ),
        )
        actions.fake, actions.clock_box = fm, clock
        return actions

    return make


def _status(fn, *a) -> int:
    with pytest.raises(TransitionError) as err:
        fn(*a)
    return err.value.status


def k(name):  # a fresh request key
    return _Body(request_key=name)


def test_pause_resume_skip_cadence_and_their_illegal_twins(desk):
    d = desk()
    # resume an active subscription: 409
    assert _status(d.resume, 1, k("r0")) == 409
    # pause longer than the policy allows: 422; shorter than the minimum: 422
    assert _status(d.pause, 1, PauseBody(request_key="p0", resume_on=date(2025, 12, 1))) == 422
    assert _status(d.pause, 1, PauseBody(request_key="p0b", resume_on=date(2025, 6, 3))) == 422
    r = d.pause(1, PauseBody(request_key="p1", resume_on=date(2025, 7, 15)))
    assert r["status"] == "paused" and r["subscription"]["paused_until"].startswith("2025-07-15")
    # pause a paused one, skip while paused: 409
    assert _status(d.pause, 1, PauseBody(request_key="p2", resume_on=date(2025, 7, 20))) == 409
    assert _status(d.skip, 1, k("s0")) == 409
    # the cadence may change while paused; not to one the brand does not offer
    assert _status(d.change_cadence, 1, CadenceBody(request_key="c0", cadence_days=21)) == 422
    r = d.change_cadence(1, CadenceBody(request_key="c1", cadence_days=45))
    assert r["subscription"]["cadence_days"] == 45
    assert _status(d.change_cadence, 1, CadenceBody(request_key="c2", cadence_days=45)) == 409
    r = d.resume(1, k("r1"))
    assert r["status"] == "active" and r["subscription"]["paused_until"] is None
    # skip moves the next delivery one cadence on; at most max_consecutive_skips in a row
    before = datetime.fromisoformat(r["subscription"]["next_delivery_at"])
    r = d.skip(1, k("s1"))
    assert datetime.fromisoformat(r["subscription"]["next_delivery_at"]) == before + timedelta(45)
    d.skip(1, k("s2"))
    assert _status(d.skip, 1, k("s3")) == 422
    events = [e["event_type"] for e in d.store.events(1)]
    assert events == ["start", "pause", "cadence_change", "resume", "skip", "skip"]


def test_cancelled_is_terminal_and_unknown_is_404(desk):
    d = desk("src/rules/policy/default.yaml")  # save offers off: cancel at once
    r = asyncio.run(d.cancel(1, CancelBody(request_key="x1", reason="other")))
    assert r["status"] == "cancelled" and r["offer"] is None
    assert any("save offers are off" in x for x in r["reasons"])
    assert _status(d.resume, 1, k("a")) == 409
    assert _status(d.skip, 1, k("b")) == 409
    assert _status(d.pause, 1, PauseBody(request_key="c", resume_on=date(2025, 7, 1))) == 409
    assert _status(d.change_cadence, 1, CadenceBody(request_key="d", cadence_days=45)) == 409
    with pytest.raises(TransitionError) as err:
        asyncio.run(d.cancel(1, CancelBody(request_key="e")))
    assert err.value.status == 409 and "cancelled" in str(err.value)
    assert _status(d.skip, 99, k("f")) == 404


def test_high_risk_price_reason_gets_the_discount_and_can_accept_it(desk):
    d = desk(risk=0.62, reasons=(("late_2m", 0.1), ("price_increase_2m", 0.9)))
    r = asyncio.run(d.cancel(1, CancelBody(request_key="c1")))
    assert r["status"] == "offer"
    offer = r["offer"]
    assert offer["kind"] == "discount" and offer["reason_group"] == "price"
    # 20 % off 3 deliveries of 20.00: the brand gives up 12.00
    assert offer["cost"] == pytest.approx(12.0) and offer["terms"] == {"percent": 20.0, "orders": 3}
    assert any("price increase 2m raises the risk" in x for x in offer["reasons"])
    assert d.store.get(1).status == "active"  # asking is not cancelling
    # the model calls match the model service's request schemas
    from ppx.models.churn.schemas import ChurnRequest
    from ppx.models.recs.schemas import RecsRequest

    schemas = {"/churn/score": ChurnRequest, "/recs/recommend": RecsRequest}
    assert {p for p, _ in d.fake.calls} == set(schemas)
    for path, payload in d.fake.calls:
        schemas[path].model_validate(payload)
    # asking again shows the same open offer without calling the models
    n = len(d.fake.calls)
    again = asyncio.run(d.cancel(1, CancelBody(request_key="c2")))
    assert again["offer"]["offer_id"] == offer["offer_id"] and len(d.fake.calls) == n
    bad = CancelBody(request_key="c3", decision="accept", offer_id="so_wrong")
    with pytest.raises(TransitionError) as err:
        asyncio.run(d.cancel(1, bad))
    assert err.value.status == 422
    ok = CancelBody(request_key="c4", decision="accept", offer_id=offer["offer_id"])
    r = asyncio.run(d.cancel(1, ok))
    assert r["status"] == "saved"
    sub = r["subscription"]
    assert sub["status"] == "active" and sub["next_price"] == 16.0 and sub["pending_offer"] is None
    types = [e["event_type"] for e in d.store.events(1)]
    assert types[-4:] == ["save_offer_made", "save_offer_shown", "save_offer_accepted", "discount"]
    made = next(e for e in d.store.events(1) if e["event_type"] == "save_offer_made")
    assert made["detail"]["cost"] == 12.0 and made["detail"]["churn_risk"] == 0.62
    # within the cooldown a new cancel request gets no second offer
    r = asyncio.run(d.cancel(1, CancelBody(request_key="c5")))
    assert r["status"] == "cancelled" and any("cooldown" in x for x in r["reasons"])


def test_offer_follows_reasons_and_risk(desk):
    # low risk, price reason: the free cadence change, not the discount
    d = desk(risk=0.1, reasons=(("price_now", 0.4),))
    r = asyncio.run(d.cancel(1, CancelBody(request_key="a")))
    assert r["offer"]["kind"] == "cadence" and r["offer"]["terms"] == {"cadence_days": 45}
    assert r["offer"]["revenue_change_90d"] == pytest.approx(20 * 90 / 45 - 20 * 90 / 30)
    # what the customer says comes before the model's reasons
    d = desk(risk=0.7, reasons=(("price_now", 0.4),))
    r = asyncio.run(d.cancel(1, CancelBody(request_key="b", reason="too_much_product")))
    assert r["offer"]["kind"] == "skip" and r["offer"]["deferred_revenue"] == 20.0
    # tired of the product: a swap to a recommended product other than the current one
    d = desk(risk=0.5, reasons=(("low_reviews_3m", 0.5),), recs=(7, 31))
    r = asyncio.run(d.cancel(1, CancelBody(request_key="c")))
    assert r["offer"]["kind"] == "swap" and r["offer"]["terms"] == {"product_id": 31}
    accept = CancelBody(request_key="d", decision="accept", offer_id=r["offer"]["offer_id"])
    assert asyncio.run(d.cancel(1, accept))["subscription"]["product_id"] == 31
    # an unknown stated reason is refused, naming the known ones
    d = desk()
    with pytest.raises(TransitionError) as err:
        asyncio.run(d.cancel(1, CancelBody(request_key="e", reason="aliens")))
    assert err.value.status == 422 and "too_expensive" in str(err.value)


def test_declining_cancels_and_model_outage_falls_back(desk):
    d = desk(down=True)
    r = asyncio.run(d.cancel(1, CancelBody(request_key="a")))
    # fallback risk 0.15, no reasons: the catch-all pause, and the reasons say why
    assert r["offer"]["kind"] == "pause" and r["offer"]["churn_risk"] == 0.15
    assert any("churn model unavailable (HTTP 503" in x for x in r["reasons"])
    r = asyncio.run(d.cancel(1, CancelBody(request_key="b", decision="confirm", reason="other")))
    assert r["status"] == "cancelled"
    types = [e["event_type"] for e in d.store.events(1)]
    assert types[-3:] == ["save_offer_made", "save_offer_declined", "cancel"]
    with pytest.raises(TransitionError) as err:  # nothing to accept any more
        asyncio.run(d.cancel(1, CancelBody(request_key="c", decision="accept", offer_id="x")))
    assert err.value.status == 409


def test_same_request_key_changes_nothing_twice(desk):
    d = desk()
    first = d.skip(1, k("once"))
    again = d.skip(1, k("once"))
    assert again["replayed"] and not first["replayed"]
    assert again["subscription"] == first["subscription"]
    assert [e["event_type"] for e in d.store.events(1)].count("skip") == 1
    with pytest.raises(TransitionError) as err:  # the key belongs to another action
        d.resume(1, k("once"))
    assert err.value.status == 422 and "already used" in str(err.value)
    # concurrent duplicates: exactly one pause lands, every caller gets its answer
    out, body = [], PauseBody(request_key="p", resume_on=date(2025, 7, 1))
    threads = [threading.Thread(target=lambda: out.append(d.pause(1, body))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 8 and sum(not o["replayed"] for o in out) == 1
    assert [e["event_type"] for e in d.store.events(1)].count("pause") == 1
    # an accepted offer is not applied twice by a retried accept
    r = asyncio.run(d.cancel(1, CancelBody(request_key="q")))
    acc = CancelBody(request_key="acc", decision="accept", offer_id=r["offer"]["offer_id"])
    a1, a2 = asyncio.run(d.cancel(1, acc)), asyncio.run(d.cancel(1, acc))
    assert a2["replayed"] and a1["subscription"] == a2["subscription"]
    assert [e["event_type"] for e in d.store.events(1)].count("save_offer_accepted") == 1


def test_choose_save_offer_is_pure_and_feasibility_falls_through():
    pol = load_policy(SAVE_POLICY)
    sub = Subscription(1, 42, 7, "active", 60, 30.0, NOW, consecutive_skips=0)
    # too much product, but no longer cadence than 60 and no skips left -> catch-all pause
    tired = Subscription(1, 42, 7, "active", 60, 30.0, NOW, consecutive_skips=2)
    reasons = [{"feature": "skips_3m", "contribution": 0.5}]
    c = choose_save_offer(sub, 0.3, reasons, None, NOW, pol)
    assert c.offer.kind == "skip"
    c = choose_save_offer(tired, 0.3, reasons, None, NOW, pol)
    assert c.offer.kind == "pause"
    assert any("no skips left" in r for r in c.reasons)
    assert any("no cadence longer than 60" in r for r in c.reasons)
    assert c == choose_save_offer(tired, 0.3, reasons, None, NOW, pol)


@pytest.mark.postgres
def test_transitions_offers_and_duplicates_on_postgres(postgres_url):
    fm = FakeModels(risk=0.7, reasons=(("price_now", 0.6),))
    ledger = Ledger(postgres_url, pool_size=16)
    actions = SubscriptionActions(
        load_policy(SAVE_POLICY), SubscriptionStore(ledger), ModelClient(send=fm.send), lambda: NOW
    )
    sid = 9001
    actions.register(
        sid,
        RegisterBody(
            customer_id=4242, product_id=7, cadence_days=30, price=30.0, next_delivery_at=NOW
        ),
    )
    body = PauseBody(request_key="pg-pause", resume_on=date(2025, 7, 1))
    out = []
    threads = [
        threading.Thread(target=lambda: out.append(actions.pause(sid, body))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(not o["replayed"] for o in out) == 1
    assert (
        _status(actions.pause, sid, PauseBody(request_key="pg-2", resume_on=date(2025, 7, 2)))
        == 409
    )
    actions.resume(sid, k("pg-resume"))
    r = asyncio.run(actions.cancel(sid, CancelBody(request_key="pg-c1")))
    assert r["offer"]["kind"] == "discount" and r["offer"]["cost"] == pytest.approx(18.0)
    acc = CancelBody(request_key="pg-c2", decision="accept", offer_id=r["offer"]["offer_id"])
    assert asyncio.run(actions.cancel(sid, acc))["status"] == "saved"
    types = [e["event_type"] for e in actions.store.events(sid)]
    assert types == [
        "start",
        "pause",
        "resume",
        "save_offer_made",
        "save_offer_accepted",
        "discount",
    ]
    ledger.dispose()


def test_import_registers_running_subscriptions_once(tiny_world, tmp_path):
    import pandas as pd

    from ppx.rules.subscriptions.importer import import_subscriptions

    _, path = tiny_world
    store = SubscriptionStore(Ledger(f"sqlite:///{tmp_path / 'l.db'}"))
    first = import_subscriptions(path, store)
    assert first["registered"] == first["subscriptions"] > 0
    again = import_subscriptions(path, store)
    assert again["registered"] == 0 and again["already_known"] == first["subscriptions"]
    subs = pd.read_parquet(path / "tables" / "subscriptions.parquet")
    end = pd.Timestamp(first["as_of"])
    gone = subs[subs["cancelled_at"] <= end]["subscription_id"].tolist()
    running = subs[~subs["subscription_id"].isin(gone)]
    assert first["subscriptions"] == len(running)
    with pytest.raises(TransitionError) as err:
        store.get(int(gone[0]))
    assert err.value.status == 404
    row = running.iloc[0]
    sub = store.get(int(row["subscription_id"]))
    assert sub.cadence_days == {"monthly": 30, "biweekly": 14}[row["plan"]]
    assert sub.next_delivery_at > first["as_of"] and sub.customer_id == row["customer_id"]


def test_renewals_count_down_discounts_and_pauses_end_by_themselves(desk):
    d = desk(risk=0.6)
    assert d.skip(1, k("s1"))["subscription"]["consecutive_skips"] == 1
    r = asyncio.run(d.cancel(1, CancelBody(request_key="c1")))
    accept = CancelBody(request_key="c2", decision="accept", offer_id=r["offer"]["offer_id"])
    asyncio.run(d.cancel(1, accept))  # 20 % off 3 deliveries
    charged = []
    for i in range(4):
        r = d.renew(1, k(f"renew{i}"))
        charged.append(r["subscription"]["next_price"])
    assert r["subscription"]["consecutive_skips"] == 0
    renewals = [e["detail"]["charged"] for e in d.store.events(1) if e["event_type"] == "renew"]
    assert renewals == [16.0, 16.0, 16.0, 20.0] and charged[-1] == 20.0
    d.pause(1, PauseBody(request_key="p1", resume_on=date(2025, 7, 1)))
    assert _status(d.renew, 1, k("renew-paused")) == 409
    d.clock_box["now"] = datetime(2025, 7, 2, 9, 0)  # the pause has run out
    r = d.skip(1, k("s2"))
    assert r["status"] == "active" and r["events"] == ["resume", "skip"]
    assert r["reasons"][0] == "pause ended on 2025-07-01"
    auto = [e for e in d.store.events(1) if e["event_type"] == "resume"]
    assert auto[-1]["detail"]["automatic"] is True


def test_of_customer_lists_only_that_customers_subscriptions(desk):
    d = desk()
    d.register(
        2,
        RegisterBody(
            customer_id=43, product_id=8, cadence_days=14, price=9.0, next_delivery_at=NOW
        ),
    )
    d.register(
        3,
        RegisterBody(
            customer_id=42, product_id=9, cadence_days=60, price=30.0, next_delivery_at=NOW
        ),
    )
    assert [s.subscription_id for s in d.store.of_customer(42)] == [1, 3]
    assert [s.subscription_id for s in d.store.of_customer(43)] == [2]
    assert d.store.of_customer(44) == []
