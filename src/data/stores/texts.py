"""A reviews export or a return-comments export alone: a texts-only store.

A brand's reviews app exports text, rating, product and usually a date, customer and
title, but no orders. Given only ``reviews`` and/or ``returns`` files (by canonical name
or through the column-mapping YAML), the canonical import writes a store that holds
those tables alone, marked ``"holds": "texts"`` in its manifest: ``ppx train feedback``
reads it, every model that needs orders refuses it with a message saying so.

What such an export lacks is made explicit, never invented:

* ids (review, return, customer, product) may be the export's own keys of any kind (an
  e-mail, a SKU, a product name); they become dense integer ids and a product's key is
  kept as its name for the report. Without a review id the rows are numbered; without a
  customer column each text counts as its own anonymous writer; without a product
  column every text belongs to one product, "all products".
* without a date column the texts are undated: themes and sentiment work, weekly trends
  and alerts do not (an import note and the report say so). A date column with a blank
  or unreadable cell is refused with its rows.
* rows with neither title nor text are kept (their rating still counts) and counted in
  an import note; the feedback corpus skips them.
* returns have no order, refund or reason unless the export maps them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.schema import SCHEMAS, TEXT_TABLES
from ppx.data.stores.build import ImportReport, dense_ids, empty_table
from ppx.data.stores.read import (
    StoreImportError,
    parse_flags,
    parse_numbers,
    parse_times,
    read_export,
    rows_text,
)

ALL_PRODUCTS = "all products"

# Per table: its id, its time column and its text columns (the first one is required).
_LAYOUT = {
    C.REVIEWS: (C.REVIEW_ID, C.CREATED_AT, (C.REVIEW_BODY, C.REVIEW_TITLE)),
    C.RETURNS: (C.RETURN_ID, C.REQUESTED_AT, (C.RETURN_COMMENT,)),
}


def is_texts_only(table_names) -> bool:
    """Whether an export holds nothing but review / return-comment tables."""
    names = set(table_names)
    return bool(names) and names <= set(TEXT_TABLES)


def _label(src: str, canon: str) -> str:
    return src if src == canon else f"{src} (-> {canon})"


def _text(values: pd.Series) -> pd.Series:
    s = values.astype("string").str.strip()
    return s.where(s.notna() & (s != "")).astype(object)


def _keys(raw: pd.DataFrame, src: str | None) -> pd.Series | None:
    """The export's key column as text, or None when the export has no such column."""
    if src is None or src not in raw.columns:
        return None
    return raw[src].astype("string").str.strip().reset_index(drop=True)


def _require_keys(keys: pd.Series, path: Path, label: str) -> None:
    blank = keys.isna() | (keys == "")
    if blank.any():
        raise StoreImportError(
            f"{path}: column {label!r} is blank at {rows_text(list(keys.index[blank]))}"
        )


def _ratings(raw: pd.DataFrame, src: str, path: Path) -> np.ndarray:
    """Whole stars 1-5; anything else is refused with its rows (e.g. a 0-10 scale)."""
    label = _label(src, C.RATING)
    num = parse_numbers(raw[src].reset_index(drop=True), path, label, nullable=False)
    bad = (num % 1 != 0) | (num < 1) | (num > 5)
    if bad.any():
        raise StoreImportError(
            f"{path}: column {label!r}: {raw[src].iloc[int(np.flatnonzero(bad)[0])]!r} is not "
            f"a whole rating from 1 to 5 at {rows_text(list(num.index[bad]))}"
        )
    return num.to_numpy(np.int64)


