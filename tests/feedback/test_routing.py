"""The default model routes each text to the sentence model of its language and keeps
one set of themes per model, numbered across models (no sentence model is run here:
the vectors are made up)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ppx.feedback.discover import ThemeParams, fit_themes
from ppx.feedback.embed import embedder_version
from ppx.feedback.routing import CorpusVectors, Route, route_texts, routes_for
from ppx.feedback.tagger import FeedbackModel, fit_model

DIM = 384


def test_the_default_sends_english_to_minilm_and_japanese_and_russian_to_e5():
    routes = routes_for("auto")
    assert [(r.embedder, r.languages, r.fit_all) for r in routes] == [
        ("minilm", ("en",), True),
        ("e5", ("ja", "ru"), False),
    ]
    parts = route_texts(["It broke.", "壊れました", "Сломалась", "Hola, se rompió"], routes)
    assert parts.tolist() == [0, 1, 1, 0]  # another Latin-script language: the English part
    assert routes_for("minilm") == [Route("minilm", ("*",))]
    assert route_texts(["壊れました"], routes_for("e5")).tolist() == [0]
    with pytest.raises(ValueError, match="unknown 'bert'"):
        routes_for("bert")


def _blobs(rng, centres, n, noise=0.05):
    """``n`` unit vectors around each centre, and the centre index of each."""
    x = np.repeat(centres, n, axis=0) + noise * rng.normal(size=(len(centres) * n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), np.repeat(
        np.arange(len(centres)), n
    )


def _corpus(seed=0):
    """English texts in three themes (MiniLM space), plus Japanese / Russian texts that
    MiniLM puts in one blob of their own and e5 separates into two themes."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(DIM, 8)))[0].T  # orthonormal directions
    en, en_theme = _blobs(rng, basis[:3], 60)
    other_minilm, _ = _blobs(rng, basis[3:4], 80)  # MiniLM: one language blob
    other_e5, other_theme = _blobs(rng, basis[4:6], 40)  # e5: two themes
    texts = [f"english text {i}" for i in range(180)] + [
        ("グラインダー" if i % 2 else "Кофемолка") + f" {i}" for i in range(80)
    ]
    parts = np.r_[np.zeros(180, int), np.ones(80, int)]
    emb = np.vstack([en, other_e5])
    minilm_all = np.vstack([en, other_minilm])
    truth = np.r_[en_theme, 10 + other_theme]
    return texts, CorpusVectors(emb, parts, {0: minilm_all}), truth


def test_each_part_has_its_own_themes_numbered_across_parts(tmp_path):
    texts, vectors, truth = _corpus()
    routes = routes_for("auto")
    assert route_texts(texts, routes).tolist() == vectors.parts.tolist()
    ratings = np.where(np.arange(len(texts)) % 2, 5.0, 1.0)
    params = ThemeParams(pca_dim=8, min_cluster_size=10, min_samples=4)
    model = fit_model(texts, ratings, np.ones(len(texts), bool), vectors, routes, params)
    en, other = model.parts
    # MiniLM's part was clustered with the other languages' blob too, and dropped it:
    # its themes are the three English ones
    assert en.themes.n_themes == 3 and en.offset == 0
    assert other.themes.n_themes == 2 and other.offset == 3
    labels, _ = model.assign(vectors.emb, vectors.parts)
    # every planted theme is one discovered theme (a few edge texts are outside every
    # theme's radius: the radius holds 95% of a theme's own members)
    found = [np.bincount(labels[(truth == k) & (labels >= 0)]).argmax() for k in np.unique(truth)]
    assert sorted(found) == [0, 1, 2, 3, 4]
    for k, f in zip(np.unique(truth), found, strict=True):
        assert set(labels[truth == k]) <= {f, -1} and (labels[truth == k] == f).mean() > 0.85
    assert model.themes.languages() == ["en"] * 3 + ["ja+ru"] * 2
    assert len(model.themes.names()) == 5
    # saved and loaded: the same parts, sentence models checked against installed ones
    back = FeedbackModel.load(model.save(tmp_path / "fm.json"))
    assert back.embedder == f"{embedder_version('minilm')}+{embedder_version('e5')}"
    assert back.assign(vectors.emb, vectors.parts)[0].tolist() == labels.tolist()
    tags = back.tag_embeddings(vectors.emb, vectors.parts)
    assert tags["theme_id"].tolist() == labels.tolist()
    # a text is compared with its own part's themes only
    sims = back.similarities(vectors.emb[:1], np.array([0]))
    assert (sims[0, 3:] == -2).all()


def test_a_part_with_too_few_texts_has_no_themes_and_neutral_sentiment():
    texts, vectors, _ = _corpus()
    keep = np.r_[np.arange(180), [180, 181]]  # two non-English texts only
    sub = CorpusVectors(vectors.emb[keep], vectors.parts[keep], {0: vectors.fit_vectors[0][keep]})
    params = ThemeParams(pca_dim=8, min_cluster_size=10, min_samples=4)
    ratings = np.where(np.arange(len(keep)) % 2, 5.0, 1.0)
    model = fit_model(
        [texts[i] for i in keep], ratings, np.ones(len(keep), bool), sub, routes_for("auto"), params
    )
    assert model.parts[1].themes.n_themes == 0
    labels, _ = model.assign(sub.emb, sub.parts)
    assert (labels[-2:] == -1).all()
    assert model.p_positive(sub.emb[-2:], sub.parts[-2:]).tolist() == [0.5, 0.5]


def test_a_single_model_file_loads_as_one_part(tmp_path):
    texts, vectors, _ = _corpus()
    themes = fit_themes(vectors.emb[:180], texts[:180], ThemeParams(pca_dim=8, min_cluster_size=10))
    old = {
        "themes": themes.to_dict(),
        "sentiment_coef": np.zeros(DIM).tolist(),
        "sentiment_intercept": 0.0,
        "negative_below": 0.35,
        "positive_above": 0.65,
        "embedder": embedder_version("minilm"),
    }
    (tmp_path / "old.json").write_text(json.dumps(old))
    model = FeedbackModel.load(tmp_path / "old.json")
    assert [p.languages for p in model.parts] == [("*",)]
    labels, _ = model.assign(vectors.emb[:180], np.zeros(180, int))
    assert labels.tolist() == themes.assign(vectors.emb[:180])[0].tolist()


def test_japanese_theme_words_are_split_by_script():
    from ppx.feedback.discover import _TOKEN

    assert _TOKEN.findall("グラインダーが1か月で壊れました") == [
        "グラインダー",
        "月",
        "壊",
        "れました",
    ]
    # text without Japanese: the same words as scikit-learn's default pattern
    assert _TOKEN.findall("I didn't like it, 5'7 and 120 lbs") == [
        "didn",
        "like",
        "it",
        "and",
        "120",
        "lbs",
    ]
