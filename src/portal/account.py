"""What the account pages (subscriptions, loyalty, preferences) share.

* :func:`require_account`: these pages act on the whole account, so a session opened
  from a link for one order (a shipping message's link) is refused with 403; the
  shopper asks for a link to the account instead.
* :func:`form_key`: the request key of a form's action, its single-use CSRF nonce, so
  one submitted form is one action in the rules' idempotency tables.
* :func:`text`: a catalogue look-up with a fallback, for labels of things the policy
  names (a brand may add a cancel reason the catalogue does not know).
* :func:`reader`: the ledger for page reads, which on SQLite do not queue on the write
  lock.
"""

from __future__ import annotations

import copy
import threading
import weakref

from sqlalchemy import create_engine, event, make_url

from ppx.portal.access import AccessDenied
from ppx.portal.csrf import FIELD
from ppx.portal.web import PageContext
from ppx.rules.ledger import Ledger


def require_account(ctx: PageContext) -> None:
    """Refuse (403) a session scoped to one order: account pages need a customer link."""
    if ctx.access.order_id is not None:
        raise AccessDenied("this link is for one order; ask for a link to your account")


def form_key(ctx: PageContext) -> str:
    """``portal:<nonce>`` of the form being handled (its CSRF token was checked and spent)."""
    token = ctx.form.get(FIELD) if ctx.form is not None else None
    if not isinstance(token, str) or "." not in token:
        raise AccessDenied("this form has no token")  # the CSRF check refuses this earlier
    return "portal:" + token.split(".", 1)[0]


def text(ctx: PageContext, key: str, fallback: str, **values) -> str:
    """``ctx.words.tr(key)``, or ``fallback`` when the catalogue has no such key."""
    node = ctx.words.cat
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return fallback
        node = node[part]
    return ctx.words.tr(key, **values)


_READERS: weakref.WeakKeyDictionary[Ledger, Ledger] = weakref.WeakKeyDictionary()
_READERS_LOCK = threading.Lock()


def reader(ledger: Ledger) -> Ledger:
    """The ledger for the account pages' reads: on a SQLite file, without the write lock.

    Why: the ledger's SQLite engine starts every transaction with ``BEGIN IMMEDIATE`` (so
    two writers cannot deadlock), which makes every read take the database's one write
    lock too, and concurrent page views then wait in SQLite's busy handler, which sleeps
    in steps of up to 100 ms (a loyalty page at 8 clients: p99 near a second). In WAL
    mode a plain ``BEGIN`` reads a consistent snapshot without blocking anyone, so reads
    go through a second engine on the same file that begins that way. Writes (a
    redemption, a pause) still go through the ledger itself. Other databases, and
    in-memory SQLite (a second engine would be another database), get the ledger itself.
    """
    path = make_url(ledger.url).database if ledger.dialect == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return ledger
    with _READERS_LOCK:
        got = _READERS.get(ledger)
        if got is None:
            engine = create_engine(
                ledger.url, connect_args={"timeout": 30, "check_same_thread": False}
            )

            @event.listens_for(engine, "connect")
            def _connect(dbapi_conn, _record) -> None:
                dbapi_conn.isolation_level = None  # SQLAlchemy's BEGIN below, not pysqlite's
                dbapi_conn.execute("PRAGMA busy_timeout=30000")

            @event.listens_for(engine, "begin")
            def _begin(conn) -> None:
                conn.exec_driver_sql("BEGIN")  # deferred: a snapshot, no write lock

            got = copy.copy(ledger)
            got.engine = engine
            _READERS[ledger] = got
        return got
