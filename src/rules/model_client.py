"""HTTP client for the model service, turning every failure into a named fallback reason.

The decision service must answer even when a model is down, slow or returns something
unexpected; it then uses the policy's documented fallback and the reasons say so. So this
client never raises for a model problem: each call returns ``(value, None)`` or
``(None, "why")``, and :meth:`ModelClient.scores` packs the results into a
:class:`~ppx.rules.types.Scores` with ``errors`` filled in.

Endpoints (the model service, serving/model_service.py; request and response models in
ppx.models.<name>.schemas), all ``POST`` with a JSON body of raw request facts. The parsers read
exactly the fields that service answers with:

* ``/delivery/estimate`` -> ``p50_days`` and ``promise_days`` (the promise at the requested
  ``promise_target``, 0.90 here, so it is the estimate's p90 day)
* ``/churn/score`` -> ``p_churn_<H>`` for the policy's horizon H (30, 60 or 90) when
  ``status`` is ``ok``; any other status (``unknown_customer``,
  ``no_active_subscription``) is a failed call whose reason names it
* ``/fraud/return`` and ``/fraud/claim`` -> ``p_fraud`` and, when the model knows it,
  ``ring_member`` (linked to accounts with confirmed fraud)
* ``/recs/recommend`` -> ``product_ids``

``tests/serving/test_decisions_with_models.py`` runs the engine against the real service
with real (tiny) models, so a change on either side that breaks this contract fails there.
The base URL comes from ``PPX_MODEL_SERVICE_URL`` (default ``http://127.0.0.1:3000``); a
bearer token from ``PPX_API_TOKEN`` is sent when set, and the id of the request being
served (:mod:`ppx.serve.request_ids`) as ``X-Request-ID``, so the model service logs
under the decision's id.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ppx.rules.types import DeliveryEstimate, Scores
from ppx.serve import request_ids

DEFAULT_URL = "http://127.0.0.1:3000"


def model_service_url() -> str:
    return os.environ.get("PPX_MODEL_SERVICE_URL", DEFAULT_URL).rstrip("/")


def _unwrap(body: Any) -> dict:
    """The single response object (the service answers a list only to a list)."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        raise ValueError(f"expected one JSON object, got {type(body).__name__}")
    return body


def _field(d: dict, key: str) -> Any:
    if d.get(key) is None:
        raise ValueError(f"response has no {key!r} (keys: {sorted(d)[:10]})")
    return d[key]


def _prob(v: Any, name: str) -> float:
    x = float(v)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} {x} is outside [0, 1]")
    return x


def parse_delivery(body: Any) -> DeliveryEstimate:
    d = _unwrap(body)
    return DeliveryEstimate(
        p50_days=float(_field(d, "p50_days")), p90_days=float(_field(d, "promise_days"))
    )


def parse_churn(body: Any, horizon: int) -> float:
    d = _unwrap(body)
    status = d.get("status", "ok")
    if status != "ok":
        raise ValueError(f"churn model status {status!r}")
    return _prob(_field(d, f"p_churn_{horizon}"), "churn risk")


def parse_churn_explained(body: Any, horizon: int) -> tuple[float, list[dict]]:
    """Churn risk and the reason codes (``explain: true``): feature, label, contribution."""
    risk = parse_churn(body, horizon)
    reasons = _unwrap(body).get("reasons") or []
    out = []
    for r in reasons:
        if isinstance(r, dict) and r.get("feature") is not None:
            out.append(
                {
                    "feature": str(r["feature"]),
                    "label": r.get("label"),
                    "contribution": float(r.get("contribution") or 0.0),
                }
            )
    return risk, out


def parse_fraud(body: Any) -> tuple[float, bool | None]:
    d = _unwrap(body)
    prob = _prob(_field(d, "p_fraud"), "fraud risk")
    ring = d.get("ring_member")
    return prob, None if ring is None else bool(ring)


def parse_recs(body: Any) -> list[int]:
    return [int(i) for i in _field(_unwrap(body), "product_ids")]


#: A transport: ``await send(path, payload) -> (status, body text)``; raises
#: ``asyncio.TimeoutError`` on a timeout and ``aiohttp.ClientError`` when unreachable.
Send = Callable[[str, Any], Awaitable[tuple[int, str]]]


