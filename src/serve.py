"""``ppx serve`` and ``ppx bench serve``: start the model service, and load-test it.

The service itself lives in ``serving/model_service.py`` (beside the package, where
BentoML imports it from); this module holds what the CLI, the tests and the benchmark
share: starting the service as a subprocess on a port, waiting for ``/readyz``, stopping
it (only the process group it started), and a load generator that runs in a *separate
process* so client and server do not share an interpreter (they do share the machine's
cores, which the benchmark page states).

Nothing happens at import; :func:`register` adds the commands to the root ``ppx`` app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import typer

from ppx.config import PROJECT_ROOT

SERVICE = "serving.model_service:ModelService"
DECISION_SERVICE = "serving.decision_service:DecisionService"
#: endpoint name -> route, in the order the benchmark runs them.
ROUTES = {
    "delivery_estimate": "/delivery/estimate",
    "delivery_transit": "/delivery/estimate",
    "churn_score": "/churn/score",
    "fraud_return": "/fraud/return",
    "fraud_claim": "/fraud/claim",
    "recs_recommend": "/recs/recommend",
}
#: endpoint name -> (request model in serving.schemas, index of its documented example).
EXAMPLES = {
    "delivery_estimate": ("DeliveryRequest", 0),
    "delivery_transit": ("DeliveryRequest", 1),
    "churn_score": ("ChurnRequest", 0),
    "fraud_return": ("ReturnRequest", 0),
    "fraud_claim": ("ClaimRequest", 0),
    "recs_recommend": ("RecsRequest", 0),
}


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def example_request(endpoint: str) -> dict[str, Any]:
    """The documented example body of ``endpoint`` (from its request model's OpenAPI examples).

    The examples mirror each model pyfunc's ``REQUEST_EXAMPLE``; the benchmark and the
    tests send exactly what the API documentation shows.
    """
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))  # serving/ sits beside the package
    from serving import schemas

    model, i = EXAMPLES[endpoint]
    return dict(getattr(schemas, model).model_config["json_schema_extra"]["examples"][i])


# --- starting and stopping servers ------------------------------------------------------


@dataclass
class Server:
    """A server subprocess (own process group) and where it listens."""

    proc: subprocess.Popen
    url: str
    log_path: Path

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate the process group this object started (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def _spawn(cmd: list[str], env: dict[str, str], url: str, name: str) -> Server:
    log_path = Path(tempfile.mkstemp(prefix=f"ppx-{name}-", suffix=".log")[1])
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(proc, url, log_path)


def wait_until(server: Server, path: str, timeout: float = 240.0) -> None:
    """Poll ``path`` until it answers 200; fail with the server's log if it dies."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + path, timeout=2.0).status_code == 200:
                return
        time.sleep(0.5)
    server.stop()
    raise TimeoutError(f"{server.url}{path} not ready after {timeout:.0f}s:\n{server.log_tail()}")


def service_command(host: str, port: int, service: str = SERVICE) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        service,
        "--working-dir",
        str(PROJECT_ROOT),
        "--host",
        host,
        "--port",
        str(port),
    ]


@contextlib.contextmanager
def _running(
    cmd: list[str], env: dict[str, str], port: int, name: str, ready: str, timeout: float = 240.0
) -> Iterator[Server]:
    """Start ``cmd`` on the loopback, wait until ``ready`` answers, stop it on exit."""
    server = _spawn(cmd, env, f"http://127.0.0.1:{port}", name)
    try:
        wait_until(server, ready, timeout)
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_service(
    port: int | None = None,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
    timeout: float = 240.0,
) -> Iterator[Server]:
    """Run the model service on the loopback for the duration of a ``with`` block."""
    port = port or free_port()
    full_env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True", **(env or {})}
    ready = "/readyz" if wait_ready else "/livez"
    with _running(service_command("127.0.0.1", port), full_env, port, "bento", ready, timeout) as s:
        yield s


