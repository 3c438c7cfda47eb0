"""``ppx monitor MODEL`` for every registered model without a monitor of its own: the
distribution of its headline score and the PSI of each input on a world's recent
requests against the model's training sample, as one HTML report."""

from __future__ import annotations

from pathlib import Path

import typer


def _command(model_name: str):
    def monitor(
        world: Path = typer.Option(
            ..., "--world", help="World or store whose recent requests to check."
        ),
        alias: str = typer.Option("champion", "--alias"),
        rows: int = typer.Option(1000, "--rows", min=50, help="Recent requests to score."),
        seed: int = typer.Option(0, "--seed"),
        out: Path | None = typer.Option(
            None,
            "--out",
            help="HTML report (default MODEL_monitor.html in the reports folder, PPX_REPORTS_DIR).",
        ),
    ) -> None:
        from ppx import monitoring as mon
        from ppx.data.io import load_tables
        from ppx.explain.sources import load_explainable, world_requests
        from ppx.terminal import fail, print_table

        if not world.exists():
            fail(f"world {world} does not exist")
        try:
            loaded = load_explainable(model_name, alias=alias)
            tables = load_tables(world, validate=False)
            try:
                raw, note = world_requests(model_name, tables, rows, seed)
            except (ValueError, KeyError, TypeError):  # models that need every field
                raw, note = world_requests(model_name, tables, rows, seed, fill=True)
            found = mon.model_drift(loaded.model, raw)
        except (ValueError, TypeError, KeyError) as err:
            fail(f"ppx-{model_name} on {world}: {err}")
        score, drift = found["score"], found["inputs"]
        level = score["level"].iloc[0]
        summary = [
            f"ppx-{model_name}@{alias} (version {loaded.version}): {note}, against the"
            f" {int(score['training'].iloc[6]):,}-row training sample kept with the model"
            f" ({int(score['recent'].iloc[-1])} recent rows with a missing input: not scored).",
            f"Headline score: PSI {score['psi'].iloc[0]:.3f} ({level}); median"
            f" {score['training'].iloc[2]:.3g} in training, {score['recent'].iloc[2]:.3g} now.",
            f"{int((drift['level'] == 'major').sum())} inputs with major drift (PSI >"
            f" {mon.PSI_MAJOR}), {int((drift['level'] == 'moderate').sum())} moderate.",
        ]
        path = mon.write_report(
            mon.report_path(model_name, out),
            {"score distribution": score, "input drift": drift},
            f"ppx-{model_name}@{alias}: scores and inputs",
            summary,
        )
        print_table("score distribution", score.round(4).to_dict("records"))
        print_table("input drift (PSI)", drift.head(10).round(4).to_dict("records"))
        for line in summary:
            print(line)
        print(f"wrote {path}")

    monitor.__doc__ = (
        f"Score distribution and input drift (PSI per feature) of ppx-{model_name} on a"
        " world's recent requests against its training sample, as an HTML report."
    )
    return monitor


def register(groups: dict) -> None:
    """Add ``monitor MODEL`` for each registered model whose package adds none."""
    from ppx.models import registry

    group = groups.get("monitor")
    if group is None:
        return
    have = {c.name for c in group.registered_commands}
    for name in registry.names():
        if name not in have:
            group.command(name)(_command(name))
