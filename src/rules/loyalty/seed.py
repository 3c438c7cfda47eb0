"""Opening entries: a store's loyalty balances and tiers loaded into the ledger.

A brand moving onto the ledger has its customers' points only in its export (the store's
``loyalty_events``). The nightly batch and the portal read the ledger for every customer
it knows, so until those balances are in the ledger they cannot be shown or spent there.
:func:`seed_ledger` writes, for each customer of the export, ONE ``opening_balance``
entry with the export's balance as of a moment, and the export's tier into
``loyalty_tiers`` / ``loyalty_tier_history``.

Safety rules:

* idempotent: the entry's key is ``opening:<customer>``, under the ledger's UNIQUE key,
  so a second run (or a run after an interruption) writes nothing twice; a tier is only
  written where the customer has no stored tier;
* no double balances: a customer with ledger entries but no opening entry already has
  live points, and an opening balance on top would count the export's history twice.
  Such customers make the whole run refuse (:class:`SeedConflict`) unless ``only_new``
  seeds only the customers the ledger does not know;
* bad balances (negative, non-finite, beyond the ledger's 32-bit ``points``) are found
  before anything is written (:class:`SeedError` naming a few customers).

Writes are set-based: one ``INSERT ... ON CONFLICT DO NOTHING`` with a parameter list per
chunk of customers, one transaction per chunk (a re-run finishes an interrupted one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from ppx.data import columns as C
from ppx.rules.ledger import Ledger, LedgerEntry, _connection, _now
from ppx.rules.loyalty.expiry import NOT_ACTIVITY, add_months
from ppx.rules.loyalty.store import ensure_tables
from ppx.rules.loyalty.tables import CustomerTier, TierChange
from ppx.rules.policy import Policy

#: The ledger entry type of an opening balance (also in ``ppx.rules.types.LEDGER_TYPES``).
OPENING = "opening_balance"
#: The tier history's ``change`` of a tier loaded from an export.
OPENING_TIER = "opening"
BALANCE = "balance"
LAST_ACTIVITY = "last_activity_at"
ENTRY_AT = "entry_at"
TIER_AT = "tier_at"
SPEND_12M = "spend_12m"
#: The 12 months of spend a tier rests on (the daily contexts' window).
_YEAR = pd.Timedelta(days=365)
#: Customers per write (one statement with this many parameter sets, one transaction).
CHUNK_ROWS = 5_000
#: The ledger's ``points`` column is a 32-bit integer.
_MAX_POINTS = 2**31 - 1
#: Customer ids named in an error message.
_NAMED = 10


class SeedError(ValueError):
    """An export that cannot be seeded (the message names the table or the customers)."""


class SeedConflict(SeedError):
    """Customers of the export already have live ledger entries (``customers``: their ids)."""

    def __init__(self, message: str, customers: list[int]):
        super().__init__(message)
        self.customers = customers


def opening_key(customer_id: int) -> str:
    """One opening entry per customer, whatever the moment it was taken at."""
    return f"opening:{int(customer_id)}"


def _ids_text(ids) -> str:
    ids = [int(i) for i in ids]
    more = f" and {len(ids) - _NAMED:,} more" if len(ids) > _NAMED else ""
    return ", ".join(str(i) for i in ids[:_NAMED]) + more


def read_export(store: str | Path) -> pd.DataFrame:
    """The store's ``loyalty_events`` (only the columns the opening state needs)."""
    from ppx.batch.partition import StoreLayoutError, read_table

    cols = [C.CUSTOMER_ID, C.EVENT_ID, C.EVENT_AT, C.EVENT_TYPE, C.POINTS, C.TIER]
    try:
        return read_table(store, C.LOYALTY_EVENTS, columns=cols)
    except StoreLayoutError as err:
        raise SeedError(
            f"{store} has no loyalty export: table {C.LOYALTY_EVENTS!r} is missing "
            f"(expected tables/{C.LOYALTY_EVENTS}.parquet; `ppx data import` writes it "
            "from the brand's points history)"
        ) from err
    except (KeyError, ValueError) as err:  # a column missing from the file
        import pyarrow.parquet as pq

        from ppx.batch.partition import table_path

        try:
            have = pq.ParquetDataset(table_path(store, C.LOYALTY_EVENTS)).schema.names
        except (OSError, ValueError):
            have = None
        if have is None:
            raise SeedError(f"{store}: table {C.LOYALTY_EVENTS!r} cannot be read: {err}") from err
        lacking = [c for c in cols if c not in have]
        raise SeedError(
            f"{store}: table {C.LOYALTY_EVENTS!r} lacks columns {lacking} (it has {have})"
        ) from err


