"""Pages without a browser: notification preferences, brand theming, the message link."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.portal.conftest import csrf_token as _csrf
from tests.portal.conftest import delivered_order as _delivered_order


def test_stage_notifications_are_saved_in_the_preference_centre(make_portal):
    p = make_portal()
    cid, oid = _delivered_order(p.store)
    c = p.signed_in(cid)
    page = c.get(f"/orders/{oid}")
    assert 'value="delay_notice:sms"' in page.text
    keep = ["shipped:email", "delay_notice:email", "delivered:push"]
    r = c.post(
        f"/orders/{oid}/notifications",
        data={"pref": keep, "csrf_token": _csrf(page.text)},
    )
    assert r.status_code == 303
    kinds = p.engine.preferences.get(cid)["kinds"]
    assert kinds["delay_notice"]["channels"] == {"sms": False, "push": False, "email": True}
    assert kinds["shipped"]["channels"]["email"] and not kinds["shipped"]["channels"]["sms"]
    assert 'value="delay_notice:sms">' in c.get(r.headers["location"]).text.replace(" checked", "")
    _, opted_out = p.engine.preferences.opt_outs(cid)
    assert "delay_notice:sms" in opted_out and "delay_notice:email" not in opted_out


def test_brand_from_the_policy_themes_every_page(make_portal):
    p = make_portal()
    brand = p.engine.policy.brand
    html = p.client().get("/signin").text
    assert brand.name in html and brand.primary_color in html
    assert re.search(r'<label for="who">', html)  # the field has a label


def test_pages_forbid_framing_and_caching(make_portal):
    p = make_portal()
    cid, oid = _delivered_order(p.store)
    r = p.signed_in(cid).get(f"/orders/{oid}")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_a_bad_brand_colour_fails_on_load(tmp_path):
    from ppx.rules.policy import PolicyError, default_policy_path, load_policy

    raw = yaml.safe_load(default_policy_path().read_text())
    raw["brand"]["primary_color"] = "brown"
    bad = tmp_path / "policy.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError, match="brand.primary_color"):
        load_policy(bad)


def test_a_shipping_message_links_to_its_tracking_page():
    from datetime import datetime

    from ppx.rules.messages.compose import Renderer, SenderIdentity
    from ppx.rules.messages.outbox import Claimed
    from ppx.rules.policy import load_policy

    seen = []

    def tracking(customer_id, order_id, lang):
        seen.append((customer_id, order_id, lang))
        return f"https://shop.example/portal/auth?token=t{order_id}"

    identity = SenderIdentity("Kaffee", "https://shop.example", "unsub-secret", tracking)
    row = Claimed(
        id=1,
        message_key="k",
        rfc_message_id="<k@x>",
        customer_id=42,
        message_type="shipped",
        channel="email",
        content={"order_id": 5, "estimated_delivery": datetime(2025, 3, 4).date().isoformat()},
        locale="ja-JP",
        time_zone=None,
        utc_offset_minutes=0,
        to_address="a@example.com",
        arm=None,
        attempts=0,
    )
    sent = Renderer(load_policy(), identity)(row)
    assert seen == [(42, 5, "ja")]
    assert "https://shop.example/portal/auth?token=t5" in sent.body_text
    assert 'href="https://shop.example/portal/auth?token=t5"' in sent.body_html


def test_serve_portal_refuses_to_start_without_a_secret(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from ppx.cli import app
    from ppx.config import get_settings

    monkeypatch.delenv("PPX_PORTAL_SECRET")
    monkeypatch.setenv("PPX_PORTAL_SECRET_FILE", str(tmp_path / "none.secret"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--portal"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "PPX_PORTAL_SECRET" in result.output


def test_store_credit_return_shows_the_credit_and_its_status(make_portal):
    p = make_portal()
    cid, oid = _delivered_order(p.store)
    c = p.signed_in(cid)
    token = _csrf(c.get(f"/orders/{oid}/return").text)
    line = p.store.order(cid, oid).items[0].line_no
    r = c.post(
        f"/orders/{oid}/return",
        data={
            "line": str(line),
            "reason": "changed_mind",
            "resolution": "store_credit",
            "csrf_token": token,
        },
    )
    assert r.status_code == 303
    page = c.get(r.headers["location"]).text
    assert "Store credit" in page
    assert 'id="return-status"' in page
    # the line is returned: the form offers only the other lines
    assert f'name="line" value="{line}"' not in page


def test_a_replayed_form_page_says_nothing_changed(make_portal):
    p = make_portal()
    cid, oid = _delivered_order(p.store)
    c = p.signed_in(cid)
    r = c.post(f"/orders/{oid}/claim", data={"claim_type": "item_not_received"})
    assert r.status_code == 403
    assert "Nothing was changed" in r.text


def test_a_reloaded_tracking_page_asks_the_models_only_once(make_portal, portal_models):
    from ppx.rules.model_client import ModelClient

    calls: list[str] = []

    async def counting(path, payload):
        calls.append(path)
        return await portal_models.send(path, payload)

    p = make_portal(ModelClient("http://in-process", timeout=30.0, token="", send=counting))
    cid, oid = _delivered_order(p.store)
    c = p.signed_in(cid)
    first = c.get(f"/orders/{oid}")
    assert first.status_code == 200
    asked = list(calls)
    assert "/recs/recommend" in asked
    second = c.get(f"/orders/{oid}")
    assert second.status_code == 200
    assert calls == asked  # the estimates and the products were remembered
    assert _product_names(first.text) == _product_names(second.text)


def _product_names(html: str) -> list[str]:
    recs = html.split('id="recs"', 1)
    assert len(recs) == 2, "the page shows no recommendations"
    return re.findall(r"<li><strong>([^<]+)</strong>", recs[1].split("</ul>", 1)[0])
