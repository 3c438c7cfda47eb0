"""CLI for churn: ``ppx train|evaluate|bench churn`` and the ``make demo`` entry.

``ppx tune churn`` is the one tuning command of every model (:mod:`ppx.tune_commands`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ppx.config import DEFAULT_WORLD_SHOWN, world_or_default


def train_churn(
    world: Path | None = typer.Option(
        None, "--world", help="World folder (subscription model).", show_default=DEFAULT_WORLD_SHOWN
    ),
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
    name: str | None = typer.Option(
        None,
        "--name",
        help="Registered name of a --table model (telco -> ppx-churn-telco); default from "
        "the file name.",
    ),
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
    world = world_or_default(world)
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
                name=name,
                say=lambda line: console.print(line, markup=False, highlight=False),
            )
        except (TableError, ValueError) as err:
            fail(str(err))
        console.print(
            f"rows {rep['rows']:,}; positive label {rep['positive_label']!r} "
            f"({rep['positive_rate']:.1%}); numeric {len(rep['numeric'])}, categorical "
            f"{len(rep['categorical'])}"
        )
        print_table("holdout", [{"metric": k, "value": v} for k, v in rep["metrics"].items()])
        console.print(
            f"registered {rep['registered_model']} v{rep['version']} -> {rep['alias']}: "
            f"{rep['gate']}"
        )
        if not rep["promoted"]:
            console.print(
                f"not the champion: `ppx score churn` and `ppx explain churn` use it with "
                f"--alias {rep['alias']}"
            )
        return
    if not (world / "manifest.json").exists() and not (world / "tables").exists():
        fail(f"world {world} not found; create it with `ppx data world --out {world}`")
    from ppx.models.churn.train import train_world
    from ppx.terminal import print_train_result

    try:
        result = train_world(world, config=config, n_trials=trials)
    except ValueError as err:
        fail(str(err))
    print_train_result(result)


def evaluate_churn(
    world: Path | None = typer.Option(
        None, "--world", help="World folder.", show_default=DEFAULT_WORLD_SHOWN
    ),
    alias: str = typer.Option("champion", "--alias", help="Registry alias to evaluate."),
) -> None:
    """Score the registered model (by alias) on the world's test months."""
    world = world_or_default(world)
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
    world: Path | None = typer.Option(
        None, "--world", help="World folder.", show_default=DEFAULT_WORLD_SHOWN
    ),
    trials: int = typer.Option(6, "--trials", min=0, help="Optuna trials per method on the world."),
    telco_trials: int = typer.Option(
        3, "--telco-trials", min=0, help="Optuna trials per method per Telco fold."
    ),
    skip_telco: bool = typer.Option(False, "--skip-telco", help="World only."),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """Churn benchmark: ours vs logreg vs LightGBM vs oracle (world) and Telco 5-fold CV."""
    world = world_or_default(world)
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


def bench_churn_table(
    dataset: list[str] = typer.Option(
        [], "--dataset", help="Public table by name: telco, orange (repeatable)."
    ),
    table: list[Path] = typer.Option([], "--table", help="Your own customer table (repeatable)."),
    target: str = typer.Option("Churn", "--target", help="Target column of --table."),
    id_column: str | None = typer.Option(None, "--id", help="Customer id column of --table."),
    trials: int = typer.Option(3, "--trials", min=0, help="Optuna trials per method per fold."),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """Customer tables, 5-fold stratified CV (seed 0): ppx vs tuned LightGBM vs logreg.

    Every method gets the same folds and the same Optuna trial budget on each fold's
    inner validation split. Without --dataset or --table: telco and orange.
    """
    import sys

    from ppx.models.churn.bench import run_table_bench
    from ppx.models.churn.tabular import TableError
    from ppx.terminal import bench_tables, fail, write_bench_json

    if not dataset and not table:
        dataset = ["telco", "orange"]
    command = "ppx bench churn-table " + " ".join(sys.argv[3:])
    try:
        payload = run_table_bench(dataset, table, target, id_column, trials, command.strip())
    except (TableError, ValueError, FileNotFoundError) as err:
        fail(str(err))
    bench_tables(payload)
    write_bench_json(json_out, payload)


def register(groups: dict) -> None:
    groups["train"].command("churn")(train_churn)
    groups["evaluate"].command("churn")(evaluate_churn)
    groups["bench"].command("churn")(bench_churn)
    groups["bench"].command("churn-table")(bench_churn_table)


def demo(world_path: Path):
    """Train on the demo world with defaults, register, gate (a TrainResult)."""
    from ppx.models.churn.train import train_world

    return train_world(world_path, n_trials=0, progress=False)
