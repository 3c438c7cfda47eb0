"""The /loyalty routes of the decision service, in process (the ASGI app the service mounts)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from ppx.rules.ledger import Ledger


@pytest.fixture()
def api(tmp_path, monkeypatch):
    import serving.decision_service as ds

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("PPX_LEDGER_URL", url)
    monkeypatch.delenv("PPX_POLICY", raising=False)
    monkeypatch.delenv("PPX_LINKAGE_STORE", raising=False)
    monkeypatch.setattr(ds, "_ENGINE", None)
    with TestClient(ds.loyalty_app) as client:
        client.ledger = ds.engine().ledger
        yield client
    ds.engine().ledger.dispose()
    monkeypatch.setattr(ds, "_ENGINE", None)


def test_summary_catalogue_redeem_and_refund(api):
    ledger: Ledger = api.ledger
    ledger.award(42, 820, "earn:42:1", order_id=1)
    s = api.get("/42/summary").json()
    assert (s["balance"], s["next_reward_id"], s["points_to_next_reward"]) == (
        820,
        "eur12_off",
        180,
    )
    cat = api.get("/catalogue", params={"customer_id": 42}).json()["rewards"]
    assert {r["id"]: r["affordable"] for r in cat}["eur5_off"] is True
    assert {r["id"]: r["points_needed"] for r in cat}["eur12_off"] == 180
    body = {"reward_id": "eur5_off", "idempotency_key": "checkout-1", "order_id": 2}
    first = api.post("/42/redeem", json=body)
    assert first.status_code == 201, first.text
    again = api.post("/42/redeem", json=body)
    assert again.status_code == 200 and again.json()["voucher_code"] == first.json()["voucher_code"]
    assert api.get("/42/summary").json()["balance"] == 320
    poor = api.post("/42/redeem", json={**body, "idempotency_key": "checkout-2"})
    assert poor.status_code == 409 and "has 320 points" in poor.json()["error"]
    r = api.post("/42/refund", json={"order_id": 2, "idempotency_key": "refund-2"})
    assert r.status_code == 200 and r.json()["balance"] == 820
    assert api.get("/42/redemptions").json()["redemptions"][0]["status"] == "reversed"


@pytest.mark.parametrize(
    "method, path, body, words",
    [
        ("post", "/42/redeem", {"reward_id": "eur5_off"}, "idempotency_key: Field required"),
        ("post", "/42/redeem", {"reward_id": "x", "idempotency_key": "k", "oops": 1}, "oops"),
        ("post", "/abc/redeem", {}, "customer_id must be a positive integer"),
        ("post", "/42/tier", {"spend_12m": -3}, "spend_12m: Input should be greater"),
        ("post", "/referrals/attribute", {"referee_id": 5, "code": "c"}, "order_id"),
        ("get", "/42/summary?tier=diamond", None, "tier must be one of"),
        ("get", "/42/summary?now=yesterday", None, "now must be an ISO date-time"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(api, method, path, body, words):
    r = getattr(api, method)(path, json=body) if body is not None else api.get(path)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]


def test_unknown_reward_and_code_are_404(api):
    r = api.post("/42/redeem", json={"reward_id": "yacht", "idempotency_key": "k"})
    assert r.status_code == 404 and "unknown reward_id 'yacht'" in r.json()["error"]
    body = {"referee_id": 5, "code": "guess", "order_id": 1, "ordered_at": "2026-01-01T00:00"}
    r = api.post("/referrals/attribute", json=body)
    assert r.status_code == 404 and "is not a referral code" in r.json()["error"]


def test_tier_and_referral_routes(api):
    assert (
        api.post("/7/tier", json={"spend_12m": 700, "at": "2026-01-05T10:00"}).json()["tier"]
        == "gold"
    )
    t = api.get("/7/tier").json()
    assert t["current"]["tier"] == "gold" and t["history"][0]["change"] == "entry"
    ref = api.get("/7/referral").json()
    assert ref["url"].endswith(f"?ref={ref['code']}") and ref["referrals"] == []
    body = {"referee_id": 8, "code": ref["code"], "order_id": 70, "ordered_at": "2026-02-01T09:00"}
    a = api.post("/referrals/attribute", json=body).json()
    assert a["status"] == "pending" and a["referrer_id"] == 7
    api.post("/referrals/delivered", json={"order_id": 70, "delivered_at": "2026-02-03T09:00"})
    early = api.post("/referrals/settle", json={"now": "2026-02-20T00:00"}).json()
    assert early["settled"] == []
    paid = api.post("/referrals/settle", json={"now": "2026-03-20T00:00"}).json()["settled"]
    assert [p["status"] for p in paid] == ["paid"]
    assert api.get("/7/summary?now=2026-03-21T00:00").json()["balance"] == 200
    rem = api.post(
        "/7/expiry-reminder",
        json={"customer": {"customer_id": 7, "email_opt_in": True}, "now": "2027-03-01T10:00"},
    ).json()
    assert [m["message_type"] for m in rem["decision"]["messages"]] == ["points_expiring"]
    assert rem["decision"]["messages"][0]["content"]["points"] == 200


def test_voucher_use_and_expiry_sweep_routes(api):
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).replace(tzinfo=None)
    api.ledger.award(9, 600, "earn:9:1", order_id=1, at=today - timedelta(days=300))
    v = api.post("/9/redeem", json={"reward_id": "free_shipping", "idempotency_key": "k9"}).json()
    used = api.post(f"/vouchers/{v['voucher_code']}/use", json={"order_id": 33})
    assert used.status_code == 200 and used.json()["order_id"] == 33
    twice = api.post(f"/vouchers/{v['voucher_code']}/use", json={"order_id": 34})
    assert twice.status_code == 409 and "spent on order 33" in twice.json()["error"]
    missing = api.post("/vouchers/PPX-NOPE/use", json={"order_id": 34})
    assert missing.status_code == 404
    # The redemption (today) renewed the activity: nothing lapses a year after the award.
    a_year_on = (today + timedelta(days=70)).isoformat()
    out = api.post("/expiry/run", json={"now": a_year_on}).json()
    assert out["expired"] == []
    later = api.post("/expiry/run", json={"now": "2099-01-01T00:00", "customer_ids": [9]}).json()
    assert [e["points"] for e in later["expired"]] == [-300]
    assert api.get("/9/summary").json()["balance"] == 0


def test_attribution_consults_the_linkage_store(api, tiny_world, monkeypatch):
    import numpy as np

    from ppx.data import columns as C

    world, path = tiny_world
    monkeypatch.setenv("PPX_LINKAGE_STORE", str(path))
    truth = world["truth_customers"]
    ring = truth[truth[C.RING_ID] >= 0].groupby(C.RING_ID)[C.CUSTOMER_ID].apply(list)
    a, b = next(m for m in ring if len(m) >= 2)[:2]
    code = api.get(f"/{a}/referral").json()["code"]
    body = {"referee_id": int(b), "code": code, "order_id": 5, "ordered_at": "2026-01-01T00:00"}
    r = api.post("/referrals/attribute", json=body).json()
    assert r["status"] == "refused" and "fraud linkage graph" in r["reason"], r
    # A brand-new account that reuses the referrer's device is caught through `identity`.
    dev = world["customers"].set_index(C.CUSTOMER_ID).loc[a, C.DEVICE_ID]
    new_id = int(np.max(world["customers"][C.CUSTOMER_ID])) + 1000
    body = {**body, "referee_id": new_id, "identity": {"device_id": dev}}
    r = api.post("/referrals/attribute", json=body).json()
    assert r["status"] == "refused" and "share a device" in r["reason"], r
