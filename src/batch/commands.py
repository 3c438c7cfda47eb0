"""The terminal side of the nightly run (``ppx decide daily-batch``, ``ppx score --engine``)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ppx.batch.engines import ENGINES
from ppx.batch.nightly import OUTPUTS

ENGINE_HELP = "local: one process (default); spark: Apache Spark (local[--cores] here)."


def engine_option(default: str = "local"):
    return typer.Option(default, "--engine", help=ENGINE_HELP)


def run_nightly(
    store: Path,
    out: Path,
    engine: str,
    stages: tuple[str, ...],
    *,
    buckets: int | None = None,
    cores: int = 2,
    driver_memory: str = "1g",
    policy: Path | None = None,
    alias: str = "champion",
    as_of: str | None = None,
    ledger: bool = True,
    ledger_url: str | None = None,
    outbox_url: str | None = None,
) -> dict:
    """Run the night for ``stages`` on ``engine`` and report; exits 2 with a reason when
    it cannot start (no Java, no champion, bad folder)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from ppx.batch import engines, run
    from ppx.config import get_settings
    from ppx.rules.policy import PolicyError
    from ppx.scoring import ScoreError
    from ppx.terminal import console, fail, print_table

    if engine not in ENGINES:
        fail(f"--engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if engine == "spark":
        why = run.java_missing()
        if why:
            fail(f"--engine spark cannot start: {why}")
    # the loyalty state is read from the ledger when one is named (flag or setting);
    # the sink's fallback, a local SQLite file, is never read as the live state
    live_ledger = (ledger_url or get_settings().ledger_url) if "decisions" in stages else None
    try:
        run.prepare_out(out)
        job = run.make_job(
            store,
            out,
            buckets=buckets,
            policy=policy,
            alias=alias,
            as_of=as_of,
            cores=cores,
            stages=stages,
            ledger_url=live_ledger,
        )
    except (run.NightlyError, ScoreError, PolicyError) as err:
        fail(str(err))
    console.print(
        f"nightly run of {store} as of {job.now}: {', '.join(stages)} on {engine}, "
        f"{job.n_buckets} customer buckets"
    )
    if live_ledger:
        console.print("loyalty state: the ledger's where it knows the customer, else the store's")
    if engine == "local":
        with Progress(
            "[bold]buckets", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as bar:
            task = bar.add_task("buckets", total=job.n_buckets)
            summary, seconds = engines.run(
                job, "local", progress=lambda done, _: bar.update(task, completed=done)
            )
    else:
        # Spark draws its own stage progress bar on the terminal.
        summary, seconds = engines.run(job, "spark", cores=cores, driver_memory=driver_memory)
    info = run.write_manifest(out, job, engine, summary, seconds)
    rows = [
        {"output": k, "rows": f"{v:,}"} for k, v in info["rows"].items() if k in _outputs(stages)
    ]
    rows.append({"output": "active customers", "rows": f"{info['customers']:,}"})
    if "ledger_state" in info:
        known = info["ledger_state"]
        rows.append(
            {
                "output": "ledger customers with points / stored tier",
                "rows": f"{known['customers_with_points']:,} / {known['customers_with_tier']:,}",
            }
        )
    rows.append({"output": "seconds", "rows": f"{seconds:.1f}"})
    if "decisions" in stages and ledger:
        started = time.perf_counter()
        res = run.sink(
            out, job.now, ledger_url=ledger_url, outbox_url=outbox_url, policy=job.policy_path
        )
        sink_seconds = time.perf_counter() - started
        rows += [
            {
                "output": "ledger awards new / total",
                "rows": f"{res.awards_created:,} / {res.awards:,}",
            },
            {"output": "points awarded now", "rows": f"{res.points_created:,}"},
            {
                "output": "outbox messages new / total",
                "rows": f"{res.messages_created:,} / {res.messages:,}",
            },
            {
                "output": "gift vouchers new / total",
                "rows": f"{res.gifts_created:,} / {res.gifts:,}",
            },
            {
                "output": "tiers changed / tier actions",
                "rows": f"{res.tiers_changed:,} / {res.tier_changes:,}",
            },
        ]
        info["sink"] = {**res.__dict__, "seconds": round(sink_seconds, 2)}
        run.update_manifest(out, sink=info["sink"])
    print_table(f"nightly run -> {out}", rows)
    return info


def _outputs(stages: tuple[str, ...]) -> tuple[str, ...]:
    if "decisions" in stages:
        return OUTPUTS
    return stages
