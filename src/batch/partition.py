"""Customer-hash buckets: which rows of which table belong to which customers.

A bucket is ``customer_id mod n_buckets`` (a non-negative modulus, the same on pandas and
Spark's ``pmod``), so both engines cut a store into identical pieces. Tables that do not
carry ``customer_id`` reach it through their parent: shipments and order lines through
the order, subscription events through the subscription. Products are shared by every
bucket.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ppx.data import columns as C

BUCKET = "bucket"
#: Table -> (parent table, join key) for tables without a customer id of their own.
VIA_PARENT: dict[str, tuple[str, str]] = {
    C.SHIPMENTS: (C.ORDERS, C.ORDER_ID),
    C.ORDER_ITEMS: (C.ORDERS, C.ORDER_ID),
    C.SUBSCRIPTION_EVENTS: (C.SUBSCRIPTIONS, C.SUBSCRIPTION_ID),
}
#: Tables every bucket gets whole.
SHARED: tuple[str, ...] = (C.PRODUCTS,)
#: The tables the nightly run reads (churn history, daily context, recommendations).
NIGHTLY_TABLES: tuple[str, ...] = (
    C.CUSTOMERS,
    C.PRODUCTS,
    C.ORDERS,
    C.ORDER_ITEMS,
    C.SHIPMENTS,
    C.SUBSCRIPTIONS,
    C.SUBSCRIPTION_EVENTS,
    C.RETURNS,
    C.CLAIMS,
    C.REVIEWS,
    C.LOYALTY_EVENTS,
    C.MESSAGES,
    C.INTERACTIONS,
)


class StoreLayoutError(ValueError):
    """The store lacks a table the nightly run needs; the message names it."""


def bucket_of(customer_ids, n_buckets: int) -> np.ndarray:
    """The bucket of each customer id (``pmod(customer_id, n_buckets)``)."""
    return np.mod(np.asarray(customer_ids, dtype=np.int64), n_buckets)


def table_path(store: str | Path, name: str) -> Path:
    """A table's Parquet file, or its folder of part files (a world written in chunks)."""
    base = Path(store) / "tables"
    for p in (base / f"{name}.parquet", base / name):
        if p.exists():
            return p
    raise StoreLayoutError(
        f"{store}: table {name!r} not found (expected tables/{name}.parquet or tables/{name}/)"
    )


def read_table(store: str | Path, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """One table of a store, from a single file or a folder of part files."""
    return pq.read_table(table_path(store, name), columns=columns).to_pandas()


def store_now(store: str | Path) -> pd.Timestamp:
    """The nightly run's moment: midnight after the store's latest recorded event.

    Looks at the time columns :func:`ppx.scoring.data_end` looks at, through the Parquet
    row groups' statistics where they have them (a 1M-customer store has about 140M
    tracking events: the driver never holds such a column).
    """
    stamps = []
    for table, col in (
        (C.ORDERS, C.ORDERED_AT),
        (C.SHIPMENTS, C.SHIPPED_AT),
        (C.SHIPMENTS, C.DELIVERED_AT),
        (C.TRACKING_EVENTS, C.EVENT_AT),
        (C.SUBSCRIPTION_EVENTS, C.EVENT_AT),
    ):
        try:
            path = table_path(store, table)
        except StoreLayoutError:
            if table == C.ORDERS:
                raise
            continue
        v = _column_max(path, col)
        if v is not None:
            stamps.append(pd.Timestamp(v))
    return max(stamps).normalize() + pd.Timedelta(days=1)


def _column_max(path: Path, column: str):
    """The largest value of a column of a Parquet file (or folder of part files): from
    each row group's statistics, or by reading that row group's column when it has none."""
    import pyarrow.compute as pc

    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    best = None
    for f in files:
        pf = pq.ParquetFile(f)
        meta = pf.metadata
        i = pf.schema_arrow.get_field_index(column)
        for g in range(meta.num_row_groups):
            st = meta.row_group(g).column(i).statistics
            if st is not None and st.has_min_max:
                v = st.max
            else:
                v = pc.max(pf.read_row_group(g, columns=[column]).column(0)).as_py()
            if v is not None and (best is None or pd.Timestamp(v) > pd.Timestamp(best)):
                best = v
    return best
