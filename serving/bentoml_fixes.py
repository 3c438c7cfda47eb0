"""Fixes and settings for BentoML 1.4.39, applied when a ppx service starts.

**Request timeout.**
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

**Bad requests logged as server errors.** BentoML logs every request whose body fails
validation at ERROR level with a full traceback, exactly like a crash; the caller got a
400 naming the field. :func:`quiet_validation_errors` turns those records into one INFO
line, so the error log holds our faults only.

**Tracing middleware that traces nothing.** BentoML wraps every request in
OpenTelemetry's ASGI middleware even when its ``tracing.sample_rate`` is 0 (its default,
so no span is ever exported): a request span, a span per message sent, the request's
attributes parsed. Under py-spy at 8 clients that was about a tenth of each service's
CPU on a decision. :func:`tracing_config` excludes every path from it unless
``PPX_TRACING=1``, for a deployment that configures a tracing exporter.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any


def tracing_config() -> dict[str, Any]:
    """A service's ``tracing`` setting: every path excluded from OpenTelemetry's middleware,
    unless ``PPX_TRACING=1`` (then BentoML's own tracing configuration applies)."""
    import os

    if os.environ.get("PPX_TRACING", "0") == "1":
        return {}
    return {"excluded_urls": [".*"]}


#: where BentoML 1.4.39 logs "Exception on <path> [<method>]"
_HTTP_LOGGER = "bentoml._internal.server.http_app"


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


class _ValidationErrorsAsInfo(logging.Filter):
    """A request body that failed validation is the caller's mistake, answered 400:
    one INFO line naming the path and the count, not an ERROR with a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pydantic import ValidationError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            record.msg = f"{record.msg}: 400, {exc.error_count()} validation error(s)"
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_validation_errors() -> None:
    """Install :class:`_ValidationErrorsAsInfo` on BentoML's HTTP logger (idempotent)."""
    logger = logging.getLogger(_HTTP_LOGGER)
    if not any(isinstance(f, _ValidationErrorsAsInfo) for f in logger.filters):
        logger.addFilter(_ValidationErrorsAsInfo())
