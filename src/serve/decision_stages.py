"""Where a decision's time goes: the decision engine in-process, stage by stage.

``ppx bench decision-stages`` starts the real model service, builds the decision engine
exactly as the decision service does (policy, model client, a fresh SQLite ledger,
preference centre, promise log) and runs the load generator's decision bodies
(:mod:`ppx.rules.bench`) through it, first one at a time, then eight at a time on one
event loop (the service's concurrency). Each stage is timed by wrapping the engine's
own methods: the model calls (HTTP to the model service), the customer's stored facts
(persisted tier, opt-outs), the promise log, the pure ``decide_*`` function and the
ledger write; plus request validation and the response's JSON. CPU per request is the
process's CPU time over the run: unlike wall time it hardly moves with the machine's
load; the model service's CPU per request (every process of the service, HTTP server
included) is measured the same way. No HTTP server in front of the engine: the decision
service's framework is the rest of its cost.
"""

from __future__ import annotations

import asyncio
import functools
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any

from ppx.config import PROJECT_ROOT

#: engine method (or module function) -> stage name
SYNC_STAGES = {
    "_log_promise": "promise_log",
    "_finish": "commit (experiments, ledger, outbox)",
}
ASYNC_STAGES = {"resolve_customer": "customer facts (tier, opt-outs)"}


def _timed_sync(f, key: str, spans: dict):
    @functools.wraps(f)
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            spans[key].append(time.perf_counter() - t0)

    return wrapper


def _timed_async(f, key: str, spans: dict):
    @functools.wraps(f)
    async def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return await f(*a, **k)
        finally:
            spans[key].append(time.perf_counter() - t0)

    return wrapper


def run_decision_stages(n: int = 300, warmup: int = 20, concurrency: int = 8) -> dict[str, Any]:
    """Per-stage p50/p99 (ms) and CPU ms per request, at 1 and ``concurrency`` in flight."""
    import httpx
    import numpy as np

    from ppx.serve.launch import running_service
    from ppx.serve.routes import example_request

    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    payload: dict[str, Any] = {}
    with running_service() as server, tempfile.TemporaryDirectory(prefix="ppx-stages-") as tmp:
        env = {
            "PPX_LEDGER_URL": f"sqlite:///{tmp}/ledger.db",
            "PPX_MODEL_SERVICE_URL": server.url,
        }
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            payload = _measure(
                server.url, n, warmup, concurrency, httpx, np, example_request, _cpu_of(server)
            )
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    meta = {
        "command": "ppx bench decision-stages " + " ".join(sys.argv[3:]),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "requests": n,
        "concurrency": concurrency,
    }
    return {"meta": meta, **payload}


def _cpu_of(server):
    """Seconds of CPU used so far by the server's processes (its workers included)."""
    import contextlib

    import psutil

    root = psutil.Process(server.proc.pid)
    procs = [root, *root.children(recursive=True)]

    def cpu() -> float:
        total = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    return cpu


def _measure(url, n, warmup, concurrency, httpx, np, example_request, model_cpu) -> dict[str, Any]:
    from ppx.rules import engine as E
    from ppx.rules.bench import body_makers
    from serving import decision_service as DS

    spans: dict[str, list[float]] = defaultdict(list)
    eng = DS.engine()
    for name, key in SYNC_STAGES.items():
        setattr(eng, name, _timed_sync(getattr(eng, name), key, spans))
    for name, key in ASYNC_STAGES.items():
        setattr(eng, name, _timed_async(getattr(eng, name), key, spans))
    assert eng.models is not None and eng.ledger is not None
    eng.models.scores = _timed_async(eng.models.scores, "model calls (HTTP)", spans)
    for fn in ("decide_order_event", "decide_return"):
        setattr(E, fn, _timed_sync(getattr(E, fn), "decide (pure)", spans))
    # apply_with: the decision's ledger transaction (its outbox rows too, with an outbox)
    eng.ledger.apply_with = _timed_sync(eng.ledger.apply_with, "ledger write", spans)
    churn = {k: v for k, v in example_request("churn_score").items() if k != "as_of"}
    now = httpx.post(url + "/churn/score", json=churn, timeout=60).json()["as_of"]
    makers = body_makers(churn["customer_id"], now, example_request("fraud_return"))
    kinds = {
        "decide_order_event": (E.OrderEventRequest, eng.order_event),
        "decide_return": (E.ReturnDecisionRequest, eng.return_),
    }

    async def one(name: str, i: int) -> float:
        model, decide = kinds[name]
        t0 = time.perf_counter()
        req = model.model_validate(makers[name](i))
        spans["validate"].append(time.perf_counter() - t0)
        res = await decide(req)
        t1 = time.perf_counter()
        res.model_dump_json()
        spans["response JSON"].append(time.perf_counter() - t1)
        if res.decision.fallbacks:
            raise RuntimeError(f"{name} used fallbacks: {res.decision.fallbacks}")
        return time.perf_counter() - t0

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        base = 0
        for name in kinds:
            for i in range(warmup):
                await one(name, base + i)
            base += 10 * n
            for c in (1, concurrency):
                spans.clear()
                cpu0, model0, totals = time.process_time(), model_cpu(), []
                for k in range(0, n, c):
                    batch = [one(name, base + k + j) for j in range(min(c, n - k))]
                    totals += await asyncio.gather(*batch)
                cpu = time.process_time() - cpu0
                model = model_cpu() - model0
                base += 10 * n
                row = {
                    "p50_ms": float(np.percentile(totals, 50) * 1e3),
                    "p99_ms": float(np.percentile(totals, 99) * 1e3),
                    "cpu_ms_per_request": cpu / len(totals) * 1e3,
                    "model_service_cpu_ms_per_request": model / len(totals) * 1e3,
                }
                for key, v in spans.items():
                    row[f"{key} p50_ms"] = float(np.median(v) * 1e3)
                    row[f"{key} p99_ms"] = float(np.percentile(v, 99) * 1e3)
                out[f"{name}@{c}"] = {"ppx": row}
        await eng.models.aclose()
        return out

    return asyncio.run(run())


def stage_table(payload: dict[str, Any]):
    """A rich table: one row per stage, ``p50 / p99`` ms per endpoint and level."""
    from rich.table import Table

    runs = [k for k in payload if k != "meta"]
    stages: list[str] = []
    for k in runs:
        for metric in payload[k]["ppx"]:
            stage = metric.rsplit(" ", 1)[0] if metric.endswith("_ms") and " " in metric else None
            if stage and stage not in stages:
                stages.append(stage)
    table = Table(title="decision stages, ms p50 / p99 (in-process)")
    table.add_column("stage")
    for k in runs:
        table.add_column(k, justify="right")

    def cell(m: dict, p50: str, p99: str) -> str:
        return f"{m[p50]:.2f} / {m[p99]:.2f}" if p50 in m else "-"

    table.add_row("total", *(cell(payload[k]["ppx"], "p50_ms", "p99_ms") for k in runs))
    for st in stages:
        table.add_row(st, *(cell(payload[k]["ppx"], f"{st} p50_ms", f"{st} p99_ms") for k in runs))
    table.add_row(
        "CPU ms per request", *(f"{payload[k]['ppx']['cpu_ms_per_request']:.2f}" for k in runs)
    )
    table.add_row(
        "model service CPU ms per request",
        *(
            f"{payload[k]['ppx']['model_service_cpu_ms_per_request']:.2f}"
            if "model_service_cpu_ms_per_request" in payload[k]["ppx"]
            else "-"
            for k in runs
        ),
    )
    return table
