"""BentoML's request timeout, fixed: no timer outlives its request; 504s still happen."""

from __future__ import annotations

import asyncio

import pytest

from ppx.config import PROJECT_ROOT


@pytest.fixture()
def Timeout(monkeypatch):  # noqa: N802 - stands for the middleware class it returns
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    monkeypatch.syspath_prepend(str(PROJECT_ROOT))  # serving/ sits beside the package
    from serving.bentoml_fixes import fix_timeout_timers

    monkeypatch.setattr(TimeoutMiddleware, "__call__", TimeoutMiddleware.__call__)
    fix_timeout_timers()
    return TimeoutMiddleware


def _scope() -> dict:
    return {"type": "http", "method": "POST", "path": "/x", "headers": []}


async def _request(middleware) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await middleware(_scope(), receive, send)
    return sent


async def _answer(scope, receive, send, delay: float = 0.0) -> None:
    await asyncio.sleep(delay)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _live_timers(loop: asyncio.AbstractEventLoop) -> int:
    return sum(not h.cancelled() for h in loop._scheduled)  # noqa: SLF001 - what we check


def test_no_timer_outlives_its_request(Timeout):
    async def main():
        mw = Timeout(_answer, timeout=30)
        for _ in range(50):
            sent = await _request(mw)
            assert sent[0]["status"] == 200
        return _live_timers(asyncio.get_running_loop())

    assert asyncio.run(main()) == 0


def test_a_request_that_does_not_start_answering_in_time_gets_504(Timeout):
    async def slow(scope, receive, send):
        await _answer(scope, receive, send, delay=5.0)

    sent = asyncio.run(_request(Timeout(slow, timeout=0.05)))
    assert sent[0]["status"] == 504


def test_an_app_error_surfaces_instead_of_waiting_for_the_timer(Timeout):
    """BentoML's version waited out the timeout here and then returned nothing."""

    async def broken(scope, receive, send):
        raise RuntimeError("handler failed")

    async def main():
        with pytest.raises(RuntimeError, match="handler failed"):
            await _request(Timeout(broken, timeout=30))
        return _live_timers(asyncio.get_running_loop())

    assert asyncio.run(main()) == 0


def test_a_bad_request_body_is_one_info_line_and_a_crash_stays_an_error(monkeypatch, caplog):
    """BentoML logs both through the same call; only our faults belong in the error log."""
    import logging

    from bentoml._internal.server.http_app import log_exception
    from pydantic import BaseModel, ValidationError

    monkeypatch.syspath_prepend(str(PROJECT_ROOT))
    from serving import bentoml_fixes

    logger = logging.getLogger(bentoml_fixes._HTTP_LOGGER)
    monkeypatch.setattr(logger, "filters", [])
    bentoml_fixes.quiet_validation_errors()
    bentoml_fixes.quiet_validation_errors()  # idempotent
    assert len(logger.filters) == 1

    class Body(BaseModel):
        carrier: str

    request = type(
        "Req", (), {"url": type("U", (), {"path": "/delivery/estimate"})(), "method": "POST"}
    )()
    with caplog.at_level(logging.INFO, logger=bentoml_fixes._HTTP_LOGGER):
        try:
            Body.model_validate({})
        except ValidationError:
            log_exception(request)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log_exception(request)
    bad, crash = caplog.records[-2:]
    assert (bad.levelno, bad.exc_info) == (logging.INFO, None)
    assert "/delivery/estimate" in bad.getMessage() and "1 validation error" in bad.getMessage()
    assert crash.levelno == logging.ERROR and crash.exc_info[0] is RuntimeError


@pytest.mark.parametrize(("env", "traced"), [("0", False), ("1", True)])
def test_tracing_middleware_traces_only_when_asked(monkeypatch, env, traced):
    """By default no path goes through OpenTelemetry's middleware (nothing would be
    exported); ``PPX_TRACING=1`` keeps it for a deployment with a tracing exporter."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.util.http import ExcludeList

    monkeypatch.syspath_prepend(str(PROJECT_ROOT))
    monkeypatch.setenv("PPX_TRACING", env)
    from serving.bentoml_fixes import tracing_config

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    excluded = ExcludeList(tracing_config().get("excluded_urls", []))
    middleware = OpenTelemetryMiddleware(app, excluded_urls=excluded, tracer_provider=provider)
    sent = asyncio.run(_request(middleware))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert bool(exporter.get_finished_spans()) is traced
