"""``ppx bench portal``: server time per page with the real model and decision services.

The benchmark starts the model service (models from the registry by alias) and the
decision service with the portal mounted at ``/portal`` (:mod:`ppx.serve.launch`, as
``ppx bench serve`` does), over a fresh ledger in a temporary folder seeded for one
customer of the store: their running subscriptions (the importer the
``ppx subscriptions import`` command uses) and a points balance. It opens a magic link
for that customer, keeps the session cookie, and loads each page with the closed-loop
generator of :mod:`ppx.serve.loadgen` at each client count:

* ``tracking``: an order in transit past its promise (the delivery model re-estimates the
  window after each scan, the recs model fills "you might also like");
* ``orders``, ``returns_form`` (a delivered order), ``subscriptions``, ``loyalty``,
  ``preferences``.

Figures per ``PAGE@CLIENTS``: the round trip (``p50_ms`` ... ``p99_ms``, ``rps``, errors)
and the portal's own time from its ``Server-Timing`` header (``server_p50_ms`` ...), with
the 1-minute load average of the machine read just before (``load_1m``): the machine is
shared, and a busy neighbour shows there first.
"""

from __future__ import annotations

import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The pages measured, in this order.
PAGES = ("tracking", "orders", "returns_form", "subscriptions", "loyalty", "preferences")
#: Points the benchmark customer holds (enough for the catalogue's first rewards).
SEED_POINTS = 1200


@dataclass(frozen=True)
class BenchCustomer:
    """The customer whose pages are loaded, and the two orders the order pages show."""

    customer_id: int
    tracked_order: int  # in transit (late when the store has one)
    delivered_order: int | None  # for the returns form


def pick_customer(store, subscribers: set[int]) -> BenchCustomer:
    """A customer with a parcel in transit (late if possible), a delivered order and,
    preferably, a running subscription: the page costs the demo story shows."""
    from ppx.data import columns as C

    frames = [store.open_late_orders(), store.late_orders()]
    rows: list[tuple[int, int]] = []
    for f in frames:
        rows += list(zip(f[C.CUSTOMER_ID].astype(int), f[C.ORDER_ID].astype(int), strict=True))
    rows.sort(key=lambda r: r[0] not in subscribers)  # subscribers first, stable otherwise
    for cid, oid in rows:
        orders = store.orders_of(cid)
        delivered = next((o.order_id for o in orders if o.status == "delivered"), None)
        if delivered is not None:
            return BenchCustomer(cid, oid, delivered)
    if rows:
        return BenchCustomer(rows[0][0], rows[0][1], None)
    raise ValueError(f"{store.path}: no shipped order to track; is this a world or store?")


def seed_ledger(ledger_url: str, store_path: Path, store, customer: BenchCustomer) -> int:
    """The customer's running subscriptions and points in a fresh ledger; returns how many
    subscriptions were registered."""
    from ppx.rules.ledger import Ledger
    from ppx.rules.subscriptions.importer import current_subscriptions
    from ppx.rules.subscriptions.store import SubscriptionStore

    ledger = Ledger(ledger_url)
    try:
        subs = SubscriptionStore(ledger)
        running, end = current_subscriptions(store_path)
        mine = [s for s in running if s.customer_id == customer.customer_id]
        for s in mine:
            subs.upsert(s, f"import:{s.subscription_id}", end)
        ledger.award(
            customer.customer_id,
            SEED_POINTS,
            "bench:portal:seed",
            order_id=None,
            reason="ppx bench portal: starting balance",
            at=store.now,
        )
    finally:
        ledger.dispose()
    return len(mine)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _session_cookie(base: str, customer_id: int, secret: str) -> str:
    """Open a magic link like a shopper; the ``Cookie`` header value of the session."""
    import httpx

    from ppx.portal.access import COOKIE, make_link_token

    token = make_link_token(customer_id, secret, hours=2.0)
    r = httpx.get(f"{base}/auth", params={"token": token}, follow_redirects=False, timeout=60)
    if r.status_code != 303 or COOKIE not in r.cookies:
        raise RuntimeError(f"opening the magic link answered {r.status_code}: {r.text[:300]}")
    return f"{COOKIE}={r.cookies[COOKIE]}"


