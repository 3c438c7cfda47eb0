"""A reviews export or a return-comments export without orders: a texts-only store.

A brand's reviews app exports text, rating, product and usually a date, customer and
title, but no orders. Given ``reviews`` and/or ``returns`` files (by canonical name or
through the column-mapping YAML), possibly beside the brand's ``products`` catalogue
and ``customers`` list but without orders, the canonical import writes a store that
holds those tables alone, marked ``"holds": "texts"`` in its manifest: ``ppx train
feedback`` reads it, every model that needs orders refuses it with a message saying so.

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
* returns have no order, refund or reason unless the export maps them; a mapped reason
  column holds the brand's own labels, matched to ppx's reasons (:mod:`.reasons`), each
  row keeping its label in ``reason_label``.
* a catalogue or customer list keeps the columns it has (a product's name and category
  name it in the report); its key column links it to the texts by the same keys. A
  product or customer the texts name but the list lacks becomes a row with its id alone
  (an import note counts them); the product is then named by its key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.schema import CATALOGUE_TABLES, SCHEMAS, TEXT_TABLES
from ppx.data.stores.build import ImportReport, dense_ids, empty_table
from ppx.data.stores.read import (
    StoreImportError,
    convert_column,
    parse_flags,
    parse_numbers,
    parse_times,
    read_export,
    rows_text,
)
from ppx.data.stores.reasons import import_reasons

ALL_PRODUCTS = "all products"

# Per table: its id, its time column and its text columns (the first one is required).
_LAYOUT = {
    C.REVIEWS: (C.REVIEW_ID, C.CREATED_AT, (C.REVIEW_BODY, C.REVIEW_TITLE)),
    C.RETURNS: (C.RETURN_ID, C.REQUESTED_AT, (C.RETURN_COMMENT,)),
}
#: the key that links a catalogue table to the texts
_KEY = {C.PRODUCTS: C.PRODUCT_ID, C.CUSTOMERS: C.CUSTOMER_ID}
#: customer keys of texts without a customer column (each its own anonymous writer)
_ANONYMOUS = "\0"


def is_texts_only(table_names) -> bool:
    """Whether an export holds review / return-comment tables and no orders: nothing
    beside them but, optionally, the product catalogue and the customer list."""
    names = set(table_names)
    return bool(names & set(TEXT_TABLES)) and names <= set(TEXT_TABLES) | set(CATALOGUE_TABLES)


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


def _require_unique(keys: pd.Series, path: Path, label: str) -> None:
    dup = keys.duplicated(keep=False)
    if dup.any():
        raise StoreImportError(
            f"{path}: column {label!r}: {keys[dup].iloc[0]!r} appears more than once at "
            f"{rows_text(list(keys.index[dup]))}; ids must be unique"
        )


def _require_mapped(raw: pd.DataFrame, path: Path, renames: dict[str, str]) -> None:
    missing_src = [src for src in renames.values() if src not in raw.columns]
    if missing_src:
        raise StoreImportError(
            f"{path}: mapped column(s) {missing_src} not in the file "
            f"(it has: {', '.join(map(str, raw.columns[:12]))})"
        )


def _catalogue(
    name: str, raw: pd.DataFrame, path: Path, renames: dict[str, str], book: dict[str, int]
) -> pd.DataFrame:
    """A products or customers file beside the texts: its key column (required, unique)
    becomes the shared dense id; every other canonical column it has is kept."""
    _require_mapped(raw, path, renames)
    key = _KEY[name]
    src = renames.get(key, key)
    keys = _keys(raw, src)
    if keys is None:
        raise StoreImportError(
            f"{path}: table {name} needs its key column {key!r}"
            + (f" (mapped from {src!r})" if src != key else "")
            + " to link it to the texts, and the file has none (it has: "
            f"{', '.join(map(str, raw.columns[:12]))}); map it in the --mapping YAML: "
            f"tables: {{{name}: {{columns: {{{key}: <the export's key column>}}}}}}"
        )
    label = _label(src, key)
    _require_keys(keys, path, label)
    _require_unique(keys, path, label)
    for k in keys:
        book.setdefault(str(k), len(book) + 1)
    out: dict[str, object] = {key: keys.map(book).to_numpy(np.int64)}
    for canon, spec in SCHEMAS[name].columns.items():
        col = renames.get(canon, canon)
        if canon != key and col in raw.columns:
            values = convert_column(raw[col], str(spec.dtype), path, _label(col, canon))
            out[canon] = values.astype("boolean") if str(spec.dtype) == "bool" else values
    return pd.DataFrame(out)


def _complete_catalogue(
    name: str, table: pd.DataFrame, path: Path, book: dict[str, int], report: ImportReport
) -> pd.DataFrame:
    """Add an id-only row for each product / customer the texts name and the list lacks."""
    key = _KEY[name]
    listed = set(table[key])
    missing = {k: i for k, i in book.items() if i not in listed}
    if not missing:
        return table
    named = [k for k in missing if not k.startswith(_ANONYMOUS)]
    if named:
        what = "product" if name == C.PRODUCTS else "customer"
        shown = ", ".join(repr(k) for k in named[:5]) + (" ..." if len(named) > 5 else "")
        report.note(
            f"{path}: {len(named)} {what}{'s' if len(named) > 1 else ''} the texts name "
            f"{'are' if len(named) > 1 else 'is'} not listed there ({shown}); kept as rows "
            "with the id alone" + (", named by the key" if name == C.PRODUCTS else "")
        )
    pad = pd.DataFrame({key: np.array(sorted(missing.values()), dtype=np.int64)})
    out = pd.concat([table, pad], ignore_index=True)
    for canon, spec in SCHEMAS[name].columns.items():
        if canon in out and str(spec.dtype) == "bool":
            out[canon] = out[canon].astype("boolean")
    return out


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
    _require_mapped(raw, path, renames)
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
        _require_unique(keys, path, _label(has[id_col], id_col))
        out[id_col] = dense_ids(keys)[0]
    for canon, book, absent in (
        (C.PRODUCT_ID, products, ALL_PRODUCTS),
        (C.CUSTOMER_ID, customers, None),
    ):
        keys = _keys(raw, has.get(canon))
        if keys is None:
            if absent is None:  # no customer column: every text its own anonymous writer
                keys = pd.Series([f"{_ANONYMOUS}{name}:{i}" for i in range(n)])
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
        if C.REASON in has:  # the brand's labels, mapped; each row keeps its own label
            reasons = import_reasons(
                raw[has[C.REASON]],
                f"{path}: column {_label(has[C.REASON], C.REASON)!r}",
                report,
                given_labels=raw[has[C.REASON_LABEL]] if C.REASON_LABEL in has else None,
            )
            out[C.REASON], out[C.REASON_LABEL] = reasons.reasons, reasons.labels
        else:
            out[C.REASON] = out[C.REASON_LABEL] = None
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
    """The text tables of a texts-only export (with its catalogue and customer list when
    given), and each product id's name: the catalogue's name, else the export's key."""
    books: dict[str, dict[str, int]] = {C.PRODUCTS: {}, C.CUSTOMERS: {}}
    tables = {}
    # the lists first, so their rows keep the export's order and ids 1, 2, ...
    for name in CATALOGUE_TABLES:
        if name in files:
            path, renames = files[name]
            tables[name] = _catalogue(name, read_export(path), path, renames, books[name])
    for name, (path, renames) in files.items():
        if name in TEXT_TABLES:
            raw = read_export(path)
            tables[name] = _table(
                name, raw, path, renames, report, books[C.PRODUCTS], books[C.CUSTOMERS]
            )
    for name in TEXT_TABLES:  # both text tables exist, possibly empty, like in any store
        if name not in tables:
            tables[name] = empty_table(name)
    for name in CATALOGUE_TABLES:
        if name in tables:
            tables[name] = _complete_catalogue(
                name, tables[name], files[name][0], books[name], report
            )
    names = {i: k for k, i in books[C.PRODUCTS].items()}
    catalogue = tables.get(C.PRODUCTS)
    if catalogue is not None and C.NAME in catalogue:
        listed = catalogue.dropna(subset=[C.NAME])
        names.update(zip(listed[C.PRODUCT_ID].astype(int), listed[C.NAME].astype(str), strict=True))
    report.note(
        "texts only: no orders in this export, so only `ppx train feedback` runs on this store"
    )
    return tables, names
