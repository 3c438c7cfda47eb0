"""``ppx bench scale``: the nightly run's wall time, peak memory and rows per second.

Each run is ``ppx decide daily-batch`` in a fresh process; the benchmark samples the
resident memory of that process and every descendant (Spark's JVM and its Python
workers included) twice a second and keeps the peak of the sum. Per-stage rows per
second divide a stage's rows by the seconds its buckets spent in it, summed over
buckets (so on Spark with two cores it is the rate of one core). The machine's load
average is recorded beside every figure, because the figures depend on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ppx.batch.run import MANIFEST

#: engine label -> (engine, cores)
SETUPS: dict[str, tuple[str, int]] = {
    "local": ("local", 1),
    "spark_local1": ("spark", 1),
    "spark_local2": ("spark", 2),
}


def _tree_sample(pid: int, cpu: dict[int, float]) -> int:
    """Resident bytes of ``pid`` and its descendants now; updates each one's CPU seconds."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
            t = p.cpu_times()
            cpu[p.pid] = t.user + t.system
    return total


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def measure(cmd: list[str], env: dict | None = None, interval: float = 0.5) -> dict:
    """Run ``cmd``; wall seconds, peak resident MB of its process tree, exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0
    cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_sample(proc.pid, cpu))
            done.wait(interval)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    output, _ = proc.communicate()
    done.set()
    t.join()
    return {
        "seconds": time.perf_counter() - started,
        "peak_mb": peak / 2**20,
        # CPU seconds of every process seen (up to the last sample): what the run costs
        # whatever else shares the machine
        "cpu_seconds": sum(cpu.values()),
        "returncode": proc.returncode,
        "output": output.decode(errors="replace")[-3000:],
    }


def nightly_run(store: Path, setup: str, work: Path, buckets: int | None = None) -> dict:
    """One measured ``ppx decide daily-batch`` of ``store`` with an engine setup."""
    engine, cores = SETUPS[setup]
    out = work / f"out-{setup}"
    ledger = work / f"ledger-{setup}.db"
    ledger.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-c",
        "from ppx.cli import main; main()",
        "decide",
        "daily-batch",
        "--store",
        str(store),
        "--out",
        str(out),
        "--engine",
        engine,
        "--cores",
        str(cores),
        "--ledger-url",
        f"sqlite:///{ledger}",
    ]
    if buckets:
        cmd += ["--buckets", str(buckets)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "100"}
    load_before = _load()
    res = measure(cmd, env)
    if res["returncode"] != 0:
        raise RuntimeError(f"{' '.join(cmd[3:])} failed:\n{res['output']}")
    info = json.loads((out / MANIFEST).read_text())
    rows, stage = info["rows"], info.get("stage_seconds", {})
    figures = {
        "customers_active": info["customers"],
        "seconds": round(res["seconds"], 1),
        "peak_mb": round(res["peak_mb"]),
        "cpu_seconds": round(res["cpu_seconds"], 1),
        "buckets": info["buckets"],
        "rows_churn": rows["churn"],
        "rows_recs": rows["recs"],
        "rows_decisions": rows["decisions"],
        "rows_ledger": rows["ledger"],
        "rows_outbox": rows["outbox"],
        "rows_gifts": rows.get("gifts", 0),
        "rows_tiers": rows.get("tiers", 0),
        "load_before": load_before,
        "load_after": _load(),
    }
    # seconds per stage (summed over buckets; staging is the shuffle before them)
    for name in ("staging", "read", "order", "load", "churn", "recs", "decisions"):
        if name in stage:
            figures[f"{name}_s"] = stage[name]
    if "sink" in info:
        figures["sink_s"] = info["sink"]["seconds"]
    for name in ("churn", "recs", "decisions"):
        if stage.get(name):
            figures[f"{name}_rows_per_s"] = round(rows[name] / stage[name])
    figures["customers_per_s"] = round(info["customers"] / res["seconds"])
    return figures


def bench_scale(
    stores: list[Path], setups: list[str], buckets: int | None = None, work: Path | None = None
) -> dict:
    """Every (store, setup) pair; the payload of the benchmark JSON contract."""
    from ppx.batch.run import count_customers
    from ppx.terminal import console

    unknown = [s for s in setups if s not in SETUPS]
    if unknown:
        raise ValueError(f"unknown setups {unknown}; choose from {', '.join(SETUPS)}")
    started = time.perf_counter()
    work = Path(work or tempfile.mkdtemp(prefix="ppx-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    payload: dict = {}
    for store in stores:
        n = count_customers(store)
        for setup in setups:
            with console.status(f"nightly run of {n:,} customers on {setup}"):
                figures = nightly_run(Path(store), setup, work, buckets)
            console.print(
                f"{n:,} customers, {setup}: {figures['seconds']} s, {figures['peak_mb']} MB "
                f"(load {figures['load_before']})"
            )
            payload.setdefault(f"nightly_{n}", {})[setup] = figures
    args = " ".join(f"--store {s}" for s in stores)
    payload = {
        "meta": {
            "command": f"ppx bench scale {args} --setups {','.join(setups)}",
            "seconds": round(time.perf_counter() - started, 1),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, "
            f"{platform.python_version()}, shared (load averages recorded per run)",
        },
        **payload,
    }
    return payload
