"""The outbox and the SMTP sender against a real (local, in-test) SMTP server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ppx.rules.messages.compose import Renderer, SenderIdentity
from ppx.rules.messages.outbox import NewMessage, Outbox, new_owner
from ppx.rules.messages.sender import SmtpConfig, send_batch, send_until_empty
from ppx.rules.messages.unsubscribe import Scope, read_token

PAST = datetime(2025, 1, 1)
SECRET = "outbox-test-secret"


def _msg(i: int, **kw) -> NewMessage:
    base = dict(
        message_key=f"shipped:{i}:order:{i}",
        customer_id=i,
        message_type="shipped",
        channel="email",
        category="transactional",
        content={"order_id": i, "estimated_delivery": "2025-03-04"},
        send_after=PAST,
        locale=["en", "ja", "ru"][i % 3],
        to_address=f"c{i}@example.com",
    )
    base.update(kw)
    return NewMessage(**base)


@pytest.fixture()
def renderer(policy):
    return Renderer(policy, SenderIdentity("Kaffee", "https://shop.example", SECRET))


def _utcnow() -> datetime:
    """The outbox's clock: naive UTC (whatever the machine's time zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _cfg(server) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=server.port, mail_from="shop@example.com")


def test_enqueue_is_idempotent(outbox: Outbox):
    assert outbox.enqueue([_msg(1), _msg(2)]) == [True, True]
    assert outbox.enqueue([_msg(2), _msg(3)]) == [False, True]
    assert outbox.counts()["pending"] == 3


def test_sends_each_row_once_rendered_with_unsubscribe_headers(outbox, smtp_server, renderer):
    outbox.enqueue([_msg(i) for i in range(1, 8)])
    outbox.enqueue([_msg(99, send_after=_utcnow() + timedelta(days=1))])  # not due yet
    rep = send_until_empty(outbox, _cfg(smtp_server), new_owner(), renderer, batch=3)
    assert rep.sent == 7
    assert outbox.counts() == {"pending": 1, "sending": 0, "sent": 7, "suppressed": 0, "failed": 0}
    got = {m["To"]: m for m in smtp_server.messages}
    assert len(smtp_server.messages) == 7 and len({m["Message-ID"] for m in got.values()}) == 7
    m = got["c1@example.com"]  # customer 1 writes Japanese
    assert m["Subject"] == "ご注文 1 を発送しました" and m["Content-Language"] == "ja"
    unsub = m["List-Unsubscribe"]
    assert unsub.startswith("<https://shop.example/preferences/unsubscribe?token=")
    assert read_token(unsub[1:-1].split("token=")[1], SECRET) == Scope(1, "shipped", "email")
    assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "2025年3月4日" in m.get_body(("plain",)).get_content()
    assert "<p>ご注文 1 が倉庫から発送されました。</p>" in m.get_body(("html",)).get_content()
    row = next(r for r in outbox.rows() if r["customer_id"] == 1)
    assert row["subject"] == m["Subject"] and row["unsubscribe_url"] == unsub[1:-1]
    again = send_until_empty(outbox, _cfg(smtp_server), new_owner(), renderer)
    assert again.sent == 0  # nothing twice


def test_a_row_that_cannot_render_fails_for_good(outbox, smtp_server, renderer):
    outbox.enqueue([_msg(1, content={"estimated_delivery": "2025-03-04"})])  # no order_id
    rep = send_batch(outbox, _cfg(smtp_server), new_owner(), renderer)
    assert (rep.sent, rep.failed) == (0, 1) and not smtp_server.messages
    (row,) = outbox.rows()
    assert row["status"] == "failed" and "order_id" in row["last_error"]


def test_temporary_failure_backs_off_and_permanent_failure_stops(outbox, smtp_server, renderer):
    outbox.enqueue([_msg(1), _msg(2), _msg(3, to_address=None)])
    smtp_server.replies = ["451 4.3.0 try again later", "550 5.1.1 no such user"]
    before = _utcnow()
    rep = send_batch(outbox, _cfg(smtp_server), new_owner(), renderer)
    after = _utcnow()
    assert (rep.sent, rep.retried, rep.failed) == (0, 1, 2)
    rows = {r["customer_id"]: r for r in outbox.rows()}
    assert rows[1]["status"] == "pending" and rows[1]["attempts"] == 1
    # 60 s base, +-25 % jitter, counted from the failure (between before and after
    # whatever the machine's load made of the batch's duration)
    due = rows[1]["next_attempt_at"]
    assert before + timedelta(seconds=45) <= due <= after + timedelta(seconds=75)
    assert rows[2]["status"] == "failed" and "550" in rows[2]["last_error"]
    assert rows[3]["status"] == "failed" and rows[3]["last_error"] == "no email address"
    # Not due yet: nothing is claimed until the back-off has passed.
    assert send_batch(outbox, _cfg(smtp_server), new_owner(), renderer).claimed == 0


