"""One frame of customer texts from the canonical tables: reviews and return comments.

Columns: ``source`` (review / return), ``text_id`` (review_id / return_id),
``customer_id``, ``product_id``, ``created_at`` (review time or return request time),
``rating`` (reviews; NaN for returns), ``reason`` (returns), ``reason_label`` (returns of
an imported store: the brand's own words for the reason, "Too small", where ``reason``
holds ppx's code), ``refund_amount`` (returns) and ``text`` (review title and body
joined; the return comment). Rows without any text are dropped: there is nothing to read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C

TEXT = "text"


class FeedbackDataError(ValueError):
    """The tables have no text to mine (names the table and column)."""


def _join_title(title: pd.Series, body: pd.Series) -> pd.Series:
    title = title.fillna("").astype(str).str.strip()
    body = body.fillna("").astype(str).str.strip()
    # A title is a sentence of its own; keep it unless the body repeats it.
    sep = np.where(title.str.endswith((".", "!", "?", "。", "！")), " ", ". ")
    joined = title + pd.Series(sep, index=title.index) + body
    return joined.where(title != "", body).where(body != "", title)


def build_corpus(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Reviews and return comments as one frame, oldest first."""
    parts = []
    rv = tables.get(C.REVIEWS)
    if rv is not None and C.REVIEW_BODY in rv:
        title = rv[C.REVIEW_TITLE] if C.REVIEW_TITLE in rv else pd.Series("", index=rv.index)
        parts.append(
            pd.DataFrame(
                {
                    C.SOURCE: "review",
                    C.TEXT_ID: rv[C.REVIEW_ID].to_numpy(np.int64),
                    C.CUSTOMER_ID: rv[C.CUSTOMER_ID].to_numpy(np.int64),
                    C.PRODUCT_ID: rv[C.PRODUCT_ID].to_numpy(np.int64),
                    C.CREATED_AT: pd.to_datetime(rv[C.CREATED_AT]).to_numpy(),
                    C.RATING: rv[C.RATING].to_numpy(float),
                    C.REASON: None,
                    C.REASON_LABEL: None,
                    C.REFUND_AMOUNT: np.nan,
                    TEXT: _join_title(title, rv[C.REVIEW_BODY]).to_numpy(object),
                }
            )
        )
    rt = tables.get(C.RETURNS)
    if rt is not None and C.RETURN_COMMENT in rt:
        parts.append(
            pd.DataFrame(
                {
                    C.SOURCE: "return",
                    C.TEXT_ID: rt[C.RETURN_ID].to_numpy(np.int64),
                    C.CUSTOMER_ID: rt[C.CUSTOMER_ID].to_numpy(np.int64),
                    C.PRODUCT_ID: rt[C.PRODUCT_ID].to_numpy(np.int64),
                    C.CREATED_AT: pd.to_datetime(rt[C.REQUESTED_AT]).to_numpy(),
                    C.RATING: np.nan,
                    C.REASON: rt[C.REASON].to_numpy(object),
                    C.REASON_LABEL: (
                        rt[C.REASON_LABEL]
                        .astype(object)
                        .where(rt[C.REASON_LABEL].notna(), None)
                        .to_numpy(object)
                        if C.REASON_LABEL in rt
                        else None
                    ),
                    C.REFUND_AMOUNT: rt[C.REFUND_AMOUNT].to_numpy(float),
                    TEXT: rt[C.RETURN_COMMENT].fillna("").astype(str).str.strip().to_numpy(object),
                }
            )
        )
    if not parts:
        raise FeedbackDataError(
            f"no text to mine: table {C.REVIEWS} has no column {C.REVIEW_BODY!r} and table "
            f"{C.RETURNS} has no column {C.RETURN_COMMENT!r}"
        )
    corpus = pd.concat(parts, ignore_index=True)
    corpus = corpus[corpus[TEXT].str.len() > 0]
    if corpus.empty:
        raise FeedbackDataError(
            f"no text to mine: every {C.REVIEWS}.{C.REVIEW_BODY} and "
            f"{C.RETURNS}.{C.RETURN_COMMENT} is empty"
        )
    return corpus.sort_values([C.CREATED_AT, C.SOURCE, C.TEXT_ID], kind="stable").reset_index(
        drop=True
    )


def attach_truth(corpus: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Add the planted ``theme`` and ``language`` (world only) by (source, text_id)."""
    t = truth[[C.SOURCE, C.TEXT_ID, C.THEME, C.LANGUAGE]]
    out = corpus.merge(t, on=[C.SOURCE, C.TEXT_ID], how="left", validate="one_to_one")
    return out
