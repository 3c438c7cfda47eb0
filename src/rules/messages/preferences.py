"""The preference centre: which message kinds a customer gets, on which channel.

Stored in the ledger's database, one row per (customer, channel, kind) the customer has
set; kind ``*`` is the whole channel. Nothing stored means "allowed" (the policy's consent
rules still apply: marketing needs an opt-in). Every decision reads a customer's rows
first (:meth:`PreferenceStore.opt_outs`) and passes them to the pure decision functions as
``CustomerContext.opted_out_channels`` / ``opted_out_messages``, so an opted-out delivery
stage sends nothing. Kinds the policy lists in ``preferences.locked`` (an order
confirmation, a refund notice) cannot be turned off: a request to do so is refused.

The sender reads them again for each outbox row right before sending
(:meth:`PreferenceStore.refusal`), with the decision's own rules, so an opt-out made after
a row was queued stops that row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Boolean, DateTime, String, bindparam, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ppx.rules.messages.db import dialect_of
from ppx.rules.messages.unsubscribe import Scope
from ppx.rules.messaging import preference_refusal
from ppx.rules.policy import CHANNELS, Policy
from ppx.rules.types import CustomerContext

if TYPE_CHECKING:
    from ppx.rules.messages.outbox import Claimed

ALL = "*"


class PreferencesBase(DeclarativeBase):
    pass


class PreferenceRow(PreferencesBase):
    __tablename__ = "message_preferences"

    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    allowed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False, default="api")
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


_T = PreferenceRow.__table__
_ROWS = select(_T.c.channel, _T.c.kind, _T.c.allowed).where(_T.c.customer_id == bindparam("cid"))


def opt_outs_of(rows: Iterable[tuple[str, str, bool]]) -> tuple[list[str], list[str]]:
    """(channels turned off, kinds turned off as ``kind:channel``) from a customer's
    ``(channel, kind, allowed)`` rows (:meth:`PreferenceStore.opt_outs`)."""
    channels, kinds = [], []
    for ch, kind, allowed in rows:
        if allowed:
            continue
        if kind == ALL:
            channels.append(ch)
        else:
            kinds.append(f"{kind}:{ch}")
    return sorted(channels), sorted(kinds)


class PreferenceError(ValueError):
    """A preference update naming an unknown channel or kind, or a locked kind."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class PreferenceStore:
    """Read and write preferences; one per process over the shared engine."""

    def __init__(self, engine: Engine, policy: Policy, create: bool = True):
        self.engine = engine
        self.policy = policy
        if create:
            PreferencesBase.metadata.create_all(engine)

    @property
    def kinds(self) -> list[str]:
        return list(self.policy.messages.catalogue)

    def get(self, customer_id: int) -> dict:
        """Every channel and kind with its current setting (defaults filled in)."""
        rows = self._rows(customer_id)
        channels = {c: rows.get((c, ALL), True) for c in CHANNELS}
        kinds = {}
        for k in self.kinds:
            spec = self.policy.messages.catalogue[k]
            kinds[k] = {
                "locked": k in self.policy.preferences.locked,
                "category": spec.category,
                "channels": {c: rows.get((c, k), True) for c in spec.channels},
            }
        return {"customer_id": int(customer_id), "channels": channels, "kinds": kinds}

    def put(self, customer_id: int, update: dict, source: str = "api") -> dict:
        """Apply ``{"channels": {ch: bool}, "kinds": {kind: {ch: bool} | bool}}``.

        A kind given a bare bool applies to each of its channels. Validated completely
        before anything is written, so a bad request changes nothing.
        """
        if int(customer_id) < 1:
            raise PreferenceError(f"customer_id must be a positive integer, got {customer_id}")
        unknown_top = sorted(set(update) - {"channels", "kinds"})
        if unknown_top:
            raise PreferenceError(f"unknown fields {unknown_top}; expected channels, kinds")
        rows: dict[tuple[str, str], bool] = {}
        for ch, allowed in (update.get("channels") or {}).items():
            self._check_channel(ch, "channels")
            rows[(ch, ALL)] = self._bool(allowed, f"channels.{ch}")
        for kind, setting in (update.get("kinds") or {}).items():
            if kind not in self.policy.messages.catalogue:
                raise PreferenceError(f"kinds.{kind}: unknown message kind; known: {self.kinds}")
            chans = self.policy.messages.catalogue[kind].channels
            if isinstance(setting, bool):
                setting = {c: setting for c in chans}
            if not isinstance(setting, dict):
                raise PreferenceError(f"kinds.{kind}: expected true/false or {{channel: bool}}")
            for ch, allowed in setting.items():
                self._check_channel(ch, f"kinds.{kind}")
                flag = self._bool(allowed, f"kinds.{kind}.{ch}")
                if not flag and kind in self.policy.preferences.locked:
                    raise PreferenceError(
                        f"kinds.{kind}: cannot be turned off (policy preferences.locked)"
                    )
                rows[(ch, kind)] = flag
        self._write(customer_id, rows, source)
        return self.get(customer_id)

    def unsubscribe(self, scope: Scope) -> dict:
        """One-click: turn off what the link names (see ``preferences.one_click``)."""
        if scope.kind == ALL or self.policy.preferences.one_click == "channel":
            marketing = [
                k
                for k, s in self.policy.messages.catalogue.items()
                if s.category == "marketing" and scope.channel in s.channels
            ]
            rows = {(scope.channel, k): False for k in marketing}
        elif scope.kind in self.policy.preferences.locked:
            raise PreferenceError(f"{scope.kind} cannot be turned off (preferences.locked)")
        else:
            rows = {(scope.channel, scope.kind): False}
        self._write(scope.customer_id, rows, "one_click")
        return self.get(scope.customer_id)

    def set_channel_kinds(self, customer_id: int, channel: str, allowed: set[str]) -> dict:
        """The preference page's form: on ``channel``, exactly the ``allowed`` kinds are on
        (locked kinds stay on whatever the form says)."""
        self._check_channel(channel, "channel")
        rows = {
            (channel, k): (k in allowed)
            for k, spec in self.policy.messages.catalogue.items()
            if channel in spec.channels and k not in self.policy.preferences.locked
        }
        rows[(channel, ALL)] = True  # choosing kinds on the page re-opens the channel
        self._write(customer_id, rows, "page")
        return self.get(customer_id)

    def gateway_stop(self, customer_id: int, channel: str) -> None:
        """The gateway says the recipient stopped this channel with it (an SMS number that
        replied STOP, or one the carrier blocks: :data:`ppx.rules.messages.gateways.
        OPTED_OUT_CODES`), at send time or in a delivery receipt: turn the channel off so
        decisions stop choosing it (``source = gateway_stop``)."""
        self._write(customer_id, {(channel, ALL): False}, "gateway_stop")

    def opt_outs(
        self, customer_id: int, conn: Connection | None = None
    ) -> tuple[list[str], list[str]]:
        """(channels turned off, kinds turned off as ``kind:channel``) for a decision.

        ``conn``: an open connection to this store's database, so a decision reads the
        customer's facts over one connection.
        """
        rows = self._rows(customer_id, conn)
        return opt_outs_of((ch, kind, allowed) for (ch, kind), allowed in rows.items())

    def refusal(self, row: Claimed) -> str | None:
        """Why the customer's current opt-outs forbid a queued row, else None.

        One indexed read of the customer's rows (the primary key starts with
        ``customer_id``), then the decision's own check
        (:func:`ppx.rules.messaging.preference_refusal`) on the row's kind and channel.
        """
        channels, kinds = self.opt_outs(row.customer_id)
        if not channels and not kinds:
            return None
        customer = CustomerContext.model_construct(
            customer_id=row.customer_id, opted_out_channels=channels, opted_out_messages=kinds
        )
        return preference_refusal(row.message_type, row.channel, customer, self.policy)

    # --- internals -----------------------------------------------------------------------

    @staticmethod
    def _check_channel(ch: str, where: str) -> None:
        if ch not in CHANNELS:
            raise PreferenceError(f"{where}.{ch}: unknown channel; channels are {list(CHANNELS)}")

    @staticmethod
    def _bool(v, where: str) -> bool:
        if not isinstance(v, bool):
            raise PreferenceError(f"{where}: expected true or false, got {v!r}")
        return v

    def _rows(
        self, customer_id: int, conn: Connection | None = None
    ) -> dict[tuple[str, str], bool]:
        # Core, one cached statement: this runs before every decision.
        if conn is not None:
            rows = conn.execute(_ROWS, {"cid": int(customer_id)})
            return {(ch, kind): bool(allowed) for ch, kind, allowed in rows}
        with self.engine.connect() as own:
            return self._rows(customer_id, own)

    def _write(self, customer_id: int, rows: dict[tuple[str, str], bool], source: str) -> None:
        """Upsert the rows in one transaction (the database settles concurrent writers)."""
        if not rows:
            return
        if dialect_of(str(self.engine.url)) == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        now = _now()
        values = [
            {
                "customer_id": int(customer_id),
                "channel": ch,
                "kind": kind,
                "allowed": allowed,
                "source": source,
                "updated_at": now,
            }
            for (ch, kind), allowed in rows.items()
        ]
        stmt = insert(_T)
        stmt = stmt.on_conflict_do_update(
            index_elements=["customer_id", "channel", "kind"],
            set_={
                "allowed": stmt.excluded.allowed,
                "source": stmt.excluded.source,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, values)
