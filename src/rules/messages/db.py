"""One SQLAlchemy engine for the message tables, set up like the ledger's.

The outbox and the preferences live in the ledger's database (``PPX_LEDGER_URL``), so a
decision, its points and its messages can be read side by side. SQLite gets the ledger's
connection set-up (WAL, busy timeout, ``BEGIN IMMEDIATE``): one writer at a time, which
is what makes claiming outbox rows safe there.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from ppx.rules.ledger import _sqlite_begin_immediate, default_url


def dialect_of(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def make_engine(url: str | None = None, pool_size: int = 5) -> Engine:
    url = url or default_url()
    if dialect_of(url) == "sqlite":
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, future=True, connect_args={"timeout": 30, "check_same_thread": False}
        )
        _sqlite_begin_immediate(engine)
        return engine
    return create_engine(
        url, future=True, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
