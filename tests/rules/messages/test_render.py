"""Every message kind renders in every language, and anything missing fails loudly."""

from __future__ import annotations

import string

import pytest

from ppx.rules.messages import render as R
from ppx.rules.messages.render import LoyaltyView, RenderError, render
from ppx.rules.types import CustomerContext

#: A full content example per template kind (what the decisions put in a message).
SAMPLES = {
    "order_confirmation": {"order_id": 5, "estimated_delivery": "2025-03-04"},
    "shipped": {"order_id": 5, "estimated_delivery": "2025-03-04"},
    "out_for_delivery": {"order_id": 5, "estimated_delivery": "2025-03-04"},
    "delay_notice": {
        "order_id": 5,
        "estimated_delivery": "2025-03-04",
        "estimated_latest": "2025-03-06",
    },
    "delivered": {"order_id": 5, "delivered_at": "2025-03-04T23:30:00"},
    "apology": {"order_id": 5, "points": 150},
    "thank_you": {"order_id": 5, "recommendations": [11, 12]},
    "review_request": {"order_id": 5, "review_points": 50},
    "points_earned": {"points": 21},
    "points_expiring": {"points": 300, "expires_on": "2025-04-01"},
    "tier_change": {"tier": "gold", "surprise": True, "days": 90},
    "birthday": {
        "points": 100,
        "gift": {
            "reward": "Free shipping",
            "voucher_code": "BDAY-7Q2",
            "expires_at": "2025-07-01T00:00:00",
        },
    },
    "anniversary": {"years": 2, "points": 100},
    "win_back": {"offer_points": 150},
    "replenishment_reminder": {"product_ids": [7, 8]},
    "subscription_reminder": {
        "subscription_id": 9,
        "next_charge_at": "2025-04-01",
        "amount": 24.5,
    },
    "save_offer": {"subscription_id": 9, "offer": "discount", "percent": 20, "orders": 3},
    "return_update": {"return_id": 3, "order_id": 5, "outcome": "instant_refund"},
    "claim_update": {"claim_id": 4, "order_id": 5, "outcome": "fast_payout"},
    "portal_link": {"link": "https://shop.example/portal/auth?token=abc.def", "hours": 72},
}
LANGS = ("en", "ja", "ru")
LOYALTY = LoyaltyView(balance=1234, next_reward="free shipping", points_to_next_reward=66)
LINKS = {"unsubscribe": "https://shop.example/u?token=a", "preferences": "https://shop.example/p"}


def _customer(lang: str, **kw) -> CustomerContext:
    return CustomerContext(customer_id=42, locale=lang, **kw)


def test_samples_cover_every_template_and_the_issue_kinds():
    assert set(SAMPLES) == set(R.template_kinds())
    assert set(R.catalogue_languages()) >= set(LANGS)


def test_every_catalogue_kind_of_the_policy_has_a_template(policy):
    kinds = {policy.messages.template_for(k) for k in policy.messages.catalogue}
    assert kinds <= set(R.template_kinds())


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_every_kind_renders_in_every_language(policy, kind, lang):
    loyalty = LOYALTY if kind in R.LOYALTY_KINDS else None
    r = render(
        kind, SAMPLES[kind], _customer(lang), policy, brand="Kaffee", loyalty=loyalty, links=LINKS
    )
    assert r.locale == lang
    assert r.subject and "\n" not in r.subject
    for body in (r.text, r.html):
        assert "{" not in body.replace("{%", "")  # no unfilled placeholder
        assert LINKS["unsubscribe"] in body
    assert r.html.startswith("<!DOCTYPE html>") and f'lang="{lang}"' in r.html
    if "gift" in SAMPLES[kind]:
        assert "BDAY-7Q2" in r.text and "BDAY-7Q2" in r.html
    if loyalty is not None:  # balance and points to the next reward, in the language
        assert R._Words(lang, R.customer_zone(_customer(lang)), "EUR").number(66) in r.text
        assert "free shipping" in r.text


def test_catalogues_have_the_same_keys_and_placeholders():
    def walk(node, prefix=""):
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict) and not set(v) <= {"zero", "one", "two", "few", "many", "other"}:
                yield from walk(v, key + ".")
            else:
                forms = v.values() if isinstance(v, dict) else [v]
                names = {f for form in forms for _, f, _, _ in string.Formatter().parse(form) if f}
                yield key, frozenset(names)

    cats = {lang: dict(walk(R._catalogue(lang))) for lang in LANGS}
    for lang in LANGS[1:]:
        assert set(cats[lang]) == set(cats["en"]), lang
        for key, names in cats["en"].items():
            assert cats[lang][key] == names, (lang, key)


