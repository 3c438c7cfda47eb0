"""Delivery promises and their outcomes, recorded as they happen, and the realised on-time
rate of recent promises by carrier as Prometheus gauges.

The decision service writes one row per order when it is placed (the promised day, the
stated on-time rate, the carrier and lane) and fills in the outcome when the order's
``delivered`` or ``lost`` event arrives. :meth:`PromiseLog.on_time` reads the realised
on-time rate of the promises of the last ``window_days`` per carrier, scored the way the
offline monitor scores them (``ppx monitor delivery``): a promise counts once its
outcome is known - delivered, or its promised day over without a delivery - so the
recent days are not flattered by their early deliveries.

:func:`publish` sets three gauges per carrier (``ppx_delivery_promise_on_time_rate``,
``ppx_delivery_promise_stated_rate``, ``ppx_delivery_promises_scored``); BentoML serves
them on ``/metrics`` beside its own. The table lives in the ledger's database
(``PPX_LEDGER_URL``), created on first use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    String,
    bindparam,
    create_engine,
    func,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ppx.rules.ledger import default_url, sqlite_pragmas

WINDOW_DAYS = 28
UNKNOWN_CARRIER = "unknown"


class _Base(DeclarativeBase):
    pass


class PromiseRow(_Base):
    """One order's checkout promise and, once known, its outcome."""

    __tablename__ = "delivery_promises"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(64), index=True)
    lane: Mapped[str | None] = mapped_column(String(128), nullable=True)
    ordered_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    promised_date: Mapped[date] = mapped_column(DateTime)
    stated_rate: Mapped[float] = mapped_column(Float)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    lost: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


_T = PromiseRow.__table__
_CARRIER = select(_T.c.carrier).where(_T.c.order_id == bindparam("oid"))
_OUTCOME = (
    update(_T)
    .where(_T.c.order_id == bindparam("oid"))
    .values(
        delivered_at=bindparam("delivered_at"),
        lost=bindparam("lost"),
        outcome_at=bindparam("outcome_at"),
    )
)


@dataclass(frozen=True)
class CarrierRate:
    """Realised vs stated on-time rate of one carrier's recent promises."""

    carrier: str
    scored: int
    kept: int
    stated: float

    @property
    def realised(self) -> float:
        return self.kept / self.scored if self.scored else float("nan")


def _naive(t: datetime) -> datetime:
    """UTC-naive: SQLite keeps no zone, so every time is stored as naive UTC."""
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t


def _day(t: date | datetime) -> datetime:
    return datetime(t.year, t.month, t.day)


