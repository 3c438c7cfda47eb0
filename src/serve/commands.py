"""``ppx serve``, ``ppx bench serve`` and ``ppx bench latency``.

Nothing happens at import; :func:`register` adds the commands to the root ``ppx`` app.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import typer

from ppx.config import PROJECT_ROOT
from ppx.portal.commands import bench_portal
from ppx.serve.bench import run_bench, run_latency
from ppx.serve.launch import DECISION_SERVICE, SERVICE, service_command
from ppx.serve.routes import ROUTES


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface (0.0.0.0 for all)."),
    port: int = typer.Option(3000, "--port", min=1, max=65535),
    alias: str | None = typer.Option(
        None, "--alias", help="Registry alias to serve (default PPX_MODEL_ALIAS or champion)."
    ),
    decisions: bool = typer.Option(
        False,
        "--decisions",
        help="Start the decision service instead; it calls the model service at "
        "PPX_MODEL_SERVICE_URL (default http://127.0.0.1:3000).",
    ),
    portal: bool = typer.Option(
        False,
        "--portal",
        help="Start the shopper's portal alone (uvicorn); it needs PPX_PORTAL_SECRET, shows "
        "the world in PPX_PORTAL_STORE (default demo/ in PPX_WORLDS_DIR) and calls the model "
        "service at PPX_MODEL_SERVICE_URL. The decision service also mounts it at /portal.",
    ),
) -> None:
    """Start the BentoML model service (models load from the registry by alias)."""
    from ppx.terminal import fail

    if portal:
        _serve_portal(host, port if port != 3000 else 3002)
        return

    if alias is not None:
        if alias.lower() == "latest":
            fail("--alias latest is not allowed: serve a gated alias such as champion")
        os.environ["PPX_MODEL_ALIAS"] = alias
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    cmd = service_command(host, port, DECISION_SERVICE if decisions else SERVICE)
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT)
    # A supervisor (systemd, a container runtime, `kill PID`) stops `ppx serve` with
    # SIGTERM: pass it on, so the server and its workers stop too instead of being orphaned
    # on the port.
    signal.signal(signal.SIGTERM, lambda signum, _frame: proc.send_signal(signum))
    try:
        raise typer.Exit(proc.wait())
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        raise typer.Exit(proc.wait()) from None


def _serve_portal(host: str, port: int) -> None:
    """The portal app under uvicorn, checked before it listens (secret and store)."""
    import uvicorn

    from ppx.config import get_settings
    from ppx.portal.access import PortalConfigError, secret_key
    from ppx.portal.app import create_app
    from ppx.portal.services import store_path
    from ppx.terminal import console, fail

    settings = get_settings()
    try:
        secret_key(settings.portal_secret)
        store = store_path(settings)
    except PortalConfigError as err:
        fail(str(err))
    console.print(f"portal on http://{host}:{port}/ showing {store}")
    # access_log off: request lines carry the magic-link token in /auth?token=...
    uvicorn.run(create_app(), host=host, port=port, access_log=False, log_level="warning")


def bench_serve(
    seconds: float = typer.Option(10.0, "--seconds", min=1, help="Per run (1 and 8 clients)."),
    soak: float = typer.Option(60.0, "--soak", min=1, help="Run length at 32 clients."),
    no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Skip the mlflow_serve baseline."),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
    endpoint: list[str] = typer.Option(
        [],
        "--endpoint",
        help=f"Only these (repeatable): {', '.join(ROUTES)}, decide_order_event, decide_return.",
    ),
) -> None:
    """Latency and throughput of every endpoint at 1/8/32 clients, vs mlflow models serve."""
    from ppx.terminal import bench_tables, console, fail, write_bench_json

    try:
        payload = run_bench(
            seconds=seconds,
            soak_seconds=soak,
            with_mlflow=not no_mlflow,
            endpoints=tuple(endpoint) or None,
        )
    except ValueError as err:
        fail(str(err))
    bench_tables(payload)
    if payload["meta"]["skipped"]:
        console.print(f"skipped: {payload['meta']['skipped']}")
    if payload["meta"]["decision_fallbacks"]:
        console.print(f"decisions used fallbacks: {payload['meta']['decision_fallbacks']}")
    write_bench_json(json_out, payload)


def bench_latency(
    n: int = typer.Option(500, "--n", min=10, help="Timed requests per endpoint."),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """One request per endpoint in-process (the service's scoring code, no HTTP): p50/p99."""
    from ppx.terminal import bench_tables, console, write_bench_json

    payload = run_latency(n=n)
    bench_tables(payload)
    if payload["meta"]["skipped"]:
        console.print(f"skipped: {payload['meta']['skipped']}")
    write_bench_json(json_out, payload)


def bench_decision_stages(
    n: int = typer.Option(300, "--n", min=10, help="Timed decisions per endpoint and level."),
    concurrency: int = typer.Option(8, "--concurrency", min=2, help="Decisions in flight."),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
) -> None:
    """Where a decision's time goes: the engine in-process against the real model service."""
    from ppx.serve.decision_stages import run_decision_stages, stage_table
    from ppx.terminal import console, write_bench_json

    payload = run_decision_stages(n=n, concurrency=concurrency)
    console.print(stage_table(payload))
    write_bench_json(json_out, payload)


def register(app: typer.Typer) -> None:
    """Add ``ppx serve`` to the root app and ``serve`` to its ``bench`` group."""
    app.command("serve")(serve)
    for group in app.registered_groups:
        if group.name == "bench" and group.typer_instance is not None:
            group.typer_instance.command("serve")(bench_serve)
            group.typer_instance.command("latency")(bench_latency)
            group.typer_instance.command("portal")(bench_portal)
            group.typer_instance.command("decision-stages")(bench_decision_stages)