def route(endpoint: str) -> str:
    """The HTTP path of a model service endpoint, from the model's spec in the registry."""
    from ppx.models import registry

    model = endpoint.split("_", 1)[0]
    for e in registry.get(model).endpoints:
        if e.name == endpoint:
            return e.route
    raise KeyError(f"model {model!r} has no endpoint {endpoint!r}")


class ModelClient:
    """Async calls to the model service with a per-call timeout from the policy.

    aiohttp, not httpx: a call costs the decision service about 0.1 ms of CPU instead
    of 1.5 ms (a one-off measurement against a stub service), and the decision service makes one or
    two per request. The session is created on first use, inside the running loop.
    ``send`` replaces the HTTP transport (tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float = 0.5,
        token: str | None = None,
        send: Send | None = None,
    ):
        self.base_url = (base_url or model_service_url()).rstrip("/")
        self.timeout = timeout
        token = token if token is not None else os.environ.get("PPX_API_TOKEN")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._send = send or self._http
        self._session: aiohttp.ClientSession | None = None

    async def _http(self, path: str, payload: Any) -> tuple[int, str]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=64),
            )
        rid = request_ids.current()
        headers = {"X-Request-ID": rid} if rid else None
        async with self._session.post(self.base_url + path, json=payload, headers=headers) as r:
            return r.status, await r.text()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _post(self, path: str, payload: Any) -> tuple[Any, str | None]:
        try:
            status, text = await self._send(path, payload)
        except TimeoutError:
            return None, f"timeout after {self.timeout:g} s calling {path}"
        except aiohttp.ClientError as err:
            return None, f"{type(err).__name__} calling {self.base_url}{path}"
        if status >= 400:
            detail = text[:120].replace("\n", " ")
            return None, f"HTTP {status} from {path}: {detail}"
        try:
            return json.loads(text), None
        except ValueError:
            return None, f"non-JSON response from {path}"

    async def _call(self, path: str, payload: Any, parse) -> tuple[Any, str | None]:
        """POST ``payload`` to ``path`` and parse the answer (None and the reason on error)."""
        body, err = await self._post(path, payload)
        if err is not None:
            return None, err
        try:
            return parse(body), None
        except (ValueError, KeyError, TypeError) as e:
            return None, f"unexpected response from {path}: {e}"

    async def delivery(self, payload: dict):
        return await self._call(route("delivery_estimate"), payload, parse_delivery)

    async def churn(self, payload: dict, horizon: int):
        return await self._call(route("churn_score"), payload, lambda b: parse_churn(b, horizon))

    async def churn_explained(self, payload: dict, horizon: int):
        """Churn risk with the model's top reason codes (asks ``explain: true``)."""
        return await self._call(
            route("churn_score"),
            {**payload, "explain": True},
            lambda b: parse_churn_explained(b, horizon),
        )

    async def fraud_return(self, payload: dict):
        return await self._call(route("fraud_return"), payload, parse_fraud)

    async def fraud_claim(self, payload: dict):
        return await self._call(route("fraud_claim"), payload, parse_fraud)

    async def recommend(self, payload: dict):
        return await self._call(route("recs_recommend"), payload, parse_recs)

    async def scores(self, wanted: dict[str, dict], horizon: int = 90) -> Scores:
        """Call the wanted models concurrently: ``{"churn": payload, "recs": payload, ...}``."""
        calls = {
            "delivery": self.delivery,
            "churn": lambda p: self.churn(p, horizon),
            "fraud_return": self.fraud_return,
            "fraud_claim": self.fraud_claim,
            "recs": self.recommend,
        }
        names = list(wanted)
        unknown = [n for n in names if n not in calls]
        if unknown:
            raise ValueError(f"unknown models {unknown}; expected some of {list(calls)}")
        results = await asyncio.gather(*(calls[n](wanted[n]) for n in names))
        fields: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for n, (value, err) in zip(names, results, strict=True):
            key = "fraud" if n.startswith("fraud") else n
            if err is not None:
                errors[key] = err
                continue
            if n == "delivery":
                fields["delivery"] = value
            elif n == "churn":
                fields["churn_risk"] = value
            elif n == "recs":
                fields["recommendations"] = value
            else:
                fields["fraud_prob"], fields["ring_member"] = value
        return Scores(errors=errors, **fields)
