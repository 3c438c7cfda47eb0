"""Serving fixtures: tiny models in a temporary registry, and two running services.

``serving_registry`` trains every model package that exists (with tiny settings) into a
registry of its own; models whose package is not built yet are recorded as missing
with the reason, and their endpoint tests skip naming the package.

``services`` starts two services on free loopback ports, in parallel (start-up is
mostly imports and model loading):

* ``open``: alias ``champion``, no token;
* ``guarded``: ``PPX_API_TOKEN`` set and alias ``serving_only_delivery``, which only
  ``ppx-delivery`` carries, so every other endpoint must answer 503 with a reason.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ppx.config import get_settings

TOKEN = "test-token-123"
PARTIAL_ALIAS = "serving_only_delivery"


def _train_delivery(world: Path) -> None:
    from ppx.models.delivery.config import DeliveryConfig
    from ppx.models.delivery.train import train

    train(world, DeliveryConfig(epochs=1), progress=False)


def _train_recs(world: Path) -> None:
    from ppx.models.recs.config import RecsConfig
    from ppx.models.recs.train import train_and_register

    train_and_register(
        world, RecsConfig(epochs=1, max_minutes=0.5, repeat_epochs=5), progress=False
    )


def _train_fraud(world: Path) -> None:
    from ppx.models.fraud.config import FraudConfig
    from ppx.models.fraud.train import train

    train(world, FraudConfig(max_epochs=2), progress=False)


def _train_churn(world: Path) -> None:
    from ppx.models.churn.config import ChurnConfig
    from ppx.models.churn.train import train_world

    train_world(world, ChurnConfig(max_epochs=1), progress=False)


#: model -> (module that must exist, trainer, which world it trains on)
TRAINERS = {
    "delivery": ("ppx.models.delivery.train", _train_delivery, "tiny"),
    "recs": ("ppx.models.recs.train", _train_recs, "tiny"),
    "fraud": ("ppx.models.fraud.train", _train_fraud, "tiny"),
    # churn needs >= 12 monthly snapshots (6 test + 3 validation + 3 train); tiny has 11.
    "churn": ("ppx.models.churn.train", _train_churn, "churn16"),
}


@dataclass
class Registry:
    mlflow_dir: Path
    trained: dict[str, str]
    missing: dict[str, str]
    broken: dict[str, str]
    subscriber: int | None = None


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="session")
def serving_registry(tiny_world, tmp_path_factory) -> Registry:
    from ppx.data.io import save_world
    from ppx.data.world import WorldParams, generate_world

    mlflow_dir = tmp_path_factory.mktemp("serving_mlflow")
    old = os.environ.get("PPX_MLFLOW_DIR")
    os.environ["PPX_MLFLOW_DIR"] = str(mlflow_dir)
    get_settings.cache_clear()
    trained: dict[str, str] = {}
    missing: dict[str, str] = {}
    broken: dict[str, str] = {}
    worlds = {"tiny": tiny_world[1]}
    try:
        from ppx import tracking

        tracking.configure()
        for name, (module, trainer, world) in TRAINERS.items():
            if not _exists(module) or not _exists(f"ppx.models.{name}.pyfunc"):
                missing[name] = f"package ppx.models.{name} (train/pyfunc) is not built yet"
                continue
            if world not in worlds:
                path = Path(tmp_path_factory.getbasetemp()) / "worlds" / world
                params = WorldParams(n_customers=600, seed=11, months=16)
                worlds[world] = save_world(generate_world(params), path)
            try:
                trainer(worlds[world])
            except Exception as err:  # the package exists but cannot train: its tests fail
                broken[name] = f"training ppx.models.{name} failed: {type(err).__name__}: {err}"
                continue
            mv = tracking.get_alias_version(name, tracking.CHAMPION)
            assert mv is not None, f"training {name} registered no champion"
            trained[name] = str(mv.version)
        tracking.set_alias("delivery", PARTIAL_ALIAS, trained["delivery"])
        subscriber = None
        if "churn16" in worlds:
            from ppx.data.io import load_tables

            subs = load_tables(worlds["churn16"])["subscriptions"]
            subscriber = int(subs.loc[subs["cancelled_at"].isna(), "customer_id"].iloc[0])
    finally:
        if old is None:
            os.environ.pop("PPX_MLFLOW_DIR", None)
        else:
            os.environ["PPX_MLFLOW_DIR"] = old
        get_settings.cache_clear()
    return Registry(mlflow_dir, trained, missing, broken, subscriber)


@dataclass
class Services:
    open: str
    guarded: str
    registry: Registry
    token: str = TOKEN

    def need(self, model: str) -> None:
        """Skip when ``model``'s package has not landed; fail if it exists but cannot train."""
        if model in self.registry.missing:
            pytest.skip(self.registry.missing[model])
        if model in self.registry.broken:
            pytest.fail(self.registry.broken[model])


@pytest.fixture(scope="session")
def services(serving_registry) -> Services:
    from ppx.serve import launch

    base = {
        **os.environ,
        "PPX_MLFLOW_DIR": str(serving_registry.mlflow_dir),
        "BENTOML_DO_NOT_TRACK": "True",
    }
    base.pop("PPX_API_TOKEN", None)
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
        yield Services(servers["open"].url, servers["guarded"].url, serving_registry)
    finally:
        for server in servers.values():
            server.stop()
