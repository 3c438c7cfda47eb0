"""Reading and writing canonical tables: Parquet per table plus a manifest.

A world folder looks like::

    data/worlds/demo/
      manifest.json          seed, parameters, row counts, content hash
      tables/<table>.parquet the observable canonical tables
      truth/<table>.parquet  the generator's ground truth (never mixed into tables/)
      .ppx-output            marker: ppx wrote this folder and may replace it

A *store* (``ppx data import``) is the same folder without ``truth/``.

Writes go to a temporary sibling folder that is renamed into place at the end, so an
interrupted write never leaves a half-written world behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ppx.data import columns as C
from ppx.data.schema import SchemaValidationError, validate_tables

MANIFEST = "manifest.json"


class DataLoadError(ValueError):
    """A file could not be read as a table; the message names the file and why."""


#: ``manifest.json`` key ``holds`` of a store made from a reviews or return-comments
#: export alone: texts, no orders (the feedback model reads it; the others refuse it).
HOLDS_TEXTS = "texts"


class TextsOnlyStoreError(DataLoadError):
    """A command that needs orders was given a store that holds texts only."""


def content_hash(tables: dict[str, pd.DataFrame]) -> str:
    """A digest of table contents that does not depend on the Parquet writer version."""
    h = hashlib.sha256()
    for name in sorted(tables):
        df = tables[name]
        h.update(name.encode())
        h.update(",".join(map(str, df.columns)).encode())
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


OUTPUT_MARKER = ".ppx-output"
"""A file ppx writes into every folder it creates; only such folders may be replaced."""


class OutputFolderError(ValueError):
    """The output folder holds something ppx did not write; nothing was touched."""


def check_output_folder(out: str | Path, overwrite: bool = False) -> None:
    """Refuse an output folder whose contents ppx did not create.

    An absent or empty folder is fine. A non-empty folder is replaced only with
    ``overwrite`` and only when it carries :data:`OUTPUT_MARKER`, so a user's own files
    are never deleted by a mistyped ``--out``.

    Raises:
        OutputFolderError: ``out`` is a file, or a non-empty folder that may not be replaced.
    """
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputFolderError(f"{out}: exists and is a file, not a folder; choose another --out")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
    if not (out / OUTPUT_MARKER).is_file():
        raise OutputFolderError(
            f"{out}: folder is not empty ({shown}) and was not created by ppx; "
            "choose a new or empty --out (it is never deleted, even with --overwrite)"
        )
    if not overwrite:
        raise OutputFolderError(
            f"{out}: already holds a folder written by ppx ({shown}); "
            "pass --overwrite to replace it, or choose another --out"
        )


def write_folder_atomically(
    out: str | Path, fill: Callable[[Path], None], overwrite: bool = False
) -> Path:
    """Build a folder in a temporary sibling with ``fill(tmp)``, then move it into place.

    The marker file is added before the move; a previous ppx folder at ``out`` (allowed
    by :func:`check_output_folder`) is moved aside first and deleted only after the new
    one is in place, so an interrupted write leaves either the old folder or the new one.
    """
    out = Path(out)
    check_output_folder(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    old: Path | None = None
    try:
        fill(tmp)
        (tmp / OUTPUT_MARKER).write_text("written by ppx; `--overwrite` may replace this folder\n")
        check_output_folder(out, overwrite)  # again: someone may have written meanwhile
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.replace(old / out.name, out)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return out


def save_world(world, out: str | Path, overwrite: bool = False) -> Path:
    """Write a :class:`~ppx.data.world.World` atomically; returns the folder.

    Refuses a non-empty folder that ppx did not write, and replaces one it did write only
    with ``overwrite`` (see :func:`check_output_folder`).
    """

    def fill(tmp: Path) -> None:
        for sub, group in (("tables", world.tables), ("truth", world.truth)):
            (tmp / sub).mkdir()
            for name, df in group.items():
                df.to_parquet(tmp / sub / f"{name}.parquet", index=False)
        manifest = {
            "kind": "world",
            "seed": world.params.seed,
            "params": world.params.to_dict(),
            "rows": {name: len(df) for name, df in world.tables.items()},
            "truth_rows": {name: len(df) for name, df in world.truth.items()},
            "content_hash": content_hash(world.tables),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))

    return write_folder_atomically(out, fill, overwrite)


def save_store(
    tables: dict[str, pd.DataFrame],
    out: str | Path,
    source: dict,
    overwrite: bool = False,
    texts_only: bool = False,
    product_names: dict[int, str] | None = None,
) -> Path:
    """Write a brand's validated canonical tables as a store folder (no ``truth/``).

    ``source`` (format, input files, mapping) goes into the manifest so a store says where
    it came from. A ``texts_only`` store (reviews or return comments without orders) is
    marked ``"holds": "texts"``; its products' names (the catalogue's name when the export
    had one, else the export's own product key) go into the manifest as ``product_names``.
    """

    def fill(tmp: Path) -> None:
        (tmp / "tables").mkdir()
        for name, df in tables.items():
            df.to_parquet(tmp / "tables" / f"{name}.parquet", index=False)
        manifest = {
            "kind": "store",
            "source": source,
            "rows": {name: len(df) for name, df in tables.items()},
            "content_hash": content_hash(tables),
        }
        if texts_only:
            manifest["holds"] = HOLDS_TEXTS
            manifest["product_names"] = {str(k): v for k, v in (product_names or {}).items()}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))

    return write_folder_atomically(out, fill, overwrite)


def read_table_file(path: str | Path) -> pd.DataFrame:
    """Read one Parquet or CSV file, turning low-level failures into clear messages."""
    path = Path(path)
    if not path.exists():
        raise DataLoadError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise DataLoadError(f"{path}: not a readable Parquet file ({err})") from err
        return _binary_as_text(path, table).to_pandas()
    if suffix in (".csv", ".txt"):
        try:
            return pd.read_csv(path, encoding="utf-8")
        except UnicodeDecodeError as err:
            where = _non_utf8_cells(path.read_bytes())
            raise DataLoadError(
                f"{path}: text is not UTF-8 ({err.reason}){where}; re-save the file as UTF-8"
            ) from err
        except pd.errors.EmptyDataError as err:
            raise DataLoadError(f"{path}: the file is empty") from err
    raise DataLoadError(f"{path}: unsupported file type {suffix!r}; use .parquet or .csv")


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:5]))
    return f"rows [{shown}]" + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _binary_as_text(path: Path, table: pa.Table) -> pa.Table:
    """Binary Parquet columns become text when they are UTF-8; otherwise name the cells.

    Other tools write strings as raw bytes; read naively, non-UTF-8 bytes either fail deep
    inside pyarrow's pandas conversion or arrive as ``bytes`` objects.
    """
    for i, field in enumerate(table.schema):
        if not (pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)):
            continue
        values = table.column(i).to_pylist()
        bad = []
        for row, v in enumerate(values):
            if v is None:
                continue
            try:
                v.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(row)
        if bad:
            raise DataLoadError(
                f"{path}: column {field.name} holds bytes that are not UTF-8 text at "
                f"{_rows_text(bad)}; re-save it as UTF-8 strings"
            )
        table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table


def _non_utf8_cells(raw: bytes) -> str:
    """Columns and data rows (0-based, header excluded) of a CSV holding non-UTF-8 bytes."""
    import csv
    import io as _io

    lines = raw.splitlines()
    if not lines:
        return ""
    header = next(csv.reader([lines[0].decode("latin-1")]))
    columns: list[str] = []
    rows: list[int] = []
    for i, line in enumerate(lines):
        try:
            line.decode("utf-8")
            continue
        except UnicodeDecodeError:
            pass
        if i == 0:
            columns.append("(header)")
            continue
        rows.append(i - 1)
        fields = next(csv.reader(_io.StringIO(line.decode("latin-1"))), [])
        for j, cell in enumerate(fields):
            try:
                cell.encode("latin-1").decode("utf-8")
            except UnicodeDecodeError:
                name = header[j] if j < len(header) else f"#{j}"
                if name not in columns:
                    columns.append(name)
    cols = f" in column {', '.join(columns)}" if columns else ""
    return f"{cols} at {_rows_text(rows)}" if rows else cols


def _check_utf8(name: str, df: pd.DataFrame) -> list[str]:
    """Parquet binary columns can carry bytes that are not text; name them."""
    problems = []
    for col in df.columns:
        s = df[col]
        if s.dtype == object:
            bad = s.map(lambda v: isinstance(v, bytes))
            if bad.any():
                rows = s.index[bad][:5].tolist()
                problems.append(
                    f"table {name}, column {col}: binary (non-UTF-8) text at rows {rows}"
                )
    return problems


def _table_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in (".parquet", ".csv") and p.stem in C.TABLES:
            found[p.stem] = p
    return found


def holds_texts_only(path: str | Path) -> bool:
    """Whether a folder is a store made from a reviews / return-comments export alone."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        return False
    try:
        return json.loads(file.read_text()).get("holds") == HOLDS_TEXTS
    except (OSError, ValueError):
        return False


