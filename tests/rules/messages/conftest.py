"""A local SMTP server (aiosmtpd) that records what it receives, and an outbox to fill."""

from __future__ import annotations

import email
import socket
import threading
from email.policy import default as email_policy

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """An aiosmtpd handler that keeps every accepted message; can reply with errors."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.replies: list[str] = []  # replies to give before accepting ("451 ...", "550 ...")
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
            self.messages.append(email.message_from_bytes(envelope.content, policy=email_policy))
        return "250 Message accepted"

    def count(self) -> int:
        with self.lock:
            return len(self.messages)


@pytest.fixture()
def smtp_server():
    from aiosmtpd.controller import Controller

    rec = Recorder()
    port = _free_port()
    # aiosmtpd gives its thread 5 s to start and answer by default: too tight for a loaded
    # two-core machine, where a slow start would fail the test rather than the product.
    ctl = Controller(rec, hostname="127.0.0.1", port=port, ready_timeout=60.0)
    ctl.start()
    rec.port = port
    try:
        yield rec
    finally:
        ctl.stop()


@pytest.fixture()
def ledger_url(tmp_path):
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture()
def outbox(ledger_url):
    from ppx.rules.messages.db import make_engine
    from ppx.rules.messages.outbox import Outbox

    ob = Outbox(make_engine(ledger_url), backoff_base_seconds=60.0)
    yield ob
    ob.engine.dispose()
