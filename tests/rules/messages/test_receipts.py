"""Delivery receipts: the SMS status callback (Twilio signature) and the push callback,
recorded on the outbox rows forward only, over the /receipts routes in process."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from types import SimpleNamespace
from urllib.parse import parse_qs

import pytest
from starlette.testclient import TestClient

from ppx.rules.messages.gateways import SmsConfig
from ppx.rules.messages.outbox import NewMessage, SentContent, new_owner
from ppx.rules.messages.preferences import PreferenceStore
from ppx.rules.messages.receipts import receipt_count, twilio_signature
from ppx.rules.messages.sender import send_batch
from serving.receipt_routes import receipts_app

TOKEN, PUSH_TOKEN = "sms-auth-token", "push-token"
PUBLIC = "https://decisions.example"
SMS_URL = f"{PUBLIC}/receipts/sms"


def _msg(i: int, channel: str = "sms") -> NewMessage:
    return NewMessage(
        message_key=f"delay_notice:{i}:order:{i}",
        customer_id=i,
        message_type="delay_notice",
        channel=channel,
        category="transactional",
        content={"order_id": i},
        send_after=datetime(2025, 1, 1),
        to_address=f"+4930{i:07d}" if channel == "sms" else f"device-{i}",
    )


def _sent(outbox, i: int, channel: str = "sms") -> str:
    """A row the gateway accepted; returns the gateway's id for it."""
    outbox.enqueue([_msg(i, channel)])
    owner = new_owner()
    (row,) = outbox.claim(owner, channel=channel)
    pid = f"SM{i:032d}" if channel == "sms" else f"push-{i}"
    assert outbox.mark_sent(row.id, owner, None, pid)
    return pid


def _stdlib_signature(token: str, url: str, form: dict[str, str]) -> str:
    """Twilio's recipe written out independently: URL, then each name and value by name."""
    data = url + "".join(name + form[name] for name in sorted(form))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


@pytest.fixture()
def prefs(outbox, policy):
    return PreferenceStore(outbox.engine, policy)


@pytest.fixture()
def client(outbox, prefs):
    settings = SimpleNamespace(sms_auth_token=TOKEN, push_token=PUSH_TOKEN, public_url=PUBLIC)
    return TestClient(receipts_app(lambda: (outbox, prefs), settings=lambda: settings))


def _callback(client, sid: str, status: str, error: str | None = None, signature=None):
    form = {"MessageSid": sid, "MessageStatus": status, "To": "+49300000001", "AccountSid": "AC1"}
    if error is not None:
        form["ErrorCode"] = error
    sig = _stdlib_signature(TOKEN, SMS_URL, form) if signature is None else signature
    return client.post("/sms", data=form, headers={"X-Twilio-Signature": sig})


def test_signature_matches_twilios_documented_example():
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params.items()) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio_signature("12345", url, params.items()) == _stdlib_signature("12345", url, params)


def test_a_signed_callback_records_the_delivery_and_keeps_the_send_state(client, outbox):
    sid = _sent(outbox, 1)
    r = _callback(client, sid, "delivered")
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "recorded" and r.json()["delivery_status"] == "delivered"
    row = outbox.row(message_key="delay_notice:1:order:1")
    assert row["status"] == "sent" and row["delivery_status"] == "delivered"
    assert row["delivery_at"] is not None and row["delivery_error"] is None


def test_a_wrong_or_missing_signature_is_refused_with_403(client, outbox):
    sid = _sent(outbox, 2)
    wrong = _stdlib_signature("another-token", SMS_URL, {"MessageSid": sid})
    r = _callback(client, sid, "delivered", signature=wrong)
    assert r.status_code == 403 and "wrong X-Twilio-Signature" in r.json()["error"]
    r = client.post("/sms", data={"MessageSid": sid, "MessageStatus": "delivered"})
    assert r.status_code == 403 and "missing X-Twilio-Signature" in r.json()["error"]
    # signed for "sent", sent with "delivered": the body was changed on the way
    signed = _stdlib_signature(TOKEN, SMS_URL, {"MessageSid": sid, "MessageStatus": "sent"})
    r = client.post(
        "/sms",
        data={"MessageSid": sid, "MessageStatus": "delivered"},
        headers={"X-Twilio-Signature": signed},
    )
    assert r.status_code == 403
    assert outbox.row(message_key="delay_notice:2:order:2")["delivery_status"] is None