def texts_only_message(path: str | Path, what: str = "this command", needs=()) -> str:
    """Why ``what`` cannot run on a texts-only store, and what it would need."""
    tables = ", ".join(needs) if needs else "orders and the tables around them"
    return (
        f"{path}: this store holds texts only (reviews / return comments imported without "
        f"orders); {what} needs the tables {tables}. Import an export that has them "
        f"(ppx data import, see data/README.md); on this store run `ppx train feedback "
        f"--world {path}`."
    )


def store_product_names(path: str | Path) -> dict[int, str]:
    """Product names a texts-only store keeps in its manifest (the export's own keys)."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        return {}
    names = json.loads(file.read_text()).get("product_names") or {}
    return {int(k): str(v) for k, v in names.items()}


def load_tables(
    path: str | Path, validate: bool = True, texts_ok: bool = False
) -> dict[str, pd.DataFrame]:
    """Load and validate the canonical tables of a world folder (or a folder of files).

    Either every table loads and passes the schema, or an error is raised and nothing is
    returned.

    Raises:
        TextsOnlyStoreError: the folder is a texts-only store and the caller did not say
            it reads texts only (``texts_ok``): every model but feedback needs orders.
    """
    path = Path(path)
    texts_only = holds_texts_only(path)
    if texts_only and not texts_ok:
        raise TextsOnlyStoreError(texts_only_message(path))
    folder = path / "tables" if (path / "tables").is_dir() else path
    if not folder.is_dir():
        raise DataLoadError(f"{path}: not a folder of canonical tables")
    files = _table_files(folder)
    if not files:
        raise DataLoadError(
            f"{folder}: no canonical tables found (expected files named like "
            f"{C.ORDERS}.parquet or {C.ORDERS}.csv)"
        )
    raw: dict[str, pd.DataFrame] = {}
    problems: list[str] = []
    for name, file in files.items():
        try:
            raw[name] = read_table_file(file)
        except DataLoadError as err:
            problems.append(f"table {name}: {err}")
            continue
        problems.extend(_check_utf8(name, raw[name]))
    if problems:
        raise SchemaValidationError(problems)
    return validate_tables(raw, texts_only) if validate else raw


def load_truth(path: str | Path) -> dict[str, pd.DataFrame]:
    """The generator's ground truth of a synthetic world (for oracles and tests)."""
    folder = Path(path) / "truth"
    if not folder.is_dir():
        raise DataLoadError(f"{path}: no truth/ folder; only synthetic worlds have ground truth")
    return {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def has_truth(path: str | Path) -> bool:
    """Whether a folder is a synthetic world with ground truth (a store never has it)."""
    return (Path(path) / "truth").is_dir()


def load_truth_if_any(path: str | Path) -> dict[str, pd.DataFrame] | None:
    """The ground truth of a world, or None for a store made from a brand's exports."""
    return load_truth(path) if has_truth(path) else None


def load_manifest(path: str | Path) -> dict:
    file = Path(path) / MANIFEST
    if not file.exists():
        raise DataLoadError(f"{path}: no {MANIFEST}; is this a world folder?")
    return json.loads(file.read_text())
