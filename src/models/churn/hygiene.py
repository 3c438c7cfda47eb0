"""Column hygiene for a user's customer table, before anything trains on it.

Exports from billing systems and CRMs carry traps that a model happily learns from:
the row number of the export (its range moves with the next export and the scores
move with it), the same customer on several rows (a copy in the holdout flatters
every metric), files that are not comma-separated UTF-8. Each check here returns what
it found so the CLI prints one line per decision; a table that cannot be used raises
:class:`~ppx.models.churn.tabular.TableError` naming the file, column and rows.
"""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.models.churn.tabular import TableError, coerce_numeric

#: Encodings tried in order when a file is not UTF-8 (cp1252 covers the usual
#: spreadsheet exports; latin-1 decodes any byte and is the last resort).
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
DELIMITERS = ",;\t|"
#: Column names that mark a customer identifier when ``--id`` is not given.
ID_NAME = re.compile(r"(?i)^(customer|client|account|user|subscriber|member)?[ _\-]?id$")


def table_entity(id_column: str | None) -> str:
    """What one row of a customer table is, in the plural, for reports: the entity its id
    column names (``account_id`` -> accounts, ``customerID`` -> customers), else
    customers."""
    found = ID_NAME.match(str(id_column or "").replace(" ", ""))
    return f"{found.group(1).lower()}s" if found and found.group(1) else "customers"


@dataclass
class TableNotes:
    """What reading and checking a table decided, one printed line each."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)


def sniff_csv(path: Path) -> tuple[str, str]:
    """(encoding, delimiter) of a text table, from its first 64 KB."""
    raw = path.read_bytes()[:65536]
    encoding = next(enc for enc in ENCODINGS if _decodes(raw, enc))
    text = raw.decode(encoding, errors="ignore")
    lines = [ln for ln in text.splitlines() if ln.strip()][:50]
    try:
        delimiter = csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        # One column, or too few rows to tell: the delimiter that splits the header most.
        header = lines[0] if lines else ""
        delimiter = max(DELIMITERS, key=header.count) if header else ","
        if header.count(delimiter) == 0:
            delimiter = ","
    return encoding, delimiter


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as err:
        # A multi-byte character cut at the 64 KB boundary is not a wrong encoding.
        return encoding.startswith("utf-8") and err.start >= len(raw) - 3
    return True


def read_user_table(path: str | Path, notes: TableNotes | None = None) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet table as text columns, sniffing delimiter and encoding.

    Raises TableError for a missing, empty or header-only file.
    """
    notes = notes if notes is not None else TableNotes()
    path = Path(path)
    if not path.exists():
        raise TableError(f"table file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        df = pd.read_parquet(path)
    elif suffix in (".csv", ".txt", ".tsv"):
        if path.stat().st_size == 0 or not path.read_bytes()[:65536].strip():
            raise TableError(f"table file {path} is empty (no header, no rows)")
        encoding, sep = sniff_csv(path)
        if encoding not in ("utf-8-sig", "utf-8"):
            notes.add(f"{path.name}: not UTF-8; read as {encoding}")
        if sep != ",":
            notes.add(f"{path.name}: delimiter {sep!r} (sniffed)")
        df = pd.read_csv(path, sep=sep, keep_default_na=False, dtype=str, encoding=encoding)
    else:
        raise TableError(f"{path}: unsupported table format {suffix!r}; use .csv or .parquet")
    if len(df) == 0:
        raise TableError(
            f"table file {path} has a header ({len(df.columns)} columns) but no data rows"
        )
    return df


def resolve_column(df: pd.DataFrame, name: str, option: str) -> str:
    """``name`` if it is a column; otherwise TableError, with "did you mean" when a
    column matches it case-insensitively (or closely)."""
    if name in df.columns:
        return name
    cols = [str(c) for c in df.columns]
    same = [c for c in cols if c.strip().lower() == name.strip().lower()]
    close = same or difflib.get_close_matches(name, cols, n=3, cutoff=0.75)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    shown = cols if len(cols) <= 30 else [*cols[:30], "..."]
    raise TableError(f"{option} column {name!r} not found{hint} (columns: {shown})")


def index_like_columns(df: pd.DataFrame, exclude: list[str]) -> dict[str, str]:
    """Columns that number the rows rather than describe the customer.

    An integer column with no blanks whose values are all distinct and either sorted
    (an export's running number) or exactly a run of consecutive integers in any
    order (a row counter of a shuffled export). Returns column -> reason.
    """
    found = {}
    n = len(df)
    if n < 3:
        return found
    for col in df.columns:
        if col in exclude:
            continue
        x = coerce_numeric(df[col], min_share=1.0)
        if x is None or x.isna().any():
            continue
        v = x.to_numpy(dtype=float)
        if not np.all(v == np.round(v)) or len(np.unique(v)) != n:
            continue
        d = np.diff(v)
        if (d > 0).all() or (d < 0).all():
            found[col] = "index-like: unique integers in row order (a row number)"
        elif v.max() - v.min() == n - 1:
            found[col] = "index-like: a counter over the rows (consecutive unique integers)"
    return found


def guess_id_column(df: pd.DataFrame, exclude: list[str]) -> str | None:
    """A column named like a customer id (``customerID``, ``account_id``, ``id``)
    whose values are mostly distinct, or None."""
    for col in df.columns:
        if col in exclude or not ID_NAME.match(str(col).replace(" ", "")):
            continue
        if df[col].nunique() >= 0.5 * len(df):
            return col
    return None


def duplicate_ids(ids: pd.Series) -> tuple[int, int]:
    """(rows whose id appeared on an earlier row, distinct ids with several rows)."""
    dup = ids.duplicated(keep="first")
    return int(dup.sum()), int(ids[dup].nunique())


def bootstrap_auc(
    y: np.ndarray, p: np.ndarray, n: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile bootstrap interval of ROC AUC on a holdout."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    y, p = np.asarray(y), np.asarray(p)
    vals = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() != y[i].max():
            vals.append(roc_auc_score(y[i], p[i]))
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)
