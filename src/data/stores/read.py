"""Reading a brand's export files: encoding and delimiter sniffed, every cell as text.

Exports come from spreadsheets and platforms in many dialects (semicolons in Europe, tabs,
a UTF-8 byte-order mark, Windows-1252). Reading everything as text first keeps control of
parsing: each format module converts the columns it needs and names the rows it cannot.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ppx.data.io import DataLoadError, read_table_file

DELIMITERS = ",;\t|"
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
SNIFF_BYTES = 64 * 1024


class StoreImportError(ValueError):
    """An export cannot become canonical tables; the message names file, column, rows."""


def rows_text(rows, file_rows: bool = True) -> str:
    """``rows [3, 7] and 12 more (0 = the first row under the header)``: 0-based data rows
    of the file (header excluded), said so, since a spreadsheet counts from 1 with the
    header; ``file_rows=False`` for positions in a derived table."""
    rows = [int(r) for r in rows]
    shown = ", ".join(map(str, rows[:5]))
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return f"rows [{shown}]{more}" + (" (0 = the first row under the header)" if file_rows else "")


def sniff_encoding(raw: bytes) -> str:
    """The first encoding in :data:`ENCODINGS` that decodes the whole file."""
    for enc in ENCODINGS:
        try:
            raw.decode(enc)
            return enc
        except UnicodeDecodeError:
            continue
    return "latin-1"  # decodes any byte sequence


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV sample; a single-column file falls back to a comma."""
    sample = text[:SNIFF_BYTES]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def read_export(path: str | Path) -> pd.DataFrame:
    """One export file as a frame of text (CSV/TXT sniffed) or typed columns (Parquet).

    Raises:
        StoreImportError: missing, empty or header-only file, or an unsupported type.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreImportError(f"{path}: no such file")
    if path.suffix.lower() == ".parquet":
        try:
            return read_table_file(path)
        except DataLoadError as err:
            raise StoreImportError(str(err)) from err
    if path.suffix.lower() not in (".csv", ".txt", ".tsv"):
        raise StoreImportError(f"{path}: unsupported file type {path.suffix!r}; use CSV or Parquet")
    raw = path.read_bytes()
    if not raw.strip():
        raise StoreImportError(f"{path}: the file is empty")
    text = raw.decode(sniff_encoding(raw))
    sep = sniff_delimiter(text)
    import io

    df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        raise StoreImportError(f"{path}: only a header, no data rows")
    return df


def require_columns(df: pd.DataFrame, path: Path | str, columns) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        have = ", ".join(list(df.columns)[:12])
        raise StoreImportError(f"{path}: missing column(s) {missing} (the file has: {have})")


def parse_times(
    values: pd.Series, path: Path | str, column: str, nullable: bool = True
) -> pd.Series:
    """Timestamps in ISO 8601 (with or without an offset) or ``M/D/YYYY H:MM``.

    Times with an offset are converted to UTC and stored without a zone, like every
    canonical timestamp. Unparseable values (or blanks in a required column) are refused
    with their rows.
    """
    s = values.astype("string").str.strip()
    s = s.where(s.notna() & (s != ""))
    present = s.dropna()
    if present.empty:
        out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    else:
        first = str(present.iloc[0])
        if "/" in first.split(" ")[0]:
            fmt = "%m/%d/%Y %H:%M:%S" if first.count(":") == 2 else "%m/%d/%Y %H:%M"
            out = pd.to_datetime(s, format=fmt, errors="coerce")
            if out[s.notna()].isna().any():  # a date without a time of day
                out = out.fillna(pd.to_datetime(s, format="%m/%d/%Y", errors="coerce"))
        else:
            out = pd.to_datetime(s, format="ISO8601", errors="coerce", utc=True)
            out = out.dt.tz_convert(None)
        out = out.astype("datetime64[ns]")
    bad = out.isna() & s.notna()
    if bad.any():
        rows = list(s.index[bad])
        raise StoreImportError(
            f"{path}: column {column!r}: cannot read {s[bad].iloc[0]!r} as a date and time "
            f"(ISO 8601 or M/D/YYYY H:MM) at {rows_text(rows)}"
        )
    if not nullable and out.isna().any():
        raise StoreImportError(
            f"{path}: column {column!r} is blank at {rows_text(list(s.index[out.isna()]))}"
        )
    return out


def parse_numbers(
    values: pd.Series, path: Path | str, column: str, nullable: bool = True
) -> pd.Series:
    """Numbers, accepting a decimal comma (``12,50``) and currency symbols."""
    if pd.api.types.is_numeric_dtype(values):
        out = values.astype(float)
        s = values
    else:
        s = values.astype("string").str.strip()
        s = s.where(s.notna() & (s != ""))
        cleaned = s.str.replace(r"[^\d,.\-]", "", regex=True)
        comma_decimal = cleaned.str.contains(r"^-?\d+,\d{1,2}$", na=False)
        cleaned = cleaned.where(~comma_decimal, cleaned.str.replace(",", ".", regex=False))
        cleaned = cleaned.str.replace(",", "", regex=False)
        out = pd.to_numeric(cleaned, errors="coerce").astype(float)
    bad = out.isna() & s.notna()
    if bad.any():
        raise StoreImportError(
            f"{path}: column {column!r}: {s[bad].iloc[0]!r} is not a number at "
            f"{rows_text(list(s.index[bad]))}"
        )
    if not nullable and out.isna().any():
        raise StoreImportError(
            f"{path}: column {column!r} is blank at {rows_text(list(s.index[out.isna()]))}"
        )
    return out


TRUE_WORDS = {"true", "yes", "y", "1", "t", "opted_in", "subscribed", "accepted"}
FALSE_WORDS = {"false", "no", "n", "0", "f", "", "opted_out", "unsubscribed", "not_subscribed"}


def parse_flags(values: pd.Series, path: Path | str, column: str) -> pd.Series:
    """Yes/no flags; a blank is *no* (consent must be explicit)."""
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(False).astype(bool)
    s = values.astype("string").fillna("").str.strip().str.lower()
    bad = ~s.isin(TRUE_WORDS | FALSE_WORDS)
    if bad.any():
        raise StoreImportError(
            f"{path}: column {column!r}: {values[bad].iloc[0]!r} is not yes/no at "
            f"{rows_text(list(s.index[bad]))}"
        )
    return s.isin(TRUE_WORDS)


def convert_column(values: pd.Series, dtype: str, path: Path | str, label: str) -> pd.Series:
    """One export column in a canonical column's type (``dtype`` of its schema)."""
    values = values.reset_index(drop=True)
    if "datetime" in dtype:
        if pd.api.types.is_datetime64_any_dtype(values):
            return values
        return parse_times(values, path, label, nullable=True)
    if dtype == "bool":
        return parse_flags(values, path, label)
    if dtype in ("int64", "Int64") or "float" in dtype:
        num = parse_numbers(values, path, label, nullable=True)
        # nullable ids keep pandas' Int64; others are coerced (and checked) by the schema
        return num.astype("Int64") if dtype == "Int64" else num
    s = values.astype("string").str.strip()
    return s.where(s.notna() & (s != "")).astype(object)
