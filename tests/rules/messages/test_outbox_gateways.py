"""SMS and push rows of the outbox, sent to a local HTTP server standing in for the gateways."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from ppx.rules.messages.compose import Renderer, SenderIdentity, outbox_rows
from ppx.rules.messages.gateways import (
    PushConfig,
    SmsConfig,
    missing_settings,
    retry_after_seconds,
)
from ppx.rules.messages.outbox import NewMessage, Outbox, new_owner
from ppx.rules.messages.render import LoyaltyView, render_short
from ppx.rules.messages.sender import send_batch, send_until_empty
from ppx.rules.messages.short import segments, sms_body
from ppx.rules.types import CustomerContext, Decision, PlannedMessage

PAST = datetime(2025, 1, 1)
SECRET = "gateway-test-secret"
SID, TOKEN = "AC0123456789", "sms-token"


def _tracking(cid: int, order_id: int, lang: str) -> str:
    return f"https://shop.example/portal/auth?token=t{cid}.{order_id}.{lang}"


@pytest.fixture()
def renderer(policy):
    identity = SenderIdentity("Kaffee", "https://shop.example", SECRET, _tracking)
    return Renderer(policy, identity, lambda cid: LoyaltyView(balance=500))


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _offset_for(local_hour: int, now: datetime) -> int:
    """A UTC offset (minutes, within +-12 h) at which ``now`` is ``local_hour``:00 local."""
    minutes = (local_hour * 60 - (now.hour * 60 + now.minute)) % (24 * 60)
    return minutes - 24 * 60 if minutes > 12 * 60 else minutes


def _msg(i: int, channel: str = "sms", **kw) -> NewMessage:
    """A delay notice, queued for a customer for whom it is midday (a sender given the
    policy defers rows due in quiet hours)."""
    base = dict(
        message_key=f"delay_notice:{i}:order:{i}",
        customer_id=i,
        message_type="delay_notice",
        channel=channel,
        category="transactional",
        content={
            "order_id": i,
            "estimated_delivery": "2025-03-04",
            "estimated_latest": "2025-03-06",
        },
        send_after=PAST,
        locale="en",
        to_address=f"+4930{i:07d}" if channel == "sms" else f"device-{i}",
        utc_offset_minutes=_offset_for(12, _utcnow()),
    )
    base.update(kw)
    return NewMessage(**base)


def _sms(server, **kw) -> SmsConfig:
    return SmsConfig(
        base_url=server.url, account_sid=SID, auth_token=TOKEN, from_number="+15550001", **kw
    )


def _push(server) -> PushConfig:
    return PushConfig(url=f"{server.url}/v1/push", token="push-token")


def _form(req) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(req["body"].decode()).items()}


def _row(outbox, customer_id: int) -> dict:
    return next(r for r in outbox.rows() if r["customer_id"] == customer_id)


def test_sms_row_is_posted_in_the_messages_shape_with_a_short_body(outbox, http_gateway, renderer):
    outbox.enqueue([_msg(1)])
    rep = send_until_empty(outbox, _sms(http_gateway), new_owner(), renderer)
    assert (rep.sent, rep.failed, rep.retried) == (1, 0, 0)
    (req,) = http_gateway.requests
    assert req["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    basic = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert req["headers"]["Authorization"] == f"Basic {basic}"
    assert req["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    form = _form(req)
    assert set(form) == {"To", "From", "Body"}
    assert form["To"] == "+49300000001" and form["From"] == "+15550001"
    body = form["Body"]
    assert body == (
        "Kaffee: We are sorry: your order 1 will arrive later than we promised. New estimate:"
        f" between March 4, 2025 and March 6, 2025. {_tracking(1, 1, 'en')} Reply STOP to opt out."
    )
    # the words and the opt-out make one segment; the tracking link adds a second one
    assert segments(body.replace(f" {_tracking(1, 1, 'en')}", "")).parts == 1
    row = _row(outbox, 1)
    assert req["headers"]["Idempotency-Key"] == row["rfc_message_id"][1:33]
    assert row["status"] == "sent" and row["body_text"] == body and row["body_html"] is None
    assert row["subject"] == "Order 1 is running late"
    assert send_until_empty(outbox, _sms(http_gateway), new_owner(), renderer).claimed == 0


def test_sms_through_a_messaging_service_sends_no_from(outbox, http_gateway, renderer):
    outbox.enqueue([_msg(2)])
    cfg = SmsConfig(http_gateway.url, SID, TOKEN, messaging_service_sid="MG42")
    assert send_batch(outbox, cfg, new_owner(), renderer).sent == 1
    form = _form(http_gateway.requests[0])
    assert form["MessagingServiceSid"] == "MG42" and "From" not in form


@pytest.mark.parametrize("lang", ["en", "ja", "ru"])
@pytest.mark.parametrize(
    ("kind", "content"),
    [
        ("order_confirmation", {"order_id": 123456, "estimated_delivery": "2025-03-04"}),
        ("shipped", {"order_id": 123456, "estimated_delivery": "2025-03-04"}),
        ("out_for_delivery", {"order_id": 123456, "estimated_delivery": "2025-03-04"}),
        (
            "delay_notice",
            {
                "order_id": 123456,
                "estimated_delivery": "2025-03-04",
                "estimated_latest": "2025-03-06",
            },
        ),
        ("delivered", {"order_id": 123456, "delivered_at": "2025-03-04T23:30:00"}),
        ("return_update", {"return_id": 3, "order_id": 5, "outcome": "instant_refund"}),
        ("claim_update", {"claim_id": 4, "order_id": 5, "outcome": "fast_payout"}),
    ],
)
def test_common_sms_fit_one_segment_and_carry_the_opt_out(policy, kind, content, lang):
    cust = CustomerContext(customer_id=1, locale=lang)
    short = render_short(kind, content, cust, policy, brand="Kaffee")
    body = sms_body(short, "Kaffee")
    seg = segments(body)
    assert seg.parts == 1, (body, seg)
    assert seg.encoding == ("GSM-7" if lang == "en" else "UCS-2")
    assert body.startswith("Kaffee: ") and body.endswith(short.opt_out) and "STOP" in body
    # what the message is about is in it (an order number or the kind's first words)
    assert "123456" in body or short.paragraphs[0] in body or short.subject in body


def test_segments_count_gsm_extension_and_ucs2():
    assert segments("a" * 160).parts == 1 and segments("a" * 161).parts == 2
    assert segments("€" * 80).units == 160 and segments("€" * 81).parts == 2
    assert segments("я" * 70).parts == 1 and segments("я" * 71).parts == 2
    assert segments("я" * 135).parts == 3  # 67 per part once split


def test_push_posts_the_documented_json_with_bearer_and_idempotency_key(
    outbox, http_gateway, renderer
):
    outbox.enqueue([_msg(3, channel="push", locale="ja")])
    rep = send_batch(outbox, _push(http_gateway), new_owner(), renderer)
    assert rep.sent == 1
    (req,) = http_gateway.requests
    assert req["path"] == "/v1/push"
    assert req["headers"]["Authorization"] == "Bearer push-token"
    assert req["headers"]["Content-Type"] == "application/json"
    row = _row(outbox, 3)
    key = row["rfc_message_id"][1:33]
    assert req["headers"]["Idempotency-Key"] == key
    payload = json.loads(req["body"])
    assert payload == {
        "id": key,
        "to": "device-3",
        "title": row["subject"],
        "body": row["body_text"],
        "url": _tracking(3, 3, "ja"),
        "kind": "delay_notice",
        "locale": "ja",
    }
    assert "3" in payload["title"] and "遅れ" in payload["title"]
    assert len(payload["body"]) <= 178 and row["status"] == "sent"


def test_429_waits_for_retry_after_then_sends_exactly_once(outbox, http_gateway, renderer):
    outbox.enqueue([_msg(4)])
    http_gateway.replies = [(429, {"Retry-After": "1"}, {"code": 20429, "message": "Too Many"})]
    before = _utcnow()
    rep = send_batch(outbox, _sms(http_gateway), new_owner(), renderer)
    after = _utcnow()
    assert (rep.sent, rep.retried, rep.failed) == (0, 1, 0)
    row = _row(outbox, 4)
    assert row["status"] == "pending" and "429" in row["last_error"]
    # the gateway's second, not the outbox's 60 s back-off
    assert before + timedelta(seconds=1) <= row["next_attempt_at"] <= after + timedelta(seconds=1)
    assert send_batch(outbox, _sms(http_gateway), new_owner(), renderer).claimed == 0
    time.sleep(max(0.0, (row["next_attempt_at"] - _utcnow()).total_seconds()) + 0.05)
    rep = send_batch(outbox, _sms(http_gateway), new_owner(), renderer)
    assert rep.sent == 1 and len(http_gateway.accepted) == 1 and http_gateway.count() == 2
    keys = {r["headers"]["Idempotency-Key"] for r in http_gateway.requests}
    assert len(keys) == 1 and _row(outbox, 4)["status"] == "sent"


def test_400_fails_for_good_with_the_providers_message(outbox, http_gateway, renderer):
    outbox.enqueue([_msg(5)])
    words = "The 'To' number +49300000005 is not a valid phone number."
    http_gateway.replies = [(400, {}, {"code": 21211, "message": words, "status": 400})]
    rep = send_batch(outbox, _sms(http_gateway), new_owner(), renderer)
    assert (rep.sent, rep.retried, rep.failed) == (0, 0, 1)
    row = _row(outbox, 5)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert row["last_error"] == f"HTTP 400: 21211 {words}"
    assert send_batch(outbox, _sms(http_gateway), new_owner(), renderer).claimed == 0


@pytest.mark.parametrize("status", [408, 500, 503])
def test_timeouts_and_server_errors_are_retried_with_back_off(
    outbox, http_gateway, renderer, status
):
    outbox.enqueue([_msg(6, channel="push")])
    http_gateway.replies = [(status, {}, {"error": "upstream unavailable"})]
    before = _utcnow()
    rep = send_batch(outbox, _push(http_gateway), new_owner(), renderer)
    assert (rep.retried, rep.failed) == (1, 0)
    row = _row(outbox, 6)
    assert row["status"] == "pending"
    assert row["last_error"] == f"HTTP {status}: upstream unavailable"
    assert row["next_attempt_at"] >= before + timedelta(seconds=45)  # 60 s base, -25 % jitter


def test_connection_refused_is_retried(outbox, renderer):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outbox.enqueue([_msg(7)])
    cfg = SmsConfig(f"http://127.0.0.1:{port}", SID, TOKEN, from_number="+15550001")
    rep = send_batch(outbox, cfg, new_owner(), renderer)
    assert (rep.retried, rep.failed) == (1, 0)
    row = _row(outbox, 7)
    assert row["status"] == "pending" and "ConnectError" in row["last_error"]


def test_a_2xx_without_a_sid_is_not_taken_for_an_accepted_sms(outbox, http_gateway, renderer):
    outbox.enqueue([_msg(8)])
    http_gateway.replies = [(200, {}, {"hello": "a web page, not the API"})]
    rep = send_batch(outbox, _sms(http_gateway), new_owner(), renderer)
    assert rep.failed == 1 and "without a message sid" in _row(outbox, 8)["last_error"]


class _Killed(BaseException):
    """The process dying between the gateway's acceptance and the commit."""


