"""Loyalty ledger: append-only point entries with idempotency keys; balances are derived.

Why append-only: a balance column that is read, changed and written back loses awards
under concurrency and cannot explain itself; a ledger of entries can always say where
every point came from. Why idempotency keys under a UNIQUE constraint: the same award
request may arrive twice (client retries, duplicate webhooks, two workers); the database,
not the application, guarantees that only the first one lands. A duplicate returns the
entry already written, so callers get the same answer every time.

Concurrency:

* awards are a single INSERT; a unique-key violation means "already done" and the
  existing row is returned (no read-before-write race);
* reversals and redemptions must read (what the order earned, the balance) before
  writing, so they run under a per-customer lock: ``pg_advisory_xact_lock`` on
  PostgreSQL, ``BEGIN IMMEDIATE`` (one writer at a time) on SQLite;
* SQLite gets WAL mode and a busy timeout, and "database is locked" is retried.

The URL comes from ``PPX_LEDGER_URL`` (``Settings.ledger_url``), defaulting to a SQLite
file ``data/ledger.db`` in the project; any SQLAlchemy URL (PostgreSQL) works unchanged.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    Integer,
    String,
    bindparam,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ppx.rules.types import LEDGER_TYPES

T = TypeVar("T")

#: Execution option of a connection that only reads (:attr:`Ledger.reads`): on SQLite it
#: runs without ``BEGIN IMMEDIATE``, so a read never waits for, or holds up, a writer.
READ_ONLY = "ppx_read_only"


class Base(DeclarativeBase):
    pass


class LedgerEntry(Base):
    """One signed movement of points. Never updated, never deleted."""

    __tablename__ = "loyalty_ledger"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    customer_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    points: Mapped[int] = mapped_column(Integer, nullable=False)
    entry_type: Mapped[str] = mapped_column(String(32), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    # "experiment:arm" when a policy experiment covered this award (ppx experiment report)
    arm: Mapped[str | None] = mapped_column(String(100), nullable=True)

    __table_args__ = (
        # (customer_id, points) covers the balance: SUM(points) reads the index alone, not
        # one table row per entry (6x faster for a customer with 10,000 entries, one-off).
        Index("ix_loyalty_ledger_customer_points", "customer_id", "points"),
        Index("ix_loyalty_ledger_order", "order_id"),
    )


class LedgerError(ValueError):
    """A ledger request that cannot be honoured (the message says which field and why)."""


@dataclass(frozen=True)
class Posting:
    """The result of a ledger write: the entry as stored, and whether this call created it."""

    entry_id: int
    customer_id: int
    points: int
    entry_type: str
    idempotency_key: str
    order_id: int | None
    created: bool


def _posting(e: LedgerEntry, created: bool) -> Posting:
    return Posting(
        entry_id=e.id,
        customer_id=e.customer_id,
        points=e.points,
        entry_type=e.entry_type,
        idempotency_key=e.idempotency_key,
        order_id=e.order_id,
        created=created,
    )


def _new_posting(entry_id: int, row: dict) -> Posting:
    """The posting of an entry this call inserted, from the row it wrote."""
    order = row["order_id"]
    return Posting(
        entry_id=int(entry_id),
        customer_id=int(row["customer_id"]),
        points=int(row["points"]),
        entry_type=row["entry_type"],
        idempotency_key=row["idempotency_key"],
        order_id=None if order is None else int(order),
        created=True,
    )


def default_url() -> str:
    from ppx.config import get_settings

    s = get_settings()
    return s.ledger_url or s.default_ledger_url


def _is_locked(err: OperationalError) -> bool:
    msg = str(err.orig).lower() if err.orig is not None else str(err).lower()
    return "locked" in msg or "busy" in msg or "deadlock" in msg or "serializ" in msg


class Ledger:
    """The loyalty ledger over one SQLAlchemy engine (thread-safe; share one per process)."""

    def __init__(self, url: str | None = None, *, create: bool = True, pool_size: int = 10):
        self.url = url or default_url()
        self.dialect = self.url.split(":", 1)[0].split("+", 1)[0]
        kwargs: dict = {"future": True}
        if self.dialect == "sqlite":
            path = self.url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: Engine = create_engine(self.url, **kwargs)
        # SQLite has one writer at a time and its busy handler waits by sleeping (1, 2,
        # 5, 10 ... ms), so threads of one process queue on a lock instead; other
        # processes still wait on the database's lock. PostgreSQL writes concurrently.
        self._writer: contextlib.AbstractContextManager = (
            threading.Lock() if self.dialect == "sqlite" else contextlib.nullcontext()
        )
        if self.dialect == "sqlite":
            _sqlite_begin_immediate(self.engine)
        #: The same pool for connections that only read: on SQLite they do not take the
        #: write lock (``BEGIN IMMEDIATE``); each statement reads one WAL snapshot.
        self.reads: Engine = self.engine.execution_options(**{READ_ONLY: True})
        self._upsert = _upsert_statement(self.dialect)
        if create:
            Base.metadata.create_all(self.engine)
            _upgrade_indexes(self.engine)

    # --- writes --------------------------------------------------------------------------

    def _retry(self, fn: Callable[[], T], attempts: int = 30) -> T:
        for i in range(attempts):
            try:
                with self._writer:
                    return fn()
            except OperationalError as err:
                if not _is_locked(err) or i == attempts - 1:
                    raise
                time.sleep(min(0.5, 0.005 * 2**i) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def award(
        self,
        customer_id: int,
        points: int,
        idempotency_key: str,
        entry_type: str = "earn",
        *,
        order_id: int | None = None,
        reason: str = "",
        at: datetime | None = None,
    ) -> Posting:
        """Append a positive entry once per key; a repeated key returns the first entry."""
        if points <= 0:
            raise LedgerError(f"points must be positive for an award, got {points}")
        self._check(customer_id, idempotency_key, entry_type)
        return self._insert(customer_id, points, idempotency_key, entry_type, order_id, reason, at)

    def award_many(self, rows: list[dict], at: datetime | None = None) -> list[Posting]:
        """Append many awards in one transaction; keys already stored are no-ops.

        Each row has ``customer_id``, ``points`` (> 0), ``entry_type``,
        ``idempotency_key`` and optionally ``order_id``, ``reason``, ``arm``. A batch job
        writes its decisions' awards this way, so a re-run returns the entries of the
        first run (``created`` False) instead of awarding twice.
        """
        clean = []
        for r in rows:
            if int(r["points"]) <= 0:
                raise LedgerError(f"points must be positive for an award, got {r['points']}")
            self._check(r["customer_id"], r["idempotency_key"], r["entry_type"])
            order = r.get("order_id")
            clean.append(
                {
                    "customer_id": int(r["customer_id"]),
                    "points": int(r["points"]),
                    "entry_type": r["entry_type"],
                    "idempotency_key": r["idempotency_key"],
                    "order_id": None if order is None or order != order else int(order),
                    "reason": str(r.get("reason") or "")[:500],
                    "created_at": at or _now(),
                    "arm": r.get("arm"),
                }
            )

        def attempt() -> list[Posting]:
            with Session(self.engine) as s, s.begin():
                return self._insert_rows(s, clean)

        return self._retry(attempt)

    def _check(self, customer_id: int, key: str, entry_type: str) -> None:
        if customer_id is None or int(customer_id) < 1:
            raise LedgerError(f"customer_id must be a positive integer, got {customer_id!r}")
        if not key or len(key) > 200:
            raise LedgerError("idempotency_key must be a non-empty string of at most 200 chars")
        if entry_type not in LEDGER_TYPES:
            raise LedgerError(f"entry_type {entry_type!r} is not one of {LEDGER_TYPES}")

    def _insert(self, customer_id, points, key, entry_type, order_id, reason, at) -> Posting:
        row = _entry_row(customer_id, points, entry_type, key, order_id, reason, at)

        def attempt() -> Posting:
            with Session(self.engine) as s, s.begin():
                return self._insert_rows(s, [row])[0]

        return self._retry(attempt)

    def _insert_rows(self, s: Session | Connection, rows: list[dict]) -> list[Posting]:
        """Insert entries whose keys are new; return every row's stored entry, in order.

        ``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING`` lets the database settle
        concurrent duplicates: on PostgreSQL the second inserter waits for the first to
        commit and then skips; on SQLite writers are serialised by BEGIN IMMEDIATE.
        Core statements built once (SQLAlchemy caches their compiled form) and executed
        with a parameter list: the ORM's per-row bookkeeping cost more than the database.
        """
        if not rows:
            return []
        keys = [r["idempotency_key"] for r in rows]
        conn = _connection(s)
        table = LedgerEntry.__table__
        if self._upsert is not None:
            # RETURNING only the new ids: the other columns are the values just written
            # (a key repeated within the batch is written from its first row).
            ids = {e.idempotency_key: e.id for e in conn.execute(self._upsert, rows)}
            written: dict[str, Posting] = {}
            for r in rows:
                k = r["idempotency_key"]
                if k in ids and k not in written:
                    written[k] = _new_posting(ids[k], r)
            missing = [k for k in keys if k not in ids]
            if missing:  # replays: read the entries stored by the first call
                q = select(table).where(table.c.idempotency_key.in_(missing))
                written.update({e.idempotency_key: _posting(e, False) for e in conn.execute(q)})
            return [written[k] for k in keys]
        created = set()  # any other database: one savepoint per row
        for r in rows:
            try:
                with conn.begin_nested():
                    conn.execute(table.insert(), r)
                created.add(r["idempotency_key"])
            except IntegrityError:
                pass
        stored = {
            e.idempotency_key: e
            for e in conn.execute(select(table).where(table.c.idempotency_key.in_(keys)))
        }
        return [_posting(stored[k], k in created) for k in keys]

    def _locked(self, s: Session | Connection, customer_id: int) -> None:
        """Serialise read-then-write operations of one customer."""
        if self.dialect == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(customer_id)})
        # SQLite: BEGIN IMMEDIATE already holds the single write lock.

    def _guarded(
        self,
        customer_id: int,
        key: str,
        entry_type: str,
        compute: Callable[[Session], int],
        order_id: int | None,
        reason: str,
        at: datetime | None,
    ) -> Posting | None:
        def attempt() -> Posting | None:
            with Session(self.engine) as s, s.begin():
                self._locked(s, customer_id)
                prior = _prior(s, key)
                if prior is not None:
                    return prior
                pts = compute(s)
                if pts == 0:
                    return None
                return _add_entry(s, customer_id, int(pts), entry_type, key, order_id, reason, at)

        return self._retry(attempt)

    def reverse_order(
        self,
        customer_id: int,
        order_id: int,
        points: int | None,
        idempotency_key: str,
        *,
        reason: str = "",
        at: datetime | None = None,
    ) -> Posting | None:
        """Take back points an order earned (all of them when ``points`` is None).

        Never reverses more than the order's net earnings (earned minus earlier
        reversals), so partial refunds followed by a full one add up correctly. Returns
        None when there is nothing left to reverse.
        """
        self._check(customer_id, idempotency_key, "reversal")

        def attempt() -> Posting | None:
            with Session(self.engine) as s, s.begin():
                self._locked(s, customer_id)
                return self._reverse_in(
                    s, customer_id, order_id, points, idempotency_key, reason, at
                )

        return self._retry(attempt)

    def redeem(
        self, customer_id: int, points: int, idempotency_key: str, *, reason: str = ""
    ) -> Posting:
        """Spend points; refused (LedgerError) when the balance does not cover them."""
        if points <= 0:
            raise LedgerError(f"points to redeem must be positive, got {points}")
        self._check(customer_id, idempotency_key, "redeem")

        def compute(s: Session) -> int:
            bal = self._balance(s, customer_id)
            if bal < points:
                raise LedgerError(
                    f"customer {customer_id} has {bal} points; cannot redeem {points}"
                )
            return -points

        posting = self._guarded(customer_id, idempotency_key, "redeem", compute, None, reason, None)
        assert posting is not None
        return posting

    def apply(self, decision, at: datetime | None = None) -> list[Posting]:
        """Write a Decision's point actions in one transaction; repeats are no-ops by key."""
        return self.apply_with_balance(decision, at)[0]

    def apply_with_balance(self, decision, at: datetime | None = None) -> tuple[list[Posting], int]:
        """Like :meth:`apply`, and the decision customer's balance after it, atomically."""
        postings, balance, _ = self.apply_with(decision, None, at)
        return postings, balance

    def apply_with(
        self, decision, also: Callable[[Connection], T] | None, at: datetime | None = None
    ) -> tuple[list[Posting], int, T | None]:
        """:meth:`apply_with_balance`, plus ``also(conn)`` in the same transaction.

        ``also`` writes what must commit with the decision's points or not at all (the
        decision's outbox rows): one transaction, so a crash or an error in either leaves
        neither, and a retried request writes both (every write is keyed). Its result is
        the third item. It may run more than once (a locked SQLite database is retried
        from the start), so it must only write through ``conn``.
        """
        awards: list[dict] = []
        reversals = []
        for a in decision.actions:
            cid = int(a.customer_id or decision.customer_id)
            if a.kind == "award_points" and a.points > 0:
                self._check(cid, a.idempotency_key, a.ledger_type or "earn")
                awards.append(
                    {
                        "customer_id": cid,
                        "points": int(a.points),
                        "entry_type": a.ledger_type or "earn",
                        "idempotency_key": a.idempotency_key,
                        "order_id": a.order_id,
                        "reason": a.reason[:500],
                        "created_at": at or _now(),
                        "arm": a.arm,
                    }
                )
            elif a.kind == "reverse_points" and a.order_id is not None:
                self._check(cid, a.idempotency_key, "reversal")
                reversals.append((cid, a))

        def attempt() -> tuple[list[Posting], int, T | None]:
            # A Core connection, not an ORM session: every decision writes here, and the
            # session's unit-of-work bookkeeping cost more CPU than SQLite's own work.
            with self.engine.begin() as conn:
                for cid in sorted({c for c, _ in reversals}):
                    self._locked(conn, cid)
                out = self._insert_rows(conn, awards)
                for cid, a in reversals:
                    p = self._reverse_in(
                        conn, cid, a.order_id, -a.points, a.idempotency_key, a.reason, at
                    )
                    if p is not None:
                        out.append(p)
                balance = self._balance(conn, decision.customer_id)
                return out, balance, (also(conn) if also is not None else None)

        return self._retry(attempt)

    def _reverse_in(self, s, customer_id, order_id, points, key, reason, at) -> Posting | None:
        prior = _prior(s, key)
        if prior is not None:
            return prior
        net = (
            _connection(s)
            .execute(_ORDER_NET, {"cid": int(customer_id), "oid": int(order_id)})
            .scalar_one()
        )
        take = int(net) if points is None else min(abs(int(points)), int(net))
        if take <= 0:
            return None
        return _add_entry(s, customer_id, -take, "reversal", key, order_id, reason, at)

    # --- reads ---------------------------------------------------------------------------

    @staticmethod
    def _balance(s: Session | Connection, customer_id: int) -> int:
        row = _connection(s).execute(_BALANCE, {"cid": int(customer_id)})
        return int(row.scalar_one())

    def balance(self, customer_id: int) -> int:
        """Current balance: the sum of the customer's entries."""
        with Session(self.engine) as s:
            return self._balance(s, customer_id)

    def history(self, customer_id: int, limit: int = 100) -> list[dict]:
        """Latest entries first, for the balance endpoint and support tools."""
        with Session(self.engine) as s:
            rows = s.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.customer_id == int(customer_id))
                .order_by(LedgerEntry.id.desc())
                .limit(limit)
            ).all()
            return [
                {
                    "entry_id": r.id,
                    "points": r.points,
                    "entry_type": r.entry_type,
                    "order_id": r.order_id,
                    "reason": r.reason,
                    "created_at": r.created_at.isoformat(),
                    "idempotency_key": r.idempotency_key,
                    "arm": r.arm,
                }
                for r in rows
            ]

    def count(self) -> int:
        with Session(self.engine) as s:
            return int(s.scalar(select(func.count()).select_from(LedgerEntry)))

    def dispose(self) -> None:
        self.engine.dispose()


