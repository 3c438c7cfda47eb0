"""The BentoML model service: every registered ppx model behind a validated endpoint.

Start it with ``ppx serve`` (or ``bentoml serve serving.model_service:ModelService`` from
the repository root). Design choices, and why:

* **Models come from the MLflow registry by alias** (``PPX_MODEL_ALIAS``, default
  ``champion``), never "latest": what serves is what passed the promotion gate. They load
  in a background thread so ``/livez`` answers at once and ``/readyz`` turns 200 only
  when every model has been tried. A model that is missing (not registered, no such
  alias, package not importable) leaves its endpoints answering 503 with the reason;
  the other endpoints work.
* **Churn table models** (``ppx train churn --table FILE --name NAME``) get a route
  each, ``POST /churn/table/<name>``, whose request schema is generated from the table's
  own columns (``serving.table_routes``). Routes must exist when the service class is
  decorated, so the registry is read for them when this module is imported
  (``PPX_TABLE_MODELS``: ``auto``, ``none`` or names).
* **One feature code path**: requests carry raw facts, and the pyfunc computes features
  with the same ``ppx.features`` functions as training, from the history snapshot it
  logged as an artifact. The service never builds features itself.
* **Adaptive batching** (``serving.batching``): requests that arrive while a batch is
  scored are merged into the next ``predict`` call; a lone request never waits. A batch
  whose ``predict`` fails is re-scored item by item so one bad request cannot fail the
  others merged with it.
* **Safety**: :class:`GuardMiddleware` checks the bearer token (when ``PPX_API_TOKEN`` is
  set), the content type and body size, and model availability before any work;
  pydantic models bound every field, list and string; a model that refuses its input
  raises ``ppx.data.errors.RequestError``, answered 422 naming the field; any other
  failure inside a model is logged with its traceback under the request id and answered
  500 with that id (no internals in the body). Every answer carries ``X-Request-ID``: the
  caller's own when it is sane (the decision service sends its own), else a new one.
* **Overload**: each endpoint queues at most ``PPX_MAX_QUEUE`` items behind the batch
  being scored; past that it answers 503 with ``Retry-After`` at once rather than let
  every caller's wait grow without bound. Batches run on one pool of
  ``PPX_SCORING_THREADS`` threads (default 6, one per endpoint, so a slow endpoint never
  stalls another), also when batching is off.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import bentoml
import pandas as pd
from pydantic import ValidationError

from ppx.models import registry
from ppx.models.served import ServedModel
from ppx.models.spec import request_frame
from ppx.serve import request_ids
from serving import schemas as S
from serving import warmup
from serving.batching import MicroBatcher, Overloaded
from serving.bentoml_fixes import fix_timeout_timers, quiet_validation_errors, tracing_config
from serving.errors import RequestIds, document_errors, log_fault, readable_bad_requests
from serving.table_routes import TableModel, load_table_models, table_explainer

log = logging.getLogger("ppx.serving")
#: The start-up summary (one line per model), shown at BentoML's default level: see
#: :func:`show_startup_log`. Request-time lines stay on ``log``.
startup_log = logging.getLogger("ppx.serving.startup")

#: Largest request body accepted (bytes); a full batch of the largest request fits.
MAX_BODY_BYTES = int(os.environ.get("PPX_MAX_BODY_BYTES", str(2 * 1024 * 1024)))
#: Adaptive batching (default on); ``PPX_ADAPTIVE_BATCHING=0`` scores each call alone.
BATCHING = os.environ.get("PPX_ADAPTIVE_BATCHING", "1") != "0"
#: Items that may wait behind an endpoint's running batch before it answers 503.
MAX_QUEUE = int(os.environ.get("PPX_MAX_QUEUE", "2048"))
#: Threads scoring batches, shared by every endpoint. One per endpoint by default: each
#: endpoint runs one batch at a time, so a slow one (fraud with ``explain``, a failed
#: batch re-scored item by item) never holds the thread another endpoint needs.
SCORING_THREADS = int(os.environ.get("PPX_SCORING_THREADS", "6"))


class ModelUnavailable(RuntimeError):
    """A model cannot serve (not registered, alias missing, failed to load, loading)."""


# --- endpoints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One HTTP endpoint: its route, the registered model behind it and its schemas.

    Built from a model spec's :class:`~ppx.models.spec.EndpointSpec`; ``to_frame`` turns
    validated requests into the raw-facts frame the pyfunc documents (None: the plain
    frame, or the pyfunc's columnar fast path when it has one); ``constants`` are the
    spec's constant columns, which the columnar path adds itself.
    """

    name: str
    route: str
    model: str
    request: type
    response: type
    example: dict
    to_frame: Callable[[list[Any]], pd.DataFrame] | None = None
    doc: str = ""
    #: output record -> response fields (None: the record's fields the response declares)
    to_response: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: constant columns of every request (fraud's ``kind``), what ``to_frame`` inserts
    constants: Mapping[str, Any] = field(default_factory=dict)

    @property
    def columnar_ok(self) -> bool:
        """Whether a ``predict_columns`` pyfunc may score it: the frame adds nothing but
        the constant columns (a table model's own ``to_frame`` does more)."""
        return self.to_frame is None or bool(self.constants)


def _default_frame(requests: list[Any]) -> pd.DataFrame:
    """Validated requests -> the raw-facts frame (unset optional fields left out)."""
    return request_frame(requests)


def _columns(requests: list[Any], constants: Mapping[str, Any] | None = None) -> dict[str, list]:
    """Validated requests -> columns (field -> one value per request, None when unset).

    What a pyfunc's ``predict_columns`` takes: the same JSON-typed facts as
    :func:`_default_frame` (constant columns first, as the spec's ``to_frame`` puts
    them), without the DataFrame.
    """
    rows = [r.model_dump(mode="json", exclude={"explain"}, exclude_none=True) for r in requests]
    keys = dict.fromkeys(k for row in rows for k in row)
    consts = {k: [v] * len(rows) for k, v in (constants or {}).items()}
    return {**consts, **{k: [row.get(k) for row in rows] for k in keys if k not in consts}}


def build_endpoints() -> dict[str, Endpoint]:
    """Every endpoint of every registered model, by API name (the registry's order)."""
    out: dict[str, Endpoint] = {}
    for spec in registry.specs():
        for e in spec.endpoints:
            if e.name in out:
                raise ValueError(f"endpoint {e.name} is declared twice")
            out[e.name] = Endpoint(
                name=e.name,
                route=e.route,
                model=spec.name,
                request=e.request,
                response=e.response,
                example=dict(e.example),
                to_frame=e.to_frame if e.columns else None,
                doc=e.doc,
                constants=dict(e.columns),
            )
    return out


def serving_alias() -> str:
    """The registry alias served (``PPX_MODEL_ALIAS``, else the settings' ``champion``)."""
    from ppx.config import get_settings

    alias = os.environ.get("PPX_MODEL_ALIAS") or get_settings().model_alias
    if alias.lower() == "latest":
        raise ValueError("PPX_MODEL_ALIAS=latest is not allowed: serve a gated alias")
    return alias


def table_endpoints(tables: list[TableModel]) -> dict[str, Endpoint]:
    """One endpoint per churn table model (``POST /churn/table/<name>``)."""
    return {
        t.api_name: Endpoint(
            name=t.api_name,
            route=t.route,
            model=t.registered,
            request=t.request,
            response=t.response,
            example=dict(t.request.model_config["json_schema_extra"]["examples"][0]),
            to_frame=t.to_frame,
            doc=f"Churn probability of one customer of the table behind {t.registered}.",
            to_response=t.to_response,
        )
        for t in tables
    }


#: Table models found in the registry when this module is imported (their routes must
#: exist before the service class is decorated), by registered name.
TABLES: dict[str, TableModel] = {t.registered: t for t in load_table_models(serving_alias())}
ENDPOINTS: dict[str, Endpoint] = build_endpoints()
for _name, _table_endpoint in table_endpoints(list(TABLES.values())).items():
    if _name in ENDPOINTS:
        raise ValueError(f"endpoint {_name} is declared twice")
    ENDPOINTS[_name] = _table_endpoint


# --- model store ------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A registered model version ready to predict (and explain, when supported)."""

    name: str
    registered: str
    version: str
    alias: str
    pyfunc: Any
    python_model: Any
    explainer: Any = None
    loaded_in_s: float = 0.0

    @property
    def columnar(self) -> bool:
        """Whether the pyfunc offers ``predict_columns`` (columns in, columns out)."""
        return isinstance(self.python_model, ServedModel) and self.python_model.columnar

    def predict_records(self, requests: list[Any], endpoint: Endpoint) -> list[dict]:
        """Validated requests -> one JSON-typed output record per request.

        A pyfunc with ``predict_columns`` skips pandas on the way in and out (for a
        single delivery estimate or fraud score the DataFrames and the JSON round trip
        cost more than the features and the network together); the others get a frame.
        """
        if self.columnar and endpoint.columnar_ok:
            out = self.python_model.predict_columns(_columns(requests, endpoint.constants))
            records = _column_records(out)
        else:
            frame = self.predict((endpoint.to_frame or _default_frame)(requests))
            records = json.loads(frame.to_json(orient="records", date_format="iso"))
        if len(records) != len(requests):
            raise RuntimeError(
                f"{self.registered} v{self.version} returned {len(records)} rows "
                f"for {len(requests)}"
            )
        return records

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        # The PythonModel's own predict, without MLflow's signature enforcement: the
        # pydantic request models already validate more strictly, and enforcement costs
        # milliseconds per call on the hot path. Features are still the pyfunc's.
        out = self.python_model.predict(None, frame)
        if not isinstance(out, pd.DataFrame):
            out = pd.DataFrame(out)
        if len(out) != len(frame):
            raise RuntimeError(
                f"{self.registered} v{self.version} returned {len(out)} rows for {len(frame)}"
            )
        return out.reset_index(drop=True)


def _column_records(out: dict[str, Any]) -> list[dict]:
    """Output columns -> records with the JSON types ``DataFrame.to_json`` would give.

    Timestamps become ISO strings at millisecond precision, NaN/NaT become None, numpy
    scalars become Python numbers, so both scoring paths answer alike (floats keep their
    full precision here, where ``to_json`` rounds them to 10 significant digits).
    """
    import numpy as np

    lists: dict[str, list] = {}
    for name, values in out.items():
        arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
        if arr.ndim != 1:
            raise RuntimeError(f"output column {name!r} is not one value per request")
        if arr.dtype.kind == "M":
            text = np.datetime_as_string(arr.astype("datetime64[ms]"), unit="ms")
            lists[name] = [None if t == "NaT" else str(t) for t in text]
        else:  # NaN -> None in float and object columns alike, as to_json does
            lists[name] = [None if isinstance(v, float) and v != v else v for v in arr.tolist()]
    sizes = {len(v) for v in lists.values()}
    if len(sizes) > 1:
        raise RuntimeError(f"output columns of unequal length: {sorted(sizes)}")
    n = sizes.pop() if sizes else 0
    return [{k: v[i] for k, v in lists.items()} for i in range(n)]


@dataclass
class ModelStore:
    """Loads each model of :data:`ENDPOINTS` by alias and remembers why any is missing."""

    alias: str
    models: tuple[str, ...]
    loaded: dict[str, LoadedModel] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self.load_all, name="ppx-model-loader", daemon=True).start()

    def load_all(self) -> None:
        try:
            from ppx import tracking

            tracking.configure()
            for name in self.models:
                try:
                    self.loaded[name] = self._load(name)
                except Exception as err:  # every failure is reported, none is fatal
                    reason = f"{tracking.registered_name(name)}@{self.alias}: {err}"
                    self.missing[name] = reason
                    log.warning("model unavailable: %s", reason)
            self._settle()
        finally:
            self.ready.set()

    def _settle(self) -> None:
        """Warm every loaded model up, then move what is alive to the GC's permanent
        generation.

        The models' histories and look-up tables are hundreds of thousands of Python
        objects that live as long as the process. Left to the cyclic collector, every
        full collection walks all of them (0.3-0.8 s for the demo models, during which
        the service answers nothing): with the timer objects of ``bentoml_fixes``, one
        of the two causes of the 32-client p99 near one second. A first request per
        endpoint (the model's own logged input example, :mod:`serving.warmup`) builds
        the models' lazy caches (snapshot look-ups, numpy weights), so they are frozen
        too.
        """
        warmed: dict[str, list[WarmUp]] = {name: [] for name in self.loaded}
        for endpoint in ENDPOINTS.values():
            if endpoint.model in self.loaded:  # a missing model was reported by load_all
                warmed[endpoint.model].append(self._warm_up(self.loaded[endpoint.model], endpoint))
        for name, model in self.loaded.items():
            startup_log.info("%s", _ready_line(model, warmed[name]))
        gc.collect()
        gc.freeze()

    @staticmethod
    def _warm_up(model: LoadedModel, endpoint: Endpoint) -> WarmUp:
        """Score the model's own logged input example on the endpoint (the documented
        example when it logged none: see ``serving.warmup``). A failure is a warning
        naming the model: the model still serves, its first caller pays for the caches."""
        done = WarmUp(endpoint.route, warmup.OWN)
        try:
            done.source, bodies = warmup.warmup_requests(
                model.pyfunc, endpoint.request, endpoint.example, endpoint.constants
            )
        except Exception as err:  # an unreadable logged example: said, never fatal
            done.source, bodies = warmup.DOCUMENTED, []
            done.failed += 1
            _warm_up_failed(model, endpoint, warmup.OWN, err)
        for body in bodies:
            t0 = time.perf_counter()
            try:
                request = warmup.validate(endpoint.request, body, done.source)
                model.predict_records([request], endpoint)
            except Exception as err:
                done.failed += 1
                _warm_up_failed(model, endpoint, done.source, err)
            else:
                done.scored += 1
                done.ms += 1000 * (time.perf_counter() - t0)
        return done

    def _load(self, name: str) -> LoadedModel:
        import mlflow
        from ppx import tracking

        t0 = time.perf_counter()
        if name in TABLES:  # loaded at import, to generate its request schema
            table = TABLES[name]
            pyfunc = table.pyfunc
            python_model = pyfunc.unwrap_python_model()
            version, explainer = table.version, table_explainer(python_model)
        else:
            mv = tracking.get_alias_version(name, self.alias)
            if mv is None:
                raise ModelUnavailable(
                    f"no version of {tracking.registered_name(name)} has alias "
                    f"'{self.alias}' (train it: ppx train {name})"
                )
            uri = f"models:/{tracking.registered_name(name)}/{mv.version}"
            pyfunc = mlflow.pyfunc.load_model(uri)
            python_model = pyfunc.unwrap_python_model()
            version, explainer = str(mv.version), _make_explainer(name, python_model)
        return LoadedModel(
            name=name,
            registered=tracking.registered_name(name),
            version=version,
            alias=self.alias,
            pyfunc=pyfunc,
            python_model=python_model,
            explainer=explainer,
            loaded_in_s=time.perf_counter() - t0,
        )

    def get(self, name: str) -> LoadedModel:
        if name in self.loaded:
            return self.loaded[name]
        if not self.ready.is_set():
            raise ModelUnavailable("models are still loading; retry shortly (see /readyz)")
        raise ModelUnavailable(self.missing.get(name, f"model {name} is not configured"))


