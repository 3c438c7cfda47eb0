"""``ppx score MODEL --store PATH --out FILE``: scores for everyone, one file."""

from __future__ import annotations

from pathlib import Path

import typer


def score(
    model: str = typer.Argument(..., help="delivery, churn, fraud or recs."),
    store: Path | None = typer.Option(None, "--store", help="Store (or world) folder to score."),
    table: Path | None = typer.Option(
        None, "--table", help="churn only: a customer table (CSV/Parquet) for a table model."
    ),
    model_name: str | None = typer.Option(
        None, "--model", help="With --table: the table model's name (e.g. telco)."
    ),
    out: Path = typer.Option(..., "--out", help="Output file, .parquet or .csv."),
    alias: str = typer.Option("champion", "--alias", help="Registry alias of the model."),
    chunk: int = typer.Option(
        0, "--chunk", min=0, help="Rows scored per chunk (default 2,000; 20,000 for --table)."
    ),
    no_reasons: bool = typer.Option(False, "--no-reasons", help="Skip the top-3 reasons."),
    engine: str | None = typer.Option(
        None,
        "--engine",
        help="churn/recs batch over customer buckets into an --out folder: local (one "
        "process) or spark. Without it, one file with reasons.",
    ),
    buckets: int | None = typer.Option(None, "--buckets", min=1, help="With --engine."),
    cores: int = typer.Option(2, "--cores", min=1, help="With --engine spark: local[N]."),
) -> None:
    """Score every active subscriber / open order / return and claim / customer.

    With ``--engine local|spark`` (churn, recs) the store is scored per customer bucket,
    with features as of the night after its data, into partitioned Parquet under --out.

    One row each: the id, the calibrated probability (delivery: on-time probability for
    the order's promise, plus the model's own promise date), the model version and the
    top three reasons in plain words.
    """
    from ppx.data.io import DataLoadError
    from ppx.data.schema import SchemaValidationError
    from ppx.scoring import ScoreError, score_store
    from ppx.terminal import console, fail

    if table is not None:
        from ppx.models.churn.score_table import score_table
        from ppx.models.churn.tabular import TableError

        if model != "churn" or store is not None or not model_name:
            fail("--table scores a churn table model: `ppx score churn --table FILE --model NAME`")
        try:
            path, rows, what = score_table(
                table,
                model_name,
                out,
                alias=alias,
                chunk_size=chunk or 20_000,
                reasons=not no_reasons,
            )
        except (ScoreError, TableError) as err:
            fail(str(err))
        console.print(f"scored {rows:,} rows of {table} with {what}: wrote {path}")
        return
    if store is None:
        fail("give --store PATH (or, for a churn table model, --table FILE --model NAME)")
    if engine is not None or not out.suffix:
        if out.suffix:
            fail(f"--engine writes a folder of partitioned Parquet; give --out a folder, not {out}")
        if model not in ("churn", "recs"):
            fail(f"--engine runs the churn and recs batch; score {model} into a .parquet file")
        from ppx.batch.commands import run_nightly

        run_nightly(
            store, out, engine or "local", (model,), buckets=buckets, cores=cores, alias=alias
        )
        return
    chunk = chunk or 2_000
    if not store.is_dir():
        fail(f"{store}: no such store folder (create one with `ppx data import`)")
    try:
        path, rows, what = score_store(
            model, store, out, alias=alias, chunk_size=chunk, reasons=not no_reasons
        )
    except (ScoreError, DataLoadError, SchemaValidationError) as err:
        fail(str(err))
    console.print(f"scored {what}: wrote {rows:,} rows to {path}")


def register(app: typer.Typer) -> None:
    app.command("score")(score)
