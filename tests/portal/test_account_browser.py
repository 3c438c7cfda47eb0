"""The account pages in headless Chromium: subscriptions, loyalty, preferences.

One live portal for this module over the session's real models (``portal_models``) and
the policy with save offers on, its ledger seeded with the tiny world's running
subscriptions (as ``ppx subscriptions import`` does). Each test signs in a different
subscriber, so no test depends on another's changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

pytestmark = pytest.mark.browser

SAVE_POLICY = "src/rules/policy/save_offers.yaml"


@dataclass
class AccountPortal:
    url: str
    secret: str
    engine: object
    store: object
    subscribers: list[tuple[int, int]]  # (customer, subscription), active, one per customer
    now: object

    def link(self, customer_id: int) -> str:
        from urllib.parse import quote

        from ppx.portal.access import make_link_token

        return f"{self.url}/auth?token={quote(make_link_token(customer_id, self.secret))}"

    def subscriber(self, i: int) -> tuple[int, int]:
        return self.subscribers[i]

    def subscription(self, sid: int):
        from ppx.rules.subscriptions.store import SubscriptionStore

        return SubscriptionStore(self.engine.ledger, create=False).get(sid)


@pytest.fixture(scope="module")
def account_portal(portal_env, portal_models, portal_store, tiny_world, tmp_path_factory):
    from ppx.config import Settings
    from ppx.portal.app import create_app
    from ppx.rules.engine import DecisionEngine
    from ppx.rules.ledger import Ledger
    from ppx.rules.messages.preferences import PreferenceStore
    from ppx.rules.policy import load_policy
    from ppx.rules.subscriptions.importer import import_subscriptions
    from ppx.rules.subscriptions.store import SubscriptionStore
    from ppx.serve.launch import app_in_thread

    folder = tmp_path_factory.mktemp("account_portal")
    policy = load_policy(SAVE_POLICY)
    ledger = Ledger(f"sqlite:///{folder / 'ledger.db'}")
    engine = DecisionEngine(
        policy, portal_models.client(), ledger, PreferenceStore(ledger.engine, policy)
    )
    subs = SubscriptionStore(ledger)
    import_subscriptions(tiny_world[1], subs)
    seen: set[int] = set()
    subscribers = []
    for cid in sorted(portal_store.customers.index):
        mine = [s for s in subs.of_customer(int(cid)) if s.status == "active"]
        if mine and cid not in seen:
            seen.add(int(cid))
            subscribers.append((int(cid), mine[0].subscription_id))
    assert len(subscribers) >= 6, "the tiny world has too few running subscriptions"
    app = create_app(engine, settings=Settings(portal_secret=portal_env), store=portal_store)
    with app_in_thread(app) as url:
        yield AccountPortal(url, portal_env, engine, portal_store, subscribers, portal_store.now)
    ledger.dispose()


def _fits_a_phone(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= 375


def test_pause_a_subscription_then_cancel_and_see_the_save_offer(page, account_portal):
    cid, sid = account_portal.subscriber(0)
    page.goto(account_portal.link(cid))
    page.get_by_role("link", name="Subscriptions").click()
    card = page.locator(f"#subscription-{sid}")
    assert card.locator(".badge").inner_text() == "Active"
    resume_on = (account_portal.now + timedelta(days=20)).date()
    card.get_by_label("Restart deliveries on").fill(resume_on.isoformat())
    card.get_by_role("button", name="Pause my subscription").click()
    assert "Your subscription is paused" in page.get_by_role("status").inner_text()
    card = page.locator(f"#subscription-{sid}")
    assert card.locator(".badge").inner_text() == "Paused"
    assert account_portal.subscription(sid).paused_until.date() == resume_on
    assert _fits_a_phone(page)

    card.get_by_label("Why are you leaving? (optional)").select_option("too_expensive")
    card.get_by_role("button", name="Cancel my subscription").click()
    assert page.get_by_role("heading", name="Before you go").is_visible()
    offer = page.locator(".offer-terms")
    assert offer.is_visible() and offer.inner_text().strip()
    assert account_portal.subscription(sid).status == "paused"  # nothing cancelled yet
    assert account_portal.subscription(sid).pending_offer is not None
    page.get_by_role("button", name="No thanks, cancel my subscription").click()
    assert "Your subscription is cancelled" in page.get_by_role("status").inner_text()
    assert page.locator(f"#subscription-{sid} .badge").inner_text() == "Cancelled"
    assert account_portal.subscription(sid).status == "cancelled"


def test_accepting_the_save_offer_keeps_the_subscription(page, account_portal):
    cid, sid = account_portal.subscriber(1)
    page.goto(account_portal.link(cid))
    page.goto(f"{account_portal.url}/subscriptions")
    card = page.locator(f"#subscription-{sid}")
    card.get_by_label("Why are you leaving? (optional)").select_option("too_much_product")
    card.get_by_role("button", name="Cancel my subscription").click()
    kind = page.locator(".offer-terms").get_attribute("data-kind")
    assert kind in ("skip", "cadence", "pause", "discount", "swap")
    page.get_by_role("button", name="Yes, I accept the offer").click()
    assert "Offer accepted" in page.get_by_role("status").inner_text()
    sub = account_portal.subscription(sid)
    assert sub.status in ("active", "paused") and sub.pending_offer is None


def test_redeem_a_reward_and_see_the_balance_drop(page, account_portal):
    cid, _ = account_portal.subscriber(2)
    ledger = account_portal.engine.ledger
    ledger.award(cid, 1200, f"browser-test:{cid}", at=account_portal.now)
    page.goto(account_portal.link(cid))
    page.get_by_role("link", name="Rewards").click()
    assert page.locator("#balance").inner_text() == "1,200 points"
    page.get_by_role("button", name="Redeem: Free shipping").click()
    notice = page.get_by_role("status")
    assert "Redeemed: Free shipping" in notice.inner_text()
    code = notice.locator(".code").inner_text()
    assert code.startswith("PPX-")
    assert page.locator("#balance").inner_text() == "900 points"
    assert page.locator("table.vouchers").inner_text().count(code) == 1
    assert ledger.balance(cid) == 900
    from playwright.sync_api import expect  # here: without playwright the fixture skips

    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#copy-status")).to_have_text("Link copied.")
    assert _fits_a_phone(page)


def test_change_a_preference(page, account_portal):
    cid, _ = account_portal.subscriber(3)
    page.goto(account_portal.link(cid))
    page.get_by_role("link", name="Messages").click()
    box = page.get_by_label("Shipping notices by text message")
    assert box.is_checked()
    box.uncheck()
    page.get_by_role("button", name="Save my choices").click()
    assert "Your choices are saved" in page.get_by_role("status").inner_text()
    assert not page.get_by_label("Shipping notices by text message").is_checked()
    assert page.get_by_label("Order confirmations by email").is_disabled()
    assert _fits_a_phone(page)
    assert account_portal.engine.preferences.opt_outs(cid) == ([], ["shipped:sms"])


def test_another_customers_subscription_and_a_replayed_form_get_403(page, account_portal):
    cid, sid = account_portal.subscriber(4)
    _, other = account_portal.subscriber(5)
    page.goto(account_portal.link(cid))
    page.goto(f"{account_portal.url}/subscriptions")
    before_other = account_portal.subscription(other)
    # one of the page's own forms, pointed at another customer's subscription
    status = page.evaluate(
        """async (other) => {
            const form = document.querySelector('form[action$="/cadence"]');
            const r = await fetch(`/subscriptions/${other}/skip`,
                                  {method: 'POST', body: new FormData(form)});
            return r.status;
        }""",
        other,
    )
    assert status == 403
    assert account_portal.subscription(other) == before_other
    # the same form sent twice: the second is refused and changes nothing
    statuses = page.evaluate(
        """async () => {
            const form = document.querySelector('form[action$="/skip"]');
            const body = new URLSearchParams(new FormData(form));
            const a = await fetch(form.action, {method: 'POST', body, redirect: 'manual'});
            const b = await fetch(form.action, {method: 'POST', body, redirect: 'manual'});
            return [a.type === 'opaqueredirect' ? 303 : a.status, b.status];
        }"""
    )
    assert statuses == [303, 403]
    sub = account_portal.subscription(sid)
    assert sub.consecutive_skips == 1
    page.goto(f"{account_portal.url}/subscriptions/{other}/offer")
    assert page.get_by_role("heading", name="This page is not available").is_visible()