@dataclass
class WarmUp:
    """What warming one endpoint of a model up did."""

    route: str
    source: str
    scored: int = 0
    failed: int = 0
    ms: float = 0.0


def _ready_line(model: LoadedModel, warmed: list[WarmUp]) -> str:
    """The start-up line of one model: name, version, alias, load and warm-up time.

    ``ready: ppx-delivery v3 @champion, loaded in 1.2 s, warmed up in 41 ms on
    /delivery/estimate (its logged input example)``; a route whose warm-up failed is
    named (its warning says why).
    """
    line = (
        f"ready: {model.registered} v{model.version} @{model.alias}, "
        f"loaded in {model.loaded_in_s:.1f} s"
    )
    ok = [w for w in warmed if w.scored]
    if ok:
        routes = ", ".join(w.route for w in ok)
        sources = ", ".join(dict.fromkeys(w.source for w in ok))
        line += f", warmed up in {sum(w.ms for w in ok):.0f} ms on {routes} ({sources})"
    failed = [w.route for w in warmed if w.failed]
    if failed:
        line += f"; warm-up failed on {', '.join(failed)} (see the warning)"
    idle = [w.route for w in warmed if not w.scored and not w.failed]
    if idle:
        line += f"; no example to warm up on {', '.join(idle)}"
    return line


