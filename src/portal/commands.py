"""``ppx bench portal``: the portal's pages under load (see :mod:`ppx.portal.bench`)."""

from __future__ import annotations

from pathlib import Path

import typer


def bench_portal(
    store: Path | None = typer.Option(
        None,
        "--store",
        help="World or store folder the portal shows (default PPX_PORTAL_STORE or demo/ "
        "in PPX_WORLDS_DIR, as `make demo` builds it).",
    ),
    seconds: float = typer.Option(10.0, "--seconds", min=1, help="Per page and client count."),
    clients: list[int] = typer.Option([1, 8], "--clients", min=1, help="Repeatable."),
    page: list[str] = typer.Option([], "--page", help="Only these pages (repeatable)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """Server time per portal page (p50/p95/p99) with the real model and decision services."""
    from ppx.config import get_settings
    from ppx.portal.bench import run_portal_bench
    from ppx.terminal import bench_tables, console, fail, write_bench_json

    settings = get_settings()
    folder = store or settings.portal_store or settings.worlds_dir / "demo"
    if not (Path(folder) / "tables").is_dir():
        fail(f"{folder}: not a world or store folder (no tables/); run `make demo` or pass --store")
    try:
        payload = run_portal_bench(
            Path(folder), seconds=seconds, clients=tuple(clients), pages=tuple(page) or None
        )
    except ValueError as err:
        fail(str(err))
    bench_tables(payload)
    meta = payload["meta"]
    for key in ("skipped", "notes"):
        if meta[key]:
            console.print(f"{key}: {meta[key]}")
    console.print(f"load: {meta['uptime_after']}")
    write_bench_json(json_out, payload)
