"""A world's observable tables, restricted to the replayed customers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.io import load_manifest, load_truth_if_any, read_table_file
from ppx.rules.simulator.config import SimulationConfig


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def read_table(path: Path, name: str) -> pd.DataFrame:
    return read_table_file(path / "tables" / f"{name}.parquet")


def py_datetimes(s: pd.Series) -> np.ndarray:
    """Timestamps -> an object array of datetime (None for NaT), for the pydantic models."""
    out = np.empty(len(s), dtype=object)
    vals = pd.to_datetime(s)
    mask = vals.isna().to_numpy()
    out[~mask] = vals[~mask].dt.to_pydatetime()
    out[mask] = None
    return out


@dataclass
class WorldEvents:
    """The world's observable tables, restricted to the sampled customers."""

    customers: pd.DataFrame
    products: pd.DataFrame
    orders: pd.DataFrame
    items: pd.DataFrame
    subs: pd.DataFrame
    returns: pd.DataFrame
    claims: pd.DataFrame
    reviews: pd.DataFrame
    loyalty: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    params: dict
    sub_events: pd.DataFrame | None = None  # skips, pauses, price changes (save offers)


def load_events(world: Path, cfg: SimulationConfig, rng) -> tuple[WorldEvents, dict | None]:
    """The replayed customers' tables, and the world's truth (None for a store)."""
    manifest = load_manifest(world)
    params = manifest.get("params", {})
    truth = load_truth_if_any(world)
    customers = read_table(world, C.CUSTOMERS)
    if cfg.sample < 1.0:
        keep = rng.random(len(customers)) < cfg.sample
        customers = customers[keep].reset_index(drop=True)
    else:
        rng.random(len(customers))  # same stream position whatever the sample
    ids = set(customers[C.CUSTOMER_ID].tolist())

    def only(df: pd.DataFrame) -> pd.DataFrame:
        return df[df[C.CUSTOMER_ID].isin(ids)].reset_index(drop=True)

    orders = only(read_table(world, C.ORDERS))
    ships = read_table(world, C.SHIPMENTS)[
        [C.ORDER_ID, C.SHIPPED_AT, C.DELIVERED_AT, C.STATUS, C.SIGNATURE]
    ]
    orders = orders.merge(ships, on=C.ORDER_ID, how="left")
    items = read_table(world, C.ORDER_ITEMS)
    items = items[items[C.ORDER_ID].isin(set(orders[C.ORDER_ID].tolist()))].reset_index(drop=True)
    start = pd.Timestamp(params.get("start", orders[C.ORDERED_AT].min().normalize()))
    if "months" in params:
        end = start + pd.DateOffset(months=int(params["months"]))
    else:  # a store: its data ends with its last order
        end = pd.Timestamp(orders[C.ORDERED_AT].max()).normalize() + pd.Timedelta(days=1)
    ev = WorldEvents(
        customers=customers,
        products=read_table(world, C.PRODUCTS),
        orders=orders,
        items=items,
        subs=only(read_table(world, C.SUBSCRIPTIONS)),
        returns=only(read_table(world, C.RETURNS)),
        claims=only(read_table(world, C.CLAIMS)),
        reviews=only(read_table(world, C.REVIEWS)),
        loyalty=only(read_table(world, C.LOYALTY_EVENTS)),
        start=start,
        end=end,
        params=params,
    )
    if (world / "tables" / f"{C.SUBSCRIPTION_EVENTS}.parquet").exists():
        se = read_table(world, C.SUBSCRIPTION_EVENTS)
        ev.sub_events = se[se[C.SUBSCRIPTION_ID].isin(set(ev.subs[C.SUBSCRIPTION_ID].tolist()))]
    return ev, truth
