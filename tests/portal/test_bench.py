"""``ppx bench portal``'s parts: the customer it loads, its seeded ledger, GET load with timing."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ppx.rules.subscriptions.importer import current_subscriptions


def test_pick_customer_has_a_parcel_to_track_and_a_delivered_order(portal_store, tiny_world):
    from ppx.portal.bench import page_paths, pick_customer

    subscribers = {s.customer_id for s in current_subscriptions(tiny_world[1])[0]}
    c = pick_customer(portal_store, subscribers)
    tracked = portal_store.order(c.customer_id, c.tracked_order)
    assert tracked.shipped_at is not None
    assert tracked.status == "lost" or tracked.open or tracked.late_days > 0
    assert portal_store.order(c.customer_id, c.delivered_order).status == "delivered"
    assert c.customer_id in subscribers  # the tiny world has late subscribers
    paths = page_paths(c)
    assert list(paths) == [
        "tracking",
        "orders",
        "returns_form",
        "subscriptions",
        "loyalty",
        "preferences",
    ]
    assert paths["returns_form"] == f"/orders/{c.delivered_order}/return"


def test_seed_ledger_registers_the_customers_subscriptions_and_points(
    portal_store, tiny_world, tmp_path
):
    from ppx.portal.bench import SEED_POINTS, pick_customer, seed_ledger
    from ppx.rules.ledger import Ledger
    from ppx.rules.subscriptions.store import SubscriptionStore

    subscribers = {s.customer_id for s in current_subscriptions(tiny_world[1])[0]}
    c = pick_customer(portal_store, subscribers)
    url = f"sqlite:///{tmp_path / 'l.db'}"
    n = seed_ledger(url, tiny_world[1], portal_store, c)
    ledger = Ledger(url)
    assert ledger.balance(c.customer_id) == SEED_POINTS
    subs = SubscriptionStore(ledger, create=False).of_customer(c.customer_id)
    assert n == len(subs) >= 1 and {s.customer_id for s in subs} == {c.customer_id}
    ledger.dispose()


class _Page(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server hook's name)
        ok = self.headers.get("cookie") == "ppx_portal=abc" and not self.headers.get("content-type")
        body = b"<html>ok</html>" if ok else b"no"
        self.send_response(200 if ok else 403)
        self.send_header("server-timing", "app;dur=2.5, db;dur=1.5")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


def test_load_generator_gets_pages_with_the_cookie_and_reads_server_timing():
    from ppx.serve.loadgen import _server_ms, measure

    assert _server_ms("app;dur=2.5, db;dur=1.5") == 4.0
    assert _server_ms("app") is None and _server_ms(None) is None
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        res = measure(
            url, None, 2, 1.0, warmup=0.2, headers={"cookie": "ppx_portal=abc"}, method="GET"
        )
        assert res["errors"] == 0 and res["rps"] > 0
        assert res["server_p50_ms"] == res["server_p99_ms"] == 4.0
        refused = measure(url, None, 1, 0.5, warmup=0.1, method="GET")  # no cookie: 403
        assert refused["rps"] == 0 and refused["errors"] > 0 and "server_p50_ms" not in refused
    finally:
        server.shutdown()