def show_startup_log() -> None:
    """Let the start-up summary through at the service's default level.

    BentoML's server logging leaves every logger but its own at the root's WARNING, which
    hides INFO lines; only :data:`startup_log` is set to INFO (request-time logging stays
    as it was). BentoML's quiet mode (root above WARNING) keeps it hidden.
    """
    if logging.getLogger().getEffectiveLevel() <= logging.WARNING:
        startup_log.setLevel(logging.INFO)


def _warm_up_failed(model: LoadedModel, endpoint: Endpoint, source: str, err: Exception) -> None:
    log.warning(
        "warm-up of %s v%s on %s with %s failed: %s",
        model.registered,
        model.version,
        endpoint.route,
        source,
        err,
    )


def _make_explainer(name: str, python_model: Any) -> Any:
    """The reason-code fast path of ``ppx.explain`` for this model (None if it has none).

    A model whose inputs are not tabular (free text) brings its own reason codes as a
    ``reason_codes(frame, k)`` method of its pyfunc; SHAP's needs named columns.
    """
    own = getattr(python_model, "reason_codes", None)
    if callable(own):
        return own

    from ppx.explain.reason_codes import reason_codes, references, wording
    from ppx.explain.sources import as_explainable

    try:
        model = as_explainable(python_model)
    except (TypeError, ValueError) as err:  # a model without the SHAP surface still scores
        log.warning("no reason codes for %s: %s", name, err)
        return None
    # Reference rows, labels and typical values are per model: built at load, so the first
    # explain=true request does not pay for scoring the whole background.
    try:
        references(model)
        wording(model, name)
    except (TypeError, ValueError) as err:  # e.g. no background rows: the model still scores
        log.warning("no reason codes for %s: %s", name, err)
        return None

    def explain(frame: pd.DataFrame, k: int) -> list[list[dict]]:
        return reason_codes(model, frame, k=k, model_name=name)

    return explain