class _DiesAfterAccept(Outbox):
    def mark_sent(self, *a, **kw):
        raise _Killed


@pytest.mark.parametrize("channel", ["sms", "push"])
def test_killed_after_accept_resends_with_the_same_idempotency_key(
    outbox, http_gateway, renderer, channel
):
    outbox.enqueue([_msg(9, channel=channel)])
    cfg = _sms(http_gateway) if channel == "sms" else _push(http_gateway)
    dying = _DiesAfterAccept(outbox.engine, create=False)
    with pytest.raises(_Killed):
        send_batch(dying, cfg, new_owner(), renderer, lease_seconds=0.3)
    assert len(http_gateway.accepted) == 1 and outbox.counts()["sending"] == 1
    assert send_batch(outbox, cfg, new_owner(), renderer).claimed == 0  # still leased
    time.sleep(0.35)  # the dead sender's lease runs out
    rep = send_batch(outbox, cfg, new_owner(), renderer)
    assert rep.sent == 1 and outbox.counts()["sent"] == 1
    first, second = http_gateway.accepted
    key = first["headers"]["Idempotency-Key"]
    assert second["headers"]["Idempotency-Key"] == key == _row(outbox, 9)["rfc_message_id"][1:33]
    assert first["body"] == second["body"]  # the same message, recognisably


