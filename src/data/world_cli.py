"""The work behind ``ppx data world`` and ``ppx bench world``."""

from __future__ import annotations

import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ppx.data.io import check_output_folder, save_world
from ppx.data.world import World, WorldParams, generate_world

console = Console()


def generate_with_progress(params: WorldParams) -> World:
    with Progress(
        TextColumn("[bold]simulating world"),
        BarColumn(),
        TextColumn("month {task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("world", total=params.months)
        return generate_world(params, progress=lambda done, _: bar.update(task, completed=done))


def default_world_folder(seed: int) -> Path:
    """Where ``ppx data world`` writes without ``--out``: one folder per seed, never the
    demo world the registered models were trained on. Both live in the worlds folder
    (``PPX_WORLDS_DIR``)."""
    from ppx.config import get_settings

    return get_settings().worlds_dir / f"seed-{seed}"


def build_chunked_world(
    customers: int, seed: int, months: int, out: Path, chunk: int, overwrite: bool = False, **knobs
) -> Path:
    """Generate a world in customer chunks of at most ``chunk``, writing as it goes."""
    from ppx.data.world.chunks import chunk_sizes, save_chunked_world

    check_output_folder(out, overwrite)
    params = WorldParams(n_customers=customers, seed=seed, months=months, **knobs)
    n = len(chunk_sizes(customers, chunk))
    with Progress(
        TextColumn("[bold]simulating world in customer chunks"),
        BarColumn(),
        TextColumn("chunk {task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("world", total=n)
        path = save_chunked_world(
            params, chunk, out, overwrite, progress=lambda done, _: bar.update(task, completed=done)
        )
    console.print(f"wrote a {customers:,}-customer world in {n} chunks to {out}")
    return path


def build_world(
    customers: int, seed: int, months: int, out: Path, overwrite: bool = False, **knobs
) -> World:
    """Generate and save a world; ``knobs`` are further ``WorldParams`` fields."""
    check_output_folder(out, overwrite)  # before minutes of simulation, not after
    params = WorldParams(n_customers=customers, seed=seed, months=months, **knobs)
    world = generate_with_progress(params)
    save_world(world, out, overwrite=overwrite)
    n = sum(len(df) for df in world.tables.values())
    console.print(f"wrote {n:,} rows in {len(world.tables)} tables to {out}")
    return world


def _generate_and_measure(customers: int, seed: int, queue) -> None:
    t = time.perf_counter()
    world = generate_world(WorldParams(n_customers=customers, seed=seed))
    seconds = time.perf_counter() - t
    rows = sum(len(df) for df in world.tables.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(
        {
            "seconds": seconds,
            "rows": rows,
            "orders": len(world.tables["orders"]),
            "peak_mb": peak_mb,
        }
    )


def bench_world(customers: int, seed: int) -> dict:
    """Generate in a fresh process so its peak resident memory is the generator's own."""
    started = time.perf_counter()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_generate_and_measure, args=(customers, seed, queue))
    with console.status(f"generating a {customers:,}-customer world"):
        proc.start()
        result = queue.get()
        proc.join()
    return {
        "meta": {
            "command": f"ppx bench world --customers {customers} --seed {seed}",
            "seconds": time.perf_counter() - started,
            "machine": f"{platform.machine()} {mp.cpu_count()} cores, {platform.python_version()}",
        },
        f"world_{customers}": {
            "ppx": {
                "customers": customers,
                "orders": result["orders"],
                "rows": result["rows"],
                "seconds": round(result["seconds"], 2),
                "rows_per_s": round(result["rows"] / result["seconds"]),
                "orders_per_s": round(result["orders"] / result["seconds"]),
                "peak_mb": round(result["peak_mb"], 1),
            }
        },
    }
