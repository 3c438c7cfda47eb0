"""CSRF protection for every form: a signed, single-use token bound to the session.

Each rendered form carries ``csrf_token = nonce.issued.tag`` where ``tag`` is an
HMAC-SHA256 of ``session_id|nonce|issued`` under the portal secret. A POST is accepted
only when its token verifies against the caller's own session, is younger than the
session lifetime, and has not been used before: the nonce is recorded in the
``portal_form_nonces`` table of the ledger database (a unique key, so two workers cannot
both accept it) *before* the page does anything. So a cross-site form (no token), a
token lifted from another session, and a replayed form all get 403 and change nothing.

Templates write ``{{ csrf_field() }}`` inside every ``<form method="post">``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, DateTime, String, delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ppx.portal.access import Access, AccessDenied, secret_key

FIELD = "csrf_token"
#: forget expired nonces after this many accepted forms (per process)
PRUNE_EVERY = 500
_PURPOSE = b"ppx-portal-csrf\x00"


class _Base(DeclarativeBase):
    pass


class FormNonceRow(_Base):
    __tablename__ = "portal_form_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    used_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)


class CsrfError(AccessDenied):
    """A POST without a valid, unused token for this session (HTTP 403)."""


def _tag(key: bytes, session_id: str, nonce: str, issued: int) -> str:
    msg = f"{session_id}|{nonce}|{issued}".encode()
    return hmac.new(key, _PURPOSE + msg, hashlib.sha256).hexdigest()[:32]


class Csrf:
    """Issues form tokens and consumes them once (see the module docstring)."""

    def __init__(self, engine: Engine, secret: str | bytes | None, max_age_hours: float):
        self.engine = engine
        self.key = secret_key(secret)
        self.max_age = max_age_hours * 3600
        self._consumed = 0
        _Base.metadata.create_all(engine)

    def issue(self, access: Access, now: float | None = None) -> str:
        nonce = secrets.token_urlsafe(12)
        issued = int(now if now is not None else time.time())
        return f"{nonce}.{issued}.{_tag(self.key, access.session_id, nonce, issued)}"

    def consume(self, access: Access, token: str | None, now: float | None = None) -> None:
        """Accept ``token`` once for this session, or raise :class:`CsrfError`."""
        t = now if now is not None else time.time()
        if not token or not access.session_id:
            raise CsrfError("this form has expired or was already sent; reload the page")
        try:
            nonce, issued_s, tag = token.split(".")
            issued = int(issued_s)
        except ValueError:
            raise CsrfError("this form has expired or was already sent; reload the page") from None
        good = _tag(self.key, access.session_id, nonce, issued)
        if not hmac.compare_digest(good, tag) or not (t - self.max_age <= issued <= t + 60):
            raise CsrfError("this form has expired or was already sent; reload the page")
        used = datetime.fromtimestamp(t, UTC).replace(tzinfo=None)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    FormNonceRow.__table__.insert().values(
                        nonce=nonce, customer_id=access.customer_id, used_at=used
                    )
                )
        except IntegrityError:
            raise CsrfError("this form was already sent; reload the page") from None
        self._consumed += 1
        if self._consumed % PRUNE_EVERY == 0:
            self.prune(t)

    def prune(self, now: float | None = None) -> int:
        """Forget nonces older than a session (their tokens are refused by age anyway)."""
        t = now if now is not None else time.time()
        cutoff = datetime.fromtimestamp(t, UTC).replace(tzinfo=None) - timedelta(
            seconds=self.max_age + 120
        )
        with self.engine.begin() as conn:
            return conn.execute(delete(FormNonceRow).where(FormNonceRow.used_at < cutoff)).rowcount