@pytest.mark.parametrize(
    ("channel", "why"),
    [("sms", "no phone number (customers.phone)"), ("push", "no device id (customers.device_id)")],
)
def test_a_row_without_phone_or_device_fails_for_good(outbox, http_gateway, renderer, channel, why):
    outbox.enqueue([_msg(10, channel=channel, to_address=None)])
    cfg = _sms(http_gateway) if channel == "sms" else _push(http_gateway)
    rep = send_batch(outbox, cfg, new_owner(), renderer)
    assert rep.failed == 1 and http_gateway.count() == 0
    row = _row(outbox, 10)
    assert row["status"] == "failed" and row["last_error"] == why


def test_outbox_rows_carry_the_channels_address(policy):
    cust = CustomerContext(
        customer_id=11, email="a@example.com", phone="+4930111", device_id="dev-11"
    )
    planned = [
        PlannedMessage(
            message_type="shipped",
            channel=ch,
            category="transactional",
            send_at=PAST,
            reason="test",
            content={"order_id": n},
        )
        for n, ch in enumerate(["email", "sms", "push"], start=1)
    ]
    d = Decision(decision="order_event", customer_id=11, policy_version="t", messages=planned)
    got = {m.channel: m.to_address for m in outbox_rows(d, cust)}
    assert got == {"email": "a@example.com", "sms": "+4930111", "push": "dev-11"}


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2025, 3, 4, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Tue, 04 Mar 2025 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_missing_settings_name_what_to_set():
    from ppx.config import Settings

    s = Settings(sms_base_url="http://x", sms_account_sid="AC1", push_url="http://p")
    assert missing_settings("sms", s) == [
        "PPX_SMS_AUTH_TOKEN",
        "PPX_SMS_FROM (or PPX_SMS_MESSAGING_SERVICE_SID)",
    ]
    assert missing_settings("push", s) == ["PPX_PUSH_TOKEN"]
    assert SmsConfig.from_settings(s) is None and PushConfig.from_settings(s) is None
    full = Settings(
        sms_base_url="http://x", sms_account_sid="AC1", sms_auth_token="t", sms_from="+1555"
    )
    assert SmsConfig.from_settings(full).url == "http://x/2010-04-01/Accounts/AC1/Messages.json"


