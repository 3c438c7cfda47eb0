"""What every export format shares: ids, empty tables, repairs, validation and writing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.io import save_store
from ppx.data.schema import SCHEMAS, SchemaValidationError, validate_tables
from ppx.data.stores.read import StoreImportError, rows_text

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
#: a working column: the export file's data row of each order (dropped before writing)
SOURCE_ROW = "_source_row"


@dataclass
class ImportReport:
    """What an import did besides copying: rows left out or repaired, and why."""

    format: str
    inputs: list[str]
    notes: list[str] = field(default_factory=list)
    #: a reviews / return-comments export without orders (see :mod:`.texts`)
    texts_only: bool = False
    #: texts-only stores: each product id's key in the export (its name in reports)
    product_names: dict[int, str] = field(default_factory=dict)

    def note(self, text: str) -> None:
        self.notes.append(text)
        log.info(text)

    def as_dict(self) -> dict:
        return {"format": self.format, "inputs": self.inputs, "notes": self.notes}


def empty_table(name: str) -> pd.DataFrame:
    """A canonical table with no rows and the schema's column types."""
    cols = {}
    for col, spec in SCHEMAS[name].columns.items():
        dtype = str(spec.dtype)
        if "datetime" in dtype:
            cols[col] = pd.Series([], dtype="datetime64[ns]")
        elif dtype in ("int64", "Int64", "bool"):
            cols[col] = pd.Series([], dtype=dtype)
        elif "float" in dtype:
            cols[col] = pd.Series([], dtype=float)
        else:
            cols[col] = pd.Series([], dtype="string")
    return pd.DataFrame(cols)


