"""The shopper's portal: a Starlette app of server-rendered pages (tracking, orders, returns...).

Start it alone with ``ppx serve --portal`` (uvicorn) or mounted at ``/portal`` in the
decision service (``serving/decision_service.py``); both build it with :func:`create_app`.
Configuration: ``PPX_PORTAL_SECRET`` (required: signs links, sessions and forms),
``PPX_PORTAL_STORE`` (the world or store folder to show; default ``demo`` in
``PPX_WORLDS_DIR``), ``PPX_LEDGER_URL``, ``PPX_MODEL_SERVICE_URL`` and ``PPX_POLICY`` like
the decision service.

How a page plugs in
-------------------
A page is a module under ``ppx.portal.pages`` that exports ``ROUTES`` (a list of routes
made with :func:`ppx.portal.web.page`) and, optionally, ``NAV`` (``[(catalogue key,
route name)]``, the links of the top navigation). Add its dotted name to :data:`PAGES`,
one line, and nothing else::

    # src/portal/pages/loyalty.py
    from ppx.portal.web import PageContext, page

    async def loyalty(ctx: PageContext):
        summary = ...  # ctx.portal.engine.ledger, ctx.portal.policy, ctx.customer_id
        if ctx.form is not None:  # a POST: the CSRF token was already checked and spent
            ...
            return ctx.redirect("loyalty")
        return ctx.render("loyalty.html.j2", summary=summary)

    ROUTES = [page("/loyalty", loyalty, name="loyalty", methods=["GET", "POST"])]
    NAV = [("nav.loyalty", "loyalty")]

Its template (``src/portal/templates/loyalty.html.j2``) extends ``base.html.j2``, fills
``{% block content %}``, writes words through ``t.tr("loyalty.title")`` (keys in
``src/portal/locales/{en,ja,ru}.yaml``, all three) and puts ``{{ csrf_field() }}`` in every
``<form method="post">``. ``ctx.customer_id`` is the signed-in customer (never a value
from the URL or the form); ``ctx.portal.customer(id, ctx.lang)`` the rules' view of them.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from ppx.config import Settings, get_settings
from ppx.portal import access as A
from ppx.portal.data import StoreData
from ppx.portal.services import Portal
from ppx.portal.timing import ServerTiming
from ppx.rules.engine import DecisionEngine

#: The page modules, in navigation order: one line per page.
PAGES = [
    "ppx.portal.pages.auth",
    "ppx.portal.pages.orders",
    "ppx.portal.pages.tracking",
    "ppx.portal.pages.returns",
    "ppx.portal.pages.claims",
    "ppx.portal.pages.subscriptions",
    "ppx.portal.pages.loyalty",
    "ppx.portal.pages.preferences",
]

log = logging.getLogger("ppx.portal")


class _Holder:
    """Builds the :class:`Portal` on first use (no settings are read at import)."""

    def __init__(self, make: Callable[[], Portal]):
        self._make = make
        self._portal: Portal | None = None
        self._lock = threading.Lock()

    def get(self) -> Portal:
        if self._portal is None:
            with self._lock:
                if self._portal is None:
                    self._portal = self._make()
        return self._portal


def default_engine() -> DecisionEngine:
    """An engine built like the decision service's (same policy, ledger, model client)."""
    from ppx.rules.engine import engine_from_environment

    return engine_from_environment()


def create_app(
    engine: DecisionEngine | Callable[[], DecisionEngine] | None = None,
    settings: Settings | None = None,
    store: StoreData | None = None,
    pages: list[str] | None = None,
) -> Starlette:
    """The portal app.

    Args:
        engine: the decision engine (or a function returning it); default the decision
            service's, built from the environment.
        settings: default :func:`ppx.config.get_settings` at the first request.
        store: the tables to show; default the folder ``PPX_PORTAL_STORE`` names.
        pages: page modules (default :data:`PAGES`).
    """

    def make() -> Portal:
        e = engine() if callable(engine) else engine
        return Portal(settings or get_settings(), e or default_engine(), store)

    routes = []
    nav: list[tuple[str, str]] = []
    for name in pages or PAGES:
        module = importlib.import_module(name)
        routes.extend(module.ROUTES)
        nav.extend(getattr(module, "NAV", []))
    from importlib import resources

    static = StaticFiles(directory=str(resources.files("ppx.portal") / "static"))
    routes.append(Mount("/static", app=static, name="static"))
    app = Starlette(
        routes=routes,
        exception_handlers={A.AccessDenied: _denied, LookupError: _not_yours},
        middleware=[Middleware(ServerTiming)],  # the pages' own time, for `ppx bench portal`
    )
    app.state.portal_holder = _Holder(make)
    app.state.nav = nav
    return app


async def _denied(request: Request, exc: Exception) -> Response:
    from ppx.portal.web import PageContext, portal_of

    status = getattr(exc, "status", 403)
    portal = portal_of(request)
    lang = request.query_params.get("lang") or "en"
    from ppx.portal import i18n

    lang = i18n.pick(lang, portal.policy)
    anon = A.Access(0, None, 0, lang, "")
    ctx = PageContext(request, portal, anon, lang)
    from ppx.portal.csrf import CsrfError

    if isinstance(exc, CsrfError):
        key = "errors.form"
    else:
        key = "errors.expired" if status == 410 else "errors.denied"
    log.info("portal %s %s -> %d", request.method, request.url.path, status)
    return ctx.render("error.html.j2", status=status, message_key=key)


async def _not_yours(request: Request, exc: Exception) -> Response:
    """A missing order and another customer's order look the same: 403."""
    return await _denied(request, A.AccessDenied("not yours"))
