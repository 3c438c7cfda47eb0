"""The outbox: rendered messages waiting to be sent, one row per message, sent once.

Why an outbox table: a decision and its messages are written where the ledger lives, so a
crash between "decided" and "sent" loses nothing, and a sender process (``ppx messages
send``) delivers them at its own pace, retrying failures with exponential back-off.

A row holds what the decision planned (kind, content, the customer's language and time
zone, address, arm); the sender renders it right before sending and stores the subject
and bodies it sent. Rendering at send time keeps templates and the loyalty read off the
decision's latency, and the balance a message shows is the one when it goes out (a
message deferred past quiet hours shows the points earned in between).

Guarantees and how they are kept:

* **idempotent enqueue**: ``message_key`` is UNIQUE (``<kind>:<customer>:<order|return|
  claim|day>``); a duplicate webhook or a replayed decision inserts nothing.
* **one sender per row**: a sender *claims* rows by setting ``status='sending'`` with a
  lease (``lease_owner``, ``lease_until``) in one statement: ``SELECT ... FOR UPDATE SKIP
  LOCKED`` on PostgreSQL (concurrent senders take disjoint rows without waiting), and on
  SQLite the same UPDATE under ``BEGIN IMMEDIATE`` (one writer at a time). Before each
  send the sender renews its lease, which fails if the lease expired and another sender
  took the row, so two live senders never send the same row.
* **crash recovery**: a sender that dies leaves its rows ``sending``; when the lease runs
  out they are claimed again.
* **the gateway boundary** (SMTP server, SMS API, push gateway): a row is marked ``sent``
  right after the gateway accepts the message. A sender killed after the gateway accepted
  a message and before that commit sends it again after the lease expires: delivery is
  *at least once*, with at most one duplicate per row per crash. Every row has a fixed
  id derived from its key (the email ``Message-ID``; the ``Idempotency-Key`` of an SMS or
  push request, :func:`idempotency_key`), so the duplicate is the same message and a
  receiver that dedupes on it sees exactly one. (At-most-once would mark ``sent`` before
  talking to the gateway and lose the message instead; for order and delivery notices a
  rare duplicate is the better failure.)
* **opt-outs made after queueing**: right before a row is rendered and sent the sender
  reads the customer's preferences again (one indexed query) and asks the decision's own
  question (:func:`ppx.rules.messaging.preference_refusal`); a row the customer has opted
  out of since is settled ``suppressed``, never sent.
* **delivery receipts**: ``sent`` means the gateway accepted the message; what the SMS
  and push gateways report afterwards (``delivered``, ``undelivered`` with an error code,
  ``read``) is stored beside it (``delivery_status``, ``delivery_at``, ``delivery_error``)
  by :meth:`Outbox.record_delivery`, forward only (:data:`DELIVERY_RANK`), so receipts
  arriving out of order never move a row back (:mod:`ppx.rules.messages.receipts`).
* **retries**: a temporary failure puts the row back to ``pending`` with ``next_attempt_at
  = now + base x 2^(attempts-1)`` (capped, with jitter), or at the time the gateway asked
  for (``Retry-After``); a permanent one (no address, recipient refused) or
  ``max_attempts`` reached marks it ``failed`` with the error.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ppx.rules.messages.db import dialect_of

#: a row's states: ``pending`` -> ``sending`` (leased) -> ``sent`` | ``suppressed`` | ``failed``,
#: or back to ``pending`` for a retry. ``suppressed``: the customer opted out after the row
#: was queued (checked right before sending); nothing was sent, ``last_error`` says why.
STATUSES = ("pending", "sending", "sent", "suppressed", "failed")

#: what the gateway's delivery receipts (status callbacks) said of a sent row, in the order
#: a message moves through them: a receipt only moves ``delivery_status`` forward, so a
#: late ``sent`` after ``delivered`` changes nothing. ``delivered``, ``undelivered`` and
#: ``failed`` share a rank (the first final word stands); ``read`` follows ``delivered``.
DELIVERY_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}
#: the delivery statuses ``ppx messages status`` counts (the final ones)
DELIVERY_COUNTED = ("delivered", "read", "undelivered", "failed")


class OutboxBase(DeclarativeBase):
    pass


class OutboxRow(OutboxBase):
    __tablename__ = "message_outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    rfc_message_id: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    message_type: Mapped[str] = mapped_column(String(64), nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    category: Mapped[str] = mapped_column(String(16), nullable=False)
    locale: Mapped[str] = mapped_column(String(16), nullable=False)
    arm: Mapped[str | None] = mapped_column(String(100), nullable=True)
    time_zone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    utc_offset_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    to_address: Mapped[str | None] = mapped_column(String(320), nullable=True)
    content: Mapped[str] = mapped_column(Text, nullable=False)  # JSON: what the decision planned
    # What was sent (filled when the row is sent):
    subject: Mapped[str | None] = mapped_column(String(500), nullable=True)
    body_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    body_html: Mapped[str | None] = mapped_column(Text, nullable=True)
    unsubscribe_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # The gateway's id for the accepted message (SMS ``sid``, push response ``id``, the
    # SMTP relay's queue id or else the Message-ID): what its support and receipts name.
    provider_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The latest delivery receipt for a sent row (``DELIVERY_RANK``), when it came, and the
    # provider's error code with it (Twilio ``ErrorCode``: 30003 unreachable, 21610 STOP).
    delivery_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    delivery_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    delivery_error: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    __table_args__ = (
        Index("ix_message_outbox_due", "status", "next_attempt_at"),
        Index("ix_message_outbox_customer", "customer_id"),
        # a delivery receipt names the row by the gateway's id
        Index("ix_message_outbox_provider", "provider_message_id"),
    )


@dataclass(frozen=True)
class NewMessage:
    """A planned message to enqueue (rendered by the sender)."""

    message_key: str
    customer_id: int
    message_type: str
    channel: str
    category: str
    content: dict
    send_after: datetime
    locale: str = "en"
    time_zone: str | None = None
    utc_offset_minutes: int = 0
    to_address: str | None = None
    arm: str | None = None


@dataclass(frozen=True)
class Claimed:
    """A row a sender holds the lease on."""

    id: int
    message_key: str
    rfc_message_id: str
    customer_id: int
    message_type: str
    channel: str
    content: dict
    locale: str
    time_zone: str | None
    utc_offset_minutes: int
    to_address: str | None
    arm: str | None
    attempts: int


@dataclass(frozen=True)
class SentContent:
    """What the sender rendered and sent, stored on the row."""

    subject: str
    body_text: str
    body_html: str | None  # None: a channel without HTML (SMS, push)
    locale: str
    unsubscribe_url: str | None = None
    #: the deep link a push notification opens (not stored: the row's content rebuilds it)
    link: str | None = None


@dataclass(frozen=True)
class DeliveryUpdate:
    """What :meth:`Outbox.record_delivery` did: ``found`` a row with that gateway id,
    ``changed`` its delivery status (False: a stale or repeated receipt)."""

    found: bool
    changed: bool
    row_id: int | None = None
    customer_id: int | None = None
    #: the row's delivery status after the receipt
    delivery_status: str | None = None


def rfc_message_id(message_key: str, domain: str = "ppx.local") -> str:
    """A stable Message-ID for a row: a resend after a crash is the same message."""
    digest = hashlib.sha256(message_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def idempotency_key(row: Claimed) -> str:
    """The fixed id of an SMS or push request: the digest in the row's Message-ID, so a
    resend after a crash carries the same key as the first attempt."""
    return row.rfc_message_id.strip("<>").split("@", 1)[0]


def _times(*names: str):
    """Typed bind parameters: datetimes stored exactly as the ORM stores them (SQLite)."""
    return [bindparam(n, type_=DateTime) for n in names]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _insert_statement(dialect: str):
    """``INSERT ... ON CONFLICT (message_key) DO NOTHING RETURNING message_key``, built once
    per outbox (every decision with messages enqueues through it)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = OutboxRow.__table__
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["message_key"])
        .returning(table.c.message_key)
    )