def store_state(store: str | Path, as_of: datetime | None = None) -> tuple[pd.DataFrame, datetime]:
    """The store's opening state (:func:`export_state`, with each tier's 12-month spend
    from its orders when it has any) and the moment it is taken at: ``as_of``, or the
    store's end, the nightly run's moment."""
    from ppx.batch.partition import StoreLayoutError, read_table, store_now

    events = read_export(store)
    if as_of is None:
        try:
            as_of = store_now(store).to_pydatetime()
        except StoreLayoutError as e:
            raise SeedError(f"{e}; give --as-of") from None
    state = export_state(events, as_of)
    del events
    try:  # the spend the tier history shows beside each seeded tier
        cols = [C.CUSTOMER_ID, C.ORDERED_AT, C.ORDER_VALUE]
        state = add_tier_spend(state, read_table(store, C.ORDERS, columns=cols))
    except StoreLayoutError:
        pass  # no orders: the history shows 0
    return state, as_of


def export_state(events: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Each customer's figures in the export as of ``as_of`` (events strictly before it,
    as the nightly batch reads the store): ``balance`` (float, checked by the caller),
    ``last_activity_at`` (the last earning or redemption, NaT: none), ``entry_at`` (when
    the opening entry is dated, see :func:`seed_ledger`), ``tier`` and ``tier_at`` (the
    latest ``tier_change``; None/NaT: none), one row per customer, sorted by id."""
    ev = events.loc[(events[C.EVENT_AT] < pd.Timestamp(as_of)).to_numpy(dtype=bool)]
    ev = ev.sort_values([C.CUSTOMER_ID, C.EVENT_AT, C.EVENT_ID], kind="stable")
    g = ev.groupby(C.CUSTOMER_ID, sort=True)
    out = pd.DataFrame({BALANCE: g[C.POINTS].sum(min_count=1).astype(float)})
    missing = ev[C.POINTS].isna().groupby(ev[C.CUSTOMER_ID]).any()
    out.loc[missing.index[missing.to_numpy()], BALANCE] = np.nan  # a missing point is no 0
    types = ev[C.EVENT_TYPE].astype(str)
    active = ev.loc[~types.isin([*NOT_ACTIVITY, "tier_change"]).to_numpy()]
    out[LAST_ACTIVITY] = active.groupby(C.CUSTOMER_ID)[C.EVENT_AT].max().reindex(out.index)
    out[ENTRY_AT] = out[LAST_ACTIVITY].fillna(g[C.EVENT_AT].max())
    tiers = ev.loc[(types == "tier_change").to_numpy() & ev[C.TIER].notna().to_numpy()]
    last_tier = tiers.groupby(C.CUSTOMER_ID).tail(1).set_index(C.CUSTOMER_ID)
    out[C.TIER] = last_tier[C.TIER].astype(object).reindex(out.index)
    out[TIER_AT] = last_tier[C.EVENT_AT].reindex(out.index)
    out.index.name = C.CUSTOMER_ID
    return out.reset_index()


def add_tier_spend(state: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """``spend_12m``: each seeded tier's 12-month order value up to its change, the figure
    the tier history shows beside a tier (0 for customers without a tier or orders)."""
    tiers = state.loc[state[C.TIER].notna().to_numpy(), [C.CUSTOMER_ID, TIER_AT]]
    o = orders[[C.CUSTOMER_ID, C.ORDERED_AT, C.ORDER_VALUE]].merge(tiers, on=C.CUSTOMER_ID)
    at = o[TIER_AT]
    o = o.loc[((o[C.ORDERED_AT] < at) & (o[C.ORDERED_AT] >= at - _YEAR)).to_numpy(dtype=bool)]
    spend = o.groupby(C.CUSTOMER_ID)[C.ORDER_VALUE].sum()
    out = state.copy()
    out[SPEND_12M] = spend.reindex(out[C.CUSTOMER_ID]).fillna(0.0).to_numpy(dtype=float)
    return out


def check_balances(state: pd.DataFrame, *, allow_negative: bool = False) -> None:
    """Refuse balances the ledger cannot hold or the export should not have."""
    bal = state[BALANCE].to_numpy(dtype=float)
    ids = state[C.CUSTOMER_ID].to_numpy()
    bad = ~np.isfinite(bal)
    if bad.any():
        raise SeedError(
            f"{C.LOYALTY_EVENTS}: the points of {int(bad.sum()):,} customers do not add up "
            f"to a finite balance (missing or non-finite {C.POINTS!r}): customers "
            f"{_ids_text(ids[bad])}; nothing was written"
        )
    big = np.abs(bal) > _MAX_POINTS
    if big.any():
        raise SeedError(
            f"{C.LOYALTY_EVENTS}: {int(big.sum()):,} customers have balances beyond the "
            f"ledger's {_MAX_POINTS:,} points: customers {_ids_text(ids[big])}; "
            "nothing was written"
        )
    neg = bal < 0
    if neg.any() and not allow_negative:
        raise SeedError(
            f"{C.LOYALTY_EVENTS}: {int(neg.sum()):,} customers have a negative balance "
            f"(lowest {int(bal[neg].min())}): customers {_ids_text(ids[neg])}; nothing was "
            "written. A reversal after a redemption leaves such debts; seed them as they "
            "are with --allow-negative, or correct the export"
        )


def check_tiers(state: pd.DataFrame, policy: Policy) -> None:
    """Refuse tiers the policy does not know (the ledger would store a name no rule reads)."""
    tier = state[C.TIER]
    unknown = tier.notna().to_numpy() & ~tier.isin(list(policy.tier_names)).to_numpy()
    if unknown.any():
        names = sorted(set(tier[unknown].astype(str)))
        raise SeedError(
            f"{C.LOYALTY_EVENTS}: tiers {names} are not in the policy's tiers "
            f"{list(policy.tier_names)}: customers "
            f"{_ids_text(state.loc[unknown, C.CUSTOMER_ID])}; nothing was written"
        )


@dataclass(frozen=True)
class SeedResult:
    """What a run did: customers of the export, entries written now and already there."""

    as_of: datetime
    customers: int
    written: int
    already_seeded: int
    differing: int  # already seeded with another balance than the export's now
    skipped_live: int  # customers with live entries left alone (only_new)
    points_written: int
    tiers_written: int


def _chunks(n: int, size: int):
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)


def _live_customers(conn: Connection, ids: list[int]) -> set[int]:
    """Of ``ids``, the customers the ledger knows without an opening entry: an opening
    balance would add the export's history to what the ledger already counts. (A seeded
    customer's later earnings are no conflict: their opening entry is there already.)"""
    e = LedgerEntry
    q = (
        select(e.customer_id)
        .where(and_(e.customer_id.in_(ids), e.entry_type != OPENING))
        .distinct()
    )
    live = {int(c) for c in conn.execute(q).scalars()}
    return live - set(_opening_points(conn, sorted(live))) if live else live


