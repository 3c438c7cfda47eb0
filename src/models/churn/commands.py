"""CLI for churn: ``ppx train|tune|evaluate|bench churn`` and the ``make demo`` entry."""

from __future__ import annotations

from pathlib import Path

import typer

DEFAULT_WORLD = Path("data/worlds/demo")


def train_churn(
    world: Path = typer.Option(DEFAULT_WORLD, "--world", help="World folder (subscription model)."),
    table: Path | None = typer.Option(
        None, "--table", help="Your own customer table (CSV or Parquet)."
    ),
    target: str | None = typer.Option(
        None, "--target", help="Target column of --table (e.g. Churn)."
    ),
    id_column: str | None = typer.Option(None, "--id", help="Customer ID column of --table."),
    time_column: str | None = typer.Option(
        None, "--time", help="Snapshot time column: split by time."
    ),
    force_column: list[str] = typer.Option(
        [], "--force-column", help="Keep a column flagged as probable leakage (repeatable)."
    ),
    trials: int = typer.Option(0, "--trials", min=0, help="Optuna trials before the final fit."),
    params: Path | None = typer.Option(
        None,
        "--params",
        help="JSON file of network hyper-parameters, e.g. the one `ppx tune churn --out "
        "FILE` writes (or a study run's best_params.json); fields left out keep defaults.",
    ),
) -> None:
    """Train, log to MLflow (ppx-churn), register and run the promotion gate.

    Tuned hyper-parameters: `ppx tune churn --out churn_params.json`, then
    `ppx train churn --params churn_params.json` (with --trials the search starts
    from them).
    """
    from ppx.terminal import console, fail, print_table

    config = None
    if params is not None:
        from ppx.models.churn.config import load_params

        try:
            config = load_params(params)
        except ValueError as err:
            fail(str(err))
        console.print(f"hyper-parameters from {params}: {config.to_dict()}")
    if table is not None:
        from ppx.models.churn.tabular import TableError
        from ppx.models.churn.train import train_table

        if not target:
            fail("--table needs --target COLUMN (the churned yes/no column)")
        try:
            rep = train_table(
                table,
                target,
                id_column,
                time_column,
                list(force_column),
                config=config,
                n_trials=trials,
            )
        except (TableError, ValueError) as err:
            fail(str(err))
        console.print(
            f"rows {rep['rows']:,}; positive label {rep['positive_label']!r} "
            f"({rep['positive_rate']:.1%}); numeric {len(rep['numeric'])}, categorical "
            f"{len(rep['categorical'])}"
        )
        for col, why in rep["dropped"].items():
            console.print(f"[yellow]dropped[/] {col}: {why}")
        for col, auc in rep["leakage"].items():
            console.print(
                f"[bold yellow]probable leakage[/] {col}: alone it predicts the target with "
                f"ROC AUC {auc:.3f}; left out (use --force-column {col} to keep it)"
            )
        print_table("holdout", [{"metric": k, "value": v} for k, v in rep["metrics"].items()])
        console.print(f"registered {rep['registered_model']} v{rep['version']}: {rep['gate']}")
        return
    if not (world / "manifest.json").exists() and not (world / "tables").exists():
        fail(f"world {world} not found; create it with `ppx data world --out {world}`")
    from ppx.models.churn.train import train_world
    from ppx.terminal import print_train_result

    print_train_result(train_world(world, config=config, n_trials=trials))