@contextlib.contextmanager
def running_decision_service(
    model_service_url: str, ledger_url: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Run the decision service against ``model_service_url`` with its own ledger."""
    port = free_port()
    full_env = {
        **os.environ,
        "BENTOML_DO_NOT_TRACK": "True",
        "PPX_MODEL_SERVICE_URL": model_service_url,
        "PPX_LEDGER_URL": ledger_url,
        **(env or {}),
    }
    cmd = service_command("127.0.0.1", port, DECISION_SERVICE)
    with _running(cmd, full_env, port, "decisions", "/readyz") as s:
        yield s


@contextlib.contextmanager
def running_mlflow_serve(model_uri: str, port: int | None = None) -> Iterator[Server]:
    """``mlflow models serve --env-manager local`` of the same registered model."""
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    # mlflow execs ``uvicorn`` by name: put this interpreter's bin folder first on PATH
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": _tracking_uri(), "PATH": path}
    with _running(cmd, env, port, "mlflow", "/ping") as s:
        yield s


def _tracking_uri() -> str:
    from ppx import tracking

    return tracking.configure()


# --- load generation (runs in a child process) -------------------------------------------


def _load_child(
    url: str, body: bytes, headers: dict, clients: int, seconds: float, warmup: float, q, make
) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    q.put(asyncio.run(_load(url, body, headers, clients, seconds, warmup, make)))


async def _load(
    url: str,
    body: bytes,
    headers: dict,
    clients: int,
    seconds: float,
    warmup: float,
    make: Any = None,
) -> dict[str, Any]:
    """Closed-loop clients; ``make(i)``, when given, builds request i's body (unique ids).

    aiohttp (with uvloop) keeps the generator's own CPU small (about 0.1 ms a request
    against httpx's 1.5 ms in a one-off measurement): it shares the two cores with the
    servers it measures.
    """
    import aiohttp

    hdrs = {"content-type": "application/json", **headers}
    lat: list[float] = []
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
                data = body if make is None else json.dumps(make(next(ids))).encode()
                try:
                    async with client.post(url, data=data, headers=hdrs) as r:
                        await r.read()
                        code = r.status
                except (aiohttp.ClientError, TimeoutError):
                    code = 0
                t1 = time.perf_counter()
                if t0 >= t_measure:
                    status[code] = status.get(code, 0) + 1
                    if 200 <= code < 300:
                        lat.append(t1 - t0)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return {"latencies": lat, "status": status, "errors": errors, "seconds": seconds}


def measure(
    url: str,
    payload: Any,
    clients: int,
    seconds: float,
    warmup: float = 2.0,
    headers: dict | None = None,
    make: Any = None,
) -> dict[str, float]:
    """Load ``url`` from a separate process with ``clients`` concurrent clients.

    ``payload`` is sent as is, unless ``make`` (a picklable ``f(i) -> body``) is given.

    Returns p50/p95/p99 latency (ms, successful calls), rps (successful calls per
    second), errors (non-2xx or transport failures) and the 5xx count.
    """
    import multiprocessing as mp

    import numpy as np

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    body = json.dumps(payload).encode()
    p = ctx.Process(
        target=_load_child, args=(url, body, headers or {}, clients, seconds, warmup, q, make)
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
    return {
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "rps": len(lat) / res["seconds"],
        "errors": int(res["errors"]),
        "errors_5xx": int(n5xx),
        "requests": int(len(lat) + res["errors"]),
    }


# --- the benchmark -------------------------------------------------------------------------


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
        endpoint = M.ENDPOINTS["delivery_estimate" if name == "delivery_transit" else name]
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


# --- CLI ------------------------------------------------------------------------------------


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface (0.0.0.0 for all)."),
    port: int = typer.Option(3000, "--port", min=1, max=65535),
    alias: str | None = typer.Option(
        None, "--alias", help="Registry alias to serve (default PPX_MODEL_ALIAS or champion)."
    ),
    decisions: bool = typer.Option(
        False,
        "--decisions",
        help="Start the decision service instead; it calls the model service at "
        "PPX_MODEL_SERVICE_URL (default http://127.0.0.1:3000).",
    ),
) -> None:
    """Start the BentoML model service (models load from the registry by alias)."""
    from ppx.cli import fail

    if alias is not None:
        if alias.lower() == "latest":
            fail("--alias latest is not allowed: serve a gated alias such as champion")
        os.environ["PPX_MODEL_ALIAS"] = alias
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    cmd = service_command(host, port, DECISION_SERVICE if decisions else SERVICE)
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT)
    try:
        raise typer.Exit(proc.wait())
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        raise typer.Exit(proc.wait()) from None


def bench_serve(
    seconds: float = typer.Option(10.0, "--seconds", min=1, help="Per run (1 and 8 clients)."),
    soak: float = typer.Option(60.0, "--soak", min=1, help="Run length at 32 clients."),
    no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Skip the mlflow_serve baseline."),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
    endpoint: list[str] = typer.Option(
        [],
        "--endpoint",
        help=f"Only these (repeatable): {', '.join(ROUTES)}, decide_order_event, decide_return.",
    ),
) -> None:
    """Latency and throughput of every endpoint at 1/8/32 clients, vs mlflow models serve."""
    from ppx.cli import bench_tables, console, fail, write_bench_json

    try:
        payload = run_bench(
            seconds=seconds,
            soak_seconds=soak,
            with_mlflow=not no_mlflow,
            endpoints=tuple(endpoint) or None,
        )
    except ValueError as err:
        fail(str(err))
    bench_tables(payload)
    if payload["meta"]["skipped"]:
        console.print(f"skipped: {payload['meta']['skipped']}")
    if payload["meta"]["decision_fallbacks"]:
        console.print(f"decisions used fallbacks: {payload['meta']['decision_fallbacks']}")
    write_bench_json(json_out, payload)


def bench_latency(
    n: int = typer.Option(500, "--n", min=10, help="Timed requests per endpoint."),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """One request per endpoint in-process (the service's scoring code, no HTTP): p50/p99."""
    from ppx.cli import bench_tables, console, write_bench_json

    payload = run_latency(n=n)
    bench_tables(payload)
    if payload["meta"]["skipped"]:
        console.print(f"skipped: {payload['meta']['skipped']}")
    write_bench_json(json_out, payload)


def register(app: typer.Typer) -> None:
    """Add ``ppx serve`` to the root app and ``serve`` to its ``bench`` group."""
    app.command("serve")(serve)
    for group in app.registered_groups:
        if group.name == "bench" and group.typer_instance is not None:
            group.typer_instance.command("serve")(bench_serve)
            group.typer_instance.command("latency")(bench_latency)