def test_receipts_only_move_forward(client, outbox):
    sid = _sent(outbox, 3)
    key = "delay_notice:3:order:3"
    assert _callback(client, sid, "sent").json()["outcome"] == "recorded"
    assert _callback(client, sid, "delivered").json()["outcome"] == "recorded"
    late = _callback(client, sid, "sent")  # a retried earlier callback arriving late
    assert late.status_code == 200 and late.json()["outcome"] == "stale"
    assert late.json()["delivery_status"] == "delivered"
    assert _callback(client, sid, "undelivered", "30003").json()["outcome"] == "stale"
    assert outbox.row(message_key=key)["delivery_status"] == "delivered"
    assert _callback(client, sid, "read").json()["outcome"] == "recorded"
    assert outbox.row(message_key=key)["delivery_status"] == "read"


def test_an_undelivered_receipt_keeps_the_providers_error_code(client, outbox, prefs):
    sid = _sent(outbox, 4)
    r = _callback(client, sid, "undelivered", "30003")
    assert r.status_code == 200 and r.json()["channel_turned_off"] is False
    row = outbox.row(message_key="delay_notice:4:order:4")
    assert row["delivery_status"] == "undelivered" and row["delivery_error"] == "30003"
    assert prefs.opt_outs(4) == ([], [])  # unreachable is not an opt-out


def test_an_unknown_sid_is_answered_200_and_counted(client, outbox):
    before = receipt_count("sms", "unknown_id")
    r = _callback(client, "SMnotours", "delivered")
    assert r.status_code == 200 and r.json()["outcome"] == "unknown_id"
    assert receipt_count("sms", "unknown_id") == before + 1
    assert outbox.delivery_counts_by_channel() == {}


@pytest.mark.parametrize("code", ["21610", "30004"])
def test_a_stopped_or_blocked_number_turns_sms_off(client, outbox, prefs, code):
    sid = _sent(outbox, 5)
    r = _callback(client, sid, "failed" if code == "21610" else "undelivered", code)
    assert r.status_code == 200 and r.json()["channel_turned_off"] is True
    assert prefs.opt_outs(5) == (["sms"], [])
    # the same path as the send-time refusal: the preference row says where it came from
    from sqlalchemy import text

    with outbox.engine.connect() as conn:
        source = conn.execute(
            text("SELECT source FROM message_preferences WHERE customer_id = 5")
        ).scalar_one()
    assert source == "gateway_stop"


def test_a_callback_without_sid_or_status_is_a_400(client):
    form = {"To": "+49300000001"}
    r = client.post(
        "/sms", data=form, headers={"X-Twilio-Signature": _stdlib_signature(TOKEN, SMS_URL, form)}
    )
    assert r.status_code == 400 and "MessageSid" in r.json()["error"]