def backoff(attempts: int, base_seconds: float, cap_seconds: float) -> timedelta:
    """Exponential back-off with +-25 % jitter, so failed rows do not retry in lock-step."""
    delay = min(cap_seconds, base_seconds * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=delay * random.uniform(0.75, 1.25))


class Outbox:
    """Enqueue, claim, and settle outbox rows over one engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        create: bool = True,
        max_attempts: int = 8,
        backoff_base_seconds: float = 30.0,
        backoff_cap_seconds: float = 6 * 3600.0,
        domain: str = "ppx.local",
    ):
        self.engine = engine
        self.dialect = dialect_of(str(engine.url))
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base_seconds
        self.backoff_cap = backoff_cap_seconds
        self.domain = domain
        self._insert = _insert_statement(self.dialect)
        if create:
            OutboxBase.metadata.create_all(engine)
            _upgrade_columns(engine)

    # --- enqueue -------------------------------------------------------------------------

    def enqueue(self, messages: list[NewMessage], conn: Connection | None = None) -> list[bool]:
        """Insert messages whose keys are new; True for each row this call created.

        ``conn``: a connection inside the caller's transaction on this outbox's database, so
        the rows commit (or roll back) with the caller's other writes (a decision's ledger
        entries); without it the insert is its own transaction.
        """
        if not messages:
            return []
        now = _now()
        rows = [
            {
                "message_key": m.message_key,
                "rfc_message_id": rfc_message_id(m.message_key, self.domain),
                "customer_id": int(m.customer_id),
                "message_type": m.message_type,
                "channel": m.channel,
                "category": m.category,
                "locale": m.locale[:16],
                "time_zone": m.time_zone,
                "utc_offset_minutes": int(m.utc_offset_minutes),
                "arm": m.arm,
                "to_address": m.to_address,
                "content": json.dumps(m.content, sort_keys=True, default=str),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": m.send_after,
                "created_at": now,
            }
            for m in messages
        ]
        if conn is not None:
            created = {r.message_key for r in conn.execute(self._insert, rows)}
        else:
            with self.engine.begin() as own:
                created = {r.message_key for r in own.execute(self._insert, rows)}
        return [m.message_key in created for m in messages]

    # --- claim and settle ----------------------------------------------------------------

    def claim(
        self,
        owner: str,
        limit: int = 20,
        lease_seconds: float = 60.0,
        channel: str = "email",
        now: datetime | None = None,
    ) -> list[Claimed]:
        """Take up to ``limit`` due rows (pending, or sending with an expired lease)."""
        now = now or _now()
        lock = "FOR UPDATE SKIP LOCKED" if self.dialect == "postgresql" else ""
        sql = text(
            f"""
            UPDATE message_outbox
               SET status = 'sending', lease_owner = :owner, lease_until = :until,
                   attempts = attempts + 1
             WHERE id IN (
                   SELECT id FROM message_outbox
                    WHERE channel = :channel
                      AND ((status = 'pending' AND next_attempt_at <= :now)
                           OR (status = 'sending' AND lease_until < :now))
                    ORDER BY next_attempt_at, id
                    LIMIT :limit {lock})
            RETURNING id, message_key, rfc_message_id, customer_id, message_type, channel,
                      content, locale, time_zone, utc_offset_minutes, to_address, arm, attempts
            """
        ).bindparams(*_times("until", "now"))
        params = {
            "owner": owner,
            "until": now + timedelta(seconds=lease_seconds),
            "channel": channel,
            "now": now,
            "limit": int(limit),
        }
        with self.engine.begin() as conn:
            rows = conn.execute(sql, params).all()
        claimed = [Claimed(**{**r._mapping, "content": json.loads(r.content)}) for r in rows]
        return sorted(claimed, key=lambda c: c.id)

    def renew(self, row_id: int, owner: str, lease_seconds: float = 60.0) -> bool:
        """Extend the lease just before sending; False if it expired and was taken."""
        now = _now()
        sql = text(
            "UPDATE message_outbox SET lease_until = :until WHERE id = :id "
            "AND status = 'sending' AND lease_owner = :owner AND lease_until >= :now"
        ).bindparams(*_times("until", "now"))
        with self.engine.begin() as conn:
            res = conn.execute(
                sql,
                {
                    "until": now + timedelta(seconds=lease_seconds),
                    "id": row_id,
                    "owner": owner,
                    "now": now,
                },
            )
        return res.rowcount == 1

    def mark_sent(
        self,
        row_id: int,
        owner: str,
        sent: SentContent | None = None,
        provider_id: str | None = None,
    ) -> bool:
        """Record the row as sent, with what was sent and the gateway's id for it; False
        if the lease was lost."""
        sql = text(
            "UPDATE message_outbox SET status = 'sent', sent_at = :now, lease_until = NULL, "
            "last_error = NULL, subject = :subject, body_text = :text, body_html = :html, "
            "unsubscribe_url = :unsub, locale = COALESCE(:locale, locale), "
            "provider_message_id = :provider_id "
            "WHERE id = :id AND status = 'sending' AND lease_owner = :owner"
        ).bindparams(*_times("now"))
        params = {
            "now": _now(),
            "id": row_id,
            "owner": owner,
            "provider_id": provider_id[:255] if provider_id else None,
            "subject": sent.subject[:500] if sent else None,
            "text": sent.body_text if sent else None,
            "html": sent.body_html if sent else None,
            "unsub": sent.unsubscribe_url if sent else None,
            "locale": sent.locale if sent else None,
        }
        with self.engine.begin() as conn:
            return conn.execute(sql, params).rowcount == 1

    def mark_suppressed(self, row_id: int, owner: str, reason: str) -> bool:
        """Settle the row without sending it (the customer opted out since it was queued);
        ``reason`` is kept in ``last_error``. False if the lease was lost."""
        sql = text(
            "UPDATE message_outbox SET status = 'suppressed', lease_until = NULL, "
            "last_error = :why WHERE id = :id AND status = 'sending' AND lease_owner = :owner"
        )
        with self.engine.begin() as conn:
            res = conn.execute(sql, {"why": reason[:1000], "id": row_id, "owner": owner})
        return res.rowcount == 1

    def mark_deferred(self, row_id: int, owner: str, until: datetime, reason: str) -> bool:
        """Back to ``pending`` until ``until`` without spending an attempt (the claim
        counted one): the row was due but may not go out yet (the customer's quiet
        hours). ``reason`` is kept in ``last_error``. False if the lease was lost."""
        sql = text(
            "UPDATE message_outbox SET status = 'pending', next_attempt_at = :next, "
            "lease_until = NULL, attempts = attempts - 1, last_error = :why "
            "WHERE id = :id AND status = 'sending' AND lease_owner = :owner"
        ).bindparams(*_times("next"))
        params = {"next": until, "why": reason[:1000], "id": row_id, "owner": owner}
        with self.engine.begin() as conn:
            return conn.execute(sql, params).rowcount == 1

    def mark_failed(
        self,
        row_id: int,
        owner: str,
        attempts: int,
        error: str,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> str:
        """Back to ``pending`` with back-off, or ``failed`` for good; returns the status.

        ``retry_after``: seconds the gateway asked us to wait (HTTP ``Retry-After``); it
        replaces the back-off (capped like it), since the gateway knows its own window.
        """
        dead = permanent or attempts >= self.max_attempts
        status = "failed" if dead else "pending"
        if retry_after is not None:
            wait = timedelta(seconds=min(max(retry_after, 0.0), self.backoff_cap))
        else:
            wait = backoff(attempts, self.backoff_base, self.backoff_cap)
        nxt = _now() + wait
        sql = text(
            "UPDATE message_outbox SET status = :status, next_attempt_at = :next, "
            "lease_until = NULL, last_error = :err "
            "WHERE id = :id AND status = 'sending' AND lease_owner = :owner"
        ).bindparams(*_times("next"))
        with self.engine.begin() as conn:
            conn.execute(
                sql,
                {"status": status, "next": nxt, "err": error[:1000], "id": row_id, "owner": owner},
            )
        return status

    # --- delivery receipts ---------------------------------------------------------------

    def record_delivery(
        self,
        channel: str,
        provider_id: str,
        status: str,
        error_code: str | None = None,
        at: datetime | None = None,
    ) -> DeliveryUpdate:
        """Record a gateway's receipt for the row it sent as ``provider_id`` on ``channel``.

        One conditional UPDATE: the row moves only to a later status (``DELIVERY_RANK``),
        so receipts that arrive out of order (a late ``sent`` after ``delivered``) or twice
        change nothing. The send state (``status = 'sent'``) is left as it is.
        """
        if status not in DELIVERY_RANK:
            raise ValueError(f"unknown delivery status {status!r}; known: {list(DELIVERY_RANK)}")
        rank = DELIVERY_RANK[status]
        current_rank = " ".join(f"WHEN '{s}' THEN {r}" for s, r in DELIVERY_RANK.items())
        sql = text(
            "UPDATE message_outbox SET delivery_status = :status, delivery_at = :at, "
            "delivery_error = :err "
            "WHERE channel = :channel AND provider_message_id = :pid "
            f"AND (delivery_status IS NULL OR (CASE delivery_status {current_rank} "
            "ELSE -1 END) < :rank)"
        ).bindparams(*_times("at"))
        look = text(
            "SELECT id, customer_id, delivery_status FROM message_outbox "
            "WHERE channel = :channel AND provider_message_id = :pid ORDER BY id"
        )
        params = {
            "status": status,
            "at": at or _now(),
            "err": error_code[:64] if error_code else None,
            "channel": channel,
            "pid": provider_id,
            "rank": rank,
        }
        with self.engine.begin() as conn:
            changed = conn.execute(sql, params).rowcount
            rows = conn.execute(look, params).all()
        if not rows:
            return DeliveryUpdate(found=False, changed=False)
        return DeliveryUpdate(
            found=True,
            changed=changed > 0,
            row_id=rows[0].id,
            customer_id=int(rows[0].customer_id),
            delivery_status=rows[0].delivery_status,
        )

    # --- reads ---------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with Session(self.engine) as s:
            q = select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
            got = dict(s.execute(q).all())
        return {st: int(got.get(st, 0)) for st in STATUSES}

    def counts_by_channel(self) -> dict[str, dict[str, int]]:
        """Rows per channel and status (every status present, zeros included)."""
        with Session(self.engine) as s:
            q = select(OutboxRow.channel, OutboxRow.status, func.count()).group_by(
                OutboxRow.channel, OutboxRow.status
            )
            got = s.execute(q).all()
        out: dict[str, dict[str, int]] = {}
        for channel, status, n in got:
            out.setdefault(channel, dict.fromkeys(STATUSES, 0))[status] = int(n)
        return out

    def delivery_counts_by_channel(self) -> dict[str, dict[str, int]]:
        """Sent rows per channel by their delivery receipt: the final statuses
        (``DELIVERY_COUNTED``), ``in transit`` (an earlier receipt) and ``no receipt``."""
        with Session(self.engine) as s:
            q = (
                select(OutboxRow.channel, OutboxRow.delivery_status, func.count())
                .where(OutboxRow.status == "sent")
                .group_by(OutboxRow.channel, OutboxRow.delivery_status)
            )
            got = s.execute(q).all()
        out: dict[str, dict[str, int]] = {}
        for channel, delivery, n in got:
            counts = out.setdefault(
                channel, dict.fromkeys((*DELIVERY_COUNTED, "in transit", "no receipt"), 0)
            )
            key = (
                "no receipt"
                if delivery is None
                else delivery
                if delivery in DELIVERY_COUNTED
                else "in transit"
            )
            counts[key] += int(n)
        return out

    def row(self, row_id: int | None = None, message_key: str | None = None) -> dict | None:
        """One row by id or by message key, as a dict of its columns (None if absent)."""
        if (row_id is None) == (message_key is None):
            raise ValueError("give exactly one of row_id and message_key")
        with Session(self.engine) as s:
            q = select(OutboxRow)
            if row_id is not None:
                q = q.where(OutboxRow.id == int(row_id))
            else:
                q = q.where(OutboxRow.message_key == message_key)
            r = s.scalars(q).one_or_none()
            if r is None:
                return None
            return {c.name: getattr(r, c.name) for c in OutboxRow.__table__.columns}

    def rows(self, customer_id: int | None = None, limit: int = 1000) -> list[dict]:
        with Session(self.engine) as s:
            q = select(OutboxRow).order_by(OutboxRow.id).limit(limit)
            if customer_id is not None:
                q = q.where(OutboxRow.customer_id == int(customer_id))
            cols = [c.name for c in OutboxRow.__table__.columns]
            return [{c: getattr(r, c) for c in cols} for r in s.scalars(q)]


#: columns added to the outbox after its first release: (name, SQL type), added in place
#: to an older table (``create_all`` skips existing tables)
_ADDED_COLUMNS = (
    ("provider_message_id", String(255)),
    ("delivery_status", String(16)),
    ("delivery_at", DateTime()),
    ("delivery_error", String(64)),
)


def _upgrade_columns(engine: Engine) -> None:
    """Bring an older outbox table up to date, as the ledger does for its own.

    ``ADD COLUMN`` of a nullable column is instant on SQLite and PostgreSQL (no rewrite);
    two processes opening the same old table race harmlessly: the loser's ALTER fails,
    it looks again and finds the column.
    """
    from sqlalchemy import inspect
    from sqlalchemy.exc import OperationalError, ProgrammingError

    def have() -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns("message_outbox")}

    for name, col_type in _ADDED_COLUMNS:
        if name in have():
            continue
        sql_type = col_type.compile(dialect=engine.dialect)  # DATETIME / TIMESTAMP ...
        try:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE message_outbox ADD COLUMN {name} {sql_type}"))
        except (OperationalError, ProgrammingError):
            if name not in have():
                raise
    # ``create_all`` adds indexes only with a new table; both databases know IF NOT EXISTS
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE INDEX IF NOT EXISTS ix_message_outbox_provider "
                "ON message_outbox (provider_message_id)"
            )
        )


def new_owner() -> str:
    """A sender's identity for leases: unique per process run."""
    return uuid.uuid4().hex
