"""The ``ppx`` command line: data, train, tune, evaluate, explain, serve, decide, bench.

Each command is a thin wrapper: the work lives in the package so notebooks and tests
call the same functions. Heavy imports happen inside commands, keeping ``ppx --help``
fast. The per-model commands come from the model registry (each spec's
``register_commands``); terminal helpers live in :mod:`ppx.terminal`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ppx.config import DEFAULT_WORLD_SHOWN
from ppx.terminal import bench_tables, console, fail, print_table, write_bench_json  # noqa: F401

data_app = typer.Typer(help="Canonical data: synthetic worlds, validation, public datasets.")


# --- data --------------------------------------------------------------------------------


@data_app.command("world")
def data_world(
    customers: int = typer.Option(20_000, "--customers", min=50, help="Number of customers."),
    seed: int = typer.Option(7, "--seed", help="Random seed; same seed, same tables."),
    months: int = typer.Option(24, "--months", min=3, max=60, help="Months simulated."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Output folder.",
        show_default="seed-<seed>/ in PPX_WORLDS_DIR, data/worlds unless set",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a folder that ppx wrote before (never any other)."
    ),
    disrupt_carrier: str | None = typer.Option(
        None, "--disrupt-carrier", help="Carrier slowed by a disruption (default: all)."
    ),
    disrupt_region: str | None = typer.Option(
        None, "--disrupt-region", help="Destination region of the disruption (default: all)."
    ),
    disrupt_start: str | None = typer.Option(
        None, "--disrupt-start", help="First order day of the disruption, YYYY-MM-DD."
    ),
    disrupt_weeks: int = typer.Option(0, "--disrupt-weeks", min=0, help="Its length."),
    disrupt_effect: float = typer.Option(
        0.5, "--disrupt-effect", help="Added to log transit time (0.5: x1.65)."
    ),
    chunk_customers: int = typer.Option(
        0,
        "--chunk-customers",
        min=0,
        help="Simulate and write in chunks of this many customers (flat memory for "
        "large worlds; see docs/scale.md). 0: one simulation.",
    ),
) -> None:
    """Simulate a synthetic world and write it as Parquet plus a manifest.

    Refuses a non-empty folder that ppx did not write; the default folder is named after
    the seed, so the demo world (``demo`` in the worlds folder) is never replaced by
    accident.
    """
    knobs = {}
    asked = disrupt_carrier or disrupt_region or disrupt_start or disrupt_weeks
    if asked and not (disrupt_start and disrupt_weeks > 0):
        fail("a disruption needs both --disrupt-start YYYY-MM-DD and --disrupt-weeks N (> 0)")
    if asked:
        knobs = dict(
            disruption_carrier=disrupt_carrier,
            disruption_region=disrupt_region,
            disruption_start=disrupt_start,
            disruption_days=7 * disrupt_weeks,
            disruption_effect=disrupt_effect,
        )
    from ppx.data.io import OutputFolderError
    from ppx.data.world_cli import build_chunked_world, build_world, default_world_folder

    try:
        if chunk_customers and chunk_customers < customers:
            build_chunked_world(
                customers=customers,
                seed=seed,
                months=months,
                out=out or default_world_folder(seed),
                chunk=chunk_customers,
                overwrite=overwrite,
                **knobs,
            )
            return
        build_world(
            customers=customers,
            seed=seed,
            months=months,
            out=out or default_world_folder(seed),
            overwrite=overwrite,
            **knobs,
        )
    except OutputFolderError as err:
        fail(str(err))


@data_app.command("validate")
def data_validate(
    path: Path = typer.Argument(..., help="World folder or folder of tables."),
) -> None:
    """Validate canonical tables against the schema (types, keys, cross-table rules)."""
    from ppx.data.io import DataLoadError, load_tables
    from ppx.data.schema import SchemaValidationError

    try:
        # a texts-only store validates too (its text tables, with their own rules)
        tables = load_tables(path, texts_ok=True)
    except (SchemaValidationError, DataLoadError) as err:
        fail(str(err))
    print_table("valid tables", [{"table": k, "rows": len(v)} for k, v in tables.items()])


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


def bench_scale(
    store: list[Path] = typer.Option(
        ..., "--store", help="A store (or world) to run the night on; repeat for several sizes."
    ),
    setups: str = typer.Option(
        "local,spark_local1,spark_local2",
        "--setups",
        help="Comma-separated: local, spark_local1 (Spark, 1 core), spark_local2 (2 cores).",
    ),
    buckets: int | None = typer.Option(None, "--buckets", min=1, help="Customer buckets."),
    work: Path | None = typer.Option(None, "--work", help="Folder for outputs and ledgers."),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """The nightly run (churn + recs top-10 + daily decisions for every active customer):
    wall time, peak memory of the whole process tree, rows per second per stage."""
    from ppx.batch.bench import bench_scale as run

    try:
        payload = run(store, [s.strip() for s in setups.split(",") if s.strip()], buckets, work)
    except (ValueError, RuntimeError) as err:
        fail(str(err))
    bench_tables(payload)
    write_bench_json(json_out, payload)


# --- the app ------------------------------------------------------------------------------


def demo(
    out: Path | None = typer.Option(
        None, "--out", help="Where the world goes.", show_default=DEFAULT_WORLD_SHOWN
    ),
    customers: int = typer.Option(20_000, "--customers", min=200),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """The main job on embedded defaults: world -> validate -> models -> reports."""
    from ppx.config import world_or_default
    from ppx.demo import run_demo

    run_demo(out=world_or_default(out), customers=customers, seed=seed)


def _quiet_third_party_warnings() -> None:
    """ppx: post-purchase intelligence."""
    import warnings

    # pandera and mlflow import pyspark when it is installed, and pyspark warns on every
    # command that it has not been certified on pandas 3; the nightly run is tested on it.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")


def build_app() -> typer.Typer:
    """The ``ppx`` command, with one train/tune/evaluate/bench command per registered model.

    Built from :func:`ppx.models.registry.specs`: a model whose package fails to import
    makes this fail (never a quietly missing command). Model commands import their heavy
    code only when run, keeping ``ppx --help`` fast.
    """
    from ppx import monitor_commands, score_commands, store_guard, tracking_server, tune_commands
    from ppx.explain import commands as explain_commands
    from ppx.models import registry
    from ppx.rules import commands as rules_commands
    from ppx.serve import commands as serve_commands

    app = typer.Typer(help="ppx: post-purchase intelligence.", no_args_is_help=True)
    app.callback()(_quiet_third_party_warnings)
    bench = typer.Typer(help="Benchmarks: print a table, optionally write JSON.")
    bench.command("world")(bench_world)
    bench.command("scale")(bench_scale)
    groups = {
        "train": typer.Typer(help="Train a model, log it to MLflow, register it, run the gate."),
        "evaluate": typer.Typer(help="Evaluate the registered champion on a world's holdout."),
        "bench": bench,
        "monitor": typer.Typer(
            help="Monitor a served model: realised rates against stated ones, input drift."
        ),
    }
    for spec in registry.specs():
        spec.load("register_commands")(groups)
    monitor_commands.register(groups)
    for name, group in groups.items():
        store_guard.guard_group(group, name)
    app.add_typer(data_app, name="data")
    for name, group in groups.items():
        if group.registered_commands:  # a group no model contributes to is not shown
            app.add_typer(group, name=name)
    rules_commands.register(app)
    serve_commands.register(app)
    explain_commands.register(app)
    score_commands.register(app)
    tune_commands.register(app)
    tracking_server.register(app)
    store_guard.guard_app(app, ("score", "tune", "explain", "simulate"))
    app.command("demo")(demo)
    return app


def _register_data_commands() -> None:
    from ppx.data.adapters import registry as adapters
    from ppx.data.stores import commands as stores

    adapters.register(data_app)
    stores.register(data_app)


_register_data_commands()
app = build_app()


def main() -> None:  # pragma: no cover - console entry point
    app()
