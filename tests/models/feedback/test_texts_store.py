"""``ppx train feedback`` on a store imported from a reviews export alone (no orders)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ppx.cli import app
from ppx.data import columns as C
from ppx.data.adapters import datasets_dir
from ppx.data.stores.commands import import_store
from ppx.feedback.trends import weekly_counts
from ppx.models.feedback.train import holdout_mask
from tests.data.review_exports import (
    reviews_frame,
    write_catalogue,
    write_return_comments,
    write_reviews,
)

runner = CliRunner()

CLOTHING = "Womens Clothing E-Commerce Reviews.csv"


def test_reviews_export_trains_feedback_and_the_report_shows_only_what_it_holds(
    tmp_path, mlflow_tmp
):
    src, mapping = write_reviews(tmp_path / "export", reviews_frame(n=180, blank=5))
    store, _, _ = import_store(src, tmp_path / "store", mapping=mapping)
    report = tmp_path / "r.html"
    res = runner.invoke(app, ["train", "feedback", "--world", str(store), "--report", str(report)])
    assert res.exit_code == 0, res.output
    assert "themes" in res.output and "roc_auc" in res.output
    import mlflow

    runs = mlflow.search_runs(experiment_names=["ppx-feedback"])
    assert len(runs) == 1 and runs["metrics.n_themes"].iloc[0] >= 2
    assert runs["metrics.texts"].iloc[0] == 175  # the 5 rows without text are not read
    page = report.read_text()
    assert "175 reviews, 2026-" in page and "5 more had no text" in page
    assert "Rising themes" in page and "Top themes per product" in page
    assert "SKU-A" in page  # products by the export's own names
    # a reviews export has no return comments: no returns or refunds, no zero columns
    assert "return comments" not in page and "refund" not in page.lower()


def test_reviews_beside_a_catalogue_report_products_by_name_and_category(tmp_path, mlflow_tmp):
    src, mapping = write_catalogue(tmp_path / "export", reviews_frame(n=180, blank=0))
    store, _, _ = import_store(src, tmp_path / "store", mapping=mapping)
    report = tmp_path / "r.html"
    res = runner.invoke(app, ["train", "feedback", "--world", str(store), "--report", str(report)])
    assert res.exit_code == 0, res.output
    page = report.read_text()
    # listed products by the catalogue's name and category; the unlisted one by its key
    assert "Linen shirt <span class='muted'>(Tops, " in page
    assert "Wrap dress <span class='muted'>(Dresses, " in page
    assert "SKU-C <span class='muted'>(" in page and "SKU-A" not in page
    assert "Gift card" not in page  # listed but never reviewed: no section


def test_return_comments_alone_train_themes_and_say_why_sentiment_is_not_scored(
    tmp_path, mlflow_tmp
):
    src, mapping = write_return_comments(tmp_path / "export", n=90)
    store, _, _ = import_store(src, tmp_path / "store", mapping=mapping)
    report = tmp_path / "r.html"
    res = runner.invoke(app, ["train", "feedback", "--world", str(store), "--report", str(report)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "no star ratings" in out and "challenger" in out
    page = report.read_text()
    assert "90 return comments, 2026-04-01 to 2026-04-28" in page
    # no ratings, no refunds in the export: neither appears, not even as zeros
    assert "rating" not in page and "refund" not in page.lower() and "costs the most" not in page


def test_undated_texts_are_held_out_at_random_and_give_no_weekly_rows():
    corpus = pd.DataFrame(
        {
            C.SOURCE: "review",
            C.PRODUCT_ID: np.arange(200) % 3 + 1,
            C.CREATED_AT: pd.Series(pd.NaT, index=range(200), dtype="datetime64[ns]"),
        }
    )
    hold = holdout_mask(corpus, 0.2, seed=0)
    assert 20 < hold.sum() < 60
    assert weekly_counts(corpus, np.zeros(200, dtype=int), 1).empty


@pytest.mark.slow
def test_the_real_clothing_reviews_export_trains_feedback(tmp_path, mlflow_tmp):
    folder = datasets_dir() / "clothing_reviews"
    if not (folder / CLOTHING).is_file():
        pytest.skip(f"{folder / CLOTHING} not present")
    mapping = tmp_path / "clothing.yaml"
    mapping.write_text(
        "tables:\n  reviews:\n"
        f"    file: {CLOTHING}\n"
        "    columns: {product_id: Clothing ID, rating: Rating, title: Title, body: Review Text}\n"
    )
    store, tables, report = import_store(folder, tmp_path / "store", mapping=mapping)
    assert report.texts_only and len(tables[C.REVIEWS]) == 1000
    assert any("42 of 1000 rows have no text" in n for n in report.notes)
    assert any("undated" in n for n in report.notes)
    page = tmp_path / "r.html"
    res = runner.invoke(app, ["train", "feedback", "--world", str(store), "--report", str(page)])
    assert res.exit_code == 0, res.output
    html = page.read_text()
    assert "958 reviews (undated" in html and "Rising themes" not in html
    assert "product 1" in html  # Clothing IDs read as product numbers
