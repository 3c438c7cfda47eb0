"""Canonical CSV/Parquet files, optionally renamed by a column-mapping YAML.

Without a mapping, a folder holds one file per table named ``<table>.csv`` or
``<table>.parquet`` with the canonical column names (data/README.md). A mapping names
other files and columns::

    tables:
      orders:
        file: Order export.csv        # relative to the source folder
        columns:                      # canonical name: the export's name
          order_id: Order No
          ordered_at: Created
      customers:
        file: clients.parquet
    phone_region: DE                  # country of phones without +country code

Values are converted by the schema's column types (timestamps, numbers, yes/no flags),
so a refusal names the file, the export's column and the rows. Consent columns that are
absent mean *no consent*; other absent nullable columns are left empty. A returns table's
``reason`` column may hold the brand's own labels ("Too small", "Arrived broken"): they
are mapped onto ppx's reasons as in a texts-only store (:mod:`.reasons`), each row keeping
its label in ``reason_label``, and the import note counts what mapped and what did not.

An export of ``reviews`` and/or ``returns`` without orders (a reviews app's CSV, return
comments, possibly beside the ``products`` catalogue and a ``customers`` list) makes a
texts-only store (:mod:`.texts`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ppx.data import columns as C
from ppx.data.schema import SCHEMAS
from ppx.data.stores import texts
from ppx.data.stores.build import ImportReport
from ppx.data.stores.read import StoreImportError, convert_column, read_export
from ppx.data.stores.reasons import import_reasons

CONSENT = (C.EMAIL_OPT_IN, C.SMS_OPT_IN, C.PUSH_OPT_IN)


def read_mapping(path: Path) -> dict[str, dict]:
    """The ``tables`` section of a mapping YAML, checked against the canonical names."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise StoreImportError(f"{path}: not a readable YAML file ({err})") from err
    tables = doc.get("tables") if isinstance(doc, dict) else None
    if not isinstance(tables, dict):
        raise StoreImportError(f"{path}: expected a top-level 'tables:' section")
    for name, spec in tables.items():
        if name not in C.TABLES:
            raise StoreImportError(
                f"{path}: unknown table {name!r}; canonical tables are {', '.join(C.TABLES)}"
            )
        if not isinstance(spec, dict) or not isinstance(spec.get("file"), str):
            raise StoreImportError(f"{path}: table {name!r} needs a 'file:' entry")
        cols = spec.get("columns") or {}
        unknown = [c for c in cols if c not in SCHEMAS[name].columns]
        if unknown:
            raise StoreImportError(
                f"{path}: table {name!r} maps unknown canonical column(s) {unknown}; "
                f"its columns are {', '.join(SCHEMAS[name].columns)}"
            )
    return tables


def mapping_phone_region(path: Path) -> str | None:
    """The mapping YAML's ``phone_region`` (national phone numbers' country), if any."""
    read_mapping(path)  # refuses a malformed file with its own message
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    region = doc.get("phone_region")
    if region is not None and not isinstance(region, str):
        raise StoreImportError(f"{path}: phone_region must be a region code such as US or DE")
    return region


def _files(source: Path, mapping: dict[str, dict], base: Path) -> dict[str, tuple[Path, dict]]:
    found: dict[str, tuple[Path, dict]] = {}
    folder = source if source.is_dir() else source.parent
    tables_dir = folder / "tables" if (folder / "tables").is_dir() else folder
    for p in sorted(tables_dir.iterdir()):
        if p.suffix.lower() in (".csv", ".parquet", ".tsv", ".txt") and p.stem in C.TABLES:
            found[p.stem] = (p, {})
    for name, spec in mapping.items():
        found[name] = ((base / spec["file"]), spec.get("columns") or {})
    return found


def convert(
    name: str, raw: pd.DataFrame, path: Path, renames: dict[str, str], report: ImportReport
) -> pd.DataFrame:
    """One export table in canonical columns and types (refusals name file and column).

    A returns table's reason column holds the brand's own labels or ppx's reason codes;
    both are mapped onto the fraud model's reasons (:mod:`.reasons`), the label kept in
    ``reason_label``.
    """
    missing_src = [src for src in renames.values() if src not in raw.columns]
    if missing_src:
        raise StoreImportError(
            f"{path}: mapped column(s) {missing_src} not in the file "
            f"(it has: {', '.join(map(str, raw.columns[:12]))})"
        )
    source_of = {canon: renames.get(canon, canon) for canon in SCHEMAS[name].columns}
    out = {}
    for canon, spec in SCHEMAS[name].columns.items():
        src = source_of[canon]
        if name == C.RETURNS and canon == C.REASON_LABEL:
            continue  # filled with the reason below
        if src not in raw.columns:
            if canon in CONSENT:
                out[canon] = np.zeros(len(raw), dtype=bool)
            elif spec.nullable:
                out[canon] = pd.Series([None] * len(raw), dtype=object)
            else:
                raise StoreImportError(
                    f"{path}: table {name} needs column {canon!r}"
                    + (f" (mapped from {src!r})" if src != canon else "")
                    + " and the file has none"
                )
            continue
        label = src if src == canon else f"{src} (-> {canon})"
        if name == C.RETURNS and canon == C.REASON:
            # the brand's own labels, on the texts-only import's path, onto the fraud
            # model's reasons; each row keeps its label
            label_src = source_of[C.REASON_LABEL]
            reasons = import_reasons(
                raw[src],
                f"{path}: column {label!r}",
                report,
                allowed=C.RETURN_REASONS,
                blank="other",
                given_labels=raw[label_src] if label_src in raw.columns else None,
            )
            out[C.REASON], out[C.REASON_LABEL] = reasons.reasons, reasons.labels
            continue
        out[canon] = convert_column(raw[src], str(spec.dtype), path, label)
    return pd.DataFrame(out)[list(SCHEMAS[name].columns)]


def import_canonical(
    source: Path, report: ImportReport, mapping_path: Path | None
) -> dict[str, pd.DataFrame]:
    """Canonical tables from a folder (or one file) plus an optional mapping YAML."""
    mapping = read_mapping(mapping_path) if mapping_path is not None else {}
    files = _files(source, mapping, source if source.is_dir() else source.parent)
    if not files:
        raise StoreImportError(
            f"{source}: no table files found (name them <table>.csv or <table>.parquet, "
            "or give --mapping; a reviews-app export alone maps a 'reviews' table, see "
            "docs/feedback.md)"
        )
    if mapping_path is not None:
        report.inputs.append(str(mapping_path))
    if texts.is_texts_only(files):
        report.texts_only = True
        tables, report.product_names = texts.import_texts(files, report)
        return tables
    tables = {}
    for name, (path, renames) in files.items():
        tables[name] = convert(name, read_export(path), path, renames, report)
    return tables
