"""Access control: links, sessions and forms are refused (403/410) and change nothing."""

from __future__ import annotations

import time

import pytest

from ppx.portal import access as A
from tests.portal.conftest import csrf_token as _csrf
from tests.portal.conftest import delivered_order as _delivered_order


def test_link_round_trip_and_scope():
    token = A.make_link_token(42, "k", order_id=7, hours=1, lang="ja")
    got = A.read_link_token(token, "k")
    assert (got.customer_id, got.order_id, got.lang) == (42, 7, "ja")
    assert got.allows_order(7) and not got.allows_order(8)


def test_missing_secret_is_a_clear_error():
    with pytest.raises(A.PortalConfigError, match="PPX_PORTAL_SECRET"):
        A.make_link_token(1, None)


def test_tampered_and_foreign_tokens_are_refused():
    token = A.make_link_token(42, "k", hours=1)
    body, sig = token.split(".")
    forged = A.make_link_token(43, "other-key", hours=1).split(".")[0] + "." + sig
    with pytest.raises(A.AccessDenied) as e:
        A.read_link_token(forged, "k")
    assert e.value.status == 403
    with pytest.raises(A.AccessDenied):
        A.read_link_token(token, "another-secret")
    for i in (0, len(sig) - 1):  # a changed first or last character, never the same one
        other = "B" if sig[i] == "A" else "A"
        with pytest.raises(A.AccessDenied):
            A.read_link_token(body + "." + sig[:i] + other + sig[i + 1 :], "k")
    with pytest.raises(A.LinkExpired) as e:
        A.read_link_token(A.make_link_token(42, "k", hours=1, now=time.time() - 7200), "k")
    assert e.value.status == 410


def test_a_session_opens_only_its_customer_orders(make_portal):
    p = make_portal()
    cid, oid = _delivered_order(p.store)
    other_cid, other_oid = next(
        (c, o)
        for c, o in zip(
            p.store.tables["orders"]["customer_id"],
            p.store.tables["orders"]["order_id"],
            strict=True,
        )
        if c != cid
    )
    c = p.signed_in(cid)
    assert c.get(f"/orders/{oid}").status_code == 200
    r = c.get(f"/orders/{other_oid}")
    assert r.status_code == 403
    assert str(other_cid) not in r.text
    assert c.get(f"/orders/{other_oid}/return").status_code == 403
    assert c.get("/orders/999999999").status_code == 403  # missing looks like foreign


def test_an_order_link_covers_that_order_only(make_portal):
    p = make_portal()
    cid, oid = _delivered_order(p.store)
    ids = p.store.order_ids(cid)
    c = p.client()
    r = c.get(p.link_path(cid, oid))
    assert r.status_code == 303 and r.headers["location"].endswith(f"/orders/{oid}")
    assert "token" not in r.headers["location"]
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert c.get(f"/orders/{oid}").status_code == 200
    for other in ids:
        if other != oid:
            assert c.get(f"/orders/{other}").status_code == 403
            break


def test_expired_tampered_and_missing_access_pages(make_portal):
    p = make_portal()
    cid, oid = _delivered_order(p.store)
    c = p.client()
    expired = A.make_link_token(cid, p.settings.portal_secret, hours=1, now=time.time() - 7200)
    assert c.get(f"/auth?token={expired}").status_code == 410
    good = A.make_link_token(cid, p.settings.portal_secret)
    assert c.get(f"/auth?token={good[:-3]}xyz").status_code == 403
    assert c.get("/auth?token=").status_code == 403
    assert c.get(f"/orders/{oid}").status_code == 403  # no session at all
    c.cookies.set(A.COOKIE, "garbage.value")
    assert c.get(f"/orders/{oid}").status_code == 403
    old = A.Access(cid, None, 0, "en", "sid")
    c.cookies.set(
        A.COOKIE, A.make_session(old, p.settings.portal_secret, 1, now=time.time() - 7200)
    )
    assert c.get(f"/orders/{oid}").status_code == 410


