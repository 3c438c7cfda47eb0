"""``ppx score MODEL --store PATH --out FILE``: scores for everyone, one file."""

from __future__ import annotations

from pathlib import Path

import typer


def score(
    model: str = typer.Argument(..., help="delivery, churn, fraud or recs."),
    store: Path = typer.Option(..., "--store", help="Store (or world) folder to score."),
    out: Path = typer.Option(..., "--out", help="Output file, .parquet or .csv."),
    alias: str = typer.Option("champion", "--alias", help="Registry alias of the model."),
    chunk: int = typer.Option(2_000, "--chunk", min=1, help="Rows scored per chunk."),
    no_reasons: bool = typer.Option(False, "--no-reasons", help="Skip the top-3 reasons."),
) -> None:
    """Score every active subscriber / open order / return and claim / customer.

    One row each: the id, the calibrated probability (delivery: on-time probability for
    the order's promise, plus the model's own promise date), the model version and the
    top three reasons in plain words.
    """
    from ppx.cli import console, fail
    from ppx.data.io import DataLoadError
    from ppx.data.schema import SchemaValidationError
    from ppx.scoring import ScoreError, score_store

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
