"""``ppx data import``: exports in, a validated store out; refusals name file, column, rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from ppx.cli import app
from ppx.data import columns as C
from ppx.data.io import MANIFEST, OUTPUT_MARKER, OutputFolderError, load_tables
from ppx.data.stores.commands import import_store
from ppx.data.stores.read import StoreImportError, read_export

from .store_exports import write_olist, write_shopify

runner = CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    olist = write_olist(root / "olist", n_orders=200, n_people=50)
    orders, tracking = write_shopify(root / "shop", n_orders=150, n_customers=40)
    return {"olist": olist, "orders": orders, "tracking": tracking}


def test_olist_layout_becomes_a_store_without_truth(exports, tmp_path):
    out, tables, report = import_store(exports["olist"], tmp_path / "store")
    assert report.format == "olist"
    assert not (out / "truth").exists() and (out / OUTPUT_MARKER).is_file()
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["kind"] == "store" and manifest["rows"][C.ORDERS] == 200
    loaded = load_tables(out)  # validates again, from disk
    assert len(loaded[C.REVIEWS]) > 0 and len(loaded[C.INTERACTIONS]) > 0
    assert set(loaded[C.ORDERS][C.CARRIER]) == {"olist"}
    assert not loaded[C.CUSTOMERS][C.EMAIL_OPT_IN].any(), "no consent field: nobody opted in"
    # repeat buyers are one customer (customer_unique_id), not one per order
    assert len(loaded[C.CUSTOMERS]) <= 50
    delivered = loaded[C.SHIPMENTS][C.STATUS] == "delivered"
    assert delivered.sum() == 185 and (loaded[C.SHIPMENTS][C.STATUS] == "in_transit").sum() == 15


def test_the_partial_olist_copy_imports(tmp_path):
    from ppx.data.adapters import dataset_path

    try:
        folder = dataset_path("olist_sample")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    out, tables, report = import_store(folder, tmp_path / "olist")
    assert len(tables[C.ORDERS]) > 9_900
    assert any("join to a customer row" in n for n in report.notes)
    assert any("hand-over time before the purchase" in n for n in report.notes)


def test_platform_export_sniffed_and_joined_with_carrier_scans(exports, tmp_path):
    raw = read_export(exports["orders"])  # semicolons, Windows-1252
    assert "Lineitem name" in raw.columns and raw["Billing Name"].dropna().iloc[0].startswith("Zoë")
    out, tables, report = import_store(
        exports["orders"].parent, tmp_path / "store", tracking=exports["tracking"]
    )
    assert report.format == "shopify"
    o, s = tables[C.ORDERS], tables[C.SHIPMENTS]
    assert set(o[C.PROMISED_DAYS]) == {3, 7}  # 1-2 and 3-5 business days
    assert set(o[C.CARRIER]) == {"canada post", "purolator"}
    assert (s[C.STATUS] == "in_transit").sum() == 15
    ev = tables[C.TRACKING_EVENTS]
    assert set(ev[C.EVENT_TYPE]) == {
        "label_created",
        "picked_up",
        "hub_scan",
        "out_for_delivery",
        "delivered",
    }
    consent = tables[C.CUSTOMERS][C.EMAIL_OPT_IN]
    assert 0 < consent.mean() < 1  # "Accepts Marketing" yes/no per customer


def test_canonical_files_with_a_column_mapping(tiny_world, tmp_path):
    world, _ = tiny_world
    src = tmp_path / "exports"
    src.mkdir()
    for name, df in world.tables.items():
        if name != C.ORDERS:
            df.to_parquet(src / f"{name}.parquet", index=False)
    renamed = world.tables[C.ORDERS].rename(columns={C.ORDER_ID: "Order No", C.ORDERED_AT: "Date"})
    renamed.to_csv(src / "my orders.csv", index=False, sep=";")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "tables:\n  orders:\n    file: my orders.csv\n"
        "    columns: {order_id: Order No, ordered_at: Date}\n"
    )
    out, tables, _ = import_store(src, tmp_path / "store", mapping=mapping)
    assert len(tables[C.ORDERS]) == len(world.tables[C.ORDERS])
    assert tables[C.ORDERS][C.ORDER_ID].tolist() == world.tables[C.ORDERS][C.ORDER_ID].tolist()


def test_mapping_mistakes_are_named(tiny_world, tmp_path):
    world, _ = tiny_world
    src = tmp_path / "exports"
    src.mkdir()
    world.tables[C.ORDERS].to_csv(src / "o.csv", index=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables:\n  orders:\n    file: o.csv\n    columns: {order_number: X}\n")
    with pytest.raises(StoreImportError, match="unknown canonical column.*order_number"):
        import_store(src, tmp_path / "s1", mapping=bad)
    bad.write_text("tables:\n  orders:\n    file: o.csv\n    columns: {order_id: Order No}\n")
    with pytest.raises(StoreImportError, match=r"o\.csv: mapped column\(s\) \['Order No'\]"):
        import_store(src, tmp_path / "s2", mapping=bad)


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (
            lambda o: o.assign(
                order_purchase_timestamp=o["order_purchase_timestamp"].where(
                    o.index != 3, "yesterday"
                )
            ),
            [
                "olist_orders_dataset.csv",
                "order_purchase_timestamp",
                "'yesterday'",
                "rows [3] (0 = the first row under the header)",
            ],
        ),
        (lambda o: o.drop(columns=["order_status"]), ["missing column(s) ['order_status']"]),
        (lambda o: o.iloc[:0], ["only a header, no data rows"]),
    ],
)
def test_olist_refusals_name_file_column_and_rows(exports, tmp_path, edit, fragments):
    folder = tmp_path / "olist"
    folder.mkdir()
    for p in exports["olist"].iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    path = folder / "olist_orders_dataset.csv"
    edit(pd.read_csv(path, dtype=str)).to_csv(path, index=False)
    with pytest.raises(StoreImportError) as info:
        import_store(folder, tmp_path / "store")
    for f in fragments:
        assert f in _flat(str(info.value))
    assert not (tmp_path / "store").exists(), "nothing written"
    assert [p.name for p in tmp_path.iterdir()] == ["olist"], "no temporary folder left"


def test_empty_file_is_refused(tmp_path):
    (tmp_path / "orders.csv").write_text("")
    with pytest.raises(StoreImportError, match="orders.csv: the file is empty"):
        import_store(tmp_path, tmp_path.parent / f"{tmp_path.name}-out", fmt="canonical")


def test_platform_refusals(exports, tmp_path):
    scans = pd.read_csv(exports["tracking"])
    scans.loc[4, "Status"] = "teleported"
    bad = tmp_path / "scans.csv"
    scans.to_csv(bad, index=False)
    with pytest.raises(StoreImportError) as info:
        import_store(exports["orders"], tmp_path / "s1", tracking=bad)
    assert all(f in str(info.value) for f in ("scans.csv", "'Status'", "'teleported'", "rows [4]"))
    raw = pd.read_csv(exports["orders"], sep=";", encoding="cp1252", dtype=str)
    raw["Shipping Method"] = raw["Shipping Method"].where(raw["Shipping Method"].isna(), "Ground")
    plain = tmp_path / "orders_export.csv"
    raw.to_csv(plain, index=False)
    with pytest.raises(StoreImportError, match="--promise-days"):
        import_store(plain, tmp_path / "s2")
    out, tables, report = import_store(plain, tmp_path / "s3", promise_days=6)
    assert set(tables[C.ORDERS][C.PROMISED_DAYS]) == {6}
    assert any("--promise-days" in n for n in report.notes)


def test_import_never_replaces_a_folder_it_did_not_create(exports, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(OutputFolderError, match="not created by ppx"):
            import_store(exports["olist"], mine, overwrite=overwrite)
    assert (mine / "keep.txt").read_text() == "mine"
    out, *_ = import_store(exports["olist"], tmp_path / "store")
    with pytest.raises(OutputFolderError, match="--overwrite"):
        import_store(exports["olist"], out)
    import_store(exports["olist"], out, overwrite=True)
    assert (out / OUTPUT_MARKER).is_file()


def test_cli_import_and_world_refuse_a_foreign_folder(exports, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("do not delete")
    for args in (
        ["data", "import", str(exports["olist"]), "--out", str(mine), "--overwrite"],
        ["data", "world", "--customers", "50", "--months", "3", "--out", str(mine), "--overwrite"],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert "not created by ppx" in _flat(res.output)
        assert (mine / "notes.md").read_text() == "do not delete"
    res = runner.invoke(
        app, ["data", "import", str(exports["olist"]), "--out", str(tmp_path / "s")]
    )
    assert res.exit_code == 0, res.output
    assert "store" in res.output and (tmp_path / "s" / "tables" / "orders.parquet").exists()


def test_data_world_default_is_not_the_demo_world(tmp_path, monkeypatch):
    from ppx.config import get_settings

    worlds = tmp_path / "worlds"
    monkeypatch.setenv("PPX_WORLDS_DIR", str(worlds))
    monkeypatch.chdir(tmp_path / "..")  # the folder is the setting's, not the cwd's
    get_settings.cache_clear()
    try:
        args = ["data", "world", "--customers", "50", "--months", "3", "--seed", "5"]
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert (worlds / "seed-5" / OUTPUT_MARKER).is_file()
        assert not (worlds / "demo").exists()
        again = runner.invoke(app, args)
        assert again.exit_code == 2 and "--overwrite" in _flat(again.output)
    finally:
        get_settings.cache_clear()