#: The process-wide store (one BentoML worker = one process); the middleware reads it.
STORE: ModelStore | None = None


def _store() -> ModelStore:
    global STORE
    if STORE is None:
        alias = serving_alias()
        models = tuple(dict.fromkeys(e.model for e in ENDPOINTS.values()))
        STORE = ModelStore(alias=alias, models=models)
    return STORE


# --- scoring -------------------------------------------------------------------------------


def score(endpoint: Endpoint, requests: list[Any]) -> list[Any]:
    """Score validated requests with the endpoint's model; failures become ItemErrors."""
    try:
        model = _store().get(endpoint.model)
    except ModelUnavailable as err:
        return [S.ItemError(503, f"{endpoint.route}: {err}", retry_after=30)] * len(requests)
    try:
        records = model.predict_records(requests, endpoint)
        rows = _rows(endpoint, model, requests, records)
    except Exception as err:
        if len(requests) == 1:
            return [_item_error(endpoint, err)]
        # One bad item must not fail the requests batched with it: retry one by one.
        return [score(endpoint, [r])[0] for r in requests]
    return rows


def _item_error(endpoint: Endpoint, err: Exception) -> S.ItemError:
    """The caller's fault (a :class:`RequestError` from the pyfunc: unknown carrier,
    claim before delivery) is a 422 naming the field; anything else is our fault: a
    logged 500, whatever its type (a ``ValueError`` from deep inside pandas is not the
    caller's doing)."""
    from ppx.data.errors import RequestError

    if isinstance(err, RequestError):
        return S.ItemError(422, f"{endpoint.route}: {err}")
    # the caller gets an id to quote (the request's), the log has it beside the traceback
    rid, message = log_fault(endpoint.route, err, "scoring failed")
    return S.ItemError(500, message, request_id=rid, fault=err)


