"""Tiny exports of a reviews app and of return comments, written by the tests that read them.

The column names are a reviews app's own, not canonical ones, so the import needs a
column-mapping YAML (:data:`REVIEWS_MAPPING`). Texts come from a few complaint and praise
templates, with ratings that follow them, over 24 weeks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REVIEWS_FILE = "Reviews export.csv"
RETURNS_FILE = "return comments.csv"

TOPICS = {
    # topic: (ratings, texts)
    "small": (
        (1, 2),
        (
            "Runs very small, I had to send it back for two sizes up.",
            "Way too tight across the shoulders, order a size bigger.",
            "The sizing is off, it runs small and feels tight everywhere.",
            "Too small and too tight, the size chart is wrong.",
        ),
    ),
    "late": (
        (1, 2, 3),
        (
            "Shipping took three weeks, the parcel arrived very late.",
            "Delivery was slow and the package came long after the promised date.",
            "It arrived late, the courier lost it for a week.",
            "Slow shipping, waited ages for my order to arrive.",
        ),
    ),
    "love": (
        (5,),
        (
            "Love it! Beautiful colour and the fabric is so soft.",
            "Gorgeous and comfortable, I get compliments every time I wear it.",
            "Absolutely love this, soft fabric and a lovely colour.",
            "Beautiful piece, so comfortable, I bought it in two colours.",
        ),
    ),
}

REVIEWS_MAPPING = f"""\
tables:
  reviews:
    file: {REVIEWS_FILE}
    columns:
      review_id: Review ID
      product_id: Product
      customer_id: Customer Email
      created_at: Submitted
      rating: Stars
      title: Headline
      body: Review
"""


def reviews_frame(n: int = 150, seed: int = 0, blank: int = 4) -> pd.DataFrame:
    """A reviews app's export: ``blank`` rows have a rating but neither headline nor text."""
    rng = np.random.default_rng(seed)
    topics = list(TOPICS)
    rows = []
    start = pd.Timestamp("2026-03-02")
    for i in range(n):
        topic = topics[i % len(topics)]
        ratings, texts = TOPICS[topic]
        rows.append(
            {
                "Review ID": f"R-{1000 + i}",
                "Product": f"SKU-{'ABC'[int(rng.integers(0, 3))]}",
                "Customer Email": f"shopper{int(rng.integers(0, 60))}@example.com",
                "Submitted": (
                    start + pd.Timedelta(hours=int(rng.integers(0, 24 * 7 * 24)))
                ).strftime("%Y-%m-%d %H:%M"),
                "Stars": int(rng.choice(ratings)),
                "Headline": "",
                "Review": texts[int(rng.integers(0, len(texts)))],
            }
        )
    df = pd.DataFrame(rows)
    df.loc[df.index[-blank:] if blank else [], ["Headline", "Review"]] = ""
    return df


def write_reviews(folder: Path, frame: pd.DataFrame | None = None) -> tuple[Path, Path]:
    """The export CSV and its mapping YAML in ``folder``; returns (folder, mapping)."""
    folder.mkdir(parents=True, exist_ok=True)
    (frame if frame is not None else reviews_frame()).to_csv(folder / REVIEWS_FILE, index=False)
    mapping = folder / "mapping.yaml"
    mapping.write_text(REVIEWS_MAPPING)
    return folder, mapping


def write_return_comments(
    folder: Path, n: int = 60, reasons: list[str] | None = None
) -> tuple[Path, Path]:
    """Return comments with order-less columns: a product name, a date and the comment;
    with ``reasons``, also the brand's own reason label per row (cycled), mapped."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = TOPICS["small"][1] + TOPICS["late"][1]
    frame = pd.DataFrame(
        {
            "Item": [f"Linen shirt {'SML'[i % 3]}" for i in range(n)],
            "Requested": [f"2026-04-{1 + i % 28:02d}" for i in range(n)],
            "Why": [texts[i % len(texts)] for i in range(n)],
        }
    )
    columns = "product_id: Item, requested_at: Requested, comment: Why"
    if reasons is not None:
        frame["Return reason"] = [reasons[i % len(reasons)] for i in range(n)]
        columns += ", reason: Return reason"
    frame.to_csv(folder / RETURNS_FILE, index=False)
    mapping = folder / "returns_mapping.yaml"
    mapping.write_text(
        f"tables:\n  returns:\n    file: {RETURNS_FILE}\n    columns: {{{columns}}}\n"
    )
    return folder, mapping


CATALOGUE_MAPPING = """\
  products:
    file: catalogue.csv
    columns: {product_id: SKU, name: Product name, category: Category}
  customers:
    file: customers.csv
    columns: {customer_id: Email, region: Country}
"""


def write_catalogue(folder: Path, frame: pd.DataFrame | None = None) -> tuple[Path, Path]:
    """A reviews export beside the brand's product catalogue and customer list (no orders).

    The catalogue names SKU-A and SKU-B only (SKU-C is reviewed but not listed); the
    customer list holds the first 40 of the 60 shoppers.
    """
    folder, mapping = write_reviews(folder, frame)
    pd.DataFrame(
        {
            "SKU": ["SKU-A", "SKU-B", "SKU-Z"],
            "Product name": ["Linen shirt", "Wrap dress", "Gift card"],
            "Category": ["Tops", "Dresses", "Gifts"],
        }
    ).to_csv(folder / "catalogue.csv", index=False)
    pd.DataFrame(
        {
            "Email": [f"shopper{i}@example.com" for i in range(40)],
            "Country": ["FR", "DE"] * 20,
        }
    ).to_csv(folder / "customers.csv", index=False)
    mapping.write_text(REVIEWS_MAPPING + CATALOGUE_MAPPING)
    return folder, mapping
