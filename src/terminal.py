"""Terminal output shared by every command: one console, errors, tables, benchmark JSON.

Commands anywhere in the package import these from here (never from ``ppx.cli``, which
imports them all to build the ``ppx`` command).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

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
    """Write a benchmark payload (``{"meta": ..., DATASET: {METHOD: {METRIC: v}}}``)."""
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
        if len(metrics) > len(methods) + 4:
            # Many metrics, few methods (e.g. the Olist trade-off figures): one row per
            # metric keeps the table readable in an ordinary terminal width.
            rows = [{"metric": k, **{m: v.get(k) for m, v in methods.items()}} for k in metrics]
            print_table(dataset, rows, ["metric", *methods])
        else:
            rows = [{"method": m, **vals} for m, vals in methods.items()]
            print_table(dataset, rows, ["method", *metrics])


def print_train_result(result) -> None:
    """A :class:`~ppx.models.spec.TrainResult`: its holdout metrics and the gate's verdict."""
    print_table(
        f"ppx-{result.model} (holdout)",
        [{"metric": k, "value": v} for k, v in result.metrics.items()],
    )
    if result.version is None:
        console.print("not registered")
    else:
        console.print(f"version {result.version} -> {result.alias}: {result.reason}")