#: A customer's balance (built once; Core execution skips the ORM's per-call work).
_BALANCE = select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
    LedgerEntry.customer_id == bindparam("cid")
)
#: What one order of a customer has earned net of earlier reversals.
_ORDER_NET = select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
    LedgerEntry.customer_id == bindparam("cid"),
    LedgerEntry.order_id == bindparam("oid"),
    LedgerEntry.entry_type.in_(("earn", "reversal")),
)
#: The entry stored under an idempotency key.
_BY_KEY = select(LedgerEntry.__table__).where(
    LedgerEntry.__table__.c.idempotency_key == bindparam("key")
)


def _connection(s: Session | Connection) -> Connection:
    """The connection of a session's transaction (or the connection itself)."""
    return s.connection() if isinstance(s, Session) else s


def _upgrade_indexes(engine: Engine) -> None:
    """Bring an older ledger's indexes up to date (create_all skips existing tables).

    ``IF NOT EXISTS`` (SQLite, PostgreSQL) lets two processes opening the same old
    ledger race harmlessly. The customer-only index it replaces is dropped: the covering
    one serves every query it served, and each write would maintain both. On a large
    PostgreSQL ledger, build the index ``CONCURRENTLY`` by hand before upgrading: this
    plain build blocks writes while it runs.
    """
    from sqlalchemy import inspect

    if "arm" not in {c["name"] for c in inspect(engine).get_columns("loyalty_ledger")}:
        try:  # a ledger from before experiments: add the column
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE loyalty_ledger ADD COLUMN arm VARCHAR(100)"))
        except (OperationalError, ProgrammingError):
            # Another process added it between our look and our ALTER: fine; else re-raise.
            if "arm" not in {c["name"] for c in inspect(engine).get_columns("loyalty_ledger")}:
                raise
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE INDEX IF NOT EXISTS ix_loyalty_ledger_customer_points "
                "ON loyalty_ledger (customer_id, points)"
            )
        )
        conn.execute(text("DROP INDEX IF EXISTS ix_loyalty_ledger_customer"))


