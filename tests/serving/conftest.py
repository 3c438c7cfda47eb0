"""Serving fixtures: tiny models in a temporary registry, and two running services.

``serving_registry`` trains every model of the registry (``ppx.models.registry``) with
its spec's tiny test configuration into a registry of its own and gives each trained
version the alias ``champion`` (these tests are about serving, not the promotion gate).
A model that does not import or fails to train fails the session: never a skip.

``services`` starts two services on free loopback ports, in parallel (start-up is
mostly imports and model loading):

* ``open``: alias ``champion``, no token;
* ``guarded``: ``PPX_API_TOKEN`` set and alias ``serving_only_delivery``, which only
  ``ppx-delivery`` carries, so every other endpoint must answer 503 with a reason.

``model_client`` and ``decision_client`` run both services in-process (their ASGI apps,
under Starlette's test client), with no trained model: a stand-in fraud model in a
ready store, so requests reach validation and the handlers. Each app can be built only
once per process (BentoML registers its metrics when building it), so every test file
shares these two.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from ppx.config import PROJECT_ROOT

TOKEN = "test-token-123"
PARTIAL_ALIAS = "serving_only_delivery"


@dataclass
class Registry:
    mlflow_dir: Path
    trained: dict[str, str]
    subscriber: int | None = None


def _world_for(spec, worlds: dict, tmp_path_factory) -> Path:
    """The shared tiny world, or a longer one when the model's tiny config needs it."""
    from ppx.data.io import save_world
    from ppx.data.world import WorldParams, generate_world

    months = spec.test_world_months
    if months is None:
        return worlds["tiny"]
    key = f"tiny{months}"
    if key not in worlds:
        path = Path(tmp_path_factory.getbasetemp()) / "worlds" / key
        params = WorldParams(n_customers=600, seed=11, months=months)
        worlds[key] = save_world(generate_world(params), path)
    return worlds[key]


@pytest.fixture(scope="session")
def serving_registry(tiny_world, tmp_path_factory, use_mlflow_dir) -> Registry:
    from ppx.models import registry

    mlflow_dir = tmp_path_factory.mktemp("serving_mlflow")
    with use_mlflow_dir(str(mlflow_dir)):
        trained: dict[str, str] = {}
        worlds = {"tiny": tiny_world[1]}
        from ppx import tracking

        tracking.configure()
        for spec in registry.specs():
            world = _world_for(spec, worlds, tmp_path_factory)
            result = spec.run_train(world, cfg=spec.tiny_config(), progress=False)
            assert result.version is not None, f"training {spec.name} registered no version"
            tracking.set_alias(spec.name, tracking.CHAMPION, result.version)
            trained[spec.name] = result.version
        tracking.set_alias("delivery", PARTIAL_ALIAS, trained["delivery"])
        from ppx.data.io import load_tables

        churn_world = _world_for(registry.get("churn"), worlds, tmp_path_factory)
        subs = load_tables(churn_world)["subscriptions"]
        subscriber = int(subs.loc[subs["cancelled_at"].isna(), "customer_id"].iloc[0])
    return Registry(mlflow_dir, trained, subscriber)


@dataclass
class Services:
    open: str
    guarded: str
    registry: Registry
    token: str = TOKEN
    #: each service's output (stdout and stderr), by name: ``open``, ``guarded``
    logs: dict[str, Path] = field(default_factory=dict)

    def need(self, model: str) -> None:
        """Fail at once when ``model`` was not trained for the session (never a skip)."""
        assert model in self.registry.trained, f"{model} has no trained version"


@pytest.fixture(scope="session")
def services(serving_registry) -> Services:
    from ppx.serve import launch

    base = {
        **os.environ,
        "PPX_MLFLOW_DIR": str(serving_registry.mlflow_dir),
        "BENTOML_DO_NOT_TRACK": "True",
    }
    base.pop("PPX_API_TOKEN", None)
    base.pop("MLFLOW_TRACKING_URI", None)  # the store is PPX_MLFLOW_DIR
    envs = {
        "open": {**base, "PPX_MODEL_ALIAS": "champion"},
        "guarded": {**base, "PPX_MODEL_ALIAS": PARTIAL_ALIAS, "PPX_API_TOKEN": TOKEN},
    }
    servers = {}
    try:
        for name, env in envs.items():
            port = launch.free_port()
            servers[name] = launch._spawn(
                launch.service_command("127.0.0.1", port), env, f"http://127.0.0.1:{port}", name
            )
        t0 = time.monotonic()
        for server in servers.values():
            launch.wait_until(server, "/readyz", timeout=max(30.0, 300.0 - (time.monotonic() - t0)))
        logs = {name: server.log_path for name, server in servers.items()}
        yield Services(servers["open"].url, servers["guarded"].url, serving_registry, logs=logs)
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def serving_modules():
    import sys

    sys.path.insert(0, str(PROJECT_ROOT))  # serving/ sits beside the package
    try:
        from serving import decision_service, model_service

        yield model_service, decision_service
    finally:
        sys.path.remove(str(PROJECT_ROOT))


# Each app is built once per process: BentoML registers its metrics when building it.


@pytest.fixture(scope="session")
def model_client(serving_modules):
    from starlette.testclient import TestClient

    M = serving_modules[0]  # noqa: N806
    # a ready store holding a stand-in fraud model, so the guard lets requests through to
    # validation (which answers before any model is called); nothing to load or warm up
    store = M.ModelStore(alias="champion", models=("fraud",))
    store.loaded["fraud"] = SimpleNamespace(name="fraud")
    store.ready.set()
    store.start = lambda: None
    import torch

    threads = torch.get_num_threads()  # the service sets its own: not the tests' process
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(M, "STORE", store)
        with TestClient(M.ModelService.to_asgi()) as client:
            yield client, M
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def decision_client(serving_modules):
    from starlette.testclient import TestClient

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PPX_DECISION_GC", "0")  # the service's GC settings: not the tests' process
        with TestClient(serving_modules[1].DecisionService.to_asgi()) as client:
            yield client
