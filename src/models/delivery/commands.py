"""CLI commands of the delivery model and ``demo()`` for ``make demo``.

Registered by :mod:`ppx.cli`: ``ppx train delivery``, ``ppx tune delivery``,
``ppx evaluate delivery``, ``ppx bench delivery``. Heavy imports stay inside.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

DEFAULT_WORLD = Path("data/worlds/demo")


def _world(path: Path | None) -> Path:
    from ppx.terminal import fail

    path = path or DEFAULT_WORLD
    if not (path / "manifest.json").exists() and not (path / "tables").exists():
        fail(f"no world at {path}; create one with `ppx data world --out {path}`")
    return path


def train_delivery(
    world: Path | None = typer.Option(None, "--world", help="World folder (default demo)."),
    trials: int = typer.Option(0, "--trials", min=0, help="Optuna trials before the fit."),
    epochs: int = typer.Option(12, "--epochs", min=1),
) -> None:
    """Train the delivery model, log it to ppx-delivery, register it and run the gate."""
    from ppx.models.delivery.config import DeliveryConfig
    from ppx.models.delivery.train import train
    from ppx.terminal import print_train_result

    print_train_result(train(_world(world), DeliveryConfig(epochs=epochs), trials=trials))


def tune_delivery(
    world: Path | None = typer.Option(None, "--world"),
    trials: int = typer.Option(10, "--trials", min=1, help="Trials for ppx and for LightGBM."),
) -> None:
    """Tune ppx and LightGBM with Optuna on the validation months (same budget)."""
    import mlflow
    from ppx import tracking
    from ppx.models.delivery.config import DeliveryConfig
    from ppx.models.delivery.train import load_data, tune_lightgbm, tune_ppx
    from ppx.terminal import print_table

    cfg = DeliveryConfig()
    tracking.configure()
    _t, _truth, data = load_data(_world(world), cfg)
    with tracking.start_run("delivery", run_name="tune", world_path=world):
        best = tune_ppx(data, cfg, trials)
        lgb = tune_lightgbm(data, trials, cfg.seed)
        mlflow.log_params({f"ppx.{k}": v for k, v in best.to_params().items()})
        mlflow.log_params({f"lightgbm.{k}": v for k, v in lgb.items()})
    rows = [{"model": "ppx", **best.to_params()}]
    print_table("best ppx config", rows)
    print_table("best lightgbm params", [{"model": "lightgbm", **lgb}])


def evaluate_delivery(
    world: Path | None = typer.Option(None, "--world"),
    alias: str = typer.Option("champion", "--alias"),
) -> None:
    """Score the registered model (by alias) on the world's test months."""
    import mlflow
    from ppx import tracking
    from ppx.models.delivery.config import DeliveryConfig
    from ppx.models.delivery.train import evaluate_model, load_data
    from ppx.terminal import fail, print_table

    tracking.configure()
    if tracking.get_alias_version("delivery", alias) is None:
        fail(f"ppx-delivery has no version with alias {alias!r}; run `ppx train delivery`")
    model = mlflow.pyfunc.load_model(tracking.model_uri("delivery", alias))
    model = model.unwrap_python_model().model
    _t, _truth, data = load_data(_world(world), DeliveryConfig(**{"d_max": model.cfg.d_max}))
    model.history = data.history
    m = evaluate_model(model, data)
    print_table(f"ppx-delivery@{alias}", [{"metric": k, "value": v} for k, v in m.items()])


def bench_delivery(
    world: Path | None = typer.Option(None, "--world", help="World folder."),
    olist: Path | None = typer.Option(None, "--olist", help="Olist folder (CSV files)."),
    trials: int = typer.Option(5, "--trials", min=0, help="Optuna trials for ppx and LightGBM."),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """ppx vs carrier SLA, lane quantile, LightGBM and the oracle on a time split."""
    from ppx.models.delivery.bench import run
    from ppx.terminal import bench_tables, write_bench_json

    world_path = _world(world) if world is not None or olist is None else None
    if world is None and olist is None:
        world_path = _world(None)
    payload = run(world_path, olist, trials, command=" ".join(["ppx", *sys.argv[1:]]))
    bench_tables(payload)
    write_bench_json(json_out, payload)


def register(groups: dict) -> None:
    groups["train"].command("delivery")(train_delivery)
    groups["tune"].command("delivery")(tune_delivery)
    groups["evaluate"].command("delivery")(evaluate_delivery)
    groups["bench"].command("delivery")(bench_delivery)


def demo(world_path: Path):
    """Train on the demo world with defaults, register, gate (a TrainResult)."""
    from ppx.models.delivery.train import train

    return train(world_path)