@pytest.fixture()
def cli_env(monkeypatch):
    """A CLI run's settings from the environment (the settings cache cleared around it)."""
    from ppx.config import get_settings

    for var in (
        "PPX_SMS_BASE_URL",
        "PPX_SMS_ACCOUNT_SID",
        "PPX_SMS_AUTH_TOKEN",
        "PPX_SMS_FROM",
        "PPX_SMS_MESSAGING_SERVICE_SID",
        "PPX_PUSH_URL",
        "PPX_PUSH_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PPX_UNSUBSCRIBE_SECRET", SECRET)
    monkeypatch.setenv("PPX_PORTAL_SECRET", "")
    monkeypatch.setenv("COLUMNS", "200")  # rich: one line per message
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_send_command_leaves_unconfigured_channels_pending_and_filters(
    outbox, http_gateway, ledger_url, cli_env, policy
):
    from typer.testing import CliRunner

    from ppx.cli import app
    from ppx.config import get_settings
    from ppx.rules.messages.preferences import PreferenceStore

    outbox.enqueue([_msg(21), _msg(22, channel="push")])
    cli_env.setenv("PPX_PUSH_URL", f"{http_gateway.url}/v1/push")
    cli_env.setenv("PPX_PUSH_TOKEN", "push-token")
    get_settings.cache_clear()
    run = CliRunner().invoke
    res = run(app, ["messages", "send", "--ledger-url", ledger_url])
    assert res.exit_code == 0, res.output
    assert res.output.count("sms: no gateway configured, 1 pending row stays pending") == 1
    assert "PPX_SMS_BASE_URL, PPX_SMS_ACCOUNT_SID, PPX_SMS_AUTH_TOKEN" in res.output
    assert _row(outbox, 21)["status"] == "pending" and _row(outbox, 22)["status"] == "sent", (
        res.output
    )
    assert [r["path"] for r in http_gateway.requests] == ["/v1/push"]
    res = run(app, ["messages", "send", "--ledger-url", ledger_url, "--channel", "sms"])
    assert res.exit_code == 2 and "PPX_SMS_AUTH_TOKEN" in res.output
    assert _row(outbox, 21)["status"] == "pending"

    for var, value in {
        "PPX_SMS_BASE_URL": http_gateway.url,
        "PPX_SMS_ACCOUNT_SID": SID,
        "PPX_SMS_AUTH_TOKEN": TOKEN,
        "PPX_SMS_FROM": "+15550001",
    }.items():
        cli_env.setenv(var, value)
    get_settings.cache_clear()
    outbox.enqueue([_msg(23, channel="push")])
    res = run(app, ["messages", "send", "--ledger-url", ledger_url, "--channel", "sms"])
    assert res.exit_code == 0, res.output
    assert _row(outbox, 21)["status"] == "sent"
    assert _row(outbox, 23)["status"] == "pending"  # not this channel
    assert http_gateway.requests[-1]["path"].endswith("/Messages.json")
    sid = http_gateway.requests[-1]["response"]["sid"]

    # the command reads the preference centre again: an opt-out since queueing holds
    outbox.enqueue([_msg(24)])
    PreferenceStore(outbox.engine, policy).put(24, {"kinds": {"delay_notice": False}})
    res = run(app, ["messages", "send", "--ledger-url", ledger_url, "--channel", "sms"])
    assert res.exit_code == 0, res.output
    assert _row(outbox, 24)["status"] == "suppressed" and http_gateway.count() == 2

    res = run(app, ["messages", "status", "--ledger-url", ledger_url])
    assert res.exit_code == 0
    counts_table, receipts_table = res.output.split("delivery receipts of sent rows")
    rows = [ln.replace("┃", "│") for ln in counts_table.splitlines()]
    lines = {ln.split("│")[1].strip(): ln for ln in rows if ln.count("│") > 2}
    cells = {k: [c.strip() for c in v.split("│")[2:-1]] for k, v in lines.items()}
    assert cells["channel"] == ["pending", "sending", "sent", "suppressed", "failed", "total"]
    assert cells["push"] == ["1", "0", "1", "0", "0", "2"]
    assert cells["sms"] == ["0", "0", "1", "1", "0", "2"]
    assert "no receipt" in receipts_table  # sent rows, no receipt yet (see test_receipts)

    # one row: the gateway's id of a sent row, the reason of a suppressed one
    def field(output: str, name: str) -> str:
        cells = [ln.split("│") for ln in output.splitlines() if ln.count("│") == 3]
        return next(c[2].strip() for c in cells if c[1].strip() == name)

    res = run(app, ["messages", "status", "--ledger-url", ledger_url, "--id", "1"])
    assert res.exit_code == 0, res.output
    assert field(res.output, "message_key") == "delay_notice:21:order:21"
    assert field(res.output, "provider_message_id") == sid
    key = "delay_notice:24:order:24"
    res = run(app, ["messages", "status", "--ledger-url", ledger_url, "--key", key])
    assert field(res.output, "status") == "suppressed"
    assert field(res.output, "last_error") == (
        "customer opted out of delay_notice on sms after it was queued"
    )
    res = run(app, ["messages", "status", "--ledger-url", ledger_url, "--id", "999"])
    assert res.exit_code == 2 and "no row with id 999" in res.output


