"""End to end against a tracking server on PostgreSQL: train, register, alias, and the
model service's loader serving the champion from it."""

from __future__ import annotations

import gc
import subprocess
import time
import urllib.request

import pytest

from ppx import tracking
from ppx.config import get_settings
from ppx.data import columns as C
from ppx.local_postgres import free_port
from ppx.models import registry
from ppx.tracking_server import server_command, stop_group


def _wait_healthy(proc: subprocess.Popen, url: str, log) -> None:
    """Until the server answers /health; fail with its log if it exits first."""
    while True:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log.read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)


@pytest.fixture()
def mlflow_server(postgres, tmp_path, monkeypatch):
    """``mlflow server`` on a fresh PostgreSQL database and a local artifact root; every
    ppx call in the test goes to it through MLFLOW_TRACKING_URI."""
    db = postgres.create_database("mlflow_server_e2e")
    artifacts = tmp_path / "server-artifacts"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(
        server_command(db, artifacts, port=port, workers=1),
        stdout=log,
        stderr=log,
        start_new_session=True,  # stop_group ends mlflow, uvicorn and its workers together
    )
    try:
        _wait_healthy(proc, url, log)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setenv("PPX_MLFLOW_DIR", str(tmp_path / "local-mlflow"))
        get_settings.cache_clear()
        assert tracking.configure() == url
        yield url, artifacts
    finally:
        stop_group(proc)
        log.close()
        get_settings.cache_clear()


@pytest.mark.slow
def test_train_register_alias_and_serve_from_the_tracking_server(
    mlflow_server, tiny_world, tmp_path
):
    from serving.model_service import ModelStore

    url, artifacts = mlflow_server
    _, world = tiny_world
    spec = registry.get("churn")
    result = spec.run_train(world, cfg=spec.tiny_config(), register=True, progress=False)
    assert result.version == "1"
    tracking.set_alias("churn", "champion", result.version)

    # Runs, registry and alias are on the server (nothing in the local store) ...
    import mlflow

    assert mlflow.get_tracking_uri() == url
    assert tracking.get_alias_version("churn").version == "1"
    assert not (tmp_path / "local-mlflow").exists()
    # ... and the model's files went through the server into its artifact root.
    assert list(artifacts.rglob("MLmodel"))

    # The model service's loader finds the champion by alias on the server and scores.
    store = ModelStore(alias="champion", models=("churn",))
    try:
        store.load_all()
    finally:
        gc.unfreeze()  # the loader freezes what it loaded for a long-lived service
    assert store.missing == {}
    loaded = store.loaded["churn"]
    assert (loaded.registered, loaded.version, loaded.alias) == ("ppx-churn", "1", "champion")
    subs = loaded.python_model.model.history["subs"]
    active = int(subs[subs[C.CANCELLED_AT].isna()][C.CUSTOMER_ID].iloc[0])
    endpoint = spec.endpoints[0]
    request = endpoint.request.model_validate({**endpoint.example, C.CUSTOMER_ID: active})
    [answer] = loaded.predict_records([request], endpoint)
    assert answer["status"] == "ok"
    assert 0.0 < answer["p_churn_30"] < 1.0