def tune_churn(
    world: Path = typer.Option(DEFAULT_WORLD, "--world", help="World folder."),
    trials: int = typer.Option(20, "--trials", min=1, help="Optuna trials (nested MLflow runs)."),
    out: Path = typer.Option(
        Path("churn_params.json"),
        "--out",
        help="Where to write the best configuration (JSON) for `ppx train churn --params`.",
    ),
) -> None:
    """Tune the churn network on the world's validation months (Optuna, RDB storage).

    The best configuration is written to --out and logged on the study's MLflow run
    (params best.*, artifacts best_params.json and churn_params.json); train with it:
    `ppx train churn --world W --params churn_params.json`.
    """
    from ppx import tracking
    from ppx.data.io import load_tables
    from ppx.metrics import roc_auc
    from ppx.models.churn.config import ChurnConfig, save_params, suggest
    from ppx.models.churn.model import fit_churn_model
    from ppx.models.churn.train import MODEL, world_encoder, world_splits
    from ppx.terminal import console, fail

    if not (world / "tables").exists():
        fail(f"world {world} not found; create it with `ppx data world --out {world}`")
    tracking.configure()
    sp = world_splits(load_tables(world, validate=False), progress=True)
    enc = world_encoder(sp.train)
    obs = sp.val["observed_30"].to_numpy() > 0
    yv = sp.val["churn_30"].to_numpy()[obs]

    def objective(trial):
        m = fit_churn_model(
            sp.train, sp.val, enc, suggest(trial, ChurnConfig()), [30, 60, 90], "subscriptions"
        )
        return roc_auc(yv, m.predict_proba_frame(enc.numeric_frame(sp.val))[obs, 0])

    with tracking.start_run(MODEL, run_name="tune", world_path=world, dataset=sp.train) as run:
        study = tracking.run_study(MODEL, objective, n_trials=trials)
        best = ChurnConfig().replace(**study.best_params)
        extra = {
            "best_validation_roc_auc": study.best_value,
            "trials": trials,
            "world": str(world),
            "mlflow_run_id": run.info.run_id,
        }
        save_params(best, out, **extra)
        tracking.log_json({"config": best.to_dict(), **extra}, "churn_params.json")
    console.print(f"best validation roc_auc {study.best_value:.4f} with {study.best_params}")
    console.print(f"wrote {out}; train with `ppx train churn --world {world} --params {out}`")


def evaluate_churn(
    world: Path = typer.Option(DEFAULT_WORLD, "--world", help="World folder."),
    alias: str = typer.Option("champion", "--alias", help="Registry alias to evaluate."),
) -> None:
    """Score the registered model (by alias) on the world's test months."""
    from ppx.models.churn.train import evaluate_registered
    from ppx.terminal import fail, print_table

    try:
        m = evaluate_registered(world, alias)
    except ValueError as err:
        fail(str(err))
    print_table(
        f"ppx-churn@{alias} (test months)", [{"metric": k, "value": v} for k, v in m.items()]
    )


def bench_churn(
    world: Path = typer.Option(DEFAULT_WORLD, "--world", help="World folder (default world)."),
    trials: int = typer.Option(6, "--trials", min=0, help="Optuna trials per method on the world."),
    telco_trials: int = typer.Option(
        3, "--telco-trials", min=0, help="Optuna trials per method per Telco fold."
    ),
    skip_telco: bool = typer.Option(False, "--skip-telco", help="World only."),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """Churn benchmark: ours vs logreg vs LightGBM vs oracle (world) and Telco 5-fold CV."""
    import sys

    from ppx.models.churn.bench import run_bench
    from ppx.terminal import bench_tables, console, write_bench_json

    world_path = world if (world / "truth").exists() else None
    if world_path is None:
        console.print(f"[yellow]no world with truth at {world}; Telco only[/]")
    command = "ppx bench churn " + " ".join(sys.argv[3:])
    payload = run_bench(world_path, trials, telco_trials, command.strip(), telco=not skip_telco)
    bench_tables(payload)
    write_bench_json(json_out, payload)


def register(groups: dict) -> None:
    groups["train"].command("churn")(train_churn)
    groups["tune"].command("churn")(tune_churn)
    groups["evaluate"].command("churn")(evaluate_churn)
    groups["bench"].command("churn")(bench_churn)


def demo(world_path: Path):
    """Train on the demo world with defaults, register, gate (a TrainResult)."""
    from ppx.models.churn.train import train_world

    return train_world(world_path, n_trials=0, progress=False)