def test_claim_form_without_replayed_or_foreign_csrf_changes_nothing(make_portal):
    p = make_portal()
    cid, oid = _delivered_order(p.store)
    c = p.signed_in(cid)
    form = c.get(f"/orders/{oid}/claim")
    token = _csrf(form.text)
    before = p.ledger_rows()

    assert (
        c.post(f"/orders/{oid}/claim", data={"claim_type": "damaged_in_transit"}).status_code == 403
    )
    # a token issued to another session of another customer
    others = p.store.tables["orders"]["customer_id"]
    other = p.signed_in(int(others[others != cid].iloc[0]))
    foreign = _csrf(other.get("/").text)
    r = c.post(
        f"/orders/{oid}/claim", data={"claim_type": "damaged_in_transit", "csrf_token": foreign}
    )
    assert r.status_code == 403
    assert p.ledger_rows() == before
    assert "claim-decision" not in c.get(f"/orders/{oid}/claim").text

    ok = c.post(
        f"/orders/{oid}/claim", data={"claim_type": "damaged_in_transit", "csrf_token": token}
    )
    assert ok.status_code == 303
    assert 'id="claim-decision"' in c.get(ok.headers["location"]).text
    after = p.ledger_rows()
    replay = c.post(
        f"/orders/{oid}/claim", data={"claim_type": "item_not_received", "csrf_token": token}
    )
    assert replay.status_code == 403
    assert p.ledger_rows() == after


def test_return_form_replay_is_refused_and_nothing_changes(make_portal):
    p = make_portal()
    cid, oid = _delivered_order(p.store)
    c = p.signed_in(cid)
    token = _csrf(c.get(f"/orders/{oid}/return").text)
    line = p.store.order(cid, oid).items[0].line_no
    data = {"line": str(line), "reason": "damaged", "resolution": "refund", "csrf_token": token}
    first = c.post(f"/orders/{oid}/return", data=data)
    assert first.status_code == 303
    assert 'id="return-decision"' in c.get(first.headers["location"]).text
    rows = p.ledger_rows()
    assert c.post(f"/orders/{oid}/return", data=data).status_code == 403
    assert c.post(f"/orders/{oid}/return", data={**data, "csrf_token": ""}).status_code == 403
    assert p.ledger_rows() == rows


def test_link_requests_are_queued_and_rate_limited(make_portal):
    p = make_portal()
    cid, _ = _delivered_order(p.store)
    email = str(p.store.customer_row(cid)["email"])
    c = p.client()
    statuses = []
    for _ in range(4):
        token = _csrf(c.get("/signin").text)
        statuses.append(c.post("/signin", data={"who": email, "csrf_token": token}).status_code)
    assert statuses == [200, 200, 200, 429]
    from sqlalchemy import text

    with p.engine.ledger.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT customer_id, to_address, content FROM message_outbox WHERE message_type='portal_link'"
            )
        ).all()
    assert len(rows) == 3 and {r[0] for r in rows} == {cid} and rows[0][1] == email
    assert "/auth?token=" in rows[0][2] and email not in rows[0][2]
    # an unknown address gets the same answer and no message
    token = _csrf(c.get("/signin").text)
    other = p.client()
    t2 = _csrf(other.get("/signin").text)
    assert (
        other.post("/signin", data={"who": "nobody@example.invalid", "csrf_token": t2}).status_code
        == 200
    )
    assert token  # the first client's next form is still valid but unused


def test_every_portal_language_has_the_same_keys():
    from ppx.portal.i18n import catalogue

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            if isinstance(v, dict) and not set(v) <= {"zero", "one", "two", "few", "many", "other"}:
                out |= keys(v, f"{prefix}{k}.")
            else:
                out.add(prefix + k)
        return out

    en = keys(catalogue("en"))
    for lang in ("ja", "ru"):
        assert keys(catalogue(lang)) == en, lang


def test_spent_form_tokens_are_forgotten_after_a_session_lifetime(make_portal):
    p = make_portal()
    csrf = p.app.state.portal_holder.get().csrf
    who = A.Access(5, None, 0, "en", "sid-1")
    t0 = time.time() - 3 * csrf.max_age
    csrf.consume(who, csrf.issue(who, now=t0), now=t0)
    fresh = csrf.issue(who)
    csrf.consume(who, fresh)
    assert csrf.prune() == 1  # the old one; the fresh one is still needed against replays
    with pytest.raises(A.AccessDenied):
        csrf.consume(who, fresh)


def test_token_buckets_refill_over_time():
    from ppx.portal.ratelimit import TokenBuckets

    b = TokenBuckets(capacity=2, per_hour=1)
    assert b.allow("k", now=0) and b.allow("k", now=1) and not b.allow("k", now=2)
    assert b.allow("other", now=2)
    assert b.allow("k", now=3600 + 2) and not b.allow("k", now=3600 + 3)
