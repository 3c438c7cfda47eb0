"""``ppx data import``: a brand's exports in, a validated store folder out."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer


class Format(StrEnum):
    auto = "auto"
    canonical = "canonical"
    olist = "olist"
    shopify = "shopify"


def detect_format(source: Path) -> str:
    """Olist by its orders file name, a platform export by its header, else canonical."""
    from ppx.data.stores import olist, shopify

    if source.is_dir() and olist.looks_like_olist(source):
        return "olist"
    if shopify.find_orders_export(source) is not None:
        return "shopify"
    return "canonical"


def import_store(
    source: Path,
    out: Path,
    fmt: str = "auto",
    mapping: Path | None = None,
    tracking: Path | None = None,
    promise_days: int | None = None,
    overwrite: bool = False,
    phone_region: str | None = None,
):
    """Read ``source`` in format ``fmt`` and write a store at ``out``.

    ``phone_region``: the country national phone numbers belong to (``US``, ``DE``); else
    a canonical import's mapping YAML (``phone_region:``), else the ``PPX_PHONE_REGION``
    setting. Phones end up in E.164 or blank (:mod:`.phones`).

    Returns the folder, the validated tables and the import report. Nothing is written
    unless every table validates; a refused output folder is refused before reading.
    """
    from ppx.config import get_settings
    from ppx.data import columns as C
    from ppx.data.io import check_output_folder
    from ppx.data.stores import canonical, olist, phones, shopify
    from ppx.data.stores.build import ImportReport, write_store
    from ppx.data.stores.read import StoreImportError

    check_output_folder(out, overwrite)
    if not source.exists():
        raise StoreImportError(f"{source}: no such file or folder")
    fmt = detect_format(source) if fmt == "auto" else fmt
    region = phones.check_region(phone_region)
    if region is None and mapping is not None and fmt == "canonical":
        region = phones.check_region(canonical.mapping_phone_region(mapping))
    if region is None:
        region = phones.check_region(get_settings().phone_region)
    report = ImportReport(format=fmt, inputs=[str(source)])
    if fmt == "olist":
        tables = olist.import_olist(source, report)
    elif fmt == "shopify":
        tables = shopify.import_shopify(source, report, tracking, promise_days)
    else:
        tables = canonical.import_canonical(source, report, mapping)
    if C.CUSTOMERS in tables:
        # one rule for every format: the SMS gateway takes E.164 only
        tables[C.CUSTOMERS] = phones.normalise_phones(
            tables[C.CUSTOMERS],
            region,
            report,
            f"{fmt} customers",
            file_rows=fmt == "canonical" and not report.texts_only,
        )
    path, valid = write_store(tables, out, report, overwrite)
    return path, valid, report


def data_import(
    source: Path = typer.Argument(..., help="Export folder (or the platform orders CSV)."),
    out: Path = typer.Option(..., "--out", help="New store folder to write."),
    fmt: Format = typer.Option(Format.auto, "--format", help="Export format (auto-detected)."),
    mapping: Path | None = typer.Option(
        None, "--mapping", help="Column-mapping YAML for canonical CSV/Parquet files."
    ),
    tracking: Path | None = typer.Option(
        None, "--tracking", help="Carrier tracking-events CSV (platform exports)."
    ),
    promise_days: int | None = typer.Option(
        None, "--promise-days", min=0, help="Delivery promise when the export states none."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a store that ppx wrote before (never any other)."
    ),
    phone_region: str | None = typer.Option(
        None,
        "--phone-region",
        help="Country of phone numbers written without +country code (US, DE); else the "
        "mapping's phone_region, else PPX_PHONE_REGION; without one they are left blank.",
    ),
) -> None:
    """Turn a brand's exports into a validated store (canonical tables, no truth/)."""
    from ppx.data.io import OutputFolderError
    from ppx.data.stores.read import StoreImportError
    from ppx.terminal import console, fail, print_table

    try:
        with console.status(f"importing {source}"):
            path, tables, report = import_store(
                source, out, fmt.value, mapping, tracking, promise_days, overwrite, phone_region
            )
    except (StoreImportError, OutputFolderError) as err:
        fail(str(err))
    for line in report.notes:
        console.print(f"note: {line}")
    kind = f"{report.format}, texts only" if report.texts_only else report.format
    print_table(
        f"store {path} ({kind})",
        [{"table": k, "rows": len(v)} for k, v in tables.items() if len(v)],
    )


def register(data_app: typer.Typer) -> None:
    data_app.command("import")(data_import)
