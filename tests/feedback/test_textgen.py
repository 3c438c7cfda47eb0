"""The world writes review and return text with planted themes and a ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.feedback import themes as T
from ppx.feedback.corpus import TEXT, attach_truth, build_corpus
from ppx.feedback.textgen import compose_texts


def test_every_text_has_a_planted_theme_and_language(tiny_world):
    world, _ = tiny_world
    corpus = attach_truth(build_corpus(world.tables), world.truth[C.TRUTH_FEEDBACK])
    assert corpus[C.THEME].notna().all()
    assert set(corpus[C.THEME]) <= {*T.THEME_NAMES, T.NOISE}
    assert set(corpus[C.LANGUAGE]) == set(T.LANGUAGES)
    # Praise comes with high ratings, complaints with low ones.
    rv = corpus[corpus[C.SOURCE] == "review"]
    assert rv.loc[rv[C.THEME] == "great_taste", C.RATING].mean() >= 4
    assert rv.loc[rv[C.THEME] == "stale_beans", C.RATING].mean() < 3.5
    # Some returns have no comment; every review has a body.
    assert world.tables[C.RETURNS][C.RETURN_COMMENT].isna().any()
    assert world.tables[C.REVIEWS][C.REVIEW_BODY].notna().all()


def test_emerging_themes_start_mid_period_on_their_product(tiny_world):
    world, _ = tiny_world
    truth = world.truth[C.TRUTH_FEEDBACK]
    emerging = world.truth[C.TRUTH_FEEDBACK_EMERGING]
    assert len(emerging) == 3
    for e in emerging.itertuples():
        on = truth[(truth[C.PRODUCT_ID] == e.product_id) & (truth[C.THEME] == e.theme)]
        before = on[on[C.CREATED_AT] < e.started_at]
        after = on[on[C.CREATED_AT] >= e.started_at]
        assert before.empty
        assert e.theme != "grinder_breaks" or len(after) > 0


def test_text_is_deterministic_and_varied():
    rng = np.random.default_rng(0)
    theme = np.full(200, T.THEME_NAMES.index("runs_small"))
    lang = np.zeros(200, dtype=int)
    _, body = compose_texts(theme, lang, rng)
    _, again = compose_texts(theme, lang, np.random.default_rng(0))
    assert list(body) == list(again)
    assert len(set(body)) > 20  # paraphrases x openers x closers


def test_corpus_names_the_missing_text_columns():
    import pytest

    from ppx.feedback.corpus import FeedbackDataError

    reviews = pd.DataFrame({C.REVIEW_ID: [1], C.RATING: [5]})
    with pytest.raises(FeedbackDataError, match="body"):
        build_corpus({C.REVIEWS: reviews})


def test_corpus_joins_title_and_body():
    reviews = pd.DataFrame(
        {
            C.REVIEW_ID: [1, 2],
            C.CUSTOMER_ID: [1, 1],
            C.PRODUCT_ID: [1, 2],
            C.ORDER_ID: [1, 2],
            C.CREATED_AT: pd.to_datetime(["2025-01-01", "2025-01-02"]),
            C.RATING: [2, 5],
            C.REVIEW_TITLE: ["Too tight", None],
            C.REVIEW_BODY: ["runs small", "lovely"],
        }
    )
    corpus = build_corpus({C.REVIEWS: reviews})
    assert corpus[TEXT].tolist() == ["Too tight. runs small", "lovely"]
