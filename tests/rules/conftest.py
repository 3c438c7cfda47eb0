"""Fixtures for the rules tests: the default policy, a customer (as a model and as
a request body), a late delivery event and a throwaway PostgreSQL.

The PostgreSQL fixture starts a private cluster with ``initdb``/``pg_ctl`` from
``/usr/lib/postgresql/*/bin`` on a free port in a temporary folder and stops it at the end
of the session; it skips (with the reason) when the binaries are missing or the server
cannot start. PostgreSQL refuses to run as root, so as root the cluster runs as the
``postgres`` system user via ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest

from ppx.rules.policy import load_policy
from ppx.rules.types import CustomerContext


@pytest.fixture(scope="session")
def policy():
    return load_policy()


@pytest.fixture()
def customer():
    def make(**kw) -> CustomerContext:
        base = dict(
            customer_id=42,
            tier="silver",
            spend_12m=350.0,
            orders_12m=6,
            returns_12m=0,
            signup_at=datetime(2023, 5, 10, 9, 0),
            email_opt_in=True,
            sms_opt_in=True,
            push_opt_in=True,
        )
        base.update(kw)
        return CustomerContext(**base)

    return make


@pytest.fixture()
def customer_body() -> dict:
    """A silver subscriber's customer block as the decision API takes it (a fresh dict)."""
    return {
        "customer_id": 42,
        "tier": "silver",
        "spend_12m": 420,
        "subscription_id": 9,
        "email_opt_in": True,
    }


@pytest.fixture()
def late_delivery() -> dict:
    """A delivered-event request body three days past its promised date (a fresh dict)."""
    return {
        "event_type": "delivered",
        "order_id": 5,
        "customer_id": 42,
        "occurred_at": "2025-03-05T12:00:00",
        "ordered_at": "2025-03-01T09:00:00",
        "order_value": 80,
        "promised_date": "2025-03-02",
        "delivered_at": "2025-03-05T12:00:00",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def postgres_url():
    """A SQLAlchemy URL of a throwaway PostgreSQL server, or a skip saying why not."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
            "(install Debian's postgresql package; .ci/system-deps does)"
        )
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 is not installed")
    as_root = os.geteuid() == 0
    if as_root:
        try:
            pg_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        if shutil.which("runuser") is None:
            pytest.skip("running as root and runuser is not available")
    tmp = Path(tempfile.mkdtemp(prefix="ppx-pg-"))
    data = tmp / "data"
    port = _free_port()

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    try:
        if as_root:
            os.chown(tmp, pg_user.pw_uid, pg_user.pw_gid)
        run(str(bindir / "initdb"), "-D", str(data), "-U", "ppx", "-A", "trust", "-E", "UTF8")
        run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(tmp / "log"),
            "-o",
            f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off",
            "-w",
            "-t",
            "60",
            "start",
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
        detail = getattr(err, "stderr", "") or str(err)
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"could not start a throwaway PostgreSQL server: {detail.strip()[:300]}")
    url = f"postgresql+psycopg2://ppx@127.0.0.1:{port}/postgres"
    # Wait until it accepts connections.
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    for _ in range(50):
        try:
            with engine.connect():
                break
        except sa.exc.OperationalError:
            time.sleep(0.2)
    engine.dispose()
    try:
        yield url
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(tmp, ignore_errors=True)
