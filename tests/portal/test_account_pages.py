"""The account pages in process: subscriptions, loyalty and preferences through the rules.

Each test signs a customer in with a magic link, reads the rendered forms (their CSRF
tokens), posts them and checks what the rules' stores hold afterwards: the page changes
exactly what the form asked for, refuses bad input with a message, and refuses another
customer's subscription or a replayed form with 403 and no change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from starlette.testclient import TestClient

from ppx.config import Settings
from ppx.portal.access import make_link_token
from ppx.portal.app import create_app
from ppx.rules.engine import DecisionEngine
from ppx.rules.ledger import Ledger
from ppx.rules.loyalty.redemption import redemptions_of
from ppx.rules.messages.preferences import PreferenceStore
from ppx.rules.model_client import ModelClient
from ppx.rules.policy import load_policy
from ppx.rules.subscriptions.importer import current_subscriptions
from ppx.rules.subscriptions.store import SubscriptionStore

SECRET = "account-pages-test-secret-0123456789"
SAVE_POLICY = "src/rules/policy/save_offers.yaml"


class Forms(HTMLParser):
    """Every ``<form>`` of a page: its action and its inputs (hidden values included)."""

    def __init__(self, html: str):
        super().__init__()
        self.forms: list[dict] = []
        self._open: dict | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._open = {"action": a.get("action"), "fields": {}}
            self.forms.append(self._open)
        elif tag in ("input", "select") and self._open is not None and a.get("name"):
            if "disabled" in a:
                return
            if a.get("type") == "checkbox":  # sent only when ticked, as a browser does
                if "checked" in a:
                    self._open["fields"][a["name"]] = a.get("value") or "on"
                return
            self._open["fields"].setdefault(a["name"], a.get("value") or "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None

    def token(self) -> str:
        """A CSRF token of this page's session (any form's: tokens are not per action)."""
        return self.forms[0]["fields"]["csrf_token"]

    def find(self, action: str, **fields) -> dict:
        for f in self.forms:
            if f["action"] == action and all(f["fields"].get(k) == v for k, v in fields.items()):
                return dict(f["fields"])
        raise AssertionError(f"no form {action} {fields} in {[f['action'] for f in self.forms]}")


async def _models(path, payload):
    """The model service: a churn risk with a price reason (-> the discount offer)."""
    if path == "/churn/score":
        reasons = [{"feature": "price_increase_2m", "contribution": 0.4}]
        body = {"status": "ok", "p_churn_90": 0.5, "reasons": reasons}
        return 200, json.dumps(body)
    return 503, json.dumps({"error": "not in this test"})


@dataclass
class Shop:
    app: object
    engine: DecisionEngine
    subs: SubscriptionStore
    alice: int
    bob: int
    alice_sub: int
    bob_sub: int

    def client(self, customer_id: int, order_id: int | None = None) -> TestClient:
        c = TestClient(self.app)
        token = make_link_token(customer_id, SECRET, order_id=order_id)
        r = c.get(f"/auth?token={token}", follow_redirects=False)
        assert r.status_code == 303
        return c


@pytest.fixture()
def shop(tiny_world, tmp_path) -> Shop:
    path = tiny_world[1]
    policy = load_policy(SAVE_POLICY)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    engine = DecisionEngine(
        policy, ModelClient(send=_models), ledger, PreferenceStore(ledger.engine, policy)
    )
    subs = SubscriptionStore(ledger)
    running, end = current_subscriptions(path)
    active = [s for s in running if s.status == "active"]
    a, b = active[0], next(s for s in active if s.customer_id != active[0].customer_id)
    for s in (a, b):
        subs.upsert(s, f"import:{s.subscription_id}", end)
    settings = Settings(portal_secret=SECRET, portal_store=path)
    app = create_app(engine=engine, settings=settings)
    return Shop(
        app, engine, subs, a.customer_id, b.customer_id, a.subscription_id, b.subscription_id
    )


def _post(client: TestClient, page: str, action: str, match: dict | None = None, **extra):
    fields = Forms(client.get(page).text).find(action, **(match or {}))
    return client.post(action, data={**fields, **extra}, follow_redirects=False)


# --- subscriptions -----------------------------------------------------------------------


def test_pause_resume_skip_and_cadence_change_the_subscription(shop):
    c = shop.client(shop.alice)
    sid = shop.alice_sub
    base = f"/subscriptions/{sid}"
    page = c.get("/subscriptions")
    assert page.status_code == 200 and f'id="subscription-{sid}"' in page.text
    before = shop.subs.get(sid)

    r = _post(c, "/subscriptions", f"{base}/skip")
    assert r.status_code == 303 and r.headers["location"].endswith("done=skipped")
    skipped = shop.subs.get(sid)
    assert (skipped.next_delivery_at - before.next_delivery_at).days == before.cadence_days

    r = _post(c, "/subscriptions", f"{base}/pause")  # the form's default date is valid
    assert r.status_code == 303
    paused = shop.subs.get(sid)
    assert paused.status == "paused" and paused.paused_until is not None
    assert "Paused" in c.get("/subscriptions?done=paused").text

    r = _post(c, "/subscriptions", f"{base}/cadence", cadence_days="60")
    assert r.status_code == 303 and shop.subs.get(sid).cadence_days == 60

    r = _post(c, "/subscriptions", f"{base}/resume")
    assert r.status_code == 303 and shop.subs.get(sid).status == "active"
    events = [e["event_type"] for e in shop.subs.events(sid)]
    assert events[-4:] == ["skip", "pause", "cadence_change", "resume"]


def test_bad_pause_dates_and_cadences_are_refused_with_a_message(shop):
    c = shop.client(shop.alice)
    sid = shop.alice_sub
    base = f"/subscriptions/{sid}"
    before = shop.subs.get(sid)
    r = _post(c, "/subscriptions", f"{base}/pause", resume_on="not a date")
    assert r.status_code == 400 and "Please choose a date" in r.text
    r = _post(c, "/subscriptions", f"{base}/pause", resume_on="2099-01-01")
    assert r.status_code == 422 and "A pause lasts between 7 and 90 days" in r.text
    r = _post(c, "/subscriptions", f"{base}/cadence", cadence_days="21")
    assert r.status_code == 422 and "every 14, 30, 45, 60 days" in r.text
    stale = {"csrf_token": Forms(c.get("/subscriptions").text).token()}  # an old tab's form
    r = c.post(f"{base}/resume", data=stale)
    assert r.status_code == 409 and "is not paused" in r.text
    r = _post(c, "/subscriptions", f"{base}/cancel", reason="bored")
    assert r.status_code == 400 and "reason from the list" in r.text
    assert shop.subs.get(sid) == before


def test_cancel_shows_the_save_offer_and_accepting_it_keeps_the_subscription(shop):
    c = shop.client(shop.alice)
    sid = shop.alice_sub
    r = _post(c, "/subscriptions", f"/subscriptions/{sid}/cancel", reason="too_expensive")
    assert r.status_code == 303 and r.headers["location"] == f"/subscriptions/{sid}/offer"
    offer = c.get(f"/subscriptions/{sid}/offer")
    assert offer.status_code == 200 and "Before you go" in offer.text
    assert "20% off your next 3 deliveries" in offer.text
    assert shop.subs.get(sid).status == "active"  # nothing cancelled yet
    r = _post(
        c, f"/subscriptions/{sid}/offer", f"/subscriptions/{sid}/offer", {"decision": "accept"}
    )
    assert r.status_code == 303 and r.headers["location"].endswith("done=saved")
    sub = shop.subs.get(sid)
    assert sub.status == "active" and sub.discount_orders_left == 3
    assert sub.next_price == pytest.approx(round(sub.price * 0.8, 2))
    kinds = [e["event_type"] for e in shop.subs.events(sid)]
    assert kinds[-3:] == ["save_offer_made", "save_offer_accepted", "discount"]


def test_declining_the_offer_cancels(shop):
    c = shop.client(shop.alice)
    sid = shop.alice_sub
    _post(c, "/subscriptions", f"/subscriptions/{sid}/cancel")
    r = _post(
        c, f"/subscriptions/{sid}/offer", f"/subscriptions/{sid}/offer", {"decision": "confirm"}
    )
    assert r.status_code == 303 and r.headers["location"].endswith("done=cancelled")
    assert shop.subs.get(sid).status == "cancelled"
    page = c.get("/subscriptions").text
    assert "Cancelled" in page and f'action="/subscriptions/{sid}/skip"' not in page
    assert c.get(f"/subscriptions/{sid}/offer", follow_redirects=False).status_code == 303


def test_another_customers_subscription_is_403_and_unchanged(shop):
    c = shop.client(shop.alice)
    other = shop.bob_sub
    before, events = shop.subs.get(other), shop.subs.events(other)
    assert f"subscription-{other}" not in c.get("/subscriptions").text
    for action in ("skip", "pause", "resume", "cancel", "cadence", "offer"):
        token = Forms(c.get("/subscriptions").text).token()  # a valid token of Alice's
        data = {"csrf_token": token, "resume_on": "2026-01-20", "cadence_days": "60"}
        r = c.post(f"/subscriptions/{other}/{action}", data={**data, "decision": "confirm"})
        assert r.status_code == 403, action
    assert c.get(f"/subscriptions/{other}/offer").status_code == 403
    assert c.get("/subscriptions/999999/offer").status_code == 403  # unknown looks the same
    assert shop.subs.get(other) == before and shop.subs.events(other) == events


def test_a_replayed_form_is_403_and_changes_nothing(shop):
    c = shop.client(shop.alice)
    sid = shop.alice_sub
    fields = Forms(c.get("/subscriptions").text).find(f"/subscriptions/{sid}/skip")
    first = c.post(f"/subscriptions/{sid}/skip", data=fields, follow_redirects=False)
    assert first.status_code == 303
    after = shop.subs.get(sid)
    replay = c.post(f"/subscriptions/{sid}/skip", data=fields, follow_redirects=False)
    assert replay.status_code == 403
    assert shop.subs.get(sid) == after
    assert [e["event_type"] for e in shop.subs.events(sid)].count("skip") == 1


def test_account_pages_need_a_session_for_the_whole_account(shop):
    anonymous = TestClient(shop.app)
    for path in ("/subscriptions", "/loyalty", "/preferences"):
        assert anonymous.get(path).status_code == 403
    order_id = shop.app.state.portal_holder.get().store.order_ids(shop.alice)[0]
    one_order = shop.client(shop.alice, order_id=order_id)
    for path in ("/subscriptions", "/loyalty", "/preferences"):
        assert one_order.get(path).status_code == 403


# --- loyalty -----------------------------------------------------------------------------


def _award(shop: Shop, customer_id: int, points: int) -> None:
    now = shop.app.state.portal_holder.get().now
    shop.engine.ledger.award(customer_id, points, f"test:{customer_id}:{points}", at=now)


def test_redeeming_a_reward_drops_the_balance_and_shows_the_voucher(shop):
    _award(shop, shop.alice, 800)
    c = shop.client(shop.alice)
    page = c.get("/loyalty").text
    assert "800 points" in page and "Redeem: €5.00 off an order" in page
    r = _post(c, "/loyalty", "/loyalty/redeem", {"reward_id": "eur5_off"})
    assert r.status_code == 303 and "redeemed=" in r.headers["location"]
    assert shop.engine.ledger.balance(shop.alice) == 300
    page = c.get(r.headers["location"]).text
    assert 'id="balance">300 points' in page
    voucher = redemptions_of(shop.engine.ledger, shop.alice)[0]  # the one the page shows
    assert voucher["reward_id"] == "eur5_off" and voucher["voucher_code"] in page


def test_redeeming_beyond_the_balance_or_tier_is_refused_and_spends_nothing(shop):
    _award(shop, shop.alice, 400)
    c = shop.client(shop.alice)
    fields = Forms(c.get("/loyalty").text).find("/loyalty/redeem", reward_id="free_shipping")
    r = c.post("/loyalty/redeem", data={**fields, "reward_id": "eur12_off"})
    assert r.status_code == 409 and "You have 400 points; this reward costs 1,000." in r.text
    fields = Forms(r.text).find("/loyalty/redeem", reward_id="free_shipping")
    r = c.post("/loyalty/redeem", data={**fields, "reward_id": "pct15_off"})
    assert r.status_code == 409 and "for Silver members and above" in r.text
    fields = Forms(r.text).find("/loyalty/redeem", reward_id="free_shipping")
    r = c.post("/loyalty/redeem", data={**fields, "reward_id": "no_such_reward"})
    assert r.status_code == 400 and "choose a reward from the list" in r.text
    assert shop.engine.ledger.balance(shop.alice) == 400


def test_a_replayed_redeem_form_is_403_and_spends_once(shop):
    _award(shop, shop.alice, 700)
    c = shop.client(shop.alice)
    fields = Forms(c.get("/loyalty").text).find("/loyalty/redeem", reward_id="free_shipping")
    assert c.post("/loyalty/redeem", data=fields, follow_redirects=False).status_code == 303
    assert c.post("/loyalty/redeem", data=fields, follow_redirects=False).status_code == 403
    assert shop.engine.ledger.balance(shop.alice) == 400
    # another customer's session cannot spend this form's token either
    bob = shop.client(shop.bob)
    fields = Forms(c.get("/loyalty").text).find("/loyalty/redeem", reward_id="free_shipping")
    assert bob.post("/loyalty/redeem", data=fields).status_code == 403
    assert shop.engine.ledger.balance(shop.alice) == 400


def test_loyalty_page_shows_tier_referral_link_and_words_in_every_language(shop):
    c = shop.client(shop.alice)
    page = c.get("/loyalty").text
    assert "Your tier: Bronze" in page and "https://shop.example.com/r?ref=" in page
    assert c.get("/loyalty?lang=ja").text.count("ポイントと特典") >= 1
    assert "Ваши баллы и награды" in c.get("/loyalty?lang=ru").text


# --- preferences -------------------------------------------------------------------------


def test_preferences_grid_saves_per_stage_and_channel(shop):
    c = shop.client(shop.alice)
    prefs = shop.engine.preferences
    fields = Forms(c.get("/preferences").text).find("/preferences/save")
    assert fields["k:shipped:sms"] == "on" and fields["ch:sms"] == "on"
    assert "k:order_confirmation:email" not in fields  # locked: shown, never sent
    del fields["k:shipped:sms"]  # untick "shipping notices by text message"
    del fields["k:win_back:email"]
    r = c.post("/preferences/save", data=fields, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=saved")
    channels, kinds = prefs.opt_outs(shop.alice)
    assert channels == [] and kinds == ["shipped:sms", "win_back:email"]
    shown = Forms(c.get("/preferences").text).find("/preferences/save")
    assert "k:shipped:sms" not in shown and shown["k:shipped:email"] == "on"
    assert prefs.get(shop.bob)["kinds"]["shipped"]["channels"]["sms"] is True  # only Alice
    del shown["ch:push"]  # a whole channel off
    c.post("/preferences/save", data=shown)
    assert prefs.opt_outs(shop.alice)[0] == ["push"]


def test_preferences_refuse_unknown_fields_and_unsubscribe_keeps_service_messages(shop):
    c = shop.client(shop.alice)
    prefs = shop.engine.preferences
    fields = Forms(c.get("/preferences").text).find("/preferences/save")
    r = c.post("/preferences/save", data={**fields, "k:no_such_kind:email": "on"})
    assert r.status_code == 400 and "did not match the messages" in r.text
    assert prefs.opt_outs(shop.alice) == ([], [])
    r = _post(c, "/preferences", "/preferences/unsubscribe")
    assert r.status_code == 303
    got = prefs.get(shop.alice)
    marketing = [k for k, v in got["kinds"].items() if v["category"] == "marketing"]
    assert marketing and all(not any(got["kinds"][k]["channels"].values()) for k in marketing)
    assert all(got["kinds"]["delay_notice"]["channels"].values())
    assert all(got["kinds"]["points_earned"]["channels"].values())


def test_demo_account_link_opens_a_subscribers_account(tiny_world, tmp_path):
    from urllib.parse import urlsplit

    from ppx.portal.demo_account import account_link

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    settings = Settings(
        portal_secret=SECRET, portal_store=tiny_world[1], ledger_url=url, portal_url="http://x"
    )
    link = account_link(tiny_world[1], settings)
    again = account_link(tiny_world[1], settings)  # a second demo run registers nothing new
    assert again.customer_id == link.customer_id and link.subscriptions > 0
    assert link.seeded > 0 and again.seeded == 0  # the world's points, loaded once
    ledger = Ledger(url)
    from ppx.rules.loyalty.seed import store_state

    state, _ = store_state(tiny_world[1])
    expected = state.set_index("customer_id")["balance"].astype("int64")
    assert ledger.balance(link.customer_id) == expected.get(link.customer_id, 0)
    assert all(ledger.balance(int(cid)) == b for cid, b in expected.head(20).items())
    policy = load_policy()
    engine = DecisionEngine(policy, None, ledger, PreferenceStore(ledger.engine, policy))
    c = TestClient(create_app(engine=engine, settings=settings))
    parts = urlsplit(link.url)
    assert c.get(f"{parts.path}?{parts.query}", follow_redirects=False).status_code == 303
    page = c.get("/subscriptions")
    mine = SubscriptionStore(ledger, create=False).of_customer(link.customer_id)
    assert page.status_code == 200 and mine
    assert all(f'id="subscription-{s.subscription_id}"' in page.text for s in mine)
    ledger.dispose()


def test_page_reads_hold_no_write_lock_and_see_committed_writes(tmp_path):
    from sqlalchemy import text as sql
    from sqlalchemy.orm import Session

    from ppx.portal.account import reader

    ledger = Ledger(f"sqlite:///{tmp_path / 'r.db'}")
    reads = reader(ledger)
    assert reads is not ledger and reader(ledger) is reads and reads.engine is not ledger.engine
    ledger.award(7, 10, "k1")
    with Session(reads.engine) as s:  # a page's read transaction, left open
        assert s.execute(sql("SELECT count(*) FROM loyalty_ledger")).scalar() == 1
        ledger.award(7, 5, "k2")  # a write meanwhile does not wait for it
    assert reads.balance(7) == 15
    memory = Ledger("sqlite://")
    assert reader(memory) is memory  # another engine would be another database
    ledger.dispose()