def _own_ids(endpoint: Endpoint, results: list[Any]) -> list[Any]:
    """``results`` with each 500 under the id of the request being served.

    A batch runs in the context of the call that started it, so a fault in an item of
    another call merged into it was logged under that call's id: it is logged again
    (with its traceback) under this request's id, the one its caller is answered.
    """
    rid = request_ids.current()
    if rid is None:
        return results
    out = list(results)
    for i, r in enumerate(out):
        if isinstance(r, S.ItemError) and r.status == 500 and r.request_id != rid:
            fault = r.fault if r.fault is not None else RuntimeError(r.message)
            own, message = log_fault(endpoint.route, fault, "scoring failed")
            out[i] = S.ItemError(500, message, request_id=own, fault=fault)
    return out


def _rows(endpoint: Endpoint, model: LoadedModel, requests: list[Any], records: list[dict]):
    reasons: list[Any] = [None] * len(requests)
    want = [i for i, r in enumerate(requests) if r.explain]
    if want and model.explainer is not None:
        sub = [requests[i] for i in want]
        frame = (endpoint.to_frame or _default_frame)(sub)
        codes = model.explainer(frame, 3)
        for i, c in zip(want, codes, strict=True):
            reasons[i] = [S.ReasonCode(**rc) for rc in c]
    meta = {"model": model.registered, "version": model.version, "alias": model.alias}
    fields = endpoint.to_response or (lambda rec: S.response_fields(endpoint.response, rec))
    try:
        return [
            endpoint.response(**fields(rec), **meta, reasons=rs)
            for rec, rs in zip(records, reasons, strict=True)
        ]
    except ValidationError as err:  # the model broke its documented output: our bug, a 500
        raise RuntimeError(f"{model.registered} output does not match the schema: {err}") from err


