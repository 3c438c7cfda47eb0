"""The live loyalty state of a night: read from the ledger once, shipped with the buckets.

With a ledger URL, the driver reads every customer's balance, last activity and stored
tier as of the night (:mod:`ppx.rules.loyalty.states`: one ``GROUP BY`` over the
ledger, one over the tier history, streamed in chunks) and writes them beside the
store's staged tables, ``STAGING/ledger_points/bucket=<b>/part.arrow`` and
``STAGING/ledger_tiers/...``. A bucket reads its own customers' rows with its tables, on
either engine, so executors never connect to the ledger and the database serves two
scans per night, not one query per bucket or per customer. Memory holds one chunk of
figures and the rows waiting to be written.

How the two sources combine (:func:`apply_ledger_state`), as the decision service does:

* a customer with ledger entries before the night has the ledger's balance and last
  activity (what the portal shows them); a customer the ledger does not know keeps the
  balance and last activity of the store's ``loyalty_events``;
* a stored tier (one of the policy's tiers) wins over the store's tier, and the
  decision's reasons say so; without one the store's tier stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ppx.batch.stage import STAGED_FILE, _BucketWriter
from ppx.data import columns as C
from ppx.rules.loyalty.states import BALANCE, LAST_ACTIVITY, points_states, tier_states

POINTS_TABLE = "ledger_points"
TIERS_TABLE = "ledger_tiers"
_SCHEMAS = {
    POINTS_TABLE: pa.schema(
        [(C.CUSTOMER_ID, pa.int64()), (BALANCE, pa.int64()), (LAST_ACTIVITY, pa.timestamp("ns"))]
    ),
    TIERS_TABLE: pa.schema([(C.CUSTOMER_ID, pa.int64()), (C.TIER, pa.string())]),
}


@dataclass(frozen=True)
class LedgerState:
    """One bucket's ledger figures: ``points`` (customer_id, balance, last_activity_at)
    and ``tiers`` (customer_id, tier), each sorted by customer."""

    points: pd.DataFrame
    tiers: pd.DataFrame


def stage_ledger_state(
    ledger_url: str, staging: Path, n_buckets: int, now: pd.Timestamp
) -> dict[str, int]:
    """Read the ledger's state as of ``now`` and write it into the bucket folders under
    ``staging``; returns the customers staged per table."""
    from ppx.rules.ledger import Ledger

    ledger = Ledger(ledger_url)
    before = pd.Timestamp(now).to_pydatetime()
    counts = {}
    try:
        for name, chunks in (
            (POINTS_TABLE, points_states(ledger, before)),
            (TIERS_TABLE, tier_states(ledger, before)),
        ):
            writer = _BucketWriter(Path(staging) / name, n_buckets)
            rows = 0
            for df in chunks:
                table = pa.Table.from_pandas(df, schema=_SCHEMAS[name], preserve_index=False)
                ids = df[C.CUSTOMER_ID].to_numpy(dtype=np.int64)
                writer.add(table, np.mod(ids, n_buckets))
                rows += len(df)
            writer.close()
            counts[name] = rows
    finally:
        ledger.dispose()
    return counts


def read_ledger_state(staging: str | Path, bucket: int) -> LedgerState:
    """A bucket's staged ledger figures (no folder: the ledger knows none of its customers)."""
    frames = {}
    for name, schema in _SCHEMAS.items():
        path = Path(staging) / name / f"bucket={bucket}" / STAGED_FILE
        if path.exists():
            with pa.OSFile(str(path)) as source:
                table = pa.ipc.open_file(source).read_all()
        else:
            table = schema.empty_table()
        df = table.to_pandas()
        frames[name] = df.sort_values(C.CUSTOMER_ID, kind="stable").reset_index(drop=True)
    return LedgerState(points=frames[POINTS_TABLE], tiers=frames[TIERS_TABLE])


def apply_ledger_state(
    ctx: pd.DataFrame, last: dict[int, object], state: LedgerState, tier_names
) -> tuple[pd.DataFrame, dict[int, object], dict[int, str]]:
    """The daily contexts and last activities with the ledger's figures put in.

    Returns the contexts (``points_balance`` and ``tier`` replaced where the ledger
    knows them), the last activity per customer and, for the customers whose stored
    tier is used, the reason saying so (the decision service's wording). A customer the
    ledger does not know is left exactly as the store has them, reasons included.
    """
    ctx = ctx.copy()
    last = dict(last)
    ids = ctx[C.CUSTOMER_ID].to_numpy(dtype=np.int64)
    pts = state.points.set_index(C.CUSTOMER_ID)
    known = pts.index.intersection(pd.Index(ids))
    if len(known):
        pos = pd.Index(ids).get_indexer(known)
        ctx.loc[pos, "points_balance"] = pts.loc[known, BALANCE].to_numpy(dtype=np.int64)
        for cid, at in pts.loc[known, LAST_ACTIVITY].items():
            if pd.isna(at):
                last.pop(int(cid), None)
            else:
                last[int(cid)] = pd.Timestamp(at).to_pydatetime()
    stored = state.tiers.loc[state.tiers[C.TIER].isin(list(tier_names))].set_index(C.CUSTOMER_ID)
    stored = stored[C.TIER].reindex(ids)
    has = stored.notna().to_numpy()
    ctx.loc[has, C.TIER] = stored.to_numpy()[has]
    why = {
        int(cid): f"tier {t}: the customer's persisted tier"
        for cid, t in zip(ids[has], ctx.loc[has, C.TIER].to_numpy(), strict=True)
    }
    return ctx, last, why