def complete(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every canonical table, absent ones empty, so each model finds what it reads."""
    return {name: tables[name] if name in tables else empty_table(name) for name in C.TABLES}


def dense_ids(keys: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Integer ids 1..n for a brand's own keys (hex strings, order names), and the map."""
    codes, uniques = pd.factorize(keys.astype(str), sort=False)
    return codes.astype(np.int64) + 1, pd.Series(np.arange(1, len(uniques) + 1), index=uniques)


def text_or(values: pd.Series, fallback: pd.Series | str) -> pd.Series:
    """Non-blank text, else the fallback (the schema needs 1-500 characters)."""
    s = values.astype("string").str.strip().str.slice(0, 500)
    s = s.where(s.notna() & (s != ""))
    if isinstance(fallback, str):
        return s.fillna(fallback).astype(object)
    return s.fillna(fallback.astype("string")).astype(object)


def repair_time_order(
    orders: pd.DataFrame, shipments: pd.DataFrame, report: ImportReport, source: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carrier scans stamped before the purchase (clock errors) are dropped, not invented.

    A hand-over before the purchase or after the delivery loses its hand-over time; an
    order whose delivery is stamped before its purchase, or marked delivered without a
    date, cannot be used and is left out. Each repair is one note naming the rows.
    """
    o_at = shipments[C.ORDER_ID].map(orders.set_index(C.ORDER_ID)[C.ORDERED_AT])
    # rows of the export file (0-based data rows) when the format recorded them
    if SOURCE_ROW in orders:
        file_row = shipments[C.ORDER_ID].map(orders.set_index(C.ORDER_ID)[SOURCE_ROW])
    else:
        file_row = pd.Series(shipments.index, index=shipments.index)
    early = shipments[C.SHIPPED_AT].notna() & (shipments[C.SHIPPED_AT] < o_at)
    late = (
        shipments[C.SHIPPED_AT].notna()
        & shipments[C.DELIVERED_AT].notna()
        & (shipments[C.DELIVERED_AT] < shipments[C.SHIPPED_AT])
    )
    for mask, why in ((early, "before the purchase"), (late, "after the delivery")):
        if mask.any():
            report.note(
                f"{source}: hand-over time {why} dropped for {int(mask.sum())} orders "
                f"({rows_text(list(file_row[mask]))})"
            )
    shipments = shipments.copy()
    shipments.loc[early | late, C.SHIPPED_AT] = pd.NaT
    bad = (shipments[C.DELIVERED_AT].notna() & (shipments[C.DELIVERED_AT] < o_at)) | (
        (shipments[C.STATUS] == "delivered") & shipments[C.DELIVERED_AT].isna()
    )
    if bad.any():
        report.note(
            f"{source}: {int(bad.sum())} orders left out: delivered before purchase or "
            f"without a delivery date ({rows_text(list(file_row[bad]))})"
        )
        dropped = set(shipments.loc[bad, C.ORDER_ID])
        shipments = shipments[~bad]
        orders = orders[~orders[C.ORDER_ID].isin(dropped)]
    return orders.reset_index(drop=True), shipments.reset_index(drop=True)


def events_from_shipments(shipments: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """Tracking events observed in the shipment rows: hand-over and delivery scans.

    Used when an export has no carrier event feed: the hand-over is a ``picked_up`` scan
    at the origin, the delivery a ``delivered`` scan at the destination.
    """
    o = orders.set_index(C.ORDER_ID)
    parts = []
    for col, kind, region in (
        (C.SHIPPED_AT, "picked_up", C.ORIGIN_REGION),
        (C.DELIVERED_AT, "delivered", C.DEST_REGION),
    ):
        s = shipments[shipments[col].notna()]
        parts.append(
            pd.DataFrame(
                {
                    C.SHIPMENT_ID: s[C.SHIPMENT_ID].to_numpy(),
                    C.EVENT_AT: s[col].to_numpy(),
                    C.EVENT_TYPE: kind,
                    C.LOCATION_REGION: s[C.ORDER_ID].map(o[region]).to_numpy(),
                }
            )
        )
    ev = pd.concat(parts, ignore_index=True).sort_values([C.EVENT_AT, C.SHIPMENT_ID])
    ev.insert(0, C.EVENT_ID, np.arange(1, len(ev) + 1, dtype=np.int64))
    return ev.reset_index(drop=True)


def interactions_from_items(
    orders: pd.DataFrame, items: pd.DataFrame, customers_of_orders: pd.Series | None = None
) -> pd.DataFrame:
    """Purchases as interactions (what the recommender learns from)."""
    o = orders.set_index(C.ORDER_ID)
    return pd.DataFrame(
        {
            C.CUSTOMER_ID: items[C.ORDER_ID].map(o[C.CUSTOMER_ID]).to_numpy(np.int64),
            C.PRODUCT_ID: items[C.PRODUCT_ID].to_numpy(np.int64),
            C.EVENT_AT: items[C.ORDER_ID].map(o[C.ORDERED_AT]).to_numpy(),
            C.EVENT_TYPE: "purchase",
        }
    ).sort_values([C.EVENT_AT, C.CUSTOMER_ID], kind="stable", ignore_index=True)


def write_store(
    tables: dict[str, pd.DataFrame], out: str | Path, report: ImportReport, overwrite: bool
) -> tuple[Path, dict[str, pd.DataFrame]]:
    """Validate the complete set of canonical tables, then write the store atomically.

    Raises:
        StoreImportError: the tables break the canonical schema (the message lists every
            problem with table, column and rows); nothing is written.
    """
    tables = {k: v.drop(columns=[SOURCE_ROW], errors="ignore") for k, v in tables.items()}
    # a texts-only store holds its text tables alone: empty order tables would be refused
    full = tables if report.texts_only else complete(tables)
    try:
        valid = validate_tables(full, texts_only=report.texts_only)
    except SchemaValidationError as err:
        raise StoreImportError(
            f"the {report.format} export does not make valid canonical tables:\n{err}"
        ) from err
    path = save_store(
        valid,
        out,
        source=report.as_dict(),
        overwrite=overwrite,
        texts_only=report.texts_only,
        product_names=report.product_names,
    )
    return path, valid
