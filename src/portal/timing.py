"""``Server-Timing`` on every portal answer: the time the portal app itself spent.

Why: ``ppx bench portal`` measures pages from outside, through BentoML's server when the
portal is mounted in the decision service; the header lets it report the pages' own
time beside the round trip, and lets anyone read it in a browser's network panel. The
header carries one duration and nothing about the request.
"""

from __future__ import annotations

import time
from typing import Any


class ServerTiming:
    """Pure ASGI middleware adding ``Server-Timing: app;dur=<ms>`` to HTTP answers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def timed(message: dict) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - t0) * 1000.0
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={ms:.2f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed)
