"""The catalogue: products with latent taste vectors and a planted successor each."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C

CATEGORY_SPEC = {
    # category: (count, price range, weight range kg, consumable, replenish days, subscribable)
    "beans": (48, (12, 26), (0.25, 1.0), True, (21, 35), True),
    "ground": (24, (11, 22), (0.25, 1.0), True, (21, 35), True),
    "tea": (20, (8, 20), (0.1, 0.4), True, (30, 50), True),
    "equipment": (20, (60, 650), (1.5, 9.0), False, None, False),
    "accessories": (24, (6, 45), (0.1, 1.2), False, None, False),
    "merch": (12, (15, 40), (0.2, 0.8), False, None, False),
}
TASTE_DIM = 6


def make_products(rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Catalogue with latent item vectors and a planted 'successor' for each product."""
    rows = []
    for cat, (n, price, weight, consumable, repl, sub) in CATEGORY_SPEC.items():
        for i in range(n):
            rows.append(
                {
                    C.CATEGORY: cat,
                    C.NAME: f"{cat.title()} #{i + 1:02d}",
                    C.PRICE: round(float(rng.uniform(*price)), 2),
                    C.WEIGHT_KG: round(float(rng.uniform(*weight)), 3),
                    C.IS_CONSUMABLE: consumable
                    or (cat == "accessories" and i < 6),  # filters and cleaning tabs
                    C.REPLENISH_DAYS: float(rng.uniform(*repl))
                    if repl
                    else (60.0 if cat == "accessories" and i < 6 else np.nan),
                    C.SUBSCRIBABLE: sub,
                }
            )
    products = pd.DataFrame(rows)
    n = len(products)
    products.insert(0, C.PRODUCT_ID, np.arange(1, n + 1, dtype=np.int64))
    products[C.IN_STOCK] = rng.random(n) > 0.05
    emb = rng.normal(0, 1, size=(n, TASTE_DIM))
    # Successor: equipment leads to beans/accessories, consumables lead within family.
    cats = products[C.CATEGORY].to_numpy()
    successor = np.empty(n, dtype=np.int64)
    for j in range(n):
        pool_cat = {"equipment": "accessories", "accessories": "beans", "merch": "beans"}.get(
            cats[j], cats[j] if rng.random() < 0.5 else "accessories"
        )
        pool = np.flatnonzero((cats == pool_cat) & (np.arange(n) != j))
        successor[j] = rng.choice(pool)
    return products, emb, successor
