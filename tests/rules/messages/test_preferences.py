"""The preference centre, signed one-click unsubscribe, and decisions that respect both."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from ppx.rules.engine import DecisionEngine, OrderEventRequest
from ppx.rules.ledger import Ledger
from ppx.rules.loyalty.summary import loyalty_summary
from ppx.rules.messages import unsubscribe as U
from ppx.rules.messages.compose import Renderer, SenderIdentity, ledger_loyalty
from ppx.rules.messages.outbox import Outbox
from ppx.rules.messages.preferences import PreferenceError, PreferenceStore
from ppx.rules.messages.render import RenderError
from ppx.rules.types import OrderEvent

SECRET = "test-secret-0123456789"


@pytest.fixture()
def ledger(tmp_path):
    lg = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield lg
    lg.dispose()


@pytest.fixture()
def store(ledger, policy):
    return PreferenceStore(ledger.engine, policy)


def test_token_round_trip_and_forgery_refused():
    tok = U.make_token(U.Scope(42, "shipped", "sms"), SECRET)
    assert U.read_token(tok, SECRET) == U.Scope(42, "shipped", "sms")
    body, sig = tok.split(".")
    forged = U.make_token(U.Scope(43, "shipped", "sms"), SECRET).split(".")[0] + "." + sig
    with pytest.raises(U.InvalidToken, match="signature"):
        U.read_token(forged, SECRET)
    with pytest.raises(U.InvalidToken, match="signature"):
        U.read_token(tok, "another-secret")
    with pytest.raises(U.InvalidToken, match="malformed"):
        U.read_token("garbage", SECRET)
    with pytest.raises(U.InvalidToken, match="PPX_UNSUBSCRIBE_SECRET"):
        U.make_token(U.Scope(42, "shipped", "sms"), None)


def test_put_get_and_locked_kinds(store):
    got = store.put(42, {"kinds": {"out_for_delivery": {"sms": False}, "win_back": False}})
    assert got["kinds"]["out_for_delivery"]["channels"] == {
        "push": True,
        "sms": False,
        "email": True,
    }
    assert set(got["kinds"]["win_back"]["channels"].values()) == {False}
    assert store.opt_outs(42)[1] == [
        "out_for_delivery:sms",
        "win_back:email",
        "win_back:push",
        "win_back:sms",
    ]
    store.put(42, {"channels": {"push": False}, "kinds": {"win_back": {"email": True}}})
    assert store.opt_outs(42) == (
        ["push"],
        ["out_for_delivery:sms", "win_back:push", "win_back:sms"],
    )
    with pytest.raises(PreferenceError, match="order_confirmation: cannot be turned off"):
        store.put(42, {"kinds": {"order_confirmation": False}})
    with pytest.raises(PreferenceError, match="unknown message kind"):
        store.put(42, {"kinds": {"shiped": False}})
    with pytest.raises(PreferenceError, match="unknown channel"):
        store.put(42, {"channels": {"fax": False}})
    with pytest.raises(PreferenceError, match="expected true or false"):
        store.put(42, {"channels": {"email": "no"}})
    assert store.get(7)["channels"] == {"email": True, "sms": True, "push": True}  # defaults


def test_one_click_turns_off_that_kind_on_that_channel(store):
    store.unsubscribe(U.Scope(42, "review_request", "email"))
    assert store.opt_outs(42) == ([], ["review_request:email"])
    store.unsubscribe(U.Scope(42, "*", "email"))  # the preference link's scope: marketing
    kinds = store.opt_outs(42)[1]
    assert "thank_you:email" in kinds and "shipped:email" not in kinds


def _event(kind: str, **kw) -> OrderEvent:
    return OrderEvent(
        event_type=kind, order_id=5, customer_id=42, occurred_at=datetime(2025, 3, 5, 12, 0), **kw
    )


def _run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize(
    ("stage", "extra"),
    [
        ("shipped", {"ordered_at": datetime(2025, 3, 1, 9), "promised_date": "2025-03-06"}),
        ("out_for_delivery", {}),
        (
            "delivered",
            {
                "delivered_at": datetime(2025, 3, 5, 12),
                "order_value": 40,
                "promised_date": "2025-03-06",
            },
        ),
    ],
)
def test_an_opted_out_delivery_stage_sends_nothing(ledger, policy, customer, store, stage, extra):
    outbox = Outbox(ledger.engine)
    eng = DecisionEngine(policy, None, ledger, store, outbox)
    c = customer(email="c42@example.com")
    before = _run(eng.order_event(OrderEventRequest(event=_event(stage, **extra), customer=c)))
    assert stage in before.decision.message_types()
    sent = [o for o in before.outbox if o["message_key"].startswith(f"{stage}:")]
    assert len(sent) == 1 and sent[0]["created"]
    # The customer turns the stage off on every channel; the same kind of event again:
    store.put(42, {"kinds": {stage: False}})
    ev = _event(stage, **extra).model_copy(update={"order_id": 6})
    after = _run(eng.order_event(OrderEventRequest(event=ev, customer=c)))
    assert stage not in after.decision.message_types()
    assert any(
        "turned off in the customer's preferences" in s.reason for s in after.decision.suppressed
    )
    keys = [r["message_key"] for r in outbox.rows()]
    assert f"{stage}:42:order:5" in keys and f"{stage}:42:order:6" not in keys


def test_opting_out_of_one_channel_moves_the_stage_to_another(ledger, policy, customer, store):
    store.put(42, {"kinds": {"out_for_delivery": {"push": False}}})
    eng = DecisionEngine(policy, None, ledger, store)
    res = _run(
        eng.order_event(OrderEventRequest(event=_event("out_for_delivery"), customer=customer()))
    )
    (m,) = res.decision.messages
    assert m.message_type == "out_for_delivery" and m.channel == "sms"  # next in the catalogue


def test_a_channel_without_a_contact_is_not_queued(ledger, policy, customer, store):
    """out_for_delivery may use [push, sms, email]: a customer opted into all three with
    only an email address gets an email row with that address, not a push row that could
    only fail; with a device id the push row carries it."""
    outbox = Outbox(ledger.engine)
    eng = DecisionEngine(policy, None, ledger, store, outbox)
    ev = _event("out_for_delivery")
    res = _run(eng.order_event(OrderEventRequest(event=ev, customer=customer(email="a@x.io"))))
    (m,) = res.decision.messages
    assert m.channel == "email" and "push skipped: no device id" in m.reason
    ev2 = ev.model_copy(update={"order_id": 7})
    reachable = customer(email="a@x.io", device_id="dev-42")
    _run(eng.order_event(OrderEventRequest(event=ev2, customer=reachable)))
    rows = {r["message_key"]: (r["channel"], r["to_address"]) for r in outbox.rows()}
    assert rows == {
        "out_for_delivery:42:order:5": ("email", "a@x.io"),
        "out_for_delivery:42:order:7": ("push", "dev-42"),
    }


def test_locked_kind_is_sent_whatever_is_stored(ledger, policy, customer, store):
    # Even a row written around the API (e.g. by hand) cannot silence an order confirmation.
    from sqlalchemy.orm import Session

    from ppx.rules.messages.preferences import PreferenceRow

    with Session(ledger.engine) as s, s.begin():
        s.add(
            PreferenceRow(
                customer_id=42,
                channel="email",
                kind="order_confirmation",
                allowed=False,
                source="test",
                updated_at=datetime(2025, 1, 1),
            )
        )
    eng = DecisionEngine(policy, None, ledger, store)
    res = _run(eng.order_event(OrderEventRequest(event=_event("placed"), customer=customer())))
    assert res.decision.message_types() == ["order_confirmation"]


def test_duplicate_event_enqueues_once_and_renders_the_balance_when_sent(
    ledger, policy, customer, store
):
    outbox = Outbox(ledger.engine)
    eng = DecisionEngine(policy, None, ledger, store, outbox)
    ev = _event(
        "delivered",
        delivered_at=datetime(2025, 3, 8, 12),
        order_value=80,
        promised_date="2025-03-02",
        ordered_at=datetime(2025, 3, 1, 9),
    )
    c = customer(email="c42@example.com", locale="ru", time_zone="Europe/Moscow")
    first = _run(eng.order_event(OrderEventRequest(event=ev, customer=c)))
    again = _run(eng.order_event(OrderEventRequest(event=ev, customer=c)))
    assert all(o["created"] for o in first.outbox) and not any(o["created"] for o in again.outbox)
    assert len(outbox.rows()) == len(first.outbox)
    # The sender renders at send time, with the balance and next reward of that moment.
    renderer = Renderer(
        policy,
        SenderIdentity("Kaffee", "https://shop.example", SECRET),
        ledger_loyalty(ledger, policy),
    )
    rows = {r.message_type: r for r in outbox.claim("sender", limit=10)}
    apology = rows["apology"]
    assert apology.locale == "ru" and apology.to_address == "c42@example.com"
    sent = renderer(apology)
    assert sent.locale == "ru" and sent.subject == "Извините за задержку заказа 5"
    balance = ledger.balance(42)
    assert f"На вашем счёте {balance:,}".replace(",", "\u00a0") in sent.body_text
    summary = loyalty_summary(ledger, policy, 42)
    if summary.next_reward_name is not None:
        assert summary.next_reward_name in sent.body_text
    token = sent.unsubscribe_url.split("token=")[1]
    assert U.read_token(token, SECRET) == U.Scope(42, "apology", "email")


def test_sending_without_a_signing_secret_is_refused(policy):
    with pytest.raises(RenderError, match="PPX_UNSUBSCRIBE_SECRET"):
        Renderer(policy, SenderIdentity("Kaffee", "https://shop.example", None))


@pytest.mark.postgres
def test_preferences_on_postgresql(postgres_url, policy):
    import threading

    from ppx.rules.messages.db import make_engine

    engine = make_engine(postgres_url)
    store = PreferenceStore(engine, policy)
    errors = []

    def flip(i):  # concurrent writers of the same rows: the upsert settles them
        try:
            store.put(4242, {"kinds": {"shipped": {"sms": i % 2 == 0}, "win_back": False}})
        except Exception as err:  # pragma: no cover - the assertion below reports it
            errors.append(err)

    threads = [threading.Thread(target=flip, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store.put(4242, {"kinds": {"shipped": {"sms": False}}})
    assert "shipped:sms" in store.opt_outs(4242)[1]
    store.unsubscribe(U.Scope(4242, "review_request", "email"))
    assert "review_request:email" in store.opt_outs(4242)[1]
    engine.dispose()


def test_birthday_gift_reaches_the_outbox_and_the_email(ledger, policy, customer, store):
    from datetime import date

    from ppx.rules.engine import DailyItem

    outbox = Outbox(ledger.engine)
    eng = DecisionEngine(policy, None, ledger, store, outbox)
    c = customer(birth_date=date(1990, 5, 1), email="c42@example.com", locale="ja")
    res = _run(eng.daily(DailyItem(customer=c, now=datetime(2026, 5, 1, 10, 0))))
    assert "birthday" in res.decision.message_types()
    rows = {r.message_type: r for r in outbox.claim("sender", limit=10)}
    gift = rows["birthday"].content["gift"]
    assert gift["voucher_code"].startswith("PPX-")
    renderer = Renderer(
        policy,
        SenderIdentity("Kaffee", "https://shop.example", SECRET),
        ledger_loyalty(ledger, policy),
    )
    sent = renderer(rows["birthday"])
    assert gift["voucher_code"] in sent.body_text and "プレゼント" in sent.body_text
