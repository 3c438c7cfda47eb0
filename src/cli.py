"""The ``ppx`` command line: data, train, tune, evaluate, explain, serve, decide, bench.

Each command is a thin wrapper: the work lives in the package so notebooks and tests
call the same functions. Heavy imports happen inside commands, keeping ``ppx --help``
fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="ppx: post-purchase intelligence.", no_args_is_help=True)
data_app = typer.Typer(help="Canonical data: synthetic worlds, validation, public datasets.")
bench_app = typer.Typer(help="Benchmarks: print a table, optionally write JSON.")
train_app = typer.Typer(help="Train a model, log it to MLflow, register it, run the gate.")
tune_app = typer.Typer(help="Tune a model's hyper-parameters with Optuna (trials are runs).")
evaluate_app = typer.Typer(help="Evaluate the registered champion on a world's holdout.")
app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")

console = Console()


def fail(message: str, code: int = 2) -> None:
    """Print a clear error and exit non-zero (no traceback for expected bad input)."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def print_table(title: str, rows: list[dict], columns: list[str] | None = None) -> None:
    """Render a list of dicts as a rich table."""
    if not rows:
        console.print(f"{title}: (no rows)")
        return
    columns = columns or list(rows[0])
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="right" if isinstance(rows[0].get(c), (int, float)) else "left")
    for r in rows:
        table.add_row(*[_fmt(r.get(c)) for c in columns])
    console.print(table)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 100 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "" if v is None else str(v)


def write_bench_json(path: Path | None, payload: dict) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=float))
    console.print(f"wrote {path}")


def bench_tables(payload: dict) -> None:
    """Print every dataset of a benchmark payload as METHOD x METRIC tables."""
    for dataset, methods in payload.items():
        if dataset == "meta":
            continue
        metrics: list[str] = []
        for vals in methods.values():
            metrics += [k for k in vals if k not in metrics]
        rows = [{"method": m, **vals} for m, vals in methods.items()]
        print_table(dataset, rows, ["method", *metrics])


# --- data --------------------------------------------------------------------------------


@data_app.command("world")
def data_world(
    customers: int = typer.Option(20_000, "--customers", min=50, help="Number of customers."),
    seed: int = typer.Option(7, "--seed", help="Random seed; same seed, same tables."),
    months: int = typer.Option(24, "--months", min=3, max=60, help="Months simulated."),
    out: Path = typer.Option(Path("data/worlds/demo"), "--out", help="Output folder."),
) -> None:
    """Simulate a synthetic world and write it as Parquet plus a manifest."""
    from ppx.data.world_cli import build_world

    build_world(customers=customers, seed=seed, months=months, out=out)


@data_app.command("validate")
def data_validate(
    path: Path = typer.Argument(..., help="World folder or folder of tables."),
) -> None:
    """Validate canonical tables against the schema (types, keys, cross-table rules)."""
    from ppx.data.io import DataLoadError, load_tables
    from ppx.data.schema import SchemaValidationError

    try:
        tables = load_tables(path)
    except (SchemaValidationError, DataLoadError) as err:
        fail(str(err))
    print_table("valid tables", [{"table": k, "rows": len(v)} for k, v in tables.items()])


@bench_app.command("world")
def bench_world(
    customers: int = typer.Option(100_000, "--customers", min=50),
    seed: int = typer.Option(7, "--seed"),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """Time the world generator and measure its peak memory."""
    from ppx.data.world_cli import bench_world as run

    payload = run(customers=customers, seed=seed)
    bench_tables(payload)
    write_bench_json(json_out, payload)


# --- per-model commands ------------------------------------------------------------------
# Each model package that has landed provides ``ppx.models.<name>.commands.register``;
# models that do not exist yet simply have no commands (absent, not stubs).

MODEL_COMMAND_MODULES = ("delivery", "churn", "fraud", "recs", "feedback")


def _register_model_commands() -> None:
    import importlib
    import importlib.util

    groups = {"train": train_app, "tune": tune_app, "evaluate": evaluate_app, "bench": bench_app}
    found = False
    for name in MODEL_COMMAND_MODULES:
        module = f"ppx.models.{name}.commands"
        if importlib.util.find_spec(f"ppx.models.{name}") is None:
            continue
        if importlib.util.find_spec(module) is None:
            continue
        importlib.import_module(module).register(groups)
        found = True
    if found:
        app.add_typer(train_app, name="train")
        app.add_typer(tune_app, name="tune")
        app.add_typer(evaluate_app, name="evaluate")


_register_model_commands()

# Other packages contribute command groups the same way, once they exist.
OPTIONAL_COMMAND_MODULES = (
    ("ppx.data.adapters.registry", data_app),
    ("ppx.rules.commands", app),
    ("ppx.serve", app),
    ("ppx.explain.commands", app),
)


def _register_optional_commands() -> None:
    import importlib
    import importlib.util

    for module, target in OPTIONAL_COMMAND_MODULES:
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            spec = None
        if spec is not None:
            importlib.import_module(module).register(target)


_register_optional_commands()


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("data/worlds/demo"), "--out", help="Where the world goes."),
    customers: int = typer.Option(20_000, "--customers", min=200),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """The main job on embedded defaults: world -> validate -> models -> reports."""
    from ppx.demo import run_demo

    run_demo(out=out, customers=customers, seed=seed)


def main() -> None:  # pragma: no cover - console entry point
    app()
