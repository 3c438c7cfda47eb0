"""Request ids: one per HTTP request, shared by both services' logs and answers.

Each request of the model and the decision service gets an id: the caller's own
``X-Request-ID`` when it sent a sane one (8-64 characters of ``A-Z a-z 0-9 - _``),
otherwise a new 16-hex token. The services answer it in ``X-Request-ID``, name it in a
500's body and log line, and the decision service sends it on to the model service with
its model calls, so one id finds a decision's lines in both logs.

The id of the request being served is :data:`CURRENT` (a context variable: asyncio tasks
and the threads the services hand work to copy it). Nothing happens at import.
"""

from __future__ import annotations

import contextvars
import re
import secrets

#: the header that carries the id, both ways (lower case, as ASGI gives headers)
HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9_-]{8,64}")

#: the id of the request being served (None outside a request)
CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("ppx_request_id", default=None)


def new_id() -> str:
    """A fresh id: 16 hex characters (64 random bits)."""
    return secrets.token_hex(8)


def accepted(given: str | None) -> str:
    """The caller's id when it is sane, else a new one (never a value that could break a
    log line or a header)."""
    if given and _SANE.fullmatch(given):
        return given
    return new_id()


def current() -> str | None:
    """The id of the request being served, if any."""
    return CURRENT.get()
