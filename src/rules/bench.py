"""Load test of the decision service: latency percentiles and throughput per endpoint.

``ppx bench serve`` (the serving work) can call :func:`bench_decisions` for the decision
endpoints; it is also usable on its own against any running decision service. Requests
are realistic payloads (a late delivery that needs the churn model, an on-time delivery
that needs recommendations, a return that needs the fraud model), so the figures include
the model-service round trips the decisions make.
"""

from __future__ import annotations

import asyncio
import time
from itertools import count

import httpx
import numpy as np

CUSTOMER = {
    "customer_id": 42,
    "tier": "silver",
    "spend_12m": 420,
    "subscription_id": 9,
    "email_opt_in": True,
    "push_opt_in": True,
}


def _late(i: int) -> dict:
    return {
        "event": {
            "event_type": "delivered",
            "order_id": 1_000_000 + i,
            "customer_id": 42,
            "occurred_at": "2025-03-05T12:00:00",
            "ordered_at": "2025-03-01T09:00:00",
            "order_value": 80,
            "promised_date": "2025-03-02",
            "delivered_at": "2025-03-05T12:00:00",
        },
        "customer": CUSTOMER,
    }


def _return(i: int) -> dict:
    return {
        "request": {
            "return_id": 1 + i,
            "order_id": 5,
            "customer_id": 42,
            "requested_at": "2025-03-08T10:00:00",
            "amount": 30,
            "reason": "changed_mind",
        },
        "customer": {**CUSTOMER, "tier": "gold", "spend_12m": 900},
    }


PAYLOADS = {"/decide/order-event": _late, "/decide/return": _return}


async def _run(url: str, route: str, clients: int, seconds: float, token: str | None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    lat: list[float] = []
    errors = 0
    ids = count()
    make = PAYLOADS[route]
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10, limits=limits) as c:

        async def worker():
            nonlocal errors
            while time.perf_counter() < stop:
                body = make(next(ids))
                t0 = time.perf_counter()
                try:
                    r = await c.post(route, json=body)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                lat.append((time.perf_counter() - t0) * 1000)
                errors += not ok

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    a = np.asarray(lat)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "p99_ms": float(np.percentile(a, 99)),
        "rps": len(a) / wall,
        "requests": len(a),
        "errors": errors,
    }


def bench_decisions(
    url: str,
    clients: tuple[int, ...] = (1, 8, 32),
    seconds: float = 10.0,
    token: str | None = None,
) -> dict[str, dict[str, float]]:
    """``{"<route> @<n> clients": {p50_ms, p95_ms, p99_ms, rps, requests, errors}}``."""
    out = {}
    for route in PAYLOADS:
        for n in clients:
            out[f"{route} @{n}"] = asyncio.run(_run(url.rstrip("/"), route, n, seconds, token))
    return out
