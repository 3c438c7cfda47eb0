"""A closed-loop HTTP load generator that runs in a child process.

The generator shares the machine's cores with the servers it measures, so it is kept
light (aiohttp on uvloop) and runs in its own interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from itertools import count
from typing import Any


def _load_child(
    url: str,
    body: bytes,
    headers: dict,
    clients: int,
    seconds: float,
    warmup: float,
    q,
    make,
    method: str = "POST",
) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    q.put(asyncio.run(_load(url, body, headers, clients, seconds, warmup, make, method)))


def _server_ms(header: str | None) -> float | None:
    """The summed ``dur`` of a ``Server-Timing`` header (ms), None when absent."""
    if not header:
        return None
    total, seen = 0.0, False
    for metric in header.split(","):
        for part in metric.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key == "dur":
                with contextlib.suppress(ValueError):
                    total += float(value)
                    seen = True
    return total if seen else None


async def _load(
    url: str,
    body: bytes,
    headers: dict,
    clients: int,
    seconds: float,
    warmup: float,
    make: Any = None,
    method: str = "POST",
) -> dict[str, Any]:
    """Closed-loop clients; ``make(i)``, when given, builds request i's body (unique ids).

    ``method`` GET sends no body (a page view); the ``Server-Timing`` durations of the
    answers, when the server sends them, are collected beside the round-trip times.

    aiohttp (with uvloop) keeps the generator's own CPU small (about 0.1 ms a request
    against httpx's 1.5 ms in a one-off measurement): it shares the two cores with the
    servers it measures.
    """
    import aiohttp

    get = method.upper() == "GET"
    hdrs = dict(headers) if get else {"content-type": "application/json", **headers}
    lat: list[float] = []
    server: list[float] = []
    status: dict[int, int] = {}
    errors = 0
    ids = count()
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        t_start = time.perf_counter()
        t_measure = t_start + warmup
        t_end = t_measure + seconds

        async def worker() -> None:
            nonlocal errors
            while True:
                t0 = time.perf_counter()
                if t0 >= t_end:
                    return
                if get:
                    data = None
                else:
                    data = body if make is None else json.dumps(make(next(ids))).encode()
                timing = None
                try:
                    async with client.request(method, url, data=data, headers=hdrs) as r:
                        await r.read()
                        code = r.status
                        timing = _server_ms(r.headers.get("server-timing"))
                except (aiohttp.ClientError, TimeoutError):
                    code = 0
                t1 = time.perf_counter()
                if t0 >= t_measure:
                    status[code] = status.get(code, 0) + 1
                    if 200 <= code < 300:
                        lat.append(t1 - t0)
                        if timing is not None:
                            server.append(timing)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return {
        "latencies": lat,
        "server_ms": server,
        "status": status,
        "errors": errors,
        "seconds": seconds,
    }


def measure(
    url: str,
    payload: Any,
    clients: int,
    seconds: float,
    warmup: float = 2.0,
    headers: dict | None = None,
    make: Any = None,
    method: str = "POST",
) -> dict[str, float]:
    """Load ``url`` from a separate process with ``clients`` concurrent clients.

    ``payload`` is sent as is, unless ``make`` (a picklable ``f(i) -> body``) is given;
    ``method="GET"`` sends none (``payload`` is ignored).

    Returns p50/p95/p99 latency (ms, successful calls), rps (successful calls per
    second), errors (non-2xx or transport failures) and the 5xx count; when the server
    answers with ``Server-Timing``, also its own time, ``server_p50_ms`` ... ``_p99_ms``.
    """
    import multiprocessing as mp

    import numpy as np

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    body = json.dumps(payload).encode()
    p = ctx.Process(
        target=_load_child,
        args=(url, body, headers or {}, clients, seconds, warmup, q, make, method),
    )
    p.start()
    try:
        res = q.get(timeout=seconds + warmup + 120)
    finally:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    lat = np.asarray(res["latencies"]) * 1000.0
    n5xx = sum(v for k, v in res["status"].items() if k >= 500 or k == 0)
    pct = (lambda q_: float(np.percentile(lat, q_))) if len(lat) else (lambda q_: float("nan"))
    out = {
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "rps": len(lat) / res["seconds"],
        "errors": int(res["errors"]),
        "errors_5xx": int(n5xx),
        "requests": int(len(lat) + res["errors"]),
    }
    server = np.asarray(res.get("server_ms") or [])
    if len(server):
        for q_ in (50, 95, 99):
            out[f"server_p{q_}_ms"] = float(np.percentile(server, q_))
    return out