def page_paths(customer: BenchCustomer) -> dict[str, str]:
    paths = {
        "tracking": f"/orders/{customer.tracked_order}",
        "orders": "/",
        "subscriptions": "/subscriptions",
        "loyalty": "/loyalty",
        "preferences": "/preferences",
    }
    if customer.delivered_order is not None:
        paths["returns_form"] = f"/orders/{customer.delivered_order}/return"
    return {p: paths[p] for p in PAGES if p in paths}


def run_portal_bench(
    store_path: Path,
    seconds: float = 10.0,
    clients: tuple[int, ...] = (1, 8),
    pages: tuple[str, ...] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Every page at each client count; the benchmark JSON (``meta`` + ``PAGE@N -> ppx``)."""
    import httpx
    from rich.console import Console

    from ppx.config import get_settings
    from ppx.portal.data import load_store
    from ppx.portal.i18n import catalogue
    from ppx.serve.bench import wait_idle
    from ppx.serve.launch import running_decision_service, running_service
    from ppx.serve.loadgen import measure

    unknown = sorted(set(pages or ()) - set(PAGES))
    if unknown:
        raise ValueError(f"pages: unknown {unknown}; choose from {list(PAGES)}")
    console = Console(stderr=True)
    t0 = time.perf_counter()
    store_path = Path(store_path)
    store = load_store(store_path)
    from ppx.rules.subscriptions.importer import current_subscriptions

    subscribers = {s.customer_id for s in current_subscriptions(store_path)[0]}
    customer = pick_customer(store, subscribers)
    paths = {k: v for k, v in page_paths(customer).items() if not pages or k in pages}
    secret = secrets.token_urlsafe(32)
    payload: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    notes: list[str] = []
    alias = os.environ.get("PPX_MODEL_ALIAS") or get_settings().model_alias
    unavailable = catalogue("en")["tracking"]["window"]["unavailable"]
    with tempfile.TemporaryDirectory(prefix="ppx-bench-portal-") as tmp:
        ledger_url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        n_subs = seed_ledger(ledger_url, store_path, store, customer)
        env = {"PPX_PORTAL_SECRET": secret, "PPX_PORTAL_STORE": str(store_path.resolve())}
        if progress:
            console.print("starting the model service and the decision service (with /portal)")
        with (
            running_service() as models,
            running_decision_service(models.url, ledger_url, env=env) as decisions,
        ):
            base = decisions.url + "/portal"
            cookie = _session_cookie(base, customer.customer_id, secret)
            headers = {"cookie": cookie, "accept-language": "en"}
            for name, path in paths.items():
                r = httpx.get(base + path, headers=headers, timeout=120)
                if r.status_code != 200:
                    skipped[name] = f"probe answered {r.status_code}: {r.text[:200]}"
                elif name == "tracking" and unavailable in r.text:
                    notes.append("tracking: the page said the delivery estimate is unavailable")
            todo = [(n, c) for n in paths for c in clients if n not in skipped]
            for i, (name, c) in enumerate(todo, 1):
                wait_idle(decisions, models)
                load = os.getloadavg()[0]
                if progress:
                    console.print(
                        f"[{i}/{len(todo)}] {name} clients={c} {seconds:.0f}s (load {load:.2f})"
                    )
                res = measure(base + paths[name], None, c, seconds, headers=headers, method="GET")
                res["load_1m"] = round(load, 2)
                payload[f"{name}@{c}"] = {"ppx": res}
    meta = {
        "command": "ppx bench portal " + " ".join(sys.argv[3:])
        if sys.argv[1:3] == ["bench", "portal"]
        else "ppx bench portal",
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
        "uptime_after": _uptime(),
        "alias": alias,
        "decision_workers": int(os.environ.get("PPX_DECISION_WORKERS", "1")),
        "store": str(store_path),
        "customer_id": customer.customer_id,
        "pages": paths,
        "subscriptions": n_subs,
        "seed_points": SEED_POINTS,
        "duration_s": seconds,
        "skipped": skipped,
        "notes": notes,
    }
    return {"meta": meta, **payload}
