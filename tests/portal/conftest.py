"""Portal fixtures: the tiny world, an engine over a fresh ledger, real models, a live server.

* ``portal_env`` (session, autouse): ``PPX_PORTAL_SECRET`` for every portal test.
* ``portal_store``: the shared tiny world (tests/conftest.py) read as the portal's store.
* ``make_portal``: ``make_portal(models=None) -> PortalApp`` over a fresh ledger in a
  temporary folder (plain tests; no model service: pages say the estimate is missing).
* ``portal_models`` (session): the delivery, recs, fraud and churn models trained with their tiny
  configurations into a registry of their own, served in-process through the model
  service's own scoring code (:func:`serving.model_service.score`) behind a
  :class:`~ppx.rules.model_client.ModelClient` transport: the real models and the real
  request/response schemas, without starting BentoML.
* ``live_portal`` (session): the portal with those models under uvicorn in a thread on a
  free port; ``live_portal.link(customer_id, order_id=None, lang="en")`` is a magic link.
* ``csrf_token(html)`` and ``delivered_order(store)``: helpers to import from this module.
* ``browser`` (module): the Debian Chromium through Playwright (skipped, with the reason,
  only when Chromium or Playwright is missing).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SECRET = "portal-test-secret-0123456789"


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page (``from tests.portal.conftest import ...``)."""
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def delivered_order(store, customer_id: int | None = None) -> tuple[int, int]:
    """(customer_id, order_id) of a delivered order in the store (of one customer if given)."""
    s = store.tables["shipments"]
    o = store.tables["orders"]
    m = s[s["status"] == "delivered"].merge(o[["order_id", "customer_id"]], on="order_id")
    if customer_id is not None:
        m = m[m["customer_id"] == customer_id]
    row = m.iloc[0]
    return int(row["customer_id"]), int(row["order_id"])


@pytest.fixture(scope="session", autouse=True)
def portal_env():
    old = os.environ.get("PPX_PORTAL_SECRET")
    os.environ["PPX_PORTAL_SECRET"] = SECRET
    from ppx.config import get_settings

    get_settings.cache_clear()
    yield SECRET
    if old is None:
        os.environ.pop("PPX_PORTAL_SECRET", None)
    else:
        os.environ["PPX_PORTAL_SECRET"] = old
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def portal_store(tiny_world):
    from ppx.portal.data import load_store

    return load_store(tiny_world[1])


@dataclass
class PortalApp:
    """An app, its engine and store, and a test client that keeps cookies."""

    app: object
    engine: object
    store: object
    settings: object
    clients: list = field(default_factory=list)

    def client(self):
        from starlette.testclient import TestClient

        c = TestClient(self.app, base_url="http://testserver", follow_redirects=False)
        self.clients.append(c)
        return c

    def link_path(self, customer_id: int, order_id: int | None = None, **kw) -> str:
        """The path and query of a magic link (``/auth?token=...``)."""
        from ppx.portal.access import make_link_token

        token = make_link_token(customer_id, SECRET, order_id=order_id, **kw)
        from urllib.parse import quote

        return f"/auth?token={quote(token)}"

    def signed_in(self, customer_id: int, order_id: int | None = None):
        c = self.client()
        r = c.get(self.link_path(customer_id, order_id))
        assert r.status_code == 303, r.text
        return c

    def ledger_rows(self) -> int:
        return self.engine.ledger.count()


def build_engine(ledger_url: str, models=None):
    from ppx.rules.engine import DecisionEngine
    from ppx.rules.ledger import Ledger
    from ppx.rules.messages.outbox import Outbox
    from ppx.rules.messages.preferences import PreferenceStore
    from ppx.rules.policy import load_policy
    from ppx.rules.promise_log import PromiseLog

    policy = load_policy()
    ledger = Ledger(ledger_url)
    prefs = PreferenceStore(ledger.engine, policy)
    return DecisionEngine(
        policy, models, ledger, prefs, Outbox(ledger.engine), promises=PromiseLog(ledger_url)
    )


@pytest.fixture()
def make_portal(tmp_path, portal_store):
    made: list[PortalApp] = []

    def make(models=None) -> PortalApp:
        from ppx.config import Settings
        from ppx.portal.app import create_app

        settings = Settings(portal_secret=SECRET)
        engine = build_engine(f"sqlite:///{tmp_path / f'ledger{len(made)}.db'}", models)
        app = create_app(engine, settings=settings, store=portal_store)
        p = PortalApp(app, engine, portal_store, settings)
        made.append(p)
        return p

    yield make
    for p in made:
        for c in p.clients:
            c.close()
        p.engine.ledger.dispose()


