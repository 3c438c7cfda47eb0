"""A fix for BentoML 1.4.39's request timeout, applied when a ppx service starts.

``bentoml._internal.server.http.traffic.TimeoutMiddleware`` arms ``loop.call_later(timeout,
...)`` for every request and never cancels it. Each timer keeps its request's future,
context and tracing span alive for the whole timeout (30 s here) after the answer went
out: at 400 requests a second that is ~100,000 objects that reach the collector's oldest
generation, and every full collection then stops the process for 0.1-0.25 s (measured
with a ``gc.callbacks`` probe on the model service at 32 clients: ~70-110k objects,
mostly locks, futures, timer handles and spans). With the models' own long-lived
objects (see ``ModelStore._settle``), those pauses were the one-second p99 of the
32-client runs and much of the 8-client tail.

The replacement keeps BentoML's behaviour (504 when no response has *started* within the
timeout; once it has started, the request runs to the end) and cancels the timer as soon
as the response starts or the app finishes. It also wakes up at once when the app fails before sending, so
its error is raised instead of waiting for the timer.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def _timeout_call(self: Any, scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] not in ("http", "websocket"):
        await self.app(scope, receive, send)
        return
    loop = asyncio.get_running_loop()
    started = loop.create_future()

    def time_out() -> None:
        if not started.done():
            started.set_exception(TimeoutError())

    timer = loop.call_later(self.timeout, time_out)

    async def send_and_mark(message: Any) -> None:
        if not started.done():
            started.set_result(None)
        await send(message)

    app = asyncio.ensure_future(self.app(scope, receive, send_and_mark))
    app.add_done_callback(lambda _: started.done() or started.set_result(None))
    try:
        await started
    except TimeoutError:
        if app.cancel():
            from starlette.responses import JSONResponse

            resp = JSONResponse(
                {"error": f"Not able to process the request in {self.timeout} seconds"},
                status_code=504,
            )
            await resp(scope, receive, send)
        return
    finally:
        timer.cancel()
    await app


def fix_timeout_timers() -> None:
    """Swap in :func:`_timeout_call` (idempotent; middleware instances look it up per call)."""
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    TimeoutMiddleware.__call__ = _timeout_call  # type: ignore[method-assign]
