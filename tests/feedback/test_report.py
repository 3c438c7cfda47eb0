"""The feedback report names a theme that costs stars only when the gap is real."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.feedback.corpus import TEXT
from ppx.feedback.discover import ThemeModel
from ppx.feedback.report import (
    MIN_STAR_GAP,
    MIN_THEME_REVIEWS,
    ReportData,
    render_html,
    standout_theme,
    theme_impact,
)


def _corpus(themed: list[int], others: list[int]) -> tuple[pd.DataFrame, np.ndarray]:
    """Undated reviews: theme 0 with ratings ``themed``, theme 1 with ``others``."""
    ratings = np.array(themed + others, dtype=float)
    labels = np.array([0] * len(themed) + [1] * len(others))
    corpus = pd.DataFrame(
        {
            C.SOURCE: "review",
            C.TEXT_ID: np.arange(1, len(ratings) + 1),
            C.PRODUCT_ID: 1,
            C.CREATED_AT: pd.Series(pd.NaT, index=range(len(ratings)), dtype="datetime64[ns]"),
            C.RATING: ratings,
            C.REFUND_AMOUNT: np.nan,
            TEXT: "some words",
            "theme_id": labels,
        }
    )
    return corpus, labels


def _page(corpus: pd.DataFrame, labels: np.ndarray) -> str:
    themes = ThemeModel(
        mean=np.zeros(2),
        components=np.eye(2),
        centroids=np.eye(2),
        min_similarity=np.zeros(2),
        group_theme=np.array([0, 1]),
        words=[["runs", "small", "tight"], ["love", "soft", "colour"]],
        quotes=[["Runs small."], ["Love it."]],
        sizes=[int((labels == 0).sum()), int((labels == 1).sum())],
    )
    impact = theme_impact(corpus, labels, 2)
    alerts = pd.DataFrame(columns=["q_value", C.THEME, C.PRODUCT_ID])
    data = ReportData(corpus, themes, pd.DataFrame(), alerts, impact, {})
    return " ".join(render_html(data).split())


def _ratings(rng, n: int, mean_share: dict[int, float]) -> list[int]:
    stars, p = zip(*mean_share.items(), strict=True)
    return rng.choice(stars, n, p=p).tolist()


def _exactly(n: int, share: dict[int, float]) -> list[int]:
    """``n`` ratings with exactly these shares of each star (shuffled)."""
    out = [star for star, p in share.items() for _ in range(round(n * p))]
    return np.random.default_rng(n).permutation(out).tolist()


def test_a_tenth_of_a_star_is_not_named_as_the_theme_that_costs_stars():
    # 4.1 against 4.2 (the clothing reviews' case): too small to matter
    themed = _exactly(300, {5: 0.45, 4: 0.35, 3: 0.12, 2: 0.05, 1: 0.03})  # mean 4.14
    others = _exactly(700, {5: 0.5, 4: 0.33, 3: 0.11, 2: 0.04, 1: 0.02})  # mean 4.25
    corpus, labels = _corpus(themed, others)
    impact = theme_impact(corpus, labels, 2)
    assert -0.15 < impact.loc[0, "rating_impact"] < 0  # it does average lower ...
    assert standout_theme(impact) is None  # ... but not by a meaningful, clear gap
    page = _page(corpus, labels)
    assert "costs the most stars" not in page and "No theme stands out" in page
    assert f"{MIN_STAR_GAP:.1f} stars" in page and "Welch" in page


def test_a_large_clear_gap_names_the_theme_with_its_interval():
    rng = np.random.default_rng(1)
    corpus, labels = _corpus(
        _ratings(rng, 80, {1: 0.5, 2: 0.3, 3: 0.2}), _ratings(rng, 400, {4: 0.4, 5: 0.6})
    )
    impact = theme_impact(corpus, labels, 2)
    best = standout_theme(impact)
    assert best is not None and int(best[C.THEME]) == 0
    assert best["gap_high"] < -MIN_STAR_GAP  # the whole interval is below the bar here
    page = _page(corpus, labels)
    assert "costs the most stars is <b>runs / small / tight</b>" in page
    assert "95% interval" in page


def test_a_large_gap_on_too_few_reviews_is_not_named():
    corpus, labels = _corpus([1, 2, 1, 2, 1] * 2, [5, 4] * 200)
    impact = theme_impact(corpus, labels, 2)
    assert impact.loc[0, "reviews"] == 10 < MIN_THEME_REVIEWS
    assert standout_theme(impact) is None
    assert "No theme stands out" in _page(corpus, labels)


def test_an_imported_stores_return_labels_show_in_the_brands_words():
    corpus, labels = _corpus([2, 3, 2, 1] * 5, [5, 4] * 20)
    returns = corpus.iloc[:7].assign(
        **{
            C.SOURCE: "return",
            C.RATING: np.nan,
            C.REASON: ["changed_mind"] * 5 + ["damaged", "other"],
            C.REASON_LABEL: ["Too small"] * 3 + ["Too big"] * 2 + ["Arrived broken", None],
        }
    )
    corpus = pd.concat([corpus, returns], ignore_index=True)
    labels = np.concatenate([labels, np.zeros(len(returns), dtype=int)])
    impact = theme_impact(corpus, labels, 2)
    assert impact.loc[0, "return_labels"] == "Too small (3), Too big (2), Arrived broken (1)"
    assert impact.loc[1, "return_labels"] == ""
    page = _page(corpus, labels)
    assert "<th>return reasons</th>" in page and "Too small (3), Too big (2)" in page
    # a world's returns carry no labels: no such column
    plain = corpus.drop(columns=[C.REASON_LABEL])
    assert "<th>return reasons</th>" not in _page(plain, labels)