# --- real models, in-process ------------------------------------------------------------

PORTAL_MODELS = ("delivery", "recs", "fraud", "churn")


def in_process_transport(store):
    """A ModelClient ``send``: the model service's own validation and scoring, no HTTP."""
    from pydantic import ValidationError

    from serving import model_service as M
    from serving import schemas as S

    by_route = {e.route: e for e in M.ENDPOINTS.values()}
    lock = threading.Lock()  # one scoring at a time, like one service worker

    def run(endpoint, payload):
        try:
            request = endpoint.request.model_validate(payload)
        except ValidationError as err:
            return 400, json.dumps({"error": str(err)})
        with lock:
            try:
                model = store.get(endpoint.model)
            except M.ModelUnavailable as err:  # the service answers 503 with the reason
                return 503, json.dumps({"error": str(err)})
            records = model.predict_records([request], endpoint)
            out = M._rows(endpoint, model, [request], records)[0]
        if isinstance(out, S.ItemError):
            return out.status, json.dumps({"error": out.message})
        return 200, out.model_dump_json()

    async def send(path: str, payload):
        endpoint = by_route.get(path)
        if endpoint is None:
            return 404, json.dumps({"error": f"no endpoint {path}"})
        return await asyncio.to_thread(run, endpoint, payload)

    return send


@dataclass
class Models:
    mlflow_dir: Path
    store: object
    send: object

    def client(self):
        from ppx.rules.model_client import ModelClient

        return ModelClient("http://in-process", timeout=30.0, token="", send=self.send)


@pytest.fixture(scope="session")
def portal_models(tiny_world, tmp_path_factory, use_mlflow_dir) -> Models:
    import torch

    from ppx import tracking
    from ppx.models import registry
    from serving import model_service as M

    torch.set_num_threads(1)
    mlflow_dir = tmp_path_factory.mktemp("portal_mlflow")
    with use_mlflow_dir(str(mlflow_dir)):
        tracking.configure()
        for name in PORTAL_MODELS:
            spec = registry.get(name)
            result = spec.run_train(tiny_world[1], cfg=spec.tiny_config(), progress=False)
            assert result.version is not None, f"training {name} registered no version"
            tracking.set_alias(spec.name, tracking.CHAMPION, result.version)
        store = M.ModelStore(alias=tracking.CHAMPION, models=PORTAL_MODELS)
        store.load_all()
    return Models(mlflow_dir, store, in_process_transport(store))


# --- a live server --------------------------------------------------------------------------


@dataclass
class LivePortal:
    url: str
    portal: PortalApp

    def link(self, customer_id: int, order_id: int | None = None, **kw) -> str:
        return self.url + self.portal.link_path(customer_id, order_id, **kw)


@pytest.fixture(scope="session")
def live_portal(portal_models, portal_store, tmp_path_factory):
    from ppx.config import Settings
    from ppx.portal.app import create_app
    from ppx.serve.launch import app_in_thread

    folder = tmp_path_factory.mktemp("live_portal")
    settings = Settings(portal_secret=SECRET)
    engine = build_engine(f"sqlite:///{folder / 'ledger.db'}", portal_models.client())
    app = create_app(engine, settings=settings, store=portal_store)
    with app_in_thread(app) as url:
        yield LivePortal(url, PortalApp(app, engine, portal_store, settings))
    engine.ledger.dispose()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download).

    Module-scoped on purpose: Playwright's sync API keeps an event loop running in the
    main thread while it is started, and a later test calling ``asyncio.run`` would fail.
    Each browser test module starts its own (about a second).
    """
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("the browser tests need the Debian chromium package (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the browser tests need playwright (pip install playwright)")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
    except Exception as err:  # a Chromium that cannot start here: say why
        pw.stop()
        pytest.skip(f"chromium at {exe} does not start: {err}")
    yield b
    b.close()
    pw.stop()


@pytest.fixture()
def page(browser):
    """A fresh browser context (no cookies) at a phone's width."""
    ctx = browser.new_context(viewport={"width": 375, "height": 812}, locale="en-US")
    p = ctx.new_page()
    yield p
    ctx.close()