def _opening_points(conn: Connection, ids: list[int]) -> dict[int, int]:
    e = LedgerEntry
    q = select(e.customer_id, e.points).where(and_(e.customer_id.in_(ids), e.entry_type == OPENING))
    return {int(c): int(p) for c, p in conn.execute(q)}


def _insert_ignore(dialect: str, table):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        return None
    return insert(table).on_conflict_do_nothing()


def seed_ledger(
    ledger: Ledger,
    policy: Policy,
    state: pd.DataFrame,
    as_of: datetime,
    *,
    only_new: bool = False,
    allow_negative: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
) -> SeedResult:
    """Write each customer's opening entry and tier (``state`` from :func:`export_state`).

    The entry is dated at the customer's last earning or redemption in the export, and
    an opening entry counts as activity (it is not in
    :data:`~ppx.rules.loyalty.expiry.NOT_ACTIVITY`): the ledger's expiry deadline is then
    the one the export's history gives, neither renewed by the seeding day nor lost. A
    customer without such activity (only reversals or tier changes, so no positive
    balance for expiry to act on) gets the date of their latest event.

    Raises:
        SeedError: a bad balance or tier (nothing written).
        SeedConflict: customers with ledger entries but no opening entry, and
            ``only_new`` False (nothing
            written by the pre-check; a conflict appearing during the run stops it at
            its chunk, the chunks before it holding correct opening entries).
    """
    ensure_tables(ledger)
    check_balances(state, allow_negative=allow_negative)
    check_tiers(state, policy)
    state = state.sort_values(C.CUSTOMER_ID, kind="stable").reset_index(drop=True)
    ids = state[C.CUSTOMER_ID].to_numpy(dtype=np.int64)
    if len(ids) and ids.min() < 1:
        raise SeedError(
            f"{C.LOYALTY_EVENTS}: customer ids must be positive: "
            f"{_ids_text(ids[ids < 1])}; nothing was written"
        )

    live: set[int] = set()
    with ledger.engine.connect() as conn:
        for lo, hi in _chunks(len(ids), chunk_rows):
            live |= _live_customers(conn, ids[lo:hi].tolist())
    if live and not only_new:
        raise SeedConflict(
            f"{len(live):,} of the export's {len(ids):,} customers already have ledger "
            f"entries and no opening entry (customers {_ids_text(sorted(live))}); "
            "an opening balance on top would count their history twice. Nothing was "
            "written; --only-new seeds only the customers the ledger does not know",
            sorted(live),
        )

    now = _now()
    entries = _insert_ignore(ledger.dialect, LedgerEntry.__table__)
    if entries is not None:
        table = LedgerEntry.__table__
        entries = entries.returning(table.c.customer_id, table.c.points)
    tier_rows = _insert_ignore(ledger.dialect, CustomerTier.__table__)
    written = already = differing = points = tiers_written = 0
    skipped = len(live)
    bal = state[BALANCE].to_numpy(dtype=float).astype(np.int64)
    entry_at = list(pd.to_datetime(state[ENTRY_AT]).dt.to_pydatetime())
    tier = state[C.TIER].to_numpy(dtype=object)
    tier_at = list(pd.to_datetime(state[TIER_AT]).dt.to_pydatetime())
    spend = state[SPEND_12M].to_numpy(dtype=float) if SPEND_12M in state else np.zeros(len(state))

    for lo, hi in _chunks(len(ids), chunk_rows):

        def attempt(lo=lo, hi=hi) -> tuple[int, int, int, int, int]:
            with ledger.engine.begin() as conn:
                chunk = ids[lo:hi].tolist()
                again = _live_customers(conn, chunk)
                if again and not only_new:
                    raise SeedConflict(
                        f"{len(again):,} customers received live ledger entries while "
                        f"seeding (customers {_ids_text(sorted(again))}); the customers "
                        "before them are seeded, re-run with --only-new for the rest",
                        sorted(again),
                    )
                before = _opening_points(conn, chunk)
                rows, tiers = [], []
                for i in range(lo, hi):
                    cid = int(ids[i])
                    if cid in live or cid in again:
                        continue
                    if cid in before:
                        continue
                    rows.append(_entry(cid, int(bal[i]), entry_at[i], as_of))
                    if pd.notna(tier[i]):
                        since = tier_at[i]
                        tiers.append((cid, str(tier[i]), since, float(spend[i])))
                new = {}
                if rows and entries is not None:
                    # RETURNING makes both drivers send the rows in multi-row VALUES
                    # batches (psycopg2's plain executemany is one round trip per row),
                    # and says which rows this run wrote.
                    new = dict(conn.execute(entries, rows).all())
                elif rows:
                    for r in rows:
                        conn.execute(LedgerEntry.__table__.insert(), r)
                    new = {r["customer_id"]: r["points"] for r in rows}
                n_tiers = _write_tiers(conn, tier_rows, policy, tiers, now) if tiers else 0
                same = sum(
                    1
                    for i in range(lo, hi)
                    if int(ids[i]) in before and before[int(ids[i])] == int(bal[i])
                )
                return len(new), len(before), len(before) - same, sum(new.values()), n_tiers

        w, a, d, p, t = ledger._retry(attempt)
        written, already, differing = written + w, already + a, differing + d
        points, tiers_written = points + p, tiers_written + t
        if progress is not None:
            progress(hi - lo)

    return SeedResult(
        as_of=as_of,
        customers=len(ids),
        written=written,
        already_seeded=already,
        differing=differing,
        skipped_live=skipped,
        points_written=points,
        tiers_written=tiers_written,
    )


