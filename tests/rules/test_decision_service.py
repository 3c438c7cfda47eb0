"""The BentoML decision service over HTTP, against a fake model service.

A tiny Starlette app plays the model service (delivery and recs answer, churn is down) in
a thread; the decision service runs under ``bentoml serve`` on a free port with a
temporary ledger. Every endpoint is called; a failed model call falls back and says so.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.serving

ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fake_models():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ppx.serve.launch import app_in_thread

    async def delivery(_):
        return JSONResponse(
            {"stage": "checkout", "p50_days": 5, "promise_days": 7, "model": "fake"}
        )

    async def churn(_):
        return JSONResponse({"error": "model missing"}, status_code=503)

    async def fraud(_):
        return JSONResponse({"p_fraud": 0.9, "head": "return", "ring_member": False})

    async def recs(_):
        return JSONResponse({"customer_id": 42, "product_ids": [11, 12, 13], "scores": [3, 2, 1]})

    app = Starlette(
        routes=[
            Route("/delivery/estimate", delivery, methods=["POST"]),
            Route("/churn/score", churn, methods=["POST"]),
            Route("/fraud/return", fraud, methods=["POST"]),
            Route("/fraud/claim", fraud, methods=["POST"]),
            Route("/recs/recommend", recs, methods=["POST"]),
        ]
    )
    # Waits until uvicorn listens (and fails saying so): a loaded machine can take longer
    # than a fixed number of polls, and calls to a server not yet up would read as "down".
    with app_in_thread(app, start_timeout=120.0) as url:
        yield url


@pytest.fixture(scope="module")
def service(fake_models, tmp_path_factory):
    port = _port()
    tmp = tmp_path_factory.mktemp("decisions")
    env = {
        **os.environ,
        "PPX_MODEL_SERVICE_URL": fake_models,
        "PPX_LEDGER_URL": f"sqlite:///{tmp / 'ledger.db'}",
        "PPX_API_TOKEN": "s3cret",
        "PPX_UNSUBSCRIBE_SECRET": "link-secret",
        "PPX_OUTBOX": "1",
        "PPX_SMS_AUTH_TOKEN": "sms-token",  # checks receipts' signatures; nothing is sent
        "PPX_PUSH_TOKEN": "push-token",
        "BENTOML_HOME": str(tmp / "bentoml"),
    }
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "serving.decision_service:DecisionService",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                break
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("decision service did not become ready")
        if proc.poll() is not None:
            log.flush()
            pytest.fail(f"decision service exited: {(tmp / 'serve.log').read_text()[-2000:]}")
        yield httpx.Client(base_url=url, headers={"Authorization": "Bearer s3cret"}, timeout=30)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_order_events_over_http(service, late_delivery, customer_body):
    r = service.post(
        "/decide/order-event", json={"event": late_delivery, "customer": customer_body}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    d = body["decision"]
    assert any("churn model unavailable (HTTP 503" in f for f in d["fallbacks"])
    assert body["balance"] == 100 + 100  # earn + apology at the neutral risk
    transit = {**late_delivery, "event_type": "in_transit", "occurred_at": "2025-03-02T08:00:00"}
    r = service.post("/decide/order-event", json={"event": transit, "customer": customer_body})
    assert [m["message_type"] for m in r.json()["decision"]["messages"]] == ["delay_notice"]
    bal = service.get("/loyalty/42/balance")
    assert bal.status_code == 200 and bal.json()["balance"] == 200
    assert len(bal.json()["entries"]) == 2
    summary = service.get("/loyalty/42/summary").json()
    assert (summary["balance"], summary["next_reward_id"]) == (200, "free_shipping")
    assert summary["points_to_next_reward"] == 100


def test_return_claim_and_daily_over_http(service, customer_body):
    ret = {
        "return_id": 1,
        "order_id": 5,
        "customer_id": 42,
        "requested_at": "2025-03-08T10:00:00",
        "amount": 30,
    }
    r = service.post("/decide/return", json={"request": ret, "customer": customer_body})
    assert r.status_code == 200 and r.json()["decision"]["outcome"] == "inspect"
    # where the answer's time went: the model call, the rules, the ledger write
    timing = dict(m.strip().split(";dur=") for m in r.headers["server-timing"].split(","))
    assert list(timing) == ["model", "decide", "ledger"]
    assert all(float(ms) >= 0 for ms in timing.values())
    claim = {
        "claim_id": 1,
        "order_id": 5,
        "customer_id": 42,
        "claimed_at": "2025-03-08T10:00:00",
        "claim_type": "item_not_received",
        "amount": 30,
        "carrier_status": "lost",
    }
    r = service.post("/decide/claim", json={"request": claim, "customer": customer_body})
    assert r.json()["decision"]["outcome"] == "fast_payout"
    items = [
        {
            "customer": {**customer_body, "customer_id": i, "birth_date": "1990-06-10"},
            "now": "2025-06-10T10:00:00",
        }
        for i in (100, 101)
    ]
    r = service.post("/decide/daily-batch", json={"items": items})
    assert r.status_code == 200
    assert [d["decision"]["outcome"] for d in r.json()["decisions"]] == ["birthday", "birthday"]


def test_bad_input_and_auth(service, customer_body):
    r = service.post(
        "/decide/order-event", json={"event": {"event_type": "exploded"}, "customer": customer_body}
    )
    assert 400 <= r.status_code < 500 and "event_type" in r.text
    r = service.post(
        "/decide/return",
        json={
            "request": {
                "return_id": 1,
                "order_id": 5,
                "customer_id": 42,
                "requested_at": "2025-03-08T10:00:00",
                "amount": 3,
            },
            "customer": {**customer_body, "tier": "diamond"},
        },
    )
    assert r.status_code == 400 and "diamond" in r.text
    assert service.get("/loyalty/abc/balance").status_code == 400
    anon = httpx.post(f"{service.base_url}/decide/claim", json={})
    assert anon.status_code == 401


def test_daily_batch_without_consent_sends_no_marketing(service):
    """A customer sent without consent fields is not opted in: no birthday e-mail."""
    bare = {"customer_id": 300, "tier": "silver", "birth_date": "1990-06-10"}
    items = [{"customer": bare, "now": "2025-06-10T10:00:00"}]
    r = service.post("/decide/daily-batch", json={"items": items})
    assert r.status_code == 200, r.text
    d = r.json()["decisions"][0]["decision"]
    assert not [m for m in d["messages"] if m["category"] == "marketing"]
    opted = [{"customer": {**bare, "email_opt_in": True}, "now": "2025-06-10T10:00:00"}]
    r = service.post("/decide/daily-batch", json={"items": opted})
    sent = [m["message_type"] for m in r.json()["decisions"][0]["decision"]["messages"]]
    assert "birthday" in sent


def test_preference_centre_and_one_click_unsubscribe_over_http(service, customer_body):
    from ppx.rules.messages.unsubscribe import Scope, make_token

    r = service.get("/preferences/77")
    assert r.status_code == 200 and r.json()["kinds"]["out_for_delivery"]["channels"]["sms"]
    r = service.put("/preferences/77", json={"kinds": {"out_for_delivery": {"sms": False}}})
    assert r.status_code == 200
    assert r.json()["kinds"]["out_for_delivery"]["channels"]["sms"] is False
    bad = service.put("/preferences/77", json={"kinds": {"order_confirmation": False}})
    assert bad.status_code == 400 and "cannot be turned off" in bad.text
    assert httpx.get(f"{service.base_url}/preferences/77").status_code == 401  # brand API
    # One-click (RFC 8058): no bearer token, the link's signature is the authority.
    token = make_token(Scope(77, "review_request", "email"), "link-secret")
    r = httpx.post(
        f"{service.base_url}/preferences/unsubscribe",
        params={"token": token},
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["preferences"]["kinds"]["review_request"]["channels"]["email"] is False
    # The preference page the footer links to: a channel-wide token, a form.
    page_token = make_token(Scope(77, "*", "email"), "link-secret")
    page = httpx.get(
        f"{service.base_url}/preferences/page", params={"token": page_token, "lang": "ja"}
    )
    assert page.status_code == 200 and "メッセージの受信設定" in page.text
    saved = httpx.post(
        f"{service.base_url}/preferences/page",
        params={"token": page_token, "lang": "ja"},
        data={"kind": ["shipped", "out_for_delivery", "delivered"]},
    )
    assert saved.status_code == 200 and "受信設定を保存しました" in saved.text
    email = service.get("/preferences/77").json()["kinds"]
    assert email["shipped"]["channels"]["email"] and not email["thank_you"]["channels"]["email"]
    assert email["order_confirmation"]["channels"]["email"]  # locked: stays on
    one_kind = httpx.get(f"{service.base_url}/preferences/page", params={"token": token})
    assert one_kind.status_code == 403  # a one-click token does not open the page
    forged = make_token(Scope(77, "review_request", "email"), "guess")
    r = httpx.post(f"{service.base_url}/preferences/unsubscribe", params={"token": forged})
    assert r.status_code == 403
    # The decision respects the stored preference: the stage goes out on another channel.
    event = {
        "event_type": "out_for_delivery",
        "order_id": 8,
        "customer_id": 77,
        "occurred_at": "2025-03-05T10:00:00",
    }
    cust = {
        **customer_body,
        "customer_id": 77,
        "sms_opt_in": True,
        "push_opt_in": False,
        "opted_out_channels": ["push"],
        "email": "c77@example.com",
    }
    r = service.post("/decide/order-event", json={"event": event, "customer": cust})
    assert r.status_code == 200, r.text
    (m,) = r.json()["decision"]["messages"]
    assert m["message_type"] == "out_for_delivery" and m["channel"] == "email"
    assert [o["message_key"] for o in r.json()["outbox"]] == ["out_for_delivery:77:order:8"]


def test_delivery_receipt_routes_are_mounted_and_check_the_gateways_proof(service):
    """Open to the gateways (no API token) but only with their signature or token."""
    from ppx.rules.messages.receipts import twilio_signature

    push = f"{service.base_url}/receipts/push"
    receipt = {"id": "nobody", "status": "delivered"}
    assert httpx.post(push, json=receipt).status_code == 403  # not 401: no API token needed
    r = httpx.post(push, json=receipt, headers={"Authorization": "Bearer push-token"})
    assert r.status_code == 200 and r.json()["outcome"] == "unknown_id"
    sms = f"{service.base_url}/receipts/sms"
    form = {"MessageSid": "SMnobody", "MessageStatus": "delivered"}
    assert httpx.post(sms, data=form).status_code == 403
    signed = {"X-Twilio-Signature": twilio_signature("sms-token", sms, form.items())}
    r = httpx.post(sms, data=form, headers=signed)
    assert r.status_code == 200 and r.json()["outcome"] == "unknown_id"


def test_subscription_and_return_routes_are_mounted_and_guarded(service):
    sub = {
        "customer_id": 42,
        "product_id": 7,
        "cadence_days": 30,
        "price": 20,
        "next_delivery_at": "2099-01-10T06:00:00",
    }
    assert service.put("/subscriptions/8", json=sub).status_code == 200
    r = service.post("/subscriptions/8/resume", json={"request_key": "k1"})
    assert r.status_code == 409
    r = service.post("/subscriptions/8/skip", json={"request_key": "k2"})
    assert r.status_code == 200 and r.json()["events"] == ["skip"]
    # the churn model is down here: the default policy has save offers off -> cancelled
    r = service.post("/subscriptions/8/cancel", json={"request_key": "k3"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert service.get("/returns/77").status_code == 404
    anon = httpx.post(f"{service.base_url}/subscriptions/8/skip", json={"request_key": "k4"})
    assert anon.status_code == 401
