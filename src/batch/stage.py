"""The local engine's shuffle: every table streamed once into per-bucket Parquet files.

The local engine never holds a table whole. Each table is read in record batches (only
the columns the night uses), every row is given its bucket - through its parent's
customer for shipments, order lines and subscription events - and the rows are appended
to ``STAGING/<table>/bucket=<b>/part.arrow``: the folder layout Spark's shuffle writes
(there as Parquet), so one reader (:func:`ppx.batch.engines.read_bucket`) serves both
engines. Memory holds the
parents' id -> customer maps (two int64 arrays per parent table), a few record batches
and the rows waiting to be written, whatever the store's size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from ppx.batch.partition import BUCKET, NIGHTLY_TABLES, SHARED, VIA_PARENT, table_path
from ppx.data import columns as C

#: A bucket's staged rows of one table: an Arrow IPC file, which writes and reads several
#: times faster than Parquet and is read once, from local disk.
STAGED_FILE = "part.arrow"
#: Rows read per record batch.
BATCH_ROWS = 262_144
#: Buffered bytes (all buckets of one table) before they are written out.
FLUSH_BYTES = 128 * 2**20
#: Parent tables whose id -> customer map the child tables need.
PARENT_KEYS: dict[str, str] = {parent: key for parent, key in VIA_PARENT.values()}


class OwnerMap:
    """Parent id -> customer id, as two sorted arrays (an inner join's lookup side)."""

    def __init__(self) -> None:
        self._ids: list[np.ndarray] = []
        self._customers: list[np.ndarray] = []
        self.ids = np.empty(0, dtype=np.int64)
        self.customers = np.empty(0, dtype=np.int64)

    def add(self, ids: np.ndarray, customers: np.ndarray) -> None:
        self._ids.append(ids)
        self._customers.append(customers)

    def freeze(self) -> OwnerMap:
        ids = np.concatenate(self._ids) if self._ids else np.empty(0, dtype=np.int64)
        cust = np.concatenate(self._customers) if self._customers else ids.copy()
        # a duplicated parent id keeps its first row, as the pandas join did
        uniq, first = np.unique(ids, return_index=True)
        self.ids, self.customers = uniq, cust[first]
        self._ids, self._customers = [], []
        return self

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows whose parent exists, their customers)."""
        if len(self.ids) == 0:
            return np.zeros(len(keys), dtype=bool), np.empty(0, dtype=np.int64)
        pos = np.searchsorted(self.ids, keys)
        pos = np.minimum(pos, len(self.ids) - 1)
        found = self.ids[pos] == keys
        return found, self.customers[pos[found]]


def _int64(column) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


class _BucketWriter:
    """Appends one table's rows to its bucket files, buffering to write large row groups."""

    def __init__(self, folder: Path, n_buckets: int) -> None:
        self.folder, self.n = folder, n_buckets
        self.pending: dict[int, list[pa.Table]] = {}
        self.pending_bytes = 0
        self.writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}

    def add(self, table: pa.Table, buckets: np.ndarray) -> None:
        order = np.argsort(buckets, kind="stable")
        table = table.take(pa.array(order))
        counts = np.bincount(buckets, minlength=self.n)
        start = 0
        for b in np.flatnonzero(counts):
            self.pending.setdefault(int(b), []).append(table.slice(start, int(counts[b])))
            start += int(counts[b])
        self.pending_bytes += table.nbytes
        if self.pending_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        for b, parts in self.pending.items():
            if b not in self.writers:
                path = self.folder / f"{BUCKET}={b}" / STAGED_FILE
                path.parent.mkdir(parents=True, exist_ok=True)
                self.writers[b] = pa.ipc.new_file(path, parts[0].schema)
            self.writers[b].write_table(pa.concat_tables(parts))
        self.pending, self.pending_bytes = {}, 0

    def close(self) -> None:
        self.flush()
        for w in self.writers.values():
            w.close()


def stage_local(
    store: str | Path,
    staging: Path,
    n_buckets: int,
    columns: Callable[[str | Path, str], list[str]],
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Shuffle every customer-keyed table of ``store`` into bucket files under ``staging``.

    ``columns(store, table)`` names the columns to keep. Returns the rows staged per
    table (rows of a child whose parent is missing are dropped, as an inner join does).
    """
    owners: dict[str, OwnerMap] = {}
    # parents first: their maps give the children their customers
    order = sorted(
        (t for t in NIGHTLY_TABLES if t not in SHARED), key=lambda t: t not in PARENT_KEYS
    )
    staged: dict[str, int] = {}
    for name in order:
        if progress is not None:
            progress(name)
        cols = columns(store, name)
        parent = VIA_PARENT.get(name)
        data = ds.dataset(table_path(store, name), format="parquet")
        writer = _BucketWriter(staging / name, n_buckets)
        own_key = PARENT_KEYS.get(name)
        if own_key is not None:
            owners[own_key] = OwnerMap()
        rows = 0
        for batch in data.to_batches(columns=cols, batch_size=BATCH_ROWS):
            if batch.num_rows == 0:
                continue
            table = pa.Table.from_batches([batch])
            if parent is not None:
                found, customers = owners[parent[1]].lookup(_int64(table.column(parent[1])))
                table = table.filter(pa.array(found)).append_column(
                    C.CUSTOMER_ID, pa.array(customers, type=pa.int64())
                )
            else:
                customers = _int64(table.column(C.CUSTOMER_ID))
            if own_key is not None:
                owners[own_key].add(_int64(table.column(own_key)), customers)
            writer.add(table, np.mod(customers, n_buckets))
            rows += table.num_rows
        writer.close()
        if own_key is not None:
            owners[own_key].freeze()
        staged[name] = rows
    return staged