def test_push_receipts_need_the_push_token(client, outbox):
    pid = _sent(outbox, 6, channel="push")
    body = {"id": pid, "status": "delivered", "error": None}
    r = client.post("/push", json=body, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 403 and "bearer token" in r.json()["error"]
    assert client.post("/push", json=body).status_code == 403
    assert outbox.row(message_key="delay_notice:6:order:6")["delivery_status"] is None
    auth = {"Authorization": f"Bearer {PUSH_TOKEN}"}
    r = client.post("/push", json=body, headers=auth)
    assert r.status_code == 200 and r.json()["outcome"] == "recorded"
    failed = {"id": pid, "status": "failed", "error": "Unregistered"}
    assert client.post("/push", json=failed, headers=auth).json()["outcome"] == "stale"
    r = client.post("/push", json={"status": "delivered"}, headers=auth)
    assert r.status_code == 400 and '"id"' in r.json()["error"]
    # an SMS sid on the push route is not the push row's
    sms_sid = _sent(outbox, 7)
    r = client.post("/push", json={"id": sms_sid, "status": "delivered"}, headers=auth)
    assert r.json()["outcome"] == "unknown_id"


def test_sms_requests_carry_the_status_callback(outbox, http_gateway):
    outbox.enqueue([_msg(8)])
    cfg = SmsConfig(
        base_url=http_gateway.url,
        account_sid="AC1",
        auth_token=TOKEN,
        from_number="+15550001",
        status_callback=SMS_URL,
    )

    def render(row):
        return SentContent(subject="s", body_text="Kaffee: late", body_html=None, locale="en")

    assert send_batch(outbox, cfg, new_owner(), render).sent == 1
    (req,) = http_gateway.requests
    form = {k: v[0] for k, v in parse_qs(req["body"].decode()).items()}
    assert form["StatusCallback"] == SMS_URL


def test_the_status_callback_comes_from_an_explicit_public_url(monkeypatch):
    from ppx.config import Settings

    sms = {
        "sms_base_url": "http://x",
        "sms_account_sid": "AC1",
        "sms_auth_token": "t",
        "sms_from": "+1555",
    }
    monkeypatch.delenv("PPX_PUBLIC_URL", raising=False)
    assert SmsConfig.from_settings(Settings(**sms)).status_callback is None
    given = Settings(**sms, public_url="https://decisions.example/")
    assert SmsConfig.from_settings(given).status_callback == SMS_URL


def test_status_command_counts_receipts_per_channel(client, outbox, ledger_url, monkeypatch):
    from typer.testing import CliRunner

    from ppx.cli import app

    for i, status in ((11, "delivered"), (12, "undelivered"), (13, "read"), (14, "sent")):
        _callback(client, _sent(outbox, i), status)
    _sent(outbox, 15)  # no receipt yet
    monkeypatch.setenv("COLUMNS", "200")
    res = CliRunner().invoke(app, ["messages", "status", "--ledger-url", ledger_url])
    assert res.exit_code == 0, res.output
    table = res.output.split("delivery receipts of sent rows")[1]
    lines = [ln.replace("┃", "│") for ln in table.splitlines()]
    rows = [ln for ln in lines if ln.count("│") > 2]
    cells = {r.split("│")[1].strip(): [c.strip() for c in r.split("│")[2:-1]] for r in rows}
    assert cells["channel"] == [
        "delivered",
        "read",
        "undelivered",
        "failed",
        "in transit",
        "no receipt",
    ]
    assert cells["sms"] == ["1", "1", "1", "0", "1", "1"]


def test_receipts_without_a_configured_secret_are_a_503(outbox, prefs):
    settings = SimpleNamespace(sms_auth_token=None, push_token=None, public_url=PUBLIC)
    c = TestClient(receipts_app(lambda: (outbox, prefs), settings=lambda: settings))
    r = c.post("/sms", data={"MessageSid": "SM1", "MessageStatus": "delivered"})
    assert r.status_code == 503 and "PPX_SMS_AUTH_TOKEN" in r.json()["error"]
    r = c.post("/push", json={"id": "p1", "status": "delivered"})
    assert r.status_code == 503 and "PPX_PUSH_TOKEN" in r.json()["error"]


def test_a_status_ppx_does_not_know_changes_nothing(client, outbox):
    sid = _sent(outbox, 16)
    r = _callback(client, sid, "canceled")
    assert r.status_code == 200 and r.json()["outcome"] == "unknown_status"
    assert outbox.row(message_key="delay_notice:16:order:16")["delivery_status"] is None
