"""`ppx serve` passes SIGTERM on to the server it started, so no server is orphaned."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

SERVER = textwrap.dedent(
    """
    import pathlib, signal, sys, time

    def stop(*_):
        pathlib.Path(sys.argv[1]).write_text("stopped by SIGTERM")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    time.sleep(120)
    """
)

LAUNCHER = textwrap.dedent(
    """
    import sys
    from ppx.serve import commands

    server, marker = sys.argv[1], sys.argv[2]
    commands.service_command = lambda host, port, service: [sys.executable, "-c", server, marker]
    from ppx.cli import app

    app(["serve", "--port", "3999"])
    """
)


def test_sigterm_to_ppx_serve_stops_the_server(tmp_path):
    marker = tmp_path / "server_stopped"
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, SERVER, str(marker)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"  # the server runs under ppx serve
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    assert marker.read_text() == "stopped by SIGTERM"
    assert proc.returncode == 0  # the server's own exit status
