"""The serving benchmarks: every endpoint over HTTP at several client counts, and in-process.

``run_bench`` starts the model service (and the decision service, and ``mlflow models
serve`` of the same delivery model as the baseline) and loads each route with
:func:`ppx.serve.loadgen.measure`; ``run_latency`` times the service's own scoring code
without HTTP. Both return the benchmark JSON shape (``meta`` plus ``DATASET -> METHOD ->
METRIC``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ppx.config import PROJECT_ROOT
from ppx.serve.launch import Server, running_decision_service, running_mlflow_serve, running_service
from ppx.serve.loadgen import measure
from ppx.serve.routes import ROUTES, endpoint_name, example_request


def wait_idle(*servers: Server, threshold: float = 10.0, timeout: float = 90.0) -> float:
    """Wait until the servers' processes use < ``threshold`` % CPU; return seconds waited.

    A run that overloads a service (32 clients on a slow model) leaves requests queued
    after its clients gave up; measuring the next endpoint before they drain would charge
    it for the previous one's backlog.
    """
    import psutil

    t0 = time.monotonic()
    procs = []
    for server in servers:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(server.proc.pid)
            procs += [root, *root.children(recursive=True)]

    def busy() -> float:  # CPU % of the processes since the previous call
        total = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.cpu_percent(None)
        return total

    busy()
    while time.monotonic() - t0 < timeout:
        time.sleep(0.5)
        if busy() < threshold:
            break
    return time.monotonic() - t0


def run_bench(
    seconds: float = 10.0,
    soak_seconds: float = 60.0,
    clients: tuple[int, ...] = (1, 8, 32),
    with_mlflow: bool = True,
    progress: bool = True,
    endpoints: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The serving benchmark: every endpoint at each client count, then mlflow_serve.

    DATASET keys are ``<endpoint>@<clients>`` (e.g. ``delivery_estimate@8``); METHOD
    ``ppx`` is the BentoML service, ``mlflow_serve`` is ``mlflow models serve`` of the
    same registered delivery model (``delivery_estimate`` only). The largest client
    count runs for ``soak_seconds`` (the "zero 5xx in 60 s at 32 clients" target).
    """
    import httpx
    from rich.console import Console

    from ppx import tracking
    from ppx.config import get_settings

    console = Console(stderr=True)
    t0 = time.perf_counter()
    alias = os.environ.get("PPX_MODEL_ALIAS") or get_settings().model_alias
    token = os.environ.get("PPX_API_TOKEN")
    headers = {"authorization": f"Bearer {token}"} if token else {}
    payload: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    from ppx.rules.bench import ROUTES as DECISION_ROUTES

    unknown = set(endpoints or ()) - set(ROUTES) - set(DECISION_ROUTES)
    if unknown:
        choices = [*ROUTES, *DECISION_ROUTES]
        raise ValueError(f"endpoints: unknown {sorted(unknown)}; choose from {choices}")
    names = [e for e in ROUTES if not endpoints or e in endpoints]
    decision_names = [e for e in DECISION_ROUTES if not endpoints or e in endpoints]
    plan = [(e, c) for e in names for c in clients]
    fallbacks: dict[str, list[str]] = {}

    def dur(c: int) -> float:
        return soak_seconds if c == max(clients) else seconds

    with running_service() as server:
        for endpoint in names:
            ex = example_request(endpoint)
            url = server.url + ROUTES[endpoint]
            r = httpx.post(url, json=ex, headers=headers, timeout=60)
            if r.status_code != 200:
                skipped[endpoint] = f"probe answered {r.status_code}: {r.text[:200]}"
                continue
        todo = [(e, c) for e, c in plan if e not in skipped]
        for i, (endpoint, c) in enumerate(todo, 1):
            if progress:
                console.print(f"[{i}/{len(todo)}] ppx {endpoint} clients={c} {dur(c):.0f}s")
            wait_idle(server)
            res = measure(
                server.url + ROUTES[endpoint], example_request(endpoint), c, dur(c), headers=headers
            )
            payload.setdefault(f"{endpoint}@{c}", {})["ppx"] = res
        if decision_names:
            measured = _bench_decisions(
                server, decision_names, clients, dur, headers, progress, console
            )
            for key, res in measured["results"].items():
                payload.setdefault(key, {})["ppx"] = res
            skipped.update(measured["skipped"])
            fallbacks.update(measured["fallbacks"])
    if with_mlflow and "delivery_estimate" in names and "delivery_estimate" not in skipped:
        tracking.configure()
        mv = tracking.get_alias_version("delivery", alias)
        uri = f"models:/{tracking.registered_name('delivery')}/{mv.version}"
        body = {"dataframe_records": [example_request("delivery_estimate")]}
        with running_mlflow_serve(uri) as server:
            r = httpx.post(server.url + "/invocations", json=body, timeout=60)
            if r.status_code != 200:
                skipped["mlflow_serve"] = f"probe answered {r.status_code}: {r.text[:200]}"
            else:
                for c in clients:
                    if progress:
                        console.print(f"mlflow_serve delivery_estimate clients={c} {dur(c):.0f}s")
                    wait_idle(server)
                    res = measure(server.url + "/invocations", body, c, dur(c))
                    payload.setdefault(f"delivery_estimate@{c}", {})["mlflow_serve"] = res
    meta = {
        "command": " ".join(["ppx", "bench", "serve", *sys.argv[3:]])
        if sys.argv[1:3] == ["bench", "serve"]
        else "ppx bench serve",
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
        "alias": alias,
        "skipped": skipped,
        "decision_fallbacks": fallbacks,
        "duration_s": {"default": seconds, f"{max(clients)} clients": soak_seconds},
    }
    return {"meta": meta, **payload}


