"""The portal in a real browser (headless Chromium) against the real models.

One live portal for the session (``live_portal``: the tiny world, the delivery, recs and
fraud models trained for the session, a fresh ledger).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def _late_open_order(store):
    late = store.open_late_orders()
    assert len(late), "the tiny world has no parcel past its promise at its end"
    row = late.iloc[0]
    return int(row["customer_id"]), int(row["order_id"])


def _delivered_order(store, skip=()):
    s = store.tables["shipments"]
    o = store.tables["orders"][["order_id", "customer_id"]]
    m = s[(s["status"] == "delivered")].merge(o, on="order_id")
    m = m[~m["customer_id"].isin(list(skip))]
    row = m.iloc[-1]
    return int(row["customer_id"]), int(row["order_id"])


def test_tracking_page_from_a_magic_link_shows_the_window_and_the_delay(page, live_portal):
    cid, oid = _late_open_order(live_portal.portal.store)
    page.goto(live_portal.link(cid, oid))
    assert page.url.endswith(f"/orders/{oid}")  # the token is gone from the address bar
    odds = page.locator("#odds")
    assert odds.is_visible()
    assert "in 10 parcels like this arrive by" in odds.inner_text()
    notice = page.locator("#delay-notice")
    assert notice.is_visible()
    assert "running late" in notice.inner_text()
    assert page.get_by_role("heading", name="Progress").is_visible()
    assert page.locator("#last-scan").is_visible()
    # re-estimated at each scan: more than the checkout estimate is listed
    assert page.locator("details.estimates li").count() >= 2
    assert page.locator("#recs li").count() >= 1
    # usable at 375 px: nothing wider than the screen
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375


def test_start_a_return_and_get_the_instant_decision(page, live_portal):
    cid, oid = _delivered_order(live_portal.portal.store)
    page.goto(live_portal.link(cid, oid))
    page.get_by_role("link", name="Return or exchange").click()
    page.get_by_label("Why are you sending it back?").select_option("damaged")
    page.get_by_label("My money back").check()
    page.get_by_role("button", name="Send my request").click()
    decision = page.locator("#return-decision")
    assert decision.is_visible()
    words = decision.inner_text()
    assert any(
        w in words
        for w in (
            "Refunded now",
            "Refund when the item is back",
            "We will check the item first",
            "A person will look at your request",
        )
    )
    status = page.locator("#return-status")
    assert status.is_visible()
    assert any(w in status.inner_text() for w in ("in progress", "waiting", "completed"))
    # a reload shows the status, not a second return
    page.reload()
    assert page.locator("#return-status li").count() == 1


def test_switch_the_language(page, live_portal):
    cid, oid = _late_open_order(live_portal.portal.store)
    page.goto(live_portal.link(cid))
    assert page.get_by_role("heading", name="Your orders").is_visible()
    page.get_by_role("link", name="日本語").click()
    assert page.get_by_role("heading", name="ご注文履歴").is_visible()
    assert page.locator("html").get_attribute("lang") == "ja"
    # the choice stays with the session on the next page
    page.get_by_role("link", name=f"ご注文 {oid}").click()
    assert page.get_by_role("heading", name="お届け予定").is_visible()
    page.get_by_role("link", name="Русский").click()
    assert page.get_by_role("heading", name="Доставка").is_visible()


def test_keyboard_reaches_the_skip_link_first(page, live_portal):
    cid, _ = _delivered_order(live_portal.portal.store)
    page.goto(live_portal.link(cid))
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Skip to content"