class PromiseLog:
    """The ``delivery_promises`` table behind the decision service.

    Args:
        url: SQLAlchemy URL; None = the ledger's default (a SQLite file under data/).
    """

    def __init__(self, url: str | None = None):
        url = url or default_url()
        kwargs: dict = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        self.engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            sqlite_pragmas(self.engine)
        _Base.metadata.create_all(self.engine)

    def record_promise(
        self,
        order_id: str,
        ordered_at: datetime,
        promised_date: date,
        stated_rate: float,
        carrier: str | None = None,
        lane: str | None = None,
    ) -> bool:
        """Store an order's checkout promise; False if the order already has one (the
        first promise made is the one the customer saw, a replayed event changes nothing)."""
        if not 0.0 < stated_rate <= 1.0:
            raise ValueError(f"delivery_promises.stated_rate must be in (0, 1], got {stated_rate}")
        if _day(promised_date) < _day(ordered_at):
            raise ValueError(
                f"delivery_promises: order {order_id} promised for {promised_date}, "
                f"before it was ordered ({ordered_at:%Y-%m-%d})"
            )
        with Session(self.engine) as s, s.begin():
            if s.get(PromiseRow, str(order_id)) is not None:
                return False
            s.add(
                PromiseRow(
                    order_id=str(order_id),
                    carrier=carrier or UNKNOWN_CARRIER,
                    lane=lane,
                    ordered_at=_naive(ordered_at),
                    promised_date=_day(promised_date),
                    stated_rate=float(stated_rate),
                )
            )
        return True

    def record_outcome(
        self, order_id: str, at: datetime, delivered_at: datetime | None, lost: bool = False
    ) -> str | None:
        """Fill in an order's outcome (delivered at a time, or lost); the carrier of the
        promise, or None when the order has no recorded promise (nothing is written)."""
        if delivered_at is None and not lost:
            raise ValueError(f"delivery_promises: order {order_id} outcome needs delivered_at")
        # Core statements: this runs on every delivered or lost event, and most of those
        # orders were placed before promises were recorded (a read that finds nothing).
        with self.engine.begin() as conn:
            carrier = conn.execute(_CARRIER, {"oid": str(order_id)}).scalar_one_or_none()
            if carrier is None:
                return None
            conn.execute(
                _OUTCOME,
                {
                    "oid": str(order_id),
                    "delivered_at": None if lost else _naive(delivered_at),
                    "lost": bool(lost),
                    "outcome_at": _naive(at),
                },
            )
            return carrier

    def on_time(
        self, now: datetime, window_days: int = WINDOW_DAYS, carrier: str | None = None
    ) -> list[CarrierRate]:
        """Per carrier, the promises ordered in ``[now - window_days, now)`` whose outcome
        is known at ``now``: delivered by then (kept if on or before the promised day),
        lost, or past their promised day without a delivery (missed)."""
        now = _naive(now)
        today = _day(now)
        q = select(PromiseRow).where(
            PromiseRow.ordered_at >= now - timedelta(days=window_days), PromiseRow.ordered_at < now
        )
        if carrier is not None:
            q = q.where(PromiseRow.carrier == carrier)
        acc: dict[str, list[float]] = {}
        with Session(self.engine) as s:
            for r in s.scalars(q):
                delivered = r.delivered_at is not None and r.delivered_at < now
                lost = r.lost and r.outcome_at is not None and r.outcome_at < now
                if delivered:
                    kept = _day(r.delivered_at) <= r.promised_date
                elif lost or r.promised_date < today:
                    kept = False
                else:
                    continue  # still within its promise: not known yet
                a = acc.setdefault(r.carrier, [0, 0, 0.0])
                a[0] += 1
                a[1] += int(kept)
                a[2] += r.stated_rate
        return [
            CarrierRate(c, int(n), int(k), st / n) for c, (n, k, st) in sorted(acc.items()) if n
        ]

    def count(self) -> int:
        with Session(self.engine) as s:
            return int(s.scalar(select(func.count()).select_from(PromiseRow)))

    def dispose(self) -> None:
        self.engine.dispose()


_GAUGES: dict | None = None


def _gauges() -> dict:
    """The gauges, created on first use: BentoML sets ``PROMETHEUS_MULTIPROC_DIR`` in each
    worker after the service module is imported, and a metric created before that would
    never reach ``/metrics``. ``mostrecent``: across workers the latest value wins."""
    global _GAUGES
    if _GAUGES is None:
        from prometheus_client import Gauge

        kw = {"labelnames": ["carrier"], "multiprocess_mode": "mostrecent"}
        _GAUGES = {
            "realised": Gauge(
                "ppx_delivery_promise_on_time_rate",
                f"Realised on-time rate of the promises of the last {WINDOW_DAYS} days whose"
                " outcome is known",
                **kw,
            ),
            "stated": Gauge(
                "ppx_delivery_promise_stated_rate",
                "Mean stated on-time rate of the same promises",
                **kw,
            ),
            "scored": Gauge(
                "ppx_delivery_promises_scored",
                "Promises of the window whose outcome is known",
                **kw,
            ),
        }
    return _GAUGES


def publish(rates: list[CarrierRate]) -> None:
    """Set the gauges of each carrier in ``rates``."""
    g = _gauges()
    for r in rates:
        if r.scored == 0 or math.isnan(r.realised):
            continue
        g["realised"].labels(carrier=r.carrier).set(r.realised)
        g["stated"].labels(carrier=r.carrier).set(r.stated)
        g["scored"].labels(carrier=r.carrier).set(r.scored)