def _table(
    name: str,
    raw: pd.DataFrame,
    path: Path,
    renames: dict[str, str],
    report: ImportReport,
    products: dict[str, int],
    customers: dict[str, int],
) -> pd.DataFrame:
    """One text table in canonical columns; ``products`` / ``customers`` map keys to ids
    shared across the export's files (filled in here)."""
    missing_src = [src for src in renames.values() if src not in raw.columns]
    if missing_src:
        raise StoreImportError(
            f"{path}: mapped column(s) {missing_src} not in the file "
            f"(it has: {', '.join(map(str, raw.columns[:12]))})"
        )
    src = {canon: renames.get(canon, canon) for canon in SCHEMAS[name].columns}
    has = {canon: s for canon, s in src.items() if s in raw.columns}
    id_col, time_col, text_cols = _LAYOUT[name]
    n = len(raw)
    if text_cols[0] not in has:
        wanted = renames.get(text_cols[0], text_cols[0])
        raise StoreImportError(
            f"{path}: table {name} needs a text column {text_cols[0]!r}"
            + (f" (mapped from {wanted!r})" if wanted != text_cols[0] else "")
            + f" and the file has none (it has: {', '.join(map(str, raw.columns[:12]))}); "
            f"map it in the --mapping YAML: tables: {{{name}: {{columns: "
            f"{{{text_cols[0]}: <the export's text column>}}}}}}"
        )
    out: dict[str, object] = {}
    # ids: the export's keys (any text) as dense integers, or the row number
    keys = _keys(raw, has.get(id_col))
    if keys is None:
        out[id_col] = np.arange(1, n + 1, dtype=np.int64)
    else:
        _require_keys(keys, path, _label(has[id_col], id_col))
        dup = keys.duplicated(keep=False)
        if dup.any():
            raise StoreImportError(
                f"{path}: column {_label(has[id_col], id_col)!r}: {keys[dup].iloc[0]!r} appears "
                f"more than once at {rows_text(list(keys.index[dup]))}; ids must be unique"
            )
        out[id_col] = dense_ids(keys)[0]
    for canon, book, absent in (
        (C.PRODUCT_ID, products, ALL_PRODUCTS),
        (C.CUSTOMER_ID, customers, None),
    ):
        keys = _keys(raw, has.get(canon))
        if keys is None:
            if absent is None:  # no customer column: every text its own anonymous writer
                keys = pd.Series([f"\0{name}:{i}" for i in range(n)])
            else:
                keys = pd.Series([absent] * n)
                report.note(f"{path}: no product column; every text counts for {absent!r}")
        else:
            _require_keys(keys, path, _label(has[canon], canon))
        for k in keys.unique():
            book.setdefault(str(k), len(book) + 1)
        out[canon] = keys.map(book).to_numpy(np.int64)
    out[C.ORDER_ID] = pd.array([pd.NA] * n, dtype="Int64")
    if time_col in has:
        out[time_col] = parse_times(
            raw[has[time_col]].reset_index(drop=True),
            path,
            _label(has[time_col], time_col),
            nullable=False,
        )
    else:
        out[time_col] = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
        report.note(
            f"{path}: no date column ({time_col!r}): the texts are undated, so the feedback "
            "report has themes and sentiment but no weekly trends or alerts"
        )
    if name == C.REVIEWS:
        if C.RATING not in has:
            raise StoreImportError(
                f"{path}: table {name} needs a rating column {C.RATING!r} (1-5 stars; "
                "sentiment is learnt from it) and the file has none"
            )
        out[C.RATING] = _ratings(raw, has[C.RATING], path)
    else:
        out[C.REASON] = (
            _text(raw[has[C.REASON]].reset_index(drop=True)) if C.REASON in has else None
        )
        out[C.REFUND_AMOUNT] = (
            parse_numbers(
                raw[has[C.REFUND_AMOUNT]].reset_index(drop=True),
                path,
                _label(has[C.REFUND_AMOUNT], C.REFUND_AMOUNT),
            )
            if C.REFUND_AMOUNT in has
            else np.nan
        )
        out[C.CONFIRMED_FRAUD] = (
            parse_flags(
                raw[has[C.CONFIRMED_FRAUD]].reset_index(drop=True),
                path,
                _label(has[C.CONFIRMED_FRAUD], C.CONFIRMED_FRAUD),
            )
            if C.CONFIRMED_FRAUD in has
            else False
        )
    for col in text_cols:
        if col in has:
            out[col] = _text(raw[has[col]].reset_index(drop=True)).str.slice(0, 5000)
        else:
            out[col] = pd.Series([None] * n, dtype=object)
    empty = pd.Series(True, index=range(n))
    for col in text_cols:
        empty &= pd.Series(out[col]).isna().to_numpy()
    if empty.any():
        report.note(
            f"{path}: {int(empty.sum())} of {n} rows have no text "
            f"({', '.join(has.get(c, c) for c in text_cols if c in has)} blank) and give "
            f"no theme ({rows_text(list(empty.index[empty]))})"
        )
    df = pd.DataFrame(out)
    return df[list(SCHEMAS[name].columns)]


def import_texts(
    files: dict[str, tuple[Path, dict]], report: ImportReport
) -> tuple[dict[str, pd.DataFrame], dict[int, str]]:
    """Reviews and/or returns tables of a texts-only export, and each product id's name."""
    products: dict[str, int] = {}
    customers: dict[str, int] = {}
    tables = {}
    for name, (path, renames) in files.items():
        raw = read_export(path)
        tables[name] = _table(name, raw, path, renames, report, products, customers)
    for name in TEXT_TABLES:  # both text tables exist, possibly empty, like in any store
        if name not in tables:
            tables[name] = empty_table(name)
    report.note(
        "texts only: no orders in this export, so only `ppx train feedback` runs on this store"
    )
    return tables, {i: k for k, i in products.items()}