def test_a_number_that_replied_stop_turns_sms_off_in_the_preference_centre(
    outbox, http_gateway, ledger_url, cli_env, policy
):
    from typer.testing import CliRunner

    from ppx.cli import app
    from ppx.config import get_settings
    from ppx.rules.messages.preferences import PreferenceStore

    for var, value in {
        "PPX_SMS_BASE_URL": http_gateway.url,
        "PPX_SMS_ACCOUNT_SID": SID,
        "PPX_SMS_AUTH_TOKEN": TOKEN,
        "PPX_SMS_FROM": "+15550001",
    }.items():
        cli_env.setenv(var, value)
    get_settings.cache_clear()
    outbox.enqueue([_msg(31), _msg(32)])
    stop = {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}
    http_gateway.replies = [(400, {}, stop)]
    res = CliRunner().invoke(app, ["messages", "send", "--ledger-url", ledger_url])
    assert res.exit_code == 0, res.output
    refused, sent = sorted(outbox.rows(), key=lambda r: r["status"])
    assert refused["status"] == "failed" and "21610" in refused["last_error"]
    assert sent["status"] == "sent"
    prefs = PreferenceStore(outbox.engine, policy)
    assert prefs.opt_outs(refused["customer_id"]) == (["sms"], [])
    assert prefs.opt_outs(sent["customer_id"]) == ([], [])


