"""``ppx experiment report``: the effect of an experiment's arms, with CUPED."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer

experiment_app = typer.Typer(help="Holdouts and A/B arms of the policy: read-outs.")


@experiment_app.command("report")
def report_cmd(
    name: str = typer.Argument(..., help="Experiment name (policy `experiments`)."),
    world: Path = typer.Option(..., "--world", help="World or store folder (orders, customers)."),
    policy: Path | None = typer.Option(None, "--policy", help="Policy YAML (default shipped)."),
    ledger_url: str | None = typer.Option(
        None, "--ledger-url", help="Ledger DB with the arm-tagged points and outbox rows."
    ),
    start: datetime | None = typer.Option(None, "--start", help="Window start (default starts)."),
    end: datetime | None = typer.Option(
        None, "--end", help="Window end (default ends / data end)."
    ),
    control: str | None = typer.Option(None, "--control", help="Control arm (default: holdout)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the table as JSON."),
) -> None:
    """Effect on retention, orders and points cost per arm, 95 % CIs, CUPED."""
    from rich.console import Console
    from rich.table import Table

    from ppx.data.io import DataLoadError
    from ppx.rules.experiments.report import effects_table, report
    from ppx.rules.policy import PolicyError, load_policy

    console = Console()
    try:
        rep, _ = report(
            world,
            load_policy(policy),
            name,
            ledger_url=ledger_url,
            start=start,
            end=end,
            control=control,
        )
    except (PolicyError, DataLoadError, ValueError) as err:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {err}")
        raise typer.Exit(2) from None
    df = effects_table(rep)
    w = rep.window
    t = Table(
        title=f"experiment {rep.experiment}: each arm vs {rep.control} "
        f"({w.start:%Y-%m-%d} to {w.end:%Y-%m-%d}; pre-period from {w.pre_start:%Y-%m-%d})"
    )
    for col in (
        "arm",
        "outcome",
        "arm mean",
        "control mean",
        "effect",
        "95% CI",
        "se raw",
        "se CUPED",
        "var. reduction",
    ):
        t.add_column(col, justify="left" if col in ("arm", "outcome") else "right")
    for r in df.itertuples():
        t.add_row(
            r.arm,
            r.outcome,
            f"{r.mean_arm:.4f}",
            f"{r.mean_control:.4f}",
            f"{r.effect:+.4f}",
            f"[{r.ci95_low:+.4f}, {r.ci95_high:+.4f}]",
            f"{r.se_raw:.4f}",
            f"{r.se_cuped:.4f}",
            f"{r.variance_reduction:.1%}",
        )
    console.print(t)
    sizes = ", ".join(f"{k} {v:,}" for k, v in sorted(rep.arm_sizes.items()))
    expo = ", ".join(f"{k} {v:,}" for k, v in sorted(rep.exposure.items()))
    console.print(f"customers per arm: {sizes}; outbox messages per arm: {expo}")
    if json_out is not None:
        json_out.write_text(json.dumps(df.to_dict(orient="records"), indent=2))
