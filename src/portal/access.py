"""Passwordless access: signed, expiring magic links and the session cookie they open.

A link carries a token ``body.tag``: ``body`` is ``v1|customer|order|expires|lang``
(order 0 = every order of the customer) and ``tag`` an HMAC-SHA256 of it under
``PPX_PORTAL_SECRET``, truncated to 128 bits like the unsubscribe links
(:mod:`ppx.rules.messages.unsubscribe`, whose base64 helpers this reuses). Nothing is
stored per link, a token for another customer cannot be forged, and rotating the secret
invalidates every link and session.

Opening a link (``GET /portal/auth?token=...``) sets a session cookie with the same scope
(HttpOnly, SameSite=Lax, Secure when ``PPX_PORTAL_SECURE_COOKIE``) and a random session id
(the CSRF tokens of :mod:`ppx.portal.csrf` are bound to it), then redirects to a URL
without the token, so the token does not linger in the address bar or in a Referer.

Every page calls :func:`current_customer`; it raises :class:`AccessDenied` (403) for a
missing, tampered or foreign token and :class:`LinkExpired` (410) for an expired one; the
app turns both into a page that offers a new link.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, replace

from starlette.requests import Request

from ppx.rules.messages.unsubscribe import _b64, _unb64

COOKIE = "ppx_portal"
_LINK = b"ppx-portal-link\x00"
_SESSION = b"ppx-portal-session\x00"
_ANON = b"ppx-portal-anonymous\x00"
_SIG_BYTES = 16
_VERSION = "v1"


class AccessDenied(Exception):
    """No valid session or link for what was asked (HTTP 403)."""

    status = 403


class LinkExpired(AccessDenied):
    """A link or session that was valid but is past its expiry (HTTP 410)."""

    status = 410


class PortalConfigError(RuntimeError):
    """The portal cannot run as configured (no secret, no store)."""


@dataclass(frozen=True)
class Access:
    """Who the holder of a link or session is, and what they may see.

    ``order_id`` None: every order of ``customer_id``; otherwise only that order.
    ``session_id`` is set for a session (the CSRF key), empty for a bare link.
    """

    customer_id: int
    order_id: int | None
    expires_at: int  # unix seconds
    lang: str = "en"
    session_id: str = ""

    def allows_order(self, order_id: int) -> bool:
        return self.order_id is None or self.order_id == int(order_id)


def secret_key(secret: str | bytes | None) -> bytes:
    """The portal's HMAC key; a clear error when it is not configured."""
    if not secret:
        raise PortalConfigError(
            "the portal signs its links and sessions: set PPX_PORTAL_SECRET to a long random "
            'string (python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    return secret.encode() if isinstance(secret, str) else secret


def _tag(key: bytes, purpose: bytes, payload: bytes) -> bytes:
    return hmac.new(key, purpose + payload, hashlib.sha256).digest()[:_SIG_BYTES]


def _sign(key: bytes, purpose: bytes, fields: list[str]) -> str:
    payload = "|".join(fields).encode()
    return f"{_b64(payload)}.{_b64(_tag(key, purpose, payload))}"


def _verify(key: bytes, purpose: bytes, token: str) -> list[str]:
    try:
        body, sig = token.split(".", 1)
        payload, given = _unb64(body), _unb64(sig)
    except (ValueError, TypeError):
        raise AccessDenied("this link is not valid") from None
    if not hmac.compare_digest(_tag(key, purpose, payload), given):
        raise AccessDenied("this link is not valid")
    try:
        return payload.decode().split("|")
    except UnicodeDecodeError:
        raise AccessDenied("this link is not valid") from None


def make_link_token(
    customer_id: int,
    secret: str | bytes | None,
    *,
    order_id: int | None = None,
    hours: float = 72.0,
    lang: str = "en",
    now: float | None = None,
) -> str:
    """A magic-link token for one customer (and optionally one order), valid ``hours``."""
    expires = int((now if now is not None else time.time()) + hours * 3600)
    fields = [_VERSION, str(int(customer_id)), str(int(order_id or 0)), str(expires), lang]
    return _sign(secret_key(secret), _LINK, fields)


def _access(fields: list[str], now: float | None, session_id: str = "") -> Access:
    try:
        version, cid, oid, expires, lang = fields
        access = Access(int(cid), int(oid) or None, int(expires), lang, session_id)
    except ValueError:
        raise AccessDenied("this link is not valid") from None
    if version != _VERSION or access.customer_id < 1:
        raise AccessDenied("this link is not valid")
    if access.expires_at < (now if now is not None else time.time()):
        raise LinkExpired("this link has expired; ask for a new one")
    return access


def read_link_token(token: str, secret: str | bytes | None, now: float | None = None) -> Access:
    """The access a link grants; :class:`AccessDenied` / :class:`LinkExpired` otherwise."""
    return _access(_verify(secret_key(secret), _LINK, token), now)


def make_session(access: Access, secret: str | bytes | None, hours: float, now=None) -> str:
    """The session cookie value for an opened link: same scope, a fresh session id.

    The session never outlives ``hours`` from now, nor is it longer than the link allowed
    plus ``hours`` (a link opened just before it expired still gives a working session).
    """
    t = now if now is not None else time.time()
    sid = access.session_id or secrets.token_urlsafe(12)
    fields = [
        _VERSION,
        str(access.customer_id),
        str(access.order_id or 0),
        str(int(t + hours * 3600)),
        access.lang,
        sid,
    ]
    return _sign(secret_key(secret), _SESSION, fields)


def read_session(value: str, secret: str | bytes | None, now: float | None = None) -> Access:
    fields = _verify(secret_key(secret), _SESSION, value)
    if len(fields) != 6 or not fields[5]:
        raise AccessDenied("this session is not valid")
    return _access(fields[:5], now, session_id=fields[5])


def make_anonymous(secret: str | bytes | None, hours: float, now: float | None = None) -> str:
    """A signed anonymous session id: the CSRF key of public forms; it grants nothing."""
    t = now if now is not None else time.time()
    fields = [_VERSION, secrets.token_urlsafe(12), str(int(t + hours * 3600))]
    return _sign(secret_key(secret), _ANON, fields)


def read_anonymous(value: str, secret: str | bytes | None, now: float | None = None) -> Access:
    """The anonymous session as an :class:`Access` of customer 0 (no data at all)."""
    fields = _verify(secret_key(secret), _ANON, value)
    try:
        version, sid, expires = fields
        exp = int(expires)
    except ValueError:
        raise AccessDenied("this session is not valid") from None
    if version != _VERSION or not sid:
        raise AccessDenied("this session is not valid")
    if exp < (now if now is not None else time.time()):
        raise LinkExpired("this session has expired")
    return Access(0, None, exp, "en", sid)


def with_lang(access: Access, lang: str) -> Access:
    return replace(access, lang=lang)


def current_customer(request: Request) -> Access:
    """The access of the request's session cookie; every page calls this first.

    Raises:
        AccessDenied: no cookie, or a cookie not signed with the current secret (403).
        LinkExpired: the session is past its expiry (410).
    """
    cached = request.scope.get("ppx_portal_access")
    if cached is not None:
        return cached
    value = request.cookies.get(COOKIE)
    if not value:
        raise AccessDenied("open the link from your email to see this page")
    secret = request.app.state.portal_holder.get().settings.portal_secret
    access = read_session(value, secret)
    request.scope["ppx_portal_access"] = access
    return access


def require_order(request: Request, order_id: int) -> Access:
    """The session's access, refusing an order the session does not cover (403)."""
    access = current_customer(request)
    if not access.allows_order(order_id):
        raise AccessDenied("this link is for another order")
    return access