def test_other_permanent_errors_leave_preferences_alone(outbox, http_gateway, renderer):
    outbox.enqueue([_msg(33)])
    http_gateway.replies = [(400, {}, {"code": 21211, "message": "not a valid phone number"})]
    seen = []
    send_batch(outbox, _sms(http_gateway), new_owner(), renderer, on_opted_out=seen.append)
    assert seen == [] and _row(outbox, 33)["status"] == "failed"


# --- opt-outs made after a row was queued, and the gateway's id -----------------------


@pytest.fixture()
def prefs(outbox, policy):
    from ppx.rules.messages.preferences import PreferenceStore

    return PreferenceStore(outbox.engine, policy)


def test_an_opt_out_made_after_queueing_suppresses_the_row(outbox, http_gateway, renderer, prefs):
    """Four SMS rows queued while every opt-in held; then customer 21 replies STOP (SMS off),
    22 turns delay notices off on SMS by one-click, 23 turns every kind off on SMS on the
    preference page. Only 23's order confirmation (a locked kind) and 24's row go out."""
    from ppx.rules.messages.unsubscribe import Scope

    confirmation = {"order_id": 23, "estimated_delivery": "2025-03-04"}
    outbox.enqueue(
        [
            _msg(21),
            _msg(22),
            _msg(23),
            _msg(
                23,
                message_key="order_confirmation:23:order:23",
                message_type="order_confirmation",
                content=confirmation,
            ),
            _msg(24),
        ]
    )
    prefs.put(21, {"channels": {"sms": False}}, source="gateway_stop")
    prefs.unsubscribe(Scope(22, "delay_notice", "sms"))
    prefs.set_channel_kinds(23, "sms", set())
    rep = send_until_empty(outbox, _sms(http_gateway), new_owner(), renderer, preferences=prefs)
    assert (rep.claimed, rep.sent, rep.suppressed, rep.failed) == (5, 2, 3, 0)
    assert sorted(_form(r)["To"] for r in http_gateway.requests) == [
        "+49300000023",
        "+49300000024",
    ]
    rows = {r["message_key"]: r for r in outbox.rows()}
    assert rows["order_confirmation:23:order:23"]["status"] == "sent"
    assert rows["delay_notice:24:order:24"]["status"] == "sent"
    why = {k: (r["status"], r["last_error"], r["sent_at"]) for k, r in rows.items()}
    assert why["delay_notice:21:order:21"] == (
        "suppressed",
        "customer opted out of every message on sms after it was queued",
        None,
    )
    for cid in (22, 23):
        assert why[f"delay_notice:{cid}:order:{cid}"] == (
            "suppressed",
            "customer opted out of delay_notice on sms after it was queued",
            None,
        )
    assert outbox.counts()["suppressed"] == 3
    assert outbox.counts_by_channel()["sms"]["suppressed"] == 3
    # settled for good: a later pass neither claims nor sends them
    assert send_until_empty(outbox, _sms(http_gateway), new_owner(), renderer).claimed == 0