def _entry(cid: int, points: int, at: datetime, as_of: datetime) -> dict:
    return {
        "customer_id": cid,
        "points": points,
        "entry_type": OPENING,
        "idempotency_key": opening_key(cid),
        "order_id": None,
        "reason": f"opening balance from the store's loyalty export as of {as_of.isoformat()}",
        "created_at": at,
        "arm": None,
    }


def _write_tiers(conn, insert_ignore, policy: Policy, tiers: list, now: datetime) -> int:
    """Store the export's tiers of customers without a stored tier, each with its history
    row (same transaction). The review is the tier's hold after the export's change, as
    if the ledger had recorded that change itself."""
    ids = [c for c, _, _, _ in tiers]
    have = {
        int(c)
        for c in _connection(conn)
        .execute(select(CustomerTier.customer_id).where(CustomerTier.customer_id.in_(ids)))
        .scalars()
    }
    rows, hist = [], []
    for cid, name, since, spend in tiers:
        if cid in have:
            continue
        review = add_months(since, policy.tier(name).hold_months)
        rows.append(
            {
                "customer_id": cid,
                "tier": name,
                "since": since,
                "review_at": review,
                "updated_at": now,
            }
        )
        hist.append(
            {
                "customer_id": cid,
                "from_tier": None,
                "to_tier": name,
                "change": OPENING_TIER,
                "spend_12m": spend,
                "reason": f"opening tier from the store's loyalty export (changed {since.date()})",
                "at": since,
            }
        )
    if not rows:
        return 0
    table = CustomerTier.__table__
    if insert_ignore is not None:
        got = conn.execute(insert_ignore.returning(table.c.customer_id), rows).scalars().all()
        new = {int(c) for c in got}
    else:
        conn.execute(table.insert(), rows)
        new = {r["customer_id"] for r in rows}
    hist = [h for h in hist if h["customer_id"] in new]
    if hist:
        conn.execute(TierChange.__table__.insert(), hist)
    return len(hist)
