"""A private PostgreSQL cluster in a folder, started with ``initdb`` / ``pg_ctl``.

``make mlflow-server`` keeps the tracking server's database in one (``data/postgres``)
when no ``PPX_MLFLOW_DB_URL`` is given, and the tests start a throwaway one. It listens
on 127.0.0.1 only, with ``trust`` authentication for the one user it creates: a
developer's or a test's database, not a production one (use a managed PostgreSQL there).

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres``
system user (through ``runuser``) and the folder is handed to that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """The server binaries or the system user needed to run a local cluster are missing."""


def server_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb``, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def with_driver(url: str) -> str:
    """``postgresql://…`` -> ``postgresql+psycopg2://…`` unless psycopg 3 is installed.

    SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3; ppx ships psycopg2, so a
    URL without a driver gets the one that is there. Other URLs are returned unchanged.
    """
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalPostgres:
    """A cluster whose data, socket and log live under ``folder``.

    Attributes:
        folder: the cluster's home (``data/`` inside holds the database files).
        port: the TCP port on 127.0.0.1.
        user: the superuser ``initdb`` creates (trust authentication, no password).
    """

    folder: Path
    port: int = 5433
    user: str = "ppx"

    def __post_init__(self) -> None:
        self.folder = Path(self.folder).resolve()
        bindir = server_bindir()
        if bindir is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) not found under "
                "/usr/lib/postgresql/*/bin or on PATH; install Debian's postgresql package "
                "(.ci/system-deps does) or give a server's URL instead"
            )
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        if self.as_root:
            if shutil.which("runuser") is None:
                raise PostgresUnavailable("running as root and runuser is not available")
            try:
                self._pg_user = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root and there is no 'postgres' system user to run the server"
                ) from None

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "postgres.log"

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg2") -> str:
        """The SQLAlchemy URL of ``database`` (MLflow and Optuna take this form too)."""
        return f"{driver}://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True, timeout: int = 120):
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialised():
            return False
        return (
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "status", check=False
            ).returncode
            == 0
        )

    def init(self) -> None:
        """``initdb`` the folder unless it already holds a cluster."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            os.chown(self.folder, self._pg_user.pw_uid, self._pg_user.pw_gid)
        if self.initialised():
            return
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", self.user,
            "-A", "trust", "-E", "UTF8",
        )  # fmt: skip

    def start(self, fsync: bool = True, max_connections: int = 100) -> str:
        """Initialise if needed, start unless running, wait until it accepts connections.

        ``fsync=False`` is for throwaway test clusters only (a crash can lose data).
        Returns the URL of the ``postgres`` database.
        """
        self.init()
        if not self.running():
            options = (
                f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                f"-c max_connections={max_connections}" + ("" if fsync else " -c fsync=off")
            )
            try:
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                    "-o", options, "-w", "-t", "60", "start",
                )  # fmt: skip
            except subprocess.CalledProcessError as err:
                log = self.log_file.read_text()[-1500:] if self.log_file.exists() else ""
                raise RuntimeError(
                    f"PostgreSQL in {self.folder} did not start on port {self.port}: "
                    f"{(err.stderr or '').strip()[:500]}\n{log}"
                ) from None
        self.wait()
        return self.url()

    def wait(self, seconds: float = 30.0) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(), poolclass=sa.pool.NullPool)
        deadline = time.monotonic() + seconds
        try:
            while True:
                try:
                    with engine.connect():
                        return
                except sa.exc.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        finally:
            engine.dispose()

    def stop(self) -> None:
        if self.initialised():
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop",
                check=False,
            )  # fmt: skip

    def create_database(self, name: str) -> str:
        """Create ``name`` unless it exists; returns its URL."""
        create_database(self.url(), name)
        return self.url(name)


def create_database(server_url: str, name: str) -> None:
    """``CREATE DATABASE name`` on the server of ``server_url`` unless it exists."""
    import sqlalchemy as sa

    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r}: use letters, digits and underscores")
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