def test_a_push_opt_out_after_queueing_is_honoured(outbox, http_gateway, renderer, prefs):
    outbox.enqueue([_msg(25, channel="push")])
    prefs.put(25, {"kinds": {"delay_notice": {"push": False}}})
    rep = send_batch(outbox, _push(http_gateway), new_owner(), renderer, preferences=prefs)
    assert (rep.sent, rep.suppressed) == (0, 1) and http_gateway.count() == 0
    assert _row(outbox, 25)["status"] == "suppressed"


def test_the_sms_sid_is_stored_on_the_row(outbox, http_gateway, renderer):
    outbox.enqueue([_msg(26), _msg(27)])
    assert send_until_empty(outbox, _sms(http_gateway), new_owner(), renderer).sent == 2
    for cid in (26, 27):
        (req,) = [r for r in http_gateway.accepted if _form(r)["To"] == f"+4930{cid:07d}"]
        assert _row(outbox, cid)["provider_message_id"] == req["response"]["sid"]
    assert _row(outbox, 26)["provider_message_id"] != _row(outbox, 27)["provider_message_id"]


@pytest.mark.parametrize(
    ("answer", "stored"),
    [({"id": "push-77", "status": "accepted"}, "push-77"), ({"status": "accepted"}, None)],
)
def test_the_push_gateways_id_is_stored_when_it_gives_one(
    outbox, http_gateway, renderer, answer, stored
):
    outbox.enqueue([_msg(28, channel="push")])
    http_gateway.replies = [(202, {}, answer)]
    assert send_batch(outbox, _push(http_gateway), new_owner(), renderer).sent == 1
    row = _row(outbox, 28)
    assert row["status"] == "sent" and row["provider_message_id"] == stored


def test_a_row_due_in_the_customers_quiet_hours_waits_for_their_end(
    outbox, http_gateway, renderer, policy
):
    """Quiet hours 21:00-08:00 (the default policy): a delay notice due now, which is
    23:00 for customer 31, goes back to pending until 08:00 their time, its attempt not
    spent; the same notice at noon for customer 32, and an order confirmation (which does
    not respect quiet hours) at 23:00 for customer 33, are sent."""
    now = _utcnow()
    night, noon = _offset_for(23, now), _offset_for(12, now)
    confirmation = {"order_id": 33, "estimated_delivery": "2025-03-04"}
    outbox.enqueue(
        [
            _msg(31, utc_offset_minutes=night),
            _msg(32, utc_offset_minutes=noon),
            _msg(
                33,
                message_key="order_confirmation:33:order:33",
                message_type="order_confirmation",
                content=confirmation,
                utc_offset_minutes=night,
            ),
        ]
    )
    rep = send_until_empty(outbox, _sms(http_gateway), new_owner(), renderer, policy=policy)
    assert (rep.claimed, rep.sent, rep.deferred, rep.failed) == (3, 2, 1, 0)
    assert sorted(_form(r)["To"] for r in http_gateway.requests) == [
        "+49300000032",
        "+49300000033",
    ]
    row = _row(outbox, 31)
    local = now + timedelta(minutes=night)
    morning = datetime.combine(local.date() + timedelta(days=1), datetime.min.time()).replace(
        hour=8
    )
    assert row["status"] == "pending" and row["attempts"] == 0
    assert row["next_attempt_at"] == morning - timedelta(minutes=night)
    assert "quiet hours" in row["last_error"]
    # not due again before the morning: a second pass claims nothing
    assert send_until_empty(outbox, _sms(http_gateway), new_owner(), renderer).claimed == 0
