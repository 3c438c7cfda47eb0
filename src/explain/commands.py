"""``ppx explain MODEL [--run RUN_ID] [--world PATH]``: write a model's SHAP report."""

from __future__ import annotations

from pathlib import Path

import typer


def explain(
    model: str = typer.Argument(..., help="A registered model (see `ppx train --help`)."),
    run: str | None = typer.Option(
        None, "--run", help="Explain this run's model, not the champion."
    ),
    alias: str | None = typer.Option(
        None, "--alias", help="Explain the version under this registry alias (default champion)."
    ),
    world: Path | None = typer.Option(
        None, "--world", help="World to explain on (default: the run's ppx.world_path tag)."
    ),
    rows: int = typer.Option(150, "--rows", min=10, max=5000, help="Rows of the world explained."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder (default MODEL/ in the reports folder, PPX_REPORTS_DIR)."
    ),
    no_log: bool = typer.Option(False, "--no-log", help="Do not attach the report to the run."),
    seed: int = typer.Option(0, "--seed"),
    table_model: str | None = typer.Option(
        None, "--model", help="churn only: a table model's name (ppx train churn --table --name)."
    ),
    table: Path | None = typer.Option(
        None, "--table", help="With --model: table to explain (default: its training table)."
    ),
) -> None:
    """Write a self-contained HTML SHAP report under MODEL/ of the reports folder
    (PPX_REPORTS_DIR, default reports/) and log it to MLflow."""
    import time

    from ppx.models import registry
    from ppx.terminal import console, fail

    if model not in registry.explainable():
        if model in registry.names():
            fail(f"{model} has no SHAP report: {registry.get(model).explain_note}")
        fail(f"unknown model {model!r}; choose one of {', '.join(registry.explainable())}")
    import torch

    from ppx.explain.report import build_report

    torch.set_num_threads(2)
    started = time.perf_counter()
    if table_model is not None:
        from ppx.models.churn.explain_table import build_table_report
        from ppx.models.churn.tabular import TableError

        if model != "churn":
            fail("--model names a churn table model: `ppx explain churn --model NAME`")
        try:
            path = build_table_report(
                table_model,
                table,
                alias=alias,
                run_id=run,
                max_rows=rows,
                out_dir=out,
                log_to_mlflow=not no_log,
                seed=seed,
            )
        except (ValueError, TypeError, TableError) as err:
            fail(str(err))
        console.print(
            f"{table_model}: SHAP report at {path} ({time.perf_counter() - started:.1f} s)"
        )
        return
    try:
        path = build_report(
            model,
            world,
            run_id=run,
            alias=alias,
            max_rows=rows,
            out_dir=out,
            log_to_mlflow=not no_log,
            seed=seed,
        )
    except (ValueError, TypeError) as err:
        fail(str(err))
    console.print(f"{model}: SHAP report at {path} ({time.perf_counter() - started:.1f} s)")


def register(app: typer.Typer) -> None:
    """Add ``explain`` to the top-level ``ppx`` command; its help lists the models."""
    from ppx.models import registry

    app.command(
        "explain", help=f"{explain.__doc__}\n\nModels: {', '.join(registry.explainable())}."
    )(explain)
