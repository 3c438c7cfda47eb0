"""The portal's back end: the store, the decision engine, the model service, the outbox.

:class:`Portal` is built once per app (``request.app.state.portal``) and holds what every
page needs. The decision engine is the decision service's own
(:func:`serving.decision_service.engine` builds the same one from the same settings), so
a return or claim started here is decided, written and messaged exactly like one sent to
``/returns/resolve`` or ``/decide/claim``.

Model calls go through :class:`~ppx.rules.model_client.ModelClient` (the model service at
``PPX_MODEL_SERVICE_URL``); a model that is down or slow costs the page its window or its
recommendations, never the page: the page says the estimate is unavailable.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from ppx.config import Settings
from ppx.portal.access import PortalConfigError, secret_key
from ppx.portal.csrf import Csrf
from ppx.portal.data import Order, StoreData, load_store
from ppx.portal.ratelimit import TokenBuckets
from ppx.rules.engine import PROMISE_TARGET, DecisionEngine
from ppx.rules.messages.outbox import Outbox
from ppx.rules.model_client import route
from ppx.rules.types import CustomerContext

#: Delivery estimates kept per process (payload -> answer), and for how long.
ESTIMATE_CACHE_SIZE = 20_000
ESTIMATE_TTL_SECONDS = 600.0
#: Recommendations kept per process ((customer, k, clock) -> products), and for how long:
#: a tracking page reloaded or opened from several messages shows the same products
#: without asking the recs model again; a newly promoted model shows within the limit.
RECS_CACHE_SIZE = 20_000
RECS_TTL_SECONDS = 300.0

#: Scan types the delivery model knows as the "last scan" of an in-transit parcel.
_MODEL_SCANS = ("label_created", "picked_up", "hub_scan", "out_for_delivery", "exception")


@dataclass(frozen=True)
class Window:
    """The delivery model's window for an order, as of one moment."""

    as_of: datetime
    stage: str  # checkout or transit
    earliest: date  # the median day
    latest: date  # the promise day (the model's 0.9 quantile)
    p_on_time: float | None  # probability of arriving by the promised date
    p_by_latest: float  # the on-time rate the latest day reaches (PROMISE_TARGET)
    scan: str | None = None  # the scan this estimate followed


def store_path(settings: Settings) -> Path:
    path = settings.portal_store or (settings.worlds_dir / "demo")
    if not Path(path).is_dir():
        raise PortalConfigError(
            f"the portal's store {path} does not exist: run `make demo` or set "
            "PPX_PORTAL_STORE to a world or store folder"
        )
    return Path(path)


def portal_link(
    settings: Settings,
    customer_id: int,
    order_id: int | None = None,
    lang: str = "en",
    hours: float | None = None,
) -> str:
    """The magic link a message or ``make demo`` gives a shopper."""
    from urllib.parse import quote

    from ppx.portal.access import make_link_token

    base = (settings.portal_url or f"{settings.public_url.rstrip('/')}/portal").rstrip("/")
    token = make_link_token(
        customer_id,
        settings.portal_secret,
        order_id=order_id,
        hours=settings.portal_link_hours if hours is None else hours,
        lang=lang,
    )
    return f"{base}/auth?token={quote(token)}"


