"""A world simulated in customer chunks: one coherent, valid world on disk."""

from __future__ import annotations

import json

import pandas as pd

from ppx.data import columns as C
from ppx.data.io import load_tables, load_truth
from ppx.data.world import WorldParams, generate_world
from ppx.data.world.chunks import chunk_sizes, save_chunked_world


def test_chunk_sizes_cover_every_customer_evenly():
    assert chunk_sizes(1000, 300) == [250, 250, 250, 250]
    assert chunk_sizes(1001, 1000) == [501, 500]
    assert sum(chunk_sizes(1_000_000, 50_000)) == 1_000_000


def test_a_chunked_world_is_one_valid_world(tmp_path):
    params = WorldParams(n_customers=900, seed=5, months=6)
    out = save_chunked_world(params, 300, tmp_path / "w", overwrite=False)
    tables = load_tables(out)  # validates every table and the cross-table keys
    truth = load_truth(out)
    cust = tables[C.CUSTOMERS]
    assert sorted(cust[C.CUSTOMER_ID]) == list(range(1, 901))
    for name, key in (
        (C.ORDERS, C.ORDER_ID),
        (C.SUBSCRIPTIONS, C.SUBSCRIPTION_ID),
        (C.RETURNS, C.RETURN_ID),
        (C.MESSAGES, C.MESSAGE_ID),
        (C.TRACKING_EVENTS, C.EVENT_ID),
    ):
        assert tables[name][key].is_unique, f"{name}.{key} repeats across chunks"
    # every order's customer exists; ring ids of different chunks never merge
    assert tables[C.ORDERS][C.CUSTOMER_ID].isin(cust[C.CUSTOMER_ID]).all()
    rings = truth[C.TRUTH_CUSTOMERS]
    ring_chunk = (rings.loc[rings[C.RING_ID] > 0, C.CUSTOMER_ID] - 1) // 300
    per_ring = ring_chunk.groupby(rings.loc[rings[C.RING_ID] > 0, C.RING_ID]).nunique()
    assert (per_ring == 1).all()
    # no device or address is shared across chunks by accident
    chunk_of = (cust[C.CUSTOMER_ID] - 1) // 300
    assert (cust.groupby(C.DEVICE_ID).apply(lambda g: chunk_of[g.index].nunique()) == 1).all()
    # one catalogue: the products of a single simulation with the same seed
    single = generate_world(WorldParams(n_customers=50, seed=5, months=6))
    pd.testing.assert_frame_equal(
        tables[C.PRODUCTS].reset_index(drop=True), single.tables[C.PRODUCTS]
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["chunks"] == 3 and manifest["rows"][C.CUSTOMERS] == 900
