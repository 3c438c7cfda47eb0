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


class HttpRecorder:
    """What a fake SMS or push gateway received, and the replies it gives.

    ``replies`` are given first, in order (``(status, headers, json body)``); after them
    every request is accepted: 201 with a message ``sid`` on the SMS path, else 202.
    """

    def __init__(self):
        self.requests: list[dict] = []  # every request: path, headers, raw body
        self.accepted: list[dict] = []  # the requests answered with a 2xx
        self.replies: list[tuple[int, dict, dict]] = []
        self.lock = threading.Lock()
        self.url = ""

    def count(self) -> int:
        with self.lock:
            return len(self.requests)


@pytest.fixture()
def http_gateway():
    """A local HTTP server in a thread standing in for the SMS API and the push gateway."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    rec = HttpRecorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the http.server hook's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            req = {"path": self.path, "headers": dict(self.headers.items()), "body": body}
            with rec.lock:
                rec.requests.append(req)
                if rec.replies:
                    status, headers, payload = rec.replies.pop(0)
                else:
                    status, headers = (201 if self.path.endswith("Messages.json") else 202), {}
                    payload = {"sid": f"SM{len(rec.accepted):032d}", "status": "queued"}
                req["response"] = payload  # what the gateway answered (its message id)
                if 200 <= status < 300:
                    rec.accepted.append(req)
            raw = json.dumps(payload).encode()
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
