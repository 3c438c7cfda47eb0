"""What every page module uses: :func:`page` routes, :class:`PageContext` and rendering.

A page is an ``async def handler(ctx: PageContext) -> Response`` registered with
:func:`page`::

    ROUTES = [page("/loyalty", loyalty, name="loyalty", methods=["GET", "POST"])]

:func:`page` does the access work before the handler runs, so no page can forget it:

* the session cookie is read (:func:`ppx.portal.access.current_customer`): no session is
  403, an expired one 410 (``public=True`` pages such as the link request skip this and
  get an anonymous session for their forms);
* on a POST, the form's CSRF token is checked and spent (:mod:`ppx.portal.csrf`) before
  the handler sees the form: a missing, foreign or replayed token is 403 and the handler
  never runs;
* ``?lang=xx`` switches the language and stores it in the session cookie.

Templates extend ``base.html.j2`` and get ``t`` (the catalogue: ``t.tr(key)``,
``t.trn(key, n)``, ``t.money(x)``, ``t.day(d)``), ``brand``, ``lang``, ``customer_id``,
``url(name, **params)`` and ``csrf_field()`` (the hidden input every POST form needs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ppx.portal import access as A
from ppx.portal import i18n
from ppx.portal.csrf import FIELD
from ppx.portal.services import Portal

ANON_COOKIE = "ppx_portal_anon"


@cache
def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("ppx.portal", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def portal_of(request: Request) -> Portal:
    """The app's :class:`Portal` (built on the first request, then shared)."""
    return request.app.state.portal_holder.get()


@dataclass
class PageContext:
    """One request to a page: who is asking, in which language, with which form."""

    request: Request
    portal: Portal
    access: A.Access  # customer_id 0 on a public page without a session
    lang: str
    form: FormData | None = None
    cookies: dict[str, str] = field(default_factory=dict)  # set on the response

    @property
    def customer_id(self) -> int:
        return self.access.customer_id

    @property
    def signed_in(self) -> bool:
        return self.access.customer_id > 0

    @property
    def words(self) -> i18n.Words:
        return i18n.Words(self.lang, self.portal.policy.currency)

    def url(self, name: str, **params: Any) -> str:
        """A path inside the portal (mount-aware: ``/portal/...`` under the decision service)."""
        query = params.pop("_query", None)
        path = str(self.request.url_for(name, **{k: str(v) for k, v in params.items()}).path)
        return f"{path}?{query}" if query else path

    def csrf_field(self) -> Markup:
        token = self.portal.csrf.issue(self.access)
        return Markup(f'<input type="hidden" name="{FIELD}" value="{token}">')

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        policy = self.portal.policy
        ctx = {
            "t": self.words,
            "lang": self.lang,
            "languages": [
                (code, i18n.LANGUAGE_NAMES.get(code, code)) for code in i18n.languages(policy)
            ],
            "brand": policy.brand,
            "customer_id": self.customer_id,
            "signed_in": self.signed_in,
            "nav": [(key, self.url(name)) for key, name in self.request.app.state.nav]
            if self.signed_in
            else [],
            "url": self.url,
            "csrf_field": self.csrf_field,
            "path": self.request.url.path,
            "static": lambda p: self.url("static", path=p),
            **values,
        }
        html = templates().get_template(template).render(ctx)
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, name: str, **params: Any) -> Response:
        """303 See Other to a page (after a POST: a reload does not resend the form)."""
        return self.finish(RedirectResponse(self.url(name, **params), status_code=303))

    def finish(self, response: Response) -> Response:
        settings = self.portal.settings
        for key, value in self.cookies.items():
            response.set_cookie(
                key,
                value,
                max_age=int(settings.portal_session_hours * 3600),
                httponly=True,
                samesite="lax",
                secure=settings.portal_secure_cookie,
                path=self.request.scope.get("root_path", "") or "/",
            )
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Own scripts and styles only (the brand colours are one inline style block);
        # no framing, so a page cannot be overlaid to trick a click on a form.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        return response


Handler = Callable[[PageContext], Awaitable[Response]]


def _anonymous(request: Request, portal: Portal, cookies: dict[str, str]) -> A.Access:
    """A signed anonymous session for public forms (the CSRF key of the link request)."""
    secret, hours = portal.settings.portal_secret, portal.settings.portal_session_hours
    raw = request.cookies.get(ANON_COOKIE, "")
    try:
        return A.read_anonymous(raw, secret)
    except A.AccessDenied:
        cookies[ANON_COOKIE] = value = A.make_anonymous(secret, hours)
        return A.read_anonymous(value, secret)


def _language(request: Request, portal: Portal, access: A.Access | None) -> str:
    asked = request.query_params.get("lang")
    if asked:
        return i18n.pick(asked, portal.policy)
    if access is not None and access.customer_id > 0:
        return i18n.pick(access.lang, portal.policy)
    header = i18n.from_accept_language(request.headers.get("accept-language"), portal.policy)
    return header or portal.policy.messages.locales.default


def page(
    path: str,
    handler: Handler,
    *,
    name: str,
    methods: list[str] | None = None,
    public: bool = False,
) -> Route:
    """A route whose handler gets a checked :class:`PageContext` (see the module doc)."""

    async def endpoint(request: Request) -> Response:
        portal = portal_of(request)
        cookies: dict[str, str] = {}
        if public:
            try:
                access = A.current_customer(request)
            except A.AccessDenied:
                access = _anonymous(request, portal, cookies)
        else:
            access = A.current_customer(request)
        lang = _language(request, portal, access)
        if access.customer_id > 0 and lang != access.lang:
            access = A.with_lang(access, lang)
            cookies[A.COOKIE] = A.make_session(
                access, portal.settings.portal_secret, portal.settings.portal_session_hours
            )
            request.scope["ppx_portal_access"] = access
        ctx = PageContext(request, portal, access, lang, cookies=cookies)
        if request.method == "POST":
            form = await request.form()
            portal.csrf.consume(access, form.get(FIELD))  # raises 403 before any change
            ctx.form = form
        return await handler(ctx)

    return Route(path, endpoint, name=name, methods=methods or ["GET"])
