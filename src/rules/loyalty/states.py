"""Every customer's loyalty state in two set-based reads: what the nightly run decides on.

:func:`ppx.rules.loyalty.summary.loyalty_summary` reads one customer's balance, last
activity and stored tier with three indexed look-ups; the nightly run needs the same
three figures for a million customers, so it reads them here with one ``GROUP BY`` over
the ledger and one over the tier history, streamed in chunks (only the figures travel,
never the entries). The rules are the summary's: the balance is the sum of the entries,
the last activity the latest entry that is not a reversal or an expiry
(:data:`~ppx.rules.loyalty.expiry.NOT_ACTIVITY`), the tier the stored one. Both reads
see the database as of ``before`` (entries and tier changes strictly earlier), so a
night run again, after its own awards and tier changes were written, decides the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import case, func, select

from ppx.data import columns as C
from ppx.rules.ledger import Ledger, LedgerEntry
from ppx.rules.loyalty.expiry import NOT_ACTIVITY
from ppx.rules.loyalty.store import ensure_tables
from ppx.rules.loyalty.tables import TierChange

BALANCE = "balance"
LAST_ACTIVITY = "last_activity_at"
#: Customers per chunk of a streamed read (three numbers each: a few MB per chunk).
CHUNK_ROWS = 100_000


def points_states(
    ledger: Ledger, before: datetime, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """``customer_id``, ``balance``, ``last_activity_at`` (NaT: never earned or redeemed)
    of every customer with a ledger entry before ``before``, in chunks of ``chunk_rows``."""
    e = LedgerEntry
    activity = case((e.entry_type.not_in(NOT_ACTIVITY), e.created_at), else_=None)
    query = (
        select(e.customer_id, func.sum(e.points), func.max(activity))
        .where(e.created_at < before)
        .group_by(e.customer_id)
    )
    with ledger.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(query)
        for rows in result.partitions(chunk_rows):
            ids, balances, lasts = zip(*rows, strict=True)
            yield pd.DataFrame(
                {
                    C.CUSTOMER_ID: np.asarray(ids, dtype=np.int64),
                    BALANCE: np.asarray(balances, dtype=np.int64),
                    LAST_ACTIVITY: pd.to_datetime(list(lasts)).astype("datetime64[ns]"),
                }
            )


def tier_states(
    ledger: Ledger, before: datetime, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """``customer_id``, ``tier``: each customer's stored tier as of ``before`` (the latest
    change of ``loyalty_tier_history`` before it; ``loyalty_tiers`` holds the same tier
    for changes already past), in chunks of ``chunk_rows``."""
    ensure_tables(ledger)
    t = TierChange
    latest = func.row_number().over(partition_by=t.customer_id, order_by=(t.at.desc(), t.id.desc()))
    ranked = (
        select(t.customer_id, t.to_tier, latest.label("row_in_customer"))
        .where(t.at < before)
        .subquery()
    )
    query = select(ranked.c.customer_id, ranked.c.to_tier).where(ranked.c.row_in_customer == 1)
    with ledger.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(query)
        for rows in result.partitions(chunk_rows):
            ids, tiers = zip(*rows, strict=True)
            yield pd.DataFrame(
                {
                    C.CUSTOMER_ID: np.asarray(ids, dtype=np.int64),
                    C.TIER: np.asarray(tiers, dtype=object),
                }
            )