def _entry_row(
    customer_id: int,
    points: int,
    entry_type: str,
    key: str,
    order_id: int | None,
    reason: str,
    at: datetime | None,
) -> dict:
    """One ledger entry's column values (the reason cut to the column's 500 characters)."""
    return {
        "customer_id": int(customer_id),
        "points": int(points),
        "entry_type": entry_type,
        "idempotency_key": key,
        "order_id": order_id,
        "reason": reason[:500],
        "created_at": at or _now(),
        "arm": None,
    }


def _add_entry(
    s: Session | Connection,
    customer_id: int,
    points: int,
    entry_type: str,
    key: str,
    order_id: int | None,
    reason: str,
    at: datetime | None,
) -> Posting:
    """Insert one entry inside the caller's transaction and return it as a new posting."""
    row = _entry_row(customer_id, points, entry_type, key, order_id, reason, at)
    res = _connection(s).execute(LedgerEntry.__table__.insert(), row)
    return Posting(
        entry_id=int(res.inserted_primary_key[0]),
        customer_id=row["customer_id"],
        points=row["points"],
        entry_type=entry_type,
        idempotency_key=key,
        order_id=order_id,
        created=True,
    )


def _prior(s: Session | Connection, key: str) -> Posting | None:
    """The entry an earlier call with this idempotency key wrote, if any."""
    e = _connection(s).execute(_BY_KEY, {"key": key}).one_or_none()
    return None if e is None else _posting(e, False)


