"""Whose fault: a model's RequestError is a 422 naming the field, anything else a 500;
a full queue is a 503 that says when to retry. No trained model needed."""

from __future__ import annotations

import asyncio
import logging
import threading
from types import SimpleNamespace

import pytest

from ppx.config import PROJECT_ROOT
from ppx.data.errors import RequestError


@pytest.fixture()
def M(monkeypatch):  # noqa: N802 - the module under test
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))  # serving/ sits beside the package
    from serving import model_service

    store = model_service.ModelStore(alias="champion", models=("delivery",))
    store.ready.set()
    monkeypatch.setattr(model_service, "STORE", store)
    return model_service


def _with_model(M, fail: Exception):  # noqa: N803
    def predict_records(requests, to_frame):
        raise fail

    M.STORE.loaded["delivery"] = SimpleNamespace(predict_records=predict_records)
    endpoint = M.ENDPOINTS["delivery_estimate"]
    example = endpoint.request.model_config["json_schema_extra"]["examples"][0]
    return endpoint, endpoint.request.model_validate(example)


def test_request_error_is_422_with_its_message(M):  # noqa: N803
    endpoint, request = _with_model(M, RequestError("carrier: unknown carrier 'x'"))
    (err,) = M.score(endpoint, [request])
    assert (err.status, "carrier" in err.message) == (422, True)


@pytest.mark.parametrize("fail", [ValueError("cannot reshape"), TypeError("bad operand")])
def test_other_errors_inside_a_model_are_a_logged_500(M, fail, caplog):  # noqa: N803
    endpoint, request = _with_model(M, fail)
    with caplog.at_level(logging.ERROR, logger="ppx.serving"):
        (err,) = M.score(endpoint, [request])
    assert err.status == 500
    assert str(fail) not in err.message  # internals stay in the log, not the answer
    assert any(r.exc_info and r.exc_info[1] is fail for r in caplog.records)


def test_batch_with_one_internal_failure_keeps_the_others(M, monkeypatch):  # noqa: N803
    endpoint, request = _with_model(M, ValueError("boom"))
    calls = []

    def predict_records(requests, to_frame):
        calls.append(len(requests))
        if len(requests) > 1 or len(calls) == 2:  # the batch fails, then the 1st retry
            raise ValueError("boom")
        return [{"x": 1}]

    M.STORE.loaded["delivery"] = SimpleNamespace(predict_records=predict_records)
    # rows are built by _rows from the records; stub it to see only the statuses
    monkeypatch.setattr(M, "_rows", lambda endpoint, model, requests, records: ["ok"])
    out = M.score(endpoint, [request, request])
    assert calls == [2, 1, 1]
    assert out[0].status == 500 and out[1] == "ok"


def test_overloaded_endpoint_answers_503_with_retry_after(M):  # noqa: N803
    from serving import schemas as S

    endpoint = M.ENDPOINTS["delivery_estimate"]
    gate = threading.Event()

    def held(items):  # the running batch, held until the second call has been refused
        gate.wait(10)
        return items

    service = SimpleNamespace(batchers={}, executor=None)
    service.batchers["delivery_estimate"] = M.MicroBatcher(fn=held, max_batch=4, max_queue=0)
    score = M.ModelService.inner._score

    async def main():
        first = asyncio.create_task(score(service, "delivery_estimate", ["r0"]))
        await asyncio.sleep(0.05)
        refused = await score(service, "delivery_estimate", ["r1"])
        gate.set()
        return await first, refused

    first, out = asyncio.run(main())
    assert first == ["r0"]  # the call that found the endpoint idle is served
    assert out[0].status == 503 and "overloaded" in out[0].message

    response = asyncio.run(S.batch_output(endpoint.response).to_http_response(out, None))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    # a model that is not loaded yet asks for a longer wait
    (loading,) = M.score(endpoint, [None])
    assert (loading.status, loading.retry_after) == (503, 30)


def test_shutdown_stops_the_scoring_threads(M):  # noqa: N803
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(2)
    assert pool.submit(lambda: 1).result() == 1
    M.ModelService.inner.stop_scoring(SimpleNamespace(executor=pool))
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(lambda: 1)


def test_a_batch_with_a_refused_item_and_a_fault_answers_500_with_the_faults_id(M):  # noqa: N803
    import json

    from serving import schemas as S

    refused = S.ItemError(422, "/delivery/estimate: carrier: unknown carrier 'x'")
    fault = S.ItemError(500, "/delivery/estimate: internal error (ValueError); ...", None, "ab12")
    output = S.batch_output(S.ResponseModel)
    response = asyncio.run(output.to_http_response([refused, "ok", fault], None))
    body = json.loads(response.body)
    assert response.status_code == 500 and response.headers["x-request-id"] == "ab12"
    assert (body["error"], body["request_id"]) == (fault.message, "ab12")
    assert [(d["loc"], d["status"], d.get("request_id")) for d in body["detail"]] == [
        ([0], 422, None),
        ([2], 500, "ab12"),
    ]
