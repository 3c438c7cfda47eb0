"""CLI commands for the recommender: ``ppx train|evaluate|bench recs`` and ``demo``.

Heavy imports stay inside the functions so ``ppx --help`` stays fast.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import typer

from ppx.config import DEFAULT_WORLD_SHOWN, world_or_default

MODEL = "recs"


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _world_arg(world: Path) -> Path:
    from ppx.terminal import fail

    if not (Path(world) / "manifest.json").exists():
        fail(f"--world {world}: no manifest.json there; run `ppx data world --out {world}`")
    return Path(world)


def train_recs(
    world: Path | None = typer.Option(
        None, "--world", help="World folder.", show_default=DEFAULT_WORLD_SHOWN
    ),
    epochs: int = typer.Option(30, "--epochs", min=1, help="Max transformer epochs."),
    max_minutes: float = typer.Option(18.0, "--max-minutes", help="Training time cap."),
    threads: int = typer.Option(2, "--threads", min=1),
) -> None:
    """Train on a world, log to MLflow (ppx-recs), register, run the promotion gate."""
    world = world_or_default(world)
    from ppx.models.recs.config import RecsConfig
    from ppx.models.recs.train import train_and_register
    from ppx.terminal import print_train_result

    _threads(threads)
    cfg = RecsConfig(epochs=epochs, max_minutes=max_minutes, threads=threads)
    print_train_result(train_and_register(_world_arg(world), cfg))


def evaluate_recs(
    world: Path | None = typer.Option(
        None, "--world", help="World folder.", show_default=DEFAULT_WORLD_SHOWN
    ),
    alias: str = typer.Option("champion", "--alias"),
) -> None:
    """Score the registered model (by alias) on the world's test window."""
    world = world_or_default(world)
    from ppx.models.recs.train import evaluate_registered
    from ppx.terminal import print_table

    print_table(f"ppx-recs@{alias} (test window)", [evaluate_registered(_world_arg(world), alias)])


def bench_recs(
    world: Path | None = typer.Option(
        None, "--world", help="World folder.", show_default=DEFAULT_WORLD_SHOWN
    ),
    amazon: bool = typer.Option(True, "--amazon/--no-amazon", help="Include Amazon Games."),
    on_world: bool = typer.Option(True, "--on-world/--no-on-world", help="Include the world."),
    epochs: int = typer.Option(200, "--epochs", min=1, help="Max epochs (early stopping)."),
    max_minutes: float = typer.Option(20.0, "--max-minutes", help="Amazon training cap."),
    world_minutes: float = typer.Option(8.0, "--world-minutes", help="World training cap."),
    loss: str = typer.Option("full", "--loss", help="full | sampled softmax."),
    threads: int = typer.Option(2, "--threads", min=1),
    negatives: int = typer.Option(
        2048, "--negatives", min=1, help="Uniform negatives per batch (--loss sampled)."
    ),
    refit: bool = typer.Option(
        True,
        "--refit/--no-refit",
        help="Amazon: also train on the validation items for test (schedule from validation).",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """Ours vs popularity, item-KNN and EASE on Amazon Games (LOO) and the world."""
    world = world_or_default(world)
    from ppx.models.recs.train import run_benchmark
    from ppx.terminal import bench_tables, fail, write_bench_json

    if loss not in ("full", "sampled"):
        fail(f"--loss must be 'full' or 'sampled', got {loss!r}")
    _threads(threads)
    t0 = time.perf_counter()

    def partial(p: dict) -> None:
        if json_out is not None:
            write_bench_json(json_out.with_suffix(".partial.json"), p)

    payload = run_benchmark(
        _world_arg(world),
        amazon=amazon,
        epochs=epochs,
        max_minutes=max_minutes,
        world_minutes=world_minutes,
        loss=loss,
        world=on_world,
        on_dataset=partial,
        threads=threads,
        negatives=negatives,
        refit=refit,
    )
    payload["meta"] = {
        "command": "ppx bench recs "
        + " ".join(
            [
                f"--world {world}",
                "--amazon" if amazon else "--no-amazon",
                "--on-world" if on_world else "--no-on-world",
                f"--epochs {epochs}",
                f"--max-minutes {max_minutes}",
                f"--world-minutes {world_minutes}",
                f"--loss {loss}",
                f"--threads {threads}",
                f"--negatives {negatives}",
                "--refit" if refit else "--no-refit",
            ]
            + ([f"--json {json_out}"] if json_out else [])
        ),
        "seconds": time.perf_counter() - t0,
        "machine": f"{platform.machine()} {platform.processor() or ''} torch threads={threads}".strip(),
        **payload.get("meta", {}),
    }
    bench_tables(payload)
    write_bench_json(json_out, payload)
    print(json.dumps(payload["meta"], indent=2))


def demo(world_path: Path):
    """Train on the demo world with short defaults, register, gate (a TrainResult)."""
    from ppx.models.recs.config import RecsConfig
    from ppx.models.recs.train import train_and_register

    _threads(2)
    return train_and_register(
        Path(world_path), RecsConfig(epochs=8, max_minutes=0.5, repeat_cutoffs=3)
    )


def register(groups: dict) -> None:
    groups["train"].command("recs")(train_recs)
    groups["evaluate"].command("recs")(evaluate_recs)
    groups["bench"].command("recs")(bench_recs)