# --- middleware ------------------------------------------------------------------------------


class GuardMiddleware:
    """Auth, content checks and model availability, before BentoML parses anything.

    Only the model endpoints are guarded; probes (``/livez``, ``/readyz``), ``/metrics``
    and the OpenAPI document stay open so orchestrators and scrapers need no token.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.routes = {e.route: e for e in ENDPOINTS.values()}

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] not in self.routes:
            await self.app(scope, receive, send)
            return
        endpoint = self.routes[scope["path"]]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = os.environ.get("PPX_API_TOKEN")
        if token:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                await _reply(
                    send,
                    401,
                    {
                        "error": "missing or wrong bearer token (Authorization: Bearer <PPX_API_TOKEN>)"
                    },
                    [(b"www-authenticate", b'Bearer realm="ppx"')],
                )
                return
        if scope.get("method") != "POST":
            # RFC 9110: a 405 lists the methods the resource does accept
            await _reply(
                send, 405, {"error": f"{endpoint.route} accepts POST only"}, [(b"allow", b"POST")]
            )
            return
        ctype = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if ctype != "application/json":
            await _reply(
                send, 415, {"error": f"content-type must be application/json, got {ctype}"}
            )
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await _reply(send, 413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
            return
        try:
            _store().get(endpoint.model)
        except ModelUnavailable as err:
            await _reply(
                send,
                503,
                {"error": f"{endpoint.route} unavailable: {err}"},
                [(b"retry-after", b"30")],
            )
            return
        await self.app(scope, receive, send)


async def _reply(send: Callable, status: int, body: dict, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


# --- the service ---------------------------------------------------------------------------


_BATCH_SIZES: Any = None


def _batch_size_metric() -> Any:
    """Histogram of merged batch sizes per endpoint, on ``/metrics`` beside BentoML's."""
    global _BATCH_SIZES
    if _BATCH_SIZES is None:
        from prometheus_client import Histogram

        _BATCH_SIZES = Histogram(
            "ppx_batch_size",
            "Requests merged into one model call, per endpoint.",
            ["endpoint"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
    return _BATCH_SIZES


def _batchers(executor: Executor) -> dict[str, MicroBatcher]:
    metric = _batch_size_metric()
    return {
        name: MicroBatcher(
            fn=lambda items, ep=ep: score(ep, items),
            max_batch=S.MAX_BATCH,
            observe=metric.labels(endpoint=ep.route).observe,
            max_queue=MAX_QUEUE,
            executor=executor,
        )
        for name, ep in ENDPOINTS.items()
    }


class _ModelService:
    """ppx models: one endpoint per registered model endpoint (``ppx.models.registry``).

    Every endpoint takes one JSON request or a JSON array of them (at most
    ``PPX_MAX_BATCH``) and answers in kind. With ``PPX_API_TOKEN`` set, send
    ``Authorization: Bearer <token>``. A missing model answers 503 with the reason.
    """

    def __init__(self) -> None:
        import torch

        torch.set_num_threads(int(os.environ.get("PPX_TORCH_THREADS", "1")))
        fix_timeout_timers()
        quiet_validation_errors()
        show_startup_log()
        _store().start()
        self.executor = ThreadPoolExecutor(SCORING_THREADS, thread_name_prefix="ppx-scoring")
        self.batchers = _batchers(self.executor)

    async def _score(self, name: str, requests: list[Any]) -> list[Any]:
        endpoint = ENDPOINTS[name]
        if not BATCHING:
            loop = asyncio.get_running_loop()
            run = contextvars.copy_context().run  # the request id, in the scoring thread
            return await loop.run_in_executor(self.executor, run, score, endpoint, requests)
        try:
            return _own_ids(endpoint, await self.batchers[name].submit(requests))
        except Overloaded as err:
            overloaded = S.ItemError(503, f"{endpoint.route}: overloaded, {err}", retry_after=1)
            return [overloaded] * len(requests)

    def __is_ready__(self) -> bool:
        return _store().ready.is_set()

    @bentoml.on_shutdown
    def stop_scoring(self) -> None:
        """On shutdown: drop the batches not yet started, let running ones finish."""
        self.executor.shutdown(wait=True, cancel_futures=True)


def _api_method(endpoint: Endpoint) -> Any:
    """The BentoML API of one endpoint: one request or a list in, pydantic IO, one line.

    Generated per endpoint of the registry (BentoML collects every ``APIMethod`` class
    attribute when the service class is decorated); the schemas come from the model's
    spec, so the OpenAPI document shows each endpoint's request and response.
    """
    name = endpoint.name

    async def api(self, requests: list[Any], /) -> list[Any]:
        return await self._score(name, requests)

    api.__name__ = name
    api.__qualname__ = f"ModelService.{name}"
    api.__doc__ = endpoint.doc or f"{endpoint.route} (ppx-{endpoint.model})"
    return bentoml.api(
        route=endpoint.route,
        input_spec=S.batch_input(endpoint.request),
        output_spec=S.batch_output(endpoint.response),
    )(api)


for _endpoint in ENDPOINTS.values():
    setattr(_ModelService, _endpoint.name, _api_method(_endpoint))
_ModelService.__name__ = _ModelService.__qualname__ = "ModelService"

ModelService = bentoml.service(
    name="ppx-models",
    workers=int(os.environ.get("PPX_MODEL_WORKERS", "1")),
    threads=1,  # BentoML's pool for sync APIs; ours are async and score on SCORING_THREADS
    traffic={"timeout": 30},
    metrics={"enabled": True, "namespace": "ppx"},
    tracing=tracing_config(),
    logging={"access": {"enabled": os.environ.get("PPX_ACCESS_LOG", "0") == "1"}},
)(_ModelService)
ModelService.add_asgi_middleware(RequestIds)  # first: every answer carries X-Request-ID
ModelService.add_asgi_middleware(GuardMiddleware)
document_errors(ModelService)  # /docs.json declares every error status and body
readable_bad_requests(ModelService)  # a 400 says the route and the fields in `error`