def _bench_decisions(
    model_server: Server,
    names: list[str],
    clients: tuple[int, ...],
    dur,
    headers: dict,
    progress: bool,
    console,
) -> dict[str, Any]:
    """The decision endpoints, against the running model service, with a fresh ledger.

    A probe of each endpoint must answer 200; the fallbacks it still reports after three
    tries (the first call of a model may be slow) are returned so the benchmark says
    what it measured.
    """
    model_url = model_server.url
    import httpx

    from ppx.rules.bench import ROUTES as DECISION_ROUTES
    from ppx.rules.bench import body_makers

    out: dict[str, Any] = {"results": {}, "skipped": {}, "fallbacks": {}}
    churn_ex = {k: v for k, v in example_request("churn_score").items() if k != "as_of"}
    r = httpx.post(model_url + "/churn/score", json=churn_ex, headers=headers, timeout=60)
    if r.status_code != 200 or r.json().get("status") != "ok":
        why = f"churn probe for the subscriber answered {r.status_code}: {r.text[:200]}"
        out["skipped"].update({n: why for n in names})
        return out
    makers = body_makers(
        churn_ex["customer_id"], r.json()["as_of"], example_request("fraud_return")
    )
    with tempfile.TemporaryDirectory(prefix="ppx-bench-ledger-") as tmp:
        ledger = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        with running_decision_service(model_url, ledger) as server:
            for name in names:
                url = server.url + DECISION_ROUTES[name]
                wait_idle(server, model_server)
                for attempt in range(3):
                    body = makers[name](10**8 + attempt)
                    probe = httpx.post(url, json=body, headers=headers, timeout=60)
                    if probe.status_code != 200 or not probe.json()["decision"]["fallbacks"]:
                        break
                if probe.status_code != 200:
                    out["skipped"][name] = f"probe answered {probe.status_code}: {probe.text[:200]}"
                    continue
                if probe.json()["decision"]["fallbacks"]:
                    out["fallbacks"][name] = probe.json()["decision"]["fallbacks"]
                for c in clients:
                    if progress:
                        console.print(f"ppx {name} clients={c} {dur(c):.0f}s")
                    wait_idle(server, model_server)
                    res = measure(url, None, c, dur(c), headers=headers, make=makers[name])
                    out["results"][f"{name}@{c}"] = res
    return out


def run_latency(n: int = 500, warmup: int = 20, progress: bool = True) -> dict[str, Any]:
    """In-process latency of one request per endpoint, through the service's own code.

    Loads the registered models exactly as the model service does (same alias, same
    ``ModelStore``) and times ``serving.model_service.score`` on the endpoint's
    documented example: request validation by the pydantic model, the raw facts (as
    columns for pyfuncs with ``predict_columns``, else a frame), the pyfunc (features from
    its snapshot, network, calibration) and the response object; no HTTP, no batching. One torch thread, as in the service.
    """
    import numpy as np
    import torch
    from rich.console import Console

    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    from serving import model_service as M

    torch.set_num_threads(int(os.environ.get("PPX_TORCH_THREADS", "1")))
    console = Console(stderr=True)
    store = M._store()
    store.load_all()
    payload: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in ROUTES:
        endpoint = M.ENDPOINTS[endpoint_name(name)]
        example = example_request(name)
        request = endpoint.request.model_validate(example)
        first = M.score(endpoint, [request])[0]
        if isinstance(first, M.S.ItemError):
            skipped[name] = f"{first.status}: {first.message}"
            continue
        if progress:
            console.print(f"{name}: {n} requests in-process")
        for _ in range(warmup):
            M.score(endpoint, [endpoint.request.model_validate(example)])
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            M.score(endpoint, [endpoint.request.model_validate(example)])
            times.append((time.perf_counter() - t0) * 1000.0)
        a = np.asarray(times)
        payload[name] = {
            "ppx": {
                "p50_ms": float(np.percentile(a, 50)),
                "p99_ms": float(np.percentile(a, 99)),
                "mean_ms": float(a.mean()),
                "requests": n,
            }
        }
    meta = {
        "command": "ppx bench latency " + " ".join(sys.argv[3:]),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "alias": store.alias,
        "skipped": skipped,
    }
    return {"meta": meta, **payload}