def _upsert_statement(dialect: str):
    """``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, key``, or None."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        return None
    table = LedgerEntry.__table__
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(table.c.id, table.c.idempotency_key)
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_begin_immediate(engine: Engine) -> None:
    """Let SQLAlchemy own transactions and take SQLite's write lock at BEGIN.

    pysqlite's own transaction handling starts transactions lazily, which lets two
    writers both read and then deadlock on upgrade; BEGIN IMMEDIATE makes the second
    wait (busy timeout) instead. WAL lets readers proceed during a write.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        _pragmas(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _begin(conn):
        if conn.get_execution_options().get(READ_ONLY):
            return
        # On the driver's connection, not through ``exec_driver_sql``: every write
        # transaction starts here, and SQLAlchemy's statement machinery (events, result
        # set-up) cost more CPU than SQLite's BEGIN. Its errors are wrapped the same way,
        # so "database is locked" stays an OperationalError that the ledger retries.
        dbapi = conn.dialect.loaded_dbapi
        try:
            conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")
        except dbapi.Error as err:
            raise DBAPIError.instance(
                "BEGIN IMMEDIATE", (), err, dbapi.Error, dialect=conn.dialect
            ) from err


def _pragmas(dbapi_conn) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        # WAL + NORMAL: no corruption on a crash; a power cut may lose the last commits.
        # (The default FULL syncs the log at every commit.)
        cur.execute("PRAGMA synchronous=NORMAL")
    finally:
        cur.close()


def sqlite_pragmas(engine: Engine) -> None:
    """The ledger's SQLite settings (WAL, busy timeout, NORMAL sync) for another engine on
    the same file, keeping pysqlite's own transaction handling."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        _pragmas(dbapi_conn)
