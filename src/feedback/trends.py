"""Each theme's weekly count and share of a product's texts.

Share, not count: a product that sells more gets more reviews of every kind; what a
product team needs is the fraction of what customers say that is about a theme.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C

WEEK = "week"
COUNT = "count"
TOTAL = "total"
SHARE = "share"


def week_of(ts: pd.Series) -> pd.Series:
    """Monday 00:00 of each timestamp's week."""
    ts = pd.to_datetime(ts)
    return (ts - pd.to_timedelta(ts.dt.dayofweek, unit="D")).dt.normalize()


def weekly_counts(corpus: pd.DataFrame, labels: np.ndarray, n_themes: int) -> pd.DataFrame:
    """Rows: product x week x theme with ``count``, the product-week ``total`` and ``share``.

    Every week between the first and last text appears for every product that has
    texts (zeros included), so a rolling window never skips a quiet week. Undated texts
    (a reviews export without dates) have no week: they are left out, and a corpus
    without any date gives no rows.
    """
    dated = corpus[C.CREATED_AT].notna().to_numpy()
    if not dated.all():
        corpus, labels = corpus[dated], np.asarray(labels)[dated]
    if not len(corpus):
        return pd.DataFrame(columns=[C.PRODUCT_ID, WEEK, C.THEME, COUNT, TOTAL, SHARE])
    df = pd.DataFrame(
        {
            C.PRODUCT_ID: corpus[C.PRODUCT_ID].to_numpy(),
            WEEK: week_of(corpus[C.CREATED_AT]).to_numpy(),
            C.THEME: np.asarray(labels),
        }
    )
    weeks = pd.date_range(df[WEEK].min(), df[WEEK].max(), freq="7D")
    products = np.sort(df[C.PRODUCT_ID].unique())
    idx = pd.MultiIndex.from_product([products, weeks], names=[C.PRODUCT_ID, WEEK])
    total = df.groupby([C.PRODUCT_ID, WEEK]).size().reindex(idx, fill_value=0)
    themed = df[df[C.THEME] >= 0]
    counts = (
        themed.groupby([C.PRODUCT_ID, WEEK, C.THEME])
        .size()
        .unstack(C.THEME)
        .reindex(index=idx, columns=range(n_themes))
        .fillna(0)
        .astype(np.int64)
    )
    counts.columns.name = C.THEME
    if n_themes == 0:
        return pd.DataFrame(columns=[C.PRODUCT_ID, WEEK, C.THEME, COUNT, TOTAL, SHARE])
    out = counts.stack().rename(COUNT).reset_index()
    out[TOTAL] = total.reindex(pd.MultiIndex.from_frame(out[[C.PRODUCT_ID, WEEK]])).to_numpy()
    out[SHARE] = np.where(out[TOTAL] > 0, out[COUNT] / np.maximum(out[TOTAL], 1), 0.0)
    return out


def count_cube(weekly: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(products, weeks, counts[p, theme, w], totals[p, w]) as dense arrays."""
    products = np.sort(weekly[C.PRODUCT_ID].unique())
    weeks = np.sort(weekly[WEEK].unique())
    themes = int(weekly[C.THEME].max()) + 1 if len(weekly) else 0
    pi = np.searchsorted(products, weekly[C.PRODUCT_ID].to_numpy())
    wi = np.searchsorted(weeks, weekly[WEEK].to_numpy())
    ti = weekly[C.THEME].to_numpy(np.int64)
    counts = np.zeros((len(products), themes, len(weeks)), dtype=np.int64)
    counts[pi, ti, wi] = weekly[COUNT].to_numpy()
    totals = np.zeros((len(products), len(weeks)), dtype=np.int64)
    totals[pi, wi] = weekly[TOTAL].to_numpy()
    return products, weeks, counts, totals
