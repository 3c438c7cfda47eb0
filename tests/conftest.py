"""Shared fixtures: a temporary tracking store, small generated worlds and a throwaway
PostgreSQL server.

Worlds are generated once per session (seeded) and cached on disk under pytest's
temporary folder, so every test module sees the same tiny, deterministic data.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ppx.config import get_settings


@pytest.fixture(autouse=True, scope="session")
def _isolate_settings(tmp_path_factory):
    """Keep tests away from the developer's mlflow/ and data/ folders."""
    root = tmp_path_factory.mktemp("ppx_home")
    old = dict(os.environ)
    os.environ["PPX_MLFLOW_DIR"] = str(root / "mlflow")
    os.environ["PPX_WORLDS_DIR"] = str(root / "worlds")
    os.environ["PPX_REPORTS_DIR"] = str(root / "reports")
    os.environ["PPX_LEDGER_URL"] = f"sqlite:///{root / 'ledger.db'}"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("PPX_API_TOKEN", None)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    get_settings.cache_clear()
    yield root
    os.environ.clear()
    os.environ.update(old)
    get_settings.cache_clear()


@pytest.fixture()
def mlflow_tmp(tmp_path, monkeypatch):
    """A fresh, empty MLflow tracking store for one test."""
    from ppx import tracking

    monkeypatch.setenv("PPX_MLFLOW_DIR", str(tmp_path / "mlflow"))
    # MLflow writes the URI it is given into MLFLOW_TRACKING_URI; one left by an earlier
    # test would read as the user's choice and point this test at that test's store.
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    tracking._uri_written_by_ppx = None
    get_settings.cache_clear()
    uri = tracking.configure()
    yield uri
    get_settings.cache_clear()


@contextmanager
def _mlflow_dir(path) -> Iterator[None]:
    old = os.environ.get("PPX_MLFLOW_DIR")
    os.environ["PPX_MLFLOW_DIR"] = str(path)
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # see mlflow_tmp
    get_settings.cache_clear()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PPX_MLFLOW_DIR", None)
        else:
            os.environ["PPX_MLFLOW_DIR"] = old
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def use_mlflow_dir():
    """``with use_mlflow_dir(path):`` points ``PPX_MLFLOW_DIR`` at ``path`` for the block.

    Session-scoped so module- and session-scoped fixtures can train into a registry of
    their own; the previous value and the settings cache are restored on the way out.
    """
    return _mlflow_dir


def _world(tmp_path_factory, name: str, **params):
    from ppx.data.io import save_world
    from ppx.data.world import WorldParams, generate_world

    world = generate_world(WorldParams(**params))
    path = save_world(world, Path(tmp_path_factory.getbasetemp()) / "worlds" / name)
    return world, path


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """About 800 customers over 12 months: enough structure for behaviour tests."""
    return _world(tmp_path_factory, "tiny", n_customers=800, seed=11, months=12)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """About 4,000 customers over 24 months, for realism and model-quality tests."""
    return _world(tmp_path_factory, "small", n_customers=4000, seed=5, months=24)


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster (:class:`ppx.local_postgres.LocalPostgres`) for the
    session, on a free port in a temporary folder; a skip saying why when it cannot run."""
    import shutil
    import subprocess
    import tempfile

    from ppx.local_postgres import LocalPostgres, PostgresUnavailable, free_port

    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 is not installed")
    folder = Path(tempfile.mkdtemp(prefix="ppx-pg-"))
    try:
        pg = LocalPostgres(folder, port=free_port())
        pg.start(fsync=False)
    except PostgresUnavailable as err:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(str(err))
    except (RuntimeError, subprocess.SubprocessError, OSError) as err:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"could not start a throwaway PostgreSQL server: {str(err)[:300]}")
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


_DATABASES = itertools.count(1)


@pytest.fixture()
def postgres_url(postgres):
    """The SQLAlchemy URL of a new, empty database on the throwaway server, one per test.

    Tests that count rows (``Ledger.count()``, the outbox's counts) or sweep every
    customer would otherwise see what earlier tests left in a shared database, and pass
    or fail with the order the tests run in.
    """
    return postgres.create_database(f"test_{next(_DATABASES)}")
