"""CLI for the fraud model: ``ppx train|evaluate|bench fraud`` and ``demo``.

Heavy imports stay inside the command functions so ``ppx --help`` stays fast.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import typer

from ppx.config import DEFAULT_WORLD_SHOWN, world_or_default

WORLD_HELP = "World folder (from `ppx data world`)."


def _check_world(world: Path) -> None:
    from ppx.terminal import fail

    if not (world / "tables").is_dir():
        fail(f"{world}: not a world folder; create one with `ppx data world --out {world}`")


def _payload(tables: dict, seconds: float, dataset: str) -> dict:
    payload = {
        "meta": {
            "command": " ".join(["ppx", *sys.argv[1:]]) if sys.argv else "ppx bench fraud",
            "seconds": round(seconds, 1),
            "machine": f"{platform.machine()} {platform.system()}, {_cores()} cores",
            "friction_cost_ratio": None,
        }
    }
    for head, methods in tables.items():
        payload[f"{dataset}_{head}"] = methods
    return payload


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def train_fraud(
    world: Path | None = typer.Option(
        None, "--world", help=WORLD_HELP, show_default=DEFAULT_WORLD_SHOWN
    ),
    no_register: bool = typer.Option(False, "--no-register", help="Log only; skip the gate."),
) -> None:
    """Train the two-head fraud model, compare baselines, register, run the gate."""
    world = world_or_default(world)
    from ppx.models.fraud.train import train
    from ppx.terminal import bench_tables, console

    _check_world(world)
    result = train(world, register=not no_register)
    bench_tables(result.details["tables"])
    if result.version is not None:
        console.print(f"ppx-fraud v{result.version} -> {result.alias}: {result.reason}")
    m = result.metrics
    console.print(f"done in {m['seconds']:.0f} s (network {m['train_seconds']:.0f} s)")


def evaluate_fraud(
    world: Path | None = typer.Option(
        None, "--world", help=WORLD_HELP, show_default=DEFAULT_WORLD_SHOWN
    ),
    alias: str = typer.Option("champion", "--alias", help="Registry alias to evaluate."),
) -> None:
    """Score the registered model on the world's test split (through the pyfunc)."""
    world = world_or_default(world)
    from ppx.models.fraud.evaluate import evaluate_registered
    from ppx.terminal import bench_tables, fail

    _check_world(world)
    try:
        tables = evaluate_registered(world, alias)
    except LookupError as err:
        fail(str(err))
    bench_tables(tables)


def bench_fraud(
    world: Path | None = typer.Option(
        None, "--world", help=WORLD_HELP, show_default=DEFAULT_WORLD_SHOWN
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """ppx vs rules vs LightGBM (with / without linkage) vs oracle, time-based split."""
    world = world_or_default(world)
    from ppx.models.fraud.config import FraudConfig
    from ppx.models.fraud.train import prepare, run_benchmark
    from ppx.terminal import bench_tables, write_bench_json

    _check_world(world)
    t0 = time.perf_counter()
    cfg = FraudConfig()
    P = prepare(world, cfg=cfg)
    bench = run_benchmark(P, cfg)
    payload = _payload(bench.tables, time.perf_counter() - t0, "synthetic")
    payload["meta"]["friction_cost_ratio"] = cfg.friction_cost_ratio
    payload["meta"]["feature_seconds"] = round(P.seconds, 1)
    payload["meta"]["world"] = str(world)
    payload["meta"]["ring_recall_ceiling"] = bench.ring_ceiling
    payload["meta"]["split"] = {
        "val_start": str(P.masks["val_start"]),
        "test_start": str(P.masks["test_start"]),
    }
    bench_tables(payload)
    write_bench_json(json_out, payload)


def register(groups: dict) -> None:
    groups["train"].command("fraud")(train_fraud)
    groups["evaluate"].command("fraud")(evaluate_fraud)
    groups["bench"].command("fraud")(bench_fraud)


def demo(world_path: Path):
    """Train on the demo world with defaults, register, gate (a TrainResult)."""
    from ppx.models.fraud.train import train

    return train(Path(world_path), progress=False)
