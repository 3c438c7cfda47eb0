"""``ppx mlflow-server``: one MLflow tracking server on PostgreSQL for a team.

Runs, the model registry and aliases live in PostgreSQL (``--db-url`` /
``PPX_MLFLOW_DB_URL``, or a local cluster under ``data/postgres`` started for you);
artifacts (models, plots, SHAP reports) are stored under a local folder and served by
the same server, so clients upload and download them over HTTP and need no shared disk.
Every ppx command then works against it with ``MLFLOW_TRACKING_URI=http://HOST:PORT``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer

#: Environment variable naming the server's PostgreSQL database (any SQLAlchemy URL).
DB_URL_ENV = "PPX_MLFLOW_DB_URL"


def mlflow_executable() -> str:
    """The ``mlflow`` of this Python environment (the one ppx's MLflow version is)."""
    here = Path(sys.executable).with_name("mlflow")
    return str(here) if here.exists() else (shutil.which("mlflow") or "mlflow")


def server_command(
    backend_uri: str,
    artifacts: Path,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    allowed_hosts: str | None = None,
) -> list[str]:
    """The ``mlflow server`` command line: runs and registry in ``backend_uri``, artifacts
    proxied by the server into ``artifacts`` (``--serve-artifacts``)."""
    cmd = [
        mlflow_executable(),
        "server",
        "--backend-store-uri",
        backend_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        Path(artifacts).resolve().as_uri(),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if allowed_hosts:
        cmd += ["--allowed-hosts", allowed_hosts]
    return cmd


def mlflow_server(
    db_url: str | None = typer.Option(
        None,
        "--db-url",
        envvar=DB_URL_ENV,
        help="PostgreSQL database of runs and registry (default: a local cluster under "
        "--pg-dir, database 'mlflow').",
    ),
    pg_dir: Path = typer.Option(
        Path("data/postgres"), "--pg-dir", help="Folder of the local PostgreSQL cluster."
    ),
    pg_port: int = typer.Option(5433, "--pg-port", help="Port of the local PostgreSQL cluster."),
    artifacts: Path = typer.Option(
        Path("mlflow/server-artifacts"), "--artifacts", help="Where the server stores artifacts."
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for other machines)."
    ),
    port: int = typer.Option(5000, "--port"),
    workers: int = typer.Option(2, "--workers", min=1, help="Server worker processes."),
    allowed_hosts: str | None = typer.Option(
        None,
        "--allowed-hosts",
        help="Host headers the server accepts, comma-separated (e.g. mlflow.internal:5000) "
        "when clients reach it by a name other than localhost.",
    ),
) -> None:
    """Start an MLflow tracking server on PostgreSQL with a local artifact root.

    Point every client at it: MLFLOW_TRACKING_URI=http://HOST:PORT ppx train churn ...
    """
    from ppx.local_postgres import LocalPostgres, PostgresUnavailable
    from ppx.terminal import console, fail

    local = None
    if db_url is None:
        try:
            local = LocalPostgres(pg_dir, port=pg_port)
        except PostgresUnavailable as err:
            fail(f"{err}; or set {DB_URL_ENV}")
        was_running = local.running()
        try:
            local.start()
        except RuntimeError as err:
            fail(str(err))
        db_url = local.create_database("mlflow")
        if was_running:
            local = None  # someone else started it: leave it running
        console.print(f"PostgreSQL cluster in {pg_dir} on 127.0.0.1:{pg_port}")
    from ppx.local_postgres import with_driver

    db_url = with_driver(db_url)
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = server_command(db_url, artifacts, host, port, workers, allowed_hosts)
    from ppx.tuning import safe_url

    console.print(
        f"MLflow server: runs and registry in {safe_url(db_url)}, artifacts in {artifacts}\n"
        f"clients: export MLFLOW_TRACKING_URI=http://{host}:{port}"
    )
    code = run_until_stopped(cmd)
    if local is not None:
        local.stop()
    raise typer.Exit(code)


def run_until_stopped(cmd: list[str]) -> int:
    """Run the server until it exits, Ctrl-C or SIGTERM; on a signal stop it cleanly."""

    def _stop(signum, frame):  # SIGTERM (a service manager) ends it like Ctrl-C
        raise KeyboardInterrupt

    # Its own process group: `mlflow server` runs uvicorn, which runs the workers; a stop
    # signals all of them, so none is left behind holding the port.
    proc = subprocess.Popen(cmd, env=os.environ.copy(), start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop_group(proc)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_group(proc: subprocess.Popen, grace: float = 60.0) -> None:
    """SIGTERM the process group of ``proc``; SIGKILL what is left after ``grace`` s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)  # reaps mlflow itself (a zombie still counts in its group)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:  # uvicorn and its workers may outlive mlflow
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def register(app: typer.Typer) -> None:
    app.command("mlflow-server")(mlflow_server)