class Portal:
    """Settings, policy, store, engine, CSRF, rate limits and outbox of one portal app."""

    def __init__(self, settings: Settings, engine: DecisionEngine, store: StoreData | None = None):
        secret_key(settings.portal_secret)  # fail at start-up, not on the first link
        self.settings = settings
        self.engine = engine
        self.policy = engine.policy
        self._store = store
        if engine.ledger is None:
            raise PortalConfigError("the portal needs the decision engine's ledger")
        self.csrf = Csrf(
            engine.ledger.engine, settings.portal_secret, settings.portal_session_hours
        )
        self.outbox = engine.outbox or Outbox(engine.ledger.engine)
        # 3 links at once per (client, address), one more every 20 minutes; 10 per client.
        self.link_limit = TokenBuckets(capacity=3, per_hour=3)
        self._estimates: dict[str, tuple[float, dict]] = {}
        self._recs: dict[tuple, tuple[float, list[dict]]] = {}
        self.client_limit = TokenBuckets(capacity=10, per_hour=20)

    @property
    def store(self) -> StoreData:
        if self._store is None:
            self._store = load_store(store_path(self.settings))
        return self._store

    @property
    def now(self) -> datetime:
        """The store's clock (a world is history: its last recorded event)."""
        return self.store.now

    def link_url(
        self, customer_id: int, order_id: int | None = None, lang: str = "en", hours=None
    ) -> str:
        """A full magic link (``.../portal/auth?token=...``) for one customer or order."""
        return portal_link(self.settings, customer_id, order_id=order_id, lang=lang, hours=hours)

    # --- the customer ---------------------------------------------------------------------

    def customer(self, customer_id: int, lang: str = "en") -> CustomerContext:
        """The customer as the rules see them: history facts, ledger balance and tier."""
        from ppx.rules.loyalty.summary import loyalty_summary

        facts = self.store.customer_facts(customer_id)
        summary = loyalty_summary(self.engine.ledger, self.policy, customer_id, now=self.now)
        return CustomerContext(
            **facts, tier=summary.tier, points_balance=summary.balance, locale=lang
        )

    # --- models -------------------------------------------------------------------------

    def delivery_payload(self, order: Order, as_of: datetime | None) -> dict:
        """The delivery model's request for an order, at checkout or in transit at ``as_of``."""
        p: dict = {
            "warehouse": order.warehouse,
            "dest_region": order.dest_region,
            "carrier": order.carrier,
            "service_level": order.service_level,
            "origin_region": order.origin_region,
            "ordered_at": order.ordered_at.isoformat(),
            "promised_days": float(order.promised_days),
            "promise_target": PROMISE_TARGET,
            "promise_date": order.promised_date.isoformat(),
        }
        if order.weight_kg is not None:
            p["weight_kg"] = order.weight_kg
        if order.distance_km is not None:
            p["distance_km"] = order.distance_km
        if as_of is not None and as_of > order.ordered_at:
            seen = [s for s in order.scans if s.at < as_of and s.event_type in _MODEL_SCANS]
            p["as_of"] = as_of.isoformat()
            p["n_scans"] = len(seen)
            picked = [s for s in seen if s.event_type == "picked_up"]
            if picked:
                p["picked_up_at"] = picked[0].at.isoformat()
            if seen:
                p["last_scan_type"] = seen[-1].event_type
                p["last_scan_region"] = seen[-1].region
                p["last_scan_at"] = seen[-1].at.isoformat()
        return p

    async def _estimate(self, payload: dict) -> tuple[dict | None, str | None]:
        """The delivery model's answer for one payload, remembered for a few minutes.

        An estimate as of a past scan never changes (the model sees only what happened
        before it), so a page view re-asks only what is new; the time limit picks up a
        newly promoted model.
        """
        client = self.engine.models
        if client is None:
            return None, "no model service configured"
        key = json.dumps(payload, sort_keys=True)
        hit = self._estimates.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], None
        body, err = await client._post(route("delivery_estimate"), payload)
        if err is not None:
            return None, err
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        if not isinstance(body, dict) or body.get("promise_date") is None:
            return None, "the delivery model gave no window"
        if len(self._estimates) >= ESTIMATE_CACHE_SIZE:
            self._estimates.pop(next(iter(self._estimates)))  # the oldest entry
        self._estimates[key] = (time.monotonic() + ESTIMATE_TTL_SECONDS, body)
        return body, None

    def _window(self, order: Order, body: dict, as_of: datetime, scan: str | None) -> Window:
        start = order.ordered_at.date()
        p50 = body.get("p50_days")
        earliest = start + timedelta(days=int(p50)) if p50 is not None else start
        latest = date.fromisoformat(str(body["promise_date"])[:10])
        floor = as_of.date()  # a window never starts in the past
        p_on = body.get("p_on_time")
        return Window(
            as_of=as_of,
            stage=str(body.get("stage", "checkout")),
            earliest=max(earliest, floor),
            latest=max(latest, floor),
            p_on_time=None if p_on is None or math.isnan(float(p_on)) else float(p_on),
            p_by_latest=float(body.get("p_on_time_at_promise") or PROMISE_TARGET),
            scan=scan,
        )

    async def delivery_windows(self, order: Order) -> tuple[list[Window], str | None]:
        """The window at checkout and re-estimated after each scan, up to the store's clock.

        Returns the windows (oldest first; the last is the current one) and why they are
        missing when the model could not answer. A delivered or lost parcel has no current
        window, but keeps the history of what the shopper was told.
        """
        moments: list[tuple[datetime, str | None]] = [(order.ordered_at, None)]
        for s in order.scans:
            if s.event_type in ("delivered",) or s.at > self.now:
                continue
            # The estimate right after the scan: the model sees events strictly before as_of.
            moments.append((s.at + timedelta(seconds=1), s.event_type))
        if order.open and order.shipped_at is not None:
            moments.append((self.now, "now"))
        payloads = [
            self.delivery_payload(order, None if i == 0 else at)
            for i, (at, _) in enumerate(moments)
        ]
        answers = await asyncio.gather(*(self._estimate(p) for p in payloads))
        windows = []
        why = None
        for (at, scan), (body, err) in zip(moments, answers, strict=True):
            if body is None:
                why = why or err
                continue
            windows.append(self._window(order, body, at, scan))
        return windows, why

    async def recommendations(self, customer_id: int, k: int = 4) -> tuple[list[dict], str | None]:
        """Products from the recs model (as of the store's clock), with names and prices."""
        client = self.engine.models
        if client is None:
            return [], "no model service configured"
        key = (int(customer_id), int(k), self.now.isoformat())
        hit = self._recs.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], None
        ids, err = await client.recommend(
            {"customer_id": int(customer_id), "k": k, "as_of": self.now.isoformat()}
        )
        if err is not None:
            return [], err  # not remembered: the next view asks again
        out = []
        for pid in ids or []:
            known = self.store.product(pid)
            if known is not None:
                out.append({"product_id": int(pid), "name": known[0], "price": known[2]})
        if len(self._recs) >= RECS_CACHE_SIZE:
            self._recs.pop(next(iter(self._recs)))  # the oldest entry
        self._recs[key] = (time.monotonic() + RECS_TTL_SECONDS, out)
        return out, None