def test_concurrent_senders_claim_disjoint_rows(outbox, smtp_server):
    outbox.enqueue([_msg(i) for i in range(1, 41)])
    claimed: list[int] = []
    lock = threading.Lock()

    def work():
        ob = Outbox(outbox.engine, create=False)
        rows = ob.claim(new_owner(), limit=7)
        with lock:
            claimed.extend(r.id for r in rows)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 40 and len(set(claimed)) == 40


def test_expired_lease_is_reclaimed_and_the_old_owner_cannot_send(outbox):
    outbox.enqueue([_msg(1)])
    first, second = new_owner(), new_owner()
    (row,) = outbox.claim(first, lease_seconds=60)
    later = _utcnow() + timedelta(seconds=61)
    (again,) = outbox.claim(second, now=later)
    assert again.id == row.id and again.attempts == 2
    assert not outbox.mark_sent(row.id, first)  # the first sender lost the row


def _ppx() -> str:
    return str(Path(sys.executable).parent / "ppx")


def test_killed_sender_restarted_delivers_every_row_exactly_once_by_message_id(
    outbox, smtp_server, ledger_url, tmp_path
):
    """SIGKILL a sender mid-batch, restart it: every row arrives; a resend keeps its ID.

    At the SMTP boundary delivery is at-least-once: the one row in flight when the
    process died may have been accepted by the server but not marked sent, so it is sent
    again after its lease expires, with the same Message-ID. So: every row's Message-ID
    arrives, no other one does, and raw copies exceed rows by at most one per kill.
    """
    n = 60
    outbox.enqueue([_msg(i) for i in range(1, n + 1)])
    cmd = [
        _ppx(),
        "messages",
        "send",
        "--ledger-url",
        ledger_url,
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        str(smtp_server.port),
        "--batch",
        "25",
        "--lease-seconds",
        "1",
    ]
    env = {**os.environ, "PPX_MAIL_FROM": "shop@example.com", "PPX_UNSUBSCRIBE_SECRET": SECRET}
    slow = subprocess.Popen(
        [*cmd, "--rate", "15"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    while smtp_server.count() < 12:  # mid-batch: the first batch holds 25 rows
        assert slow.poll() is None, slow.stderr.read().decode()
        time.sleep(0.01)
    slow.send_signal(signal.SIGKILL)
    slow.wait()
    slow.stderr.close()
    killed_at = smtp_server.count()
    assert killed_at < n and outbox.counts()["sending"] > 0  # rows left leased by the dead
    time.sleep(1.2)  # the dead sender's leases run out
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ids = [m["Message-ID"] for m in smtp_server.messages]
    expected = {r["rfc_message_id"] for r in outbox.rows()}
    assert set(ids) == expected and len(expected) == n
    assert n <= len(ids) <= n + 1
    assert outbox.counts() == {"pending": 0, "sending": 0, "sent": n, "suppressed": 0, "failed": 0}


@pytest.mark.postgres
def test_postgresql_claims_are_disjoint_and_sends_are_single(postgres_url, smtp_server, renderer):
    from sqlalchemy import text

    from ppx.rules.messages.db import make_engine

    engine = make_engine(postgres_url)
    ob = Outbox(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM message_outbox"))
    assert ob.enqueue([_msg(i) for i in range(1, 121)]) == [True] * 120
    assert ob.enqueue([_msg(1)]) == [False]
    reports = []
    lock = threading.Lock()

    def work():  # four senders racing over one outbox (FOR UPDATE SKIP LOCKED)
        r = send_until_empty(
            Outbox(engine, create=False), _cfg(smtp_server), new_owner(), renderer, batch=10
        )
        with lock:
            reports.append(r)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in reports) == 120 and sum(r.lost_lease for r in reports) == 0
    assert len([r for r in reports if r.sent]) >= 2  # the work was shared
    ids = [m["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == 120 and len(set(ids)) == 120
    assert ob.counts()["sent"] == 120
    engine.dispose()


def test_status_and_preview_commands(outbox, ledger_url):
    from typer.testing import CliRunner

    from ppx.cli import app

    outbox.enqueue([_msg(1), _msg(2)])
    res = CliRunner().invoke(app, ["messages", "status", "--ledger-url", ledger_url])
    assert res.exit_code == 0 and "pending" in res.output and "2" in res.output
    res = CliRunner().invoke(
        app,
        [
            "messages",
            "preview",
            "shipped",
            "--locale",
            "ru",
            "--content",
            '{"order_id": 3, "estimated_delivery": null}',
        ],
    )
    assert res.exit_code == 0 and "Заказ 3 в пути" in res.output
    res = CliRunner().invoke(app, ["messages", "preview", "shipped", "--content", "{}"])
    assert res.exit_code == 2 and "order_id" in res.output


# --- opt-outs made after a row was queued, the relay's id, an older outbox table -------


def test_email_opt_outs_after_queueing_suppress_rows_locked_kinds_still_go(
    outbox, smtp_server, renderer, policy
):
    """Customer 1 clicks the one-click link of a queued shipping email; customer 2 turns
    every email kind off on the preference page: 2's order confirmation is locked."""
    from ppx.rules.messages.preferences import PreferenceStore

    prefs = PreferenceStore(outbox.engine, policy)
    confirmation = _msg(
        2,
        message_key="order_confirmation:2:order:2",
        message_type="order_confirmation",
        content={"order_id": 2, "estimated_delivery": "2025-03-04"},
    )
    outbox.enqueue([_msg(1), _msg(2), confirmation, _msg(3)])
    prefs.unsubscribe(Scope(1, "shipped", "email"))
    prefs.set_channel_kinds(2, "email", set())
    rep = send_until_empty(outbox, _cfg(smtp_server), new_owner(), renderer, preferences=prefs)
    assert (rep.sent, rep.suppressed, rep.failed) == (2, 2, 0)
    assert sorted(m["X-PPX-Message-Key"] for m in smtp_server.messages) == [
        "order_confirmation:2:order:2",
        "shipped:3:order:3",
    ]
    rows = {r["message_key"]: r for r in outbox.rows()}
    for cid in (1, 2):
        row = rows[f"shipped:{cid}:order:{cid}"]
        assert row["status"] == "suppressed" and row["sent_at"] is None
        assert row["last_error"] == "customer opted out of shipped on email after it was queued"
        assert row["subject"] is None  # nothing was rendered or sent


def test_the_relays_queue_id_is_stored_else_the_message_id(outbox, smtp_server, renderer):
    outbox.enqueue([_msg(1), _msg(2)])
    smtp_server.replies = ["250 2.0.0 Ok: queued as 4BqXyZ12"]  # Postfix's words
    assert send_until_empty(outbox, _cfg(smtp_server), new_owner(), renderer).sent == 2
    rows = {r["customer_id"]: r for r in outbox.rows()}
    assert rows[1]["provider_message_id"] == "4BqXyZ12"
    # "250 Message accepted" names no id: the Message-ID the relay was given stands in
    assert rows[2]["provider_message_id"] == rows[2]["rfc_message_id"]


def _older_outbox(url: str) -> None:
    """An outbox table as written before ``provider_message_id`` and the delivery receipt
    columns existed, with a row."""
    from sqlalchemy import text

    from ppx.rules.messages.db import make_engine

    engine = make_engine(url)
    Outbox(engine).enqueue([_msg(9)])
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_message_outbox_provider"))
        for col in ("provider_message_id", "delivery_status", "delivery_at", "delivery_error"):
            conn.execute(text(f"ALTER TABLE message_outbox DROP COLUMN {col}"))
    engine.dispose()


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_an_older_outbox_table_gains_the_provider_id_and_receipt_columns(
    dialect, tmp_path, request
):
    """Opening an older table adds the column in place; its rows stay and sending works."""
    from sqlalchemy import inspect

    from ppx.rules.messages.db import make_engine

    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    _older_outbox(url)
    engine = make_engine(url)
    added = {"provider_message_id", "delivery_status", "delivery_at", "delivery_error"}
    assert not added & {c["name"] for c in inspect(engine).get_columns("message_outbox")}
    outbox = Outbox(engine)
    Outbox(engine)  # opening it again is a no-op
    assert added <= {c["name"] for c in inspect(engine).get_columns("message_outbox")}
    indexes = {i["name"] for i in inspect(engine).get_indexes("message_outbox")}
    assert "ix_message_outbox_provider" in indexes
    (row,) = outbox.rows()
    assert row["message_key"] == "shipped:9:order:9" and row["provider_message_id"] is None
    (claimed,) = outbox.claim("me")
    assert outbox.mark_sent(claimed.id, "me", None, "relay-1")
    assert outbox.row(claimed.id)["provider_message_id"] == "relay-1"
    assert outbox.row(message_key="shipped:9:order:9")["status"] == "sent"
    assert outbox.record_delivery("email", "relay-1", "delivered").changed
    assert outbox.row(claimed.id)["delivery_status"] == "delivered"
    assert outbox.row(claimed.id)["delivery_at"] is not None
    engine.dispose()