def test_russian_plurals_follow_cldr(policy):
    def text(n):
        return render(
            "points_earned", {"points": n}, _customer("ru"), policy, loyalty=LoyaltyView(balance=0)
        ).subject

    assert text(1).endswith("1 балл") and text(21).endswith("21 балл")
    assert text(3).endswith("3 балла") and text(5).endswith("5 баллов")
    assert text(11).endswith("11 баллов")


def test_times_are_shown_in_the_customer_time_zone(policy):
    content = {"order_id": 5, "delivered_at": "2025-03-04T23:30:00"}  # UTC
    utc = render("delivered", content, _customer("en"), policy).text
    tokyo = render("delivered", content, _customer("en", time_zone="Asia/Tokyo"), policy).text
    assert "Mar 4, 2025" in utc and "11:30:00" in utc
    assert "Mar 5, 2025" in tokyo and "8:30:00" in tokyo
    offset = render("delivered", content, _customer("en", utc_offset_minutes=180), policy).text
    assert "Mar 5, 2025" in offset and "2:30:00" in offset


def test_unknown_locale_falls_back_to_the_policy_default(policy):
    assert (
        render("win_back", {"offer_points": 1}, _customer("ja-JP"), policy, loyalty=LOYALTY).locale
        == "ja"
    )
    assert (
        render("win_back", {"offer_points": 1}, _customer("de"), policy, loyalty=LOYALTY).locale
        == "en"
    )


def test_missing_value_fails_loudly(policy):
    with pytest.raises(RenderError, match="order_id"):
        render("shipped", {"estimated_delivery": "2025-03-04"}, _customer("en"), policy)
    with pytest.raises(RenderError, match="loyalty"):
        render("apology", SAMPLES["apology"], _customer("en"), policy)
    with pytest.raises(RenderError, match="time zone"):
        render("shipped", SAMPLES["shipped"], _customer("en", time_zone="Mars/Olympus"), policy)


def test_missing_catalogue_key_fails_loudly(policy, monkeypatch):
    broken = {k: dict(v) for k, v in R._catalogue("ru").items()}
    del broken["shipped"]["eta"]
    monkeypatch.setattr(R, "_catalogue", lambda lang: broken)
    with pytest.raises(RenderError, match=r"ru\.yaml has no key 'shipped\.eta'"):
        render("shipped", SAMPLES["shipped"], _customer("ru"), policy)


def test_html_escapes_content(policy):
    r = render("tier_change", {"tier": "<b>gold</b>"}, _customer("en"), policy, loyalty=LOYALTY)
    assert "<b>gold</b>" not in r.html and "&lt;b&gt;gold&lt;/b&gt;" in r.html
    assert "<b>gold</b>" in r.text  # plain text is not HTML


@pytest.mark.parametrize("lang", LANGS)
def test_preference_page_labels_every_kind_in_every_language(policy, lang, tmp_path):
    from ppx.rules.messages.db import make_engine
    from ppx.rules.messages.preferences import PreferenceStore

    store = PreferenceStore(make_engine(f"sqlite:///{tmp_path / 'p.db'}"), policy)
    store.put(42, {"kinds": {"win_back": {"email": False}}})
    for channel in ("email", "sms", "push"):
        html = R.preferences_page(store.get(42), channel, lang, "Kaffee", "/x")
        assert f'lang="{lang}"' in html and 'action="/x"' in html
    html = R.preferences_page(store.get(42), "email", lang, "Kaffee", "/x")
    assert 'value="win_back">' in html  # unchecked
    assert 'value="order_confirmation" checked disabled>' in html  # locked
    assert 'value="shipped" checked>' in html


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(
    "terms",
    [
        {"offer": "skip", "skip_delivery_at": "2025-04-01"},
        {"offer": "pause", "resume_on": "2025-05-01", "days": 30},
        {"offer": "discount", "percent": 15, "orders": 1},
        {"offer": "cadence", "cadence_days": 45},
        {"offer": "swap", "product_id": 17},
    ],
)
def test_every_save_offer_renders(policy, lang, terms):
    r = render("save_offer", {"subscription_id": 9, **terms}, _customer(lang), policy)
    assert "{" not in r.text
    with pytest.raises(RenderError, match="save_offer.refund"):
        render("save_offer", {"subscription_id": 9, "offer": "refund"}, _customer(lang), policy)


@pytest.mark.parametrize("lang", LANGS)
def test_shipping_messages_link_to_the_tracking_page(policy, lang):
    links = {**LINKS, "tracking": "https://shop.example/portal/auth?token=t.k"}
    r = render("shipped", SAMPLES["shipped"], _customer(lang), policy, links=links)
    assert links["tracking"] in r.text
    assert 'href="https://shop.example/portal/auth?token=t.k"' in r.html
