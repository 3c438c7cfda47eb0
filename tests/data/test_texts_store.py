"""A reviews export (or return comments) alone: a texts-only store, and clear refusals."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from ppx.cli import app
from ppx.data import columns as C
from ppx.data.io import MANIFEST, TextsOnlyStoreError, holds_texts_only, load_tables
from ppx.data.stores.commands import import_store
from ppx.data.stores.read import StoreImportError

from .review_exports import (
    REVIEWS_FILE,
    reviews_frame,
    write_catalogue,
    write_return_comments,
    write_reviews,
)

runner = CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_reviews_export_with_its_own_column_names_becomes_a_texts_only_store(tmp_path):
    src, mapping = write_reviews(tmp_path / "export", reviews_frame(n=150, blank=4))
    out, tables, report = import_store(src, tmp_path / "store", mapping=mapping)
    assert report.texts_only and holds_texts_only(out)
    assert set(tables) == {C.REVIEWS, C.RETURNS}  # no empty order tables written
    rv = tables[C.REVIEWS]
    assert len(rv) == 150  # rows without text are kept (their ratings count) ...
    assert rv[C.REVIEW_ID].is_unique and rv[C.ORDER_ID].isna().all()
    assert rv[C.CUSTOMER_ID].nunique() <= 60 and rv[C.CREATED_AT].notna().all()
    # ... and counted in a note naming the file and the rows
    note = next(n for n in report.notes if "have no text" in n)
    assert "4 of 150 rows" in note and REVIEWS_FILE in note and "rows [146, 147" in note
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["holds"] == "texts"
    assert sorted(manifest["product_names"].values()) == ["SKU-A", "SKU-B", "SKU-C"]
    # feedback reads it; loaders of the order-based models refuse it by name
    assert len(load_tables(out, texts_ok=True)[C.REVIEWS]) == 150
    with pytest.raises(TextsOnlyStoreError, match="holds texts only"):
        load_tables(out)


def test_import_cli_says_the_store_holds_texts_only(tmp_path):
    src, mapping = write_reviews(tmp_path / "export")
    res = runner.invoke(
        app, ["data", "import", str(src), "--mapping", str(mapping), "--out", str(tmp_path / "s")]
    )
    assert res.exit_code == 0, res.output
    assert "texts only" in _flat(res.output) and "have no text" in _flat(res.output)


def test_return_comments_alone_import_without_orders_or_refunds(tmp_path):
    src, mapping = write_return_comments(tmp_path / "export", n=60)
    _, tables, report = import_store(src, tmp_path / "store", mapping=mapping)
    rt = tables[C.RETURNS]
    assert report.texts_only and len(rt) == 60 and len(tables[C.REVIEWS]) == 0
    assert rt[C.ORDER_ID].isna().all() and rt[C.REFUND_AMOUNT].isna().all()
    assert rt[C.PRODUCT_ID].nunique() == 3 and rt[C.CUSTOMER_ID].is_unique
    assert rt[C.REQUESTED_AT].min() == pd.Timestamp("2026-04-01")


def test_a_missing_text_column_is_refused_naming_file_and_column(tmp_path):
    frame = reviews_frame(n=20).drop(columns=["Review"])
    src, mapping = write_reviews(tmp_path / "export", frame)
    mapping.write_text(mapping.read_text().replace("      body: Review\n", ""))
    with pytest.raises(StoreImportError) as err:
        import_store(src, tmp_path / "store", mapping=mapping)
    msg = str(err.value)
    assert REVIEWS_FILE in msg and "needs a text column 'body'" in msg and "Headline" in msg
    assert not (tmp_path / "store").exists()


def test_an_unreadable_date_names_the_export_column_and_rows(tmp_path):
    frame = reviews_frame(n=30)
    frame.loc[[3, 17], "Submitted"] = ["next tuesday", "13/45/2026"]
    src, mapping = write_reviews(tmp_path / "export", frame)
    with pytest.raises(StoreImportError) as err:
        import_store(src, tmp_path / "store", mapping=mapping)
    msg = _flat(str(err.value))
    assert "'Submitted (-> created_at)'" in msg and "'next tuesday'" in msg
    assert "rows [3, 17]" in msg


def test_a_rating_off_the_five_star_scale_names_the_column_and_rows(tmp_path):
    frame = reviews_frame(n=30)
    frame.loc[[5, 9], "Stars"] = [10, 0]
    src, mapping = write_reviews(tmp_path / "export", frame)
    with pytest.raises(StoreImportError) as err:
        import_store(src, tmp_path / "store", mapping=mapping)
    msg = _flat(str(err.value))
    assert "'Stars (-> rating)'" in msg and "whole rating from 1 to 5" in msg
    assert "rows [5, 9]" in msg


@pytest.mark.parametrize(
    ("args", "needs"),
    [
        (["train", "churn"], "subscriptions"),
        (["train", "delivery"], "shipments"),
        (["score", "fraud"], "claims"),
    ],
)
def test_order_based_commands_refuse_a_texts_only_store_at_once(tmp_path, args, needs):
    src, mapping = write_reviews(tmp_path / "export", reviews_frame(n=30))
    store, _, _ = import_store(src, tmp_path / "store", mapping=mapping)
    folder = ["--store", str(store), "--out", str(tmp_path / "s.csv")]
    res = runner.invoke(app, [*args, *(folder if args[0] == "score" else ["--world", str(store)])])
    assert res.exit_code == 2 and res.exception is not None
    msg = _flat(res.output)
    assert "holds texts only" in msg and f"ppx {' '.join(args)}" in msg and needs in msg
    assert "ppx train feedback" in msg


def test_reviews_with_a_catalogue_and_customers_but_no_orders_stay_texts_only(tmp_path):
    src, mapping = write_catalogue(tmp_path / "export", reviews_frame(n=120))
    out, tables, report = import_store(src, tmp_path / "store", mapping=mapping)
    assert report.texts_only and holds_texts_only(out)
    assert set(tables) == {C.REVIEWS, C.RETURNS, C.PRODUCTS, C.CUSTOMERS}
    products = tables[C.PRODUCTS].set_index(C.PRODUCT_ID)
    rv = tables[C.REVIEWS]
    # every reviewed product is a catalogue row: listed ones with their name and category
    assert set(rv[C.PRODUCT_ID]) <= set(products.index)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["holds"] == "texts"
    names = set(manifest["product_names"].values())
    assert {"Linen shirt", "Wrap dress", "Gift card", "SKU-C"} == names
    assert set(products[C.CATEGORY].dropna()) == {"Tops", "Dresses", "Gifts"}
    note = next(n for n in report.notes if "not listed" in n and "catalogue.csv" in n)
    assert "1 product the texts name" in note and "'SKU-C'" in note
    cust = tables[C.CUSTOMERS].set_index(C.CUSTOMER_ID)
    assert set(rv[C.CUSTOMER_ID]) <= set(cust.index)
    assert set(cust[C.REGION].dropna()) == {"FR", "DE"}
    assert not any("orders" in t for t in tables)
    loaded = load_tables(out, texts_ok=True)
    assert set(loaded) == set(tables) and len(loaded[C.PRODUCTS]) == 4
    with pytest.raises(TextsOnlyStoreError, match="holds texts only"):
        load_tables(out)


def test_reviews_beside_a_catalogue_alone_are_texts_only_not_an_empty_orders_refusal(tmp_path):
    src, mapping = write_catalogue(tmp_path / "export", reviews_frame(n=40))
    mapping.write_text(mapping.read_text().split("  customers:")[0])
    (src / "customers.csv").unlink()
    out, tables, report = import_store(src, tmp_path / "store", mapping=mapping)
    assert report.texts_only and holds_texts_only(out)
    assert set(tables) == {C.REVIEWS, C.RETURNS, C.PRODUCTS}
    # no customer list: the reviews' customers stay ids of their own, with no table
    assert tables[C.REVIEWS][C.CUSTOMER_ID].nunique() > 1


def test_a_catalogue_without_product_ids_is_refused_naming_file_and_column(tmp_path):
    src, mapping = write_catalogue(tmp_path / "export")
    mapping.write_text(mapping.read_text().replace("product_id: SKU, ", ""))
    with pytest.raises(StoreImportError) as err:
        import_store(src, tmp_path / "store", mapping=mapping)
    msg = _flat(str(err.value))
    assert "catalogue.csv" in msg and "'product_id'" in msg
    assert not (tmp_path / "store").exists()


def test_order_based_commands_refuse_a_texts_store_with_a_catalogue(tmp_path):
    src, mapping = write_catalogue(tmp_path / "export", reviews_frame(n=30))
    store, _, _ = import_store(src, tmp_path / "store", mapping=mapping)
    res = runner.invoke(app, ["train", "recs", "--world", str(store)])
    assert res.exit_code == 2
    msg = _flat(res.output)
    assert "holds texts only" in msg and "ppx train recs" in msg and "orders" in msg


BRAND_REASONS = [
    "Too small",
    "DOESN'T FIT",
    "too big",
    "Broken",
    "defective",
    "Damaged in transit",
    "Changed my mind",
    "Wrong item sent",
    "Not as described",
    "Gift for someone",
    "Colour",
    "Gift for someone",
    "",
]


def test_brand_return_reasons_map_to_ppx_reasons_and_unknown_ones_keep_their_label(tmp_path):
    src, mapping = write_return_comments(tmp_path / "export", n=130, reasons=BRAND_REASONS)
    out, tables, report = import_store(src, tmp_path / "store", mapping=mapping)
    rt = tables[C.RETURNS]
    by_label = dict(zip(rt[C.REASON_LABEL].fillna(""), rt[C.REASON], strict=True))
    assert by_label["Too small"] == by_label["DOESN'T FIT"] == by_label["too big"] == C.SIZE_FIT
    assert by_label["Broken"] == by_label["defective"] == by_label["Damaged in transit"]
    assert by_label["Broken"] == "damaged"
    assert by_label["Changed my mind"] == "changed_mind"
    assert by_label["Wrong item sent"] == "wrong_item"
    assert by_label["Not as described"] == "not_as_described"
    # unknown labels fall to "other" and keep their own text; a blank reason stays unknown
    assert by_label["Gift for someone"] == by_label["Colour"] == "other"
    assert pd.isna(by_label[""])
    assert rt[C.REASON].isna().sum() == 10
    note = _flat(next(n for n in report.notes if "return reasons" in n))
    assert "'Return reason (-> reason)'" in note
    assert "90 of 120 labelled returns map to ppx's reasons" in note
    assert "30 fell to 'other'" in note and "'Gift for someone' (20), 'Colour' (10)" in note
    # the store keeps both, so nothing the brand wrote is lost
    loaded = load_tables(out, texts_ok=True)[C.RETURNS]
    assert (loaded[C.REASON_LABEL] == "Gift for someone").sum() == 20
