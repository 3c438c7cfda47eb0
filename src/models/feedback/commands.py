"""CLI for feedback: ``ppx train feedback`` and ``ppx bench feedback``."""

from __future__ import annotations

from pathlib import Path

import typer

from ppx.config import DEFAULT_WORLD_SHOWN, world_or_default


def train_feedback(
    world: Path | None = typer.Option(
        None, "--world", help="World or store folder.", show_default=DEFAULT_WORLD_SHOWN
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Also write the product team's HTML report here."
    ),
    no_register: bool = typer.Option(False, "--no-register", help="Log the run only."),
) -> None:
    """Find themes in reviews and return comments, log to MLflow (ppx-feedback), gate.

    The run also logs the weekly alerts (alerts.csv) and the HTML report.
    """
    world = world_or_default(world)
    from ppx.data import columns as C
    from ppx.data.io import DataLoadError
    from ppx.data.schema import SchemaValidationError
    from ppx.feedback.corpus import FeedbackDataError
    from ppx.models.feedback.train import latest_alerts, report_for, train
    from ppx.terminal import console, fail, print_table, print_train_result

    try:
        res = train(world, register=not no_register)
    except (DataLoadError, SchemaValidationError, FeedbackDataError, ValueError) as err:
        fail(str(err))
    an = res.details["analysis"]
    m = an.model.themes
    langs = m.languages()
    rows = [
        {
            "theme": k,
            "languages": langs[k],
            "name": m.names()[k],
            "texts": m.sizes[k],
            "quote": (m.quotes[k] or [""])[0],
        }
        for k in range(m.n_themes)
    ]
    print_table("themes", sorted(rows, key=lambda r: -r["texts"]))
    alerts = latest_alerts(an.alerts, an.weekly)
    if len(alerts):
        print_table(
            "alerts this week",
            [
                {
                    "product_id": int(a.product_id),
                    "theme": m.names()[int(a.theme)],
                    "recent_share": float(a.recent_share),
                    "baseline_share": float(a.baseline_share),
                    "q_value": float(a.q_value),
                }
                for a in alerts.itertuples()
            ],
        )
    if not (an.corpus[C.RATING] >= 1).any():
        console.print(
            "note: no star ratings in these texts (return comments only), so sentiment can "
            "be neither learnt nor scored and the version stays challenger; themes, trends "
            "and alerts do not need ratings"
        )
    print_train_result(res)
    if report is not None:
        console.print(f"wrote {report_for(an, report)}")


def bench_feedback(
    customers: int = typer.Option(20_000, "--customers", min=200),
    seed: int = typer.Option(7, "--seed"),
    scale: int = typer.Option(100_000, "--scale", min=0, help="Texts for the time/memory run."),
    clothing: Path = typer.Option(
        Path("../shared/datasets/clothing_reviews"), "--clothing", help="Real reviews folder."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """Theme recovery, alert delay and false alarms on a world; real reviews; 100k scale."""
    from ppx.feedback.bench import run_bench
    from ppx.terminal import bench_tables, write_bench_json

    payload = run_bench(customers=customers, seed=seed, scale=scale, clothing=clothing)
    bench_tables(payload)
    write_bench_json(json_out, payload)


def demo(world_path: Path):
    """The ``make demo`` training call: train on the demo world with the defaults."""
    from ppx.models.feedback.train import train

    return train(world_path)


def register(groups: dict) -> None:
    groups["train"].command("feedback")(train_feedback)
    groups["bench"].command("feedback")(bench_feedback)
