"""A large world simulated in customer chunks, written as it goes: flat memory.

``ppx data world --chunk-customers N`` splits the customers into chunks of at most N.
Each chunk is a simulation of its own customers (seeded from the world's seed and the
chunk's number) over the *same* catalogue, item popularity, weather, warehouse load and
lanes (seeded once from the world's seed, see ``Simulator(shared_seed=...)``). A chunk's
ids are shifted past the previous chunks' (customers, orders and shipments,
subscriptions, returns, claims, reviews, messages, each table's events, rings), its
identity strings (email, phone, address, device, payment fingerprint) carry the chunk's
mark so two chunks never share a device or an address by accident, and its rows are
appended to each table's Parquet file as one row group. Memory holds one chunk at a
time; the folder has the usual layout, so every loader reads it unchanged.

What differs from a world simulated at once: customers of different chunks never share
a fraud ring, a household or a referral, and the month-by-month noise is drawn per chunk.
Without ``--chunk-customers`` (the default) nothing here runs and a seed gives the same
world as always.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ppx.data import columns as C
from ppx.data.world.params import WorldParams

#: id column -> the id space it belongs to (event ids: one space per table).
ID_SPACES: dict[str, str] = {
    C.CUSTOMER_ID: "customer",
    C.REFERRED_BY: "customer",
    C.ORDER_ID: "order",
    C.SHIPMENT_ID: "order",
    C.SUBSCRIPTION_ID: "subscription",
    C.RETURN_ID: "return",
    C.CLAIM_ID: "claim",
    C.REVIEW_ID: "review",
    C.MESSAGE_ID: "message",
    C.RING_ID: "ring",
    "text_id": "text",
}
#: Tables identical in every chunk (the shared catalogue): written once.
SHARED_TABLES = (C.PRODUCTS, "truth_products")
IDENTITY = (C.PHONE, C.ADDRESS, C.DEVICE_ID, C.PAYMENT_FINGERPRINT)


def chunk_sizes(customers: int, chunk: int) -> list[int]:
    n = -(-customers // chunk)
    base, extra = divmod(customers, n)
    return [base + (i < extra) for i in range(n)]


def chunk_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([seed, i]).generate_state(1)[0])


def _space(table: str, col: str) -> str | None:
    if col == C.EVENT_ID:
        return f"event:{table}"
    return ID_SPACES.get(col)


def shift_ids(tables: dict[str, pd.DataFrame], offsets: dict[str, int]) -> dict[str, int]:
    """Add each id space's offset to its columns in place (positive ids only: -1 and
    missing mean "none"); returns the largest id of each space after the shift."""
    top: dict[str, int] = defaultdict(int)
    for name, df in tables.items():
        for col in df.columns:
            space = _space(name, col)
            if space is None:
                continue
            v = df[col]
            off = offsets.get(space, 0)
            if off:
                df[col] = v.where(~(v > 0).fillna(False), v + off)
            m = df[col].max()
            if pd.notna(m):
                top[space] = max(top[space], int(m))
    return top


def mark_identities(customers: pd.DataFrame, i: int) -> None:
    """Make chunk ``i``'s identity strings its own (chunk 0 keeps the originals)."""
    if i == 0:
        return
    for col in IDENTITY:
        if col in customers:
            customers[col] = customers[col].astype(str) + f" #{i}"
    if C.EMAIL in customers:
        local_domain = customers[C.EMAIL].astype(str).str.split("@", n=1, expand=True)
        customers[C.EMAIL] = local_domain[0] + f"+c{i}@" + local_domain[1].fillna("")


class ChunkWriter:
    """Appends chunks to one Parquet file per table (one row group per chunk)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = defaultdict(int)
        self.hash = hashlib.sha256()

    def write(self, name: str, df: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(df, preserve_index=False)
        w = self.writers.get(name)
        if w is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            w = self.writers[name] = pq.ParquetWriter(self.folder / f"{name}.parquet", table.schema)
        else:
            table = table.cast(w.schema)
        w.write_table(table)
        self.rows[name] += len(df)
        self.hash.update(name.encode())
        self.hash.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def build_chunked(
    params: WorldParams, chunk: int, tmp: Path, progress=None
) -> tuple[dict, dict, str]:
    """Simulate ``params.n_customers`` in chunks of at most ``chunk`` into ``tmp``.

    Returns (table rows, truth rows, content hash) for the manifest.
    """
    from ppx.data.world.simulator import generate_world

    tables, truth = ChunkWriter(tmp / "tables"), ChunkWriter(tmp / "truth")
    offsets: dict[str, int] = {}
    sizes = chunk_sizes(params.n_customers, chunk)
    try:
        for i, size in enumerate(sizes):
            p = dataclasses.replace(params, n_customers=size, seed=chunk_seed(params.seed, i))
            world = generate_world(p, shared_seed=params.seed)
            mark_identities(world.tables[C.CUSTOMERS], i)
            everything = {**world.tables, **world.truth}
            top = shift_ids(everything, offsets)
            for space, v in top.items():
                offsets[space] = max(offsets.get(space, 0), v)
            for group, writer in ((world.tables, tables), (world.truth, truth)):
                for name, df in group.items():
                    if name in SHARED_TABLES and i > 0:
                        continue
                    writer.write(name, df)
            del world, everything
            if progress is not None:
                progress(i + 1, len(sizes))
    finally:
        tables.close()
        truth.close()
    return dict(tables.rows), dict(truth.rows), tables.hash.hexdigest()


def save_chunked_world(params: WorldParams, chunk: int, out: Path, overwrite: bool, progress=None):
    """Simulate and write a world in customer chunks, atomically (see module doc)."""
    from ppx.data.io import MANIFEST, write_folder_atomically

    def fill(tmp: Path) -> None:
        rows, truth_rows, digest = build_chunked(params, chunk, tmp, progress)
        manifest = {
            "kind": "world",
            "seed": params.seed,
            "params": params.to_dict(),
            "chunk_customers": chunk,
            "chunks": len(chunk_sizes(params.n_customers, chunk)),
            "rows": rows,
            "truth_rows": truth_rows,
            "content_hash": digest,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))

    return write_folder_atomically(out, fill, overwrite)
