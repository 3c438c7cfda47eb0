"""Start a service (model, decision, ``mlflow models serve``) as a subprocess and stop it.

Each server runs in its own process group, so stopping it ends exactly the processes it
started (BentoML forks workers) and nothing else on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ppx.config import PROJECT_ROOT

SERVICE = "serving.model_service:ModelService"
DECISION_SERVICE = "serving.decision_service:DecisionService"


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A server subprocess (own process group) and where it listens."""

    proc: subprocess.Popen
    url: str
    log_path: Path

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate the process group this object started (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@contextlib.contextmanager
def app_in_thread(app, start_timeout: float = 30.0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port in a thread; yield its URL.

    For an app built in this process (the portal over an engine a caller holds): tests and
    the screenshot tool. The access log is off, as in ``ppx serve --portal`` (request
    lines would carry magic-link tokens).
    """
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the app's server stopped while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the app's server did not start in {start_timeout:.0f} s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _spawn(cmd: list[str], env: dict[str, str], url: str, name: str) -> Server:
    log_path = Path(tempfile.mkstemp(prefix=f"ppx-{name}-", suffix=".log")[1])
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(proc, url, log_path)


def wait_until(server: Server, path: str, timeout: float = 240.0) -> None:
    """Poll ``path`` until it answers 200; fail with the server's log if it dies."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + path, timeout=2.0).status_code == 200:
                return
        time.sleep(0.5)
    server.stop()
    raise TimeoutError(f"{server.url}{path} not ready after {timeout:.0f}s:\n{server.log_tail()}")


def service_command(host: str, port: int, service: str = SERVICE) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        service,
        "--working-dir",
        str(PROJECT_ROOT),
        "--host",
        host,
        "--port",
        str(port),
    ]


@contextlib.contextmanager
def _running(
    cmd: list[str], env: dict[str, str], port: int, name: str, ready: str, timeout: float = 240.0
) -> Iterator[Server]:
    """Start ``cmd`` on the loopback, wait until ``ready`` answers, stop it on exit."""
    server = _spawn(cmd, env, f"http://127.0.0.1:{port}", name)
    try:
        wait_until(server, ready, timeout)
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_service(
    port: int | None = None,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
    timeout: float = 240.0,
) -> Iterator[Server]:
    """Run the model service on the loopback for the duration of a ``with`` block."""
    port = port or free_port()
    full_env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True", **(env or {})}
    ready = "/readyz" if wait_ready else "/livez"
    with _running(service_command("127.0.0.1", port), full_env, port, "bento", ready, timeout) as s:
        yield s


@contextlib.contextmanager
def running_decision_service(
    model_service_url: str, ledger_url: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Run the decision service against ``model_service_url`` with its own ledger."""
    port = free_port()
    full_env = {
        **os.environ,
        "BENTOML_DO_NOT_TRACK": "True",
        "PPX_MODEL_SERVICE_URL": model_service_url,
        "PPX_LEDGER_URL": ledger_url,
        **(env or {}),
    }
    cmd = service_command("127.0.0.1", port, DECISION_SERVICE)
    with _running(cmd, full_env, port, "decisions", "/readyz") as s:
        yield s


@contextlib.contextmanager
def running_mlflow_serve(model_uri: str, port: int | None = None) -> Iterator[Server]:
    """``mlflow models serve --env-manager local`` of the same registered model."""
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    # mlflow execs ``uvicorn`` by name: put this interpreter's bin folder first on PATH
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": _tracking_uri(), "PATH": path}
    with _running(cmd, env, port, "mlflow", "/ping") as s:
        yield s


def _tracking_uri() -> str:
    from ppx import tracking

    return tracking.configure()
