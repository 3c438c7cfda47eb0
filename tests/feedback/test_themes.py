"""Themes on a tiny world: planted themes are recovered, new texts are tagged, the
report renders, and the sentence model loads with no network."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from ppx.data import columns as C
from ppx.feedback.corpus import TEXT, attach_truth, build_corpus
from ppx.feedback.embed import TfidfEmbedder
from ppx.feedback.routing import embed_corpus, routes_for
from ppx.models.feedback.config import tiny
from ppx.models.feedback.evaluate import best_match, theme_scores
from ppx.models.feedback.train import analyse, report_for

# Embeds the tiny world's ~600 texts with MiniLM once per module: minutes on a busy
# 2-core machine.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def analysed(tiny_world):
    world, _ = tiny_world
    corpus = attach_truth(build_corpus(world.tables), world.truth[C.TRUTH_FEEDBACK])
    corpus.attrs["product_names"] = dict(
        zip(world.tables[C.PRODUCTS][C.PRODUCT_ID], world.tables[C.PRODUCTS][C.NAME], strict=True)
    )
    vectors = embed_corpus(corpus[TEXT].tolist(), routes_for(tiny().embedder))
    return corpus, vectors.emb, analyse(corpus, vectors, tiny())


def _chance_f1(truth, labels, seed=0):
    """The same cluster sizes, members drawn at random."""
    rng = np.random.default_rng(seed)
    return theme_scores(truth, rng.permutation(labels))["f1"]


def test_planted_themes_recovered_far_better_than_chance(analysed):
    corpus, emb, an = analysed
    truth = corpus[C.THEME].to_numpy(object)
    labels = an.corpus["theme_id"].to_numpy()
    scores = theme_scores(truth, labels)
    assert scores["f1"] > 2 * _chance_f1(truth, labels)
    assert scores["ari_themed"] > 0.3
    # Each language's texts are grouped by theme, Japanese and Russian too.
    for lg in ("en", "ja", "ru"):
        assert an.metrics[f"theme_ari_themed_{lg}"] > 0.3, (lg, an.metrics)
    # The sentence model beats TF-IDF with the same clusterer on the same texts.
    from ppx.feedback.discover import ThemeParams, fit_themes

    tf = TfidfEmbedder().fit_transform(corpus[TEXT].tolist())
    tf_labels, _ = fit_themes(tf, corpus[TEXT].tolist(), ThemeParams(pca_dim=100)).assign(tf)
    assert scores["f1"] > theme_scores(truth, tf_labels)["f1"]
    # Sentiment learnt from ratings ranks held-out reviews well.
    assert an.metrics["roc_auc"] > 0.8


def test_a_new_complaint_is_tagged_with_its_theme_and_sentiment(analysed):
    corpus, emb, an = analysed
    truth = corpus[C.THEME].to_numpy(object)
    grinder = (
        best_match(truth, an.corpus["theme_id"].to_numpy())
        .set_index("theme")
        .loc["late_delivery", "cluster"]
    )
    tags = an.model.tag(
        [
            "My parcel arrived a week after the promised date, very late delivery.",
            "Delicious coffee, rich and smooth, lovely aroma.",
        ]
    )
    assert tags.loc[0, "theme_id"] == grinder
    assert tags.loc[0, "sentiment"] == "negative"
    assert tags.loc[1, "sentiment"] == "positive"
    assert tags.loc[0, "p_positive"] < tags.loc[1, "p_positive"]


def test_reason_codes_name_the_words_that_carry_the_sentiment(analysed):
    _, _, an = analysed
    # Praise and a complaint in one text: p(positive) is not saturated, so removing a
    # word of either half moves it visibly, in opposite directions.
    text = "Lovely aroma and a delicious flavour, but the motor stopped working."
    (reasons,) = an.model.reason_codes([text], k=20)
    assert len(reasons) >= 5
    mags = [abs(r["contribution"]) for r in reasons]
    assert mags == sorted(mags, reverse=True)
    assert all(r["value"] in text.lower() for r in reasons)
    by_word = {r["value"]: r["contribution"] for r in reasons}
    praise = max(by_word.get(w, -1) for w in ("lovely", "aroma", "delicious", "flavour"))
    complaint = min(by_word.get(w, 1) for w in ("motor", "stopped", "working"))
    assert praise > 0 > complaint
    top = reasons[0]
    assert top["direction"] == ("raises" if top["contribution"] > 0 else "lowers")
    # The contribution is exactly what removing the word does to p(positive).
    p = an.model.tag([text])["p_positive"][0]
    word = top["value"]
    cut = " ".join(w for w in text.split() if w.strip(",.").lower() != word)
    without = an.model.tag([cut])["p_positive"][0]
    assert p - without == pytest.approx(top["contribution"], abs=0.02)


def test_japanese_words_are_split_by_script():
    from ppx.feedback.tagger import word_spans

    text = "グラインダーが壊れました。 Very bad"
    assert [text[a:b] for a, b in word_spans(text)] == [
        "グラインダー",
        "が",
        "壊",
        "れました",
        "Very",
        "bad",
    ]


def test_report_is_self_contained_and_quotes_customers(analysed, tmp_path):
    corpus, emb, an = analysed
    path = report_for(an, tmp_path / "feedback.html")
    page = path.read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert page.count("<svg") >= an.model.themes.n_themes
    assert an.model.themes.quotes[0][0].split()[0] in page


@pytest.mark.browser
def test_report_renders_in_chromium(analysed, tmp_path):
    from ppx.explain.browser import find_chromium, render

    if find_chromium() is None:
        pytest.skip("chromium not installed")
    corpus, emb, an = analysed
    seen = render(report_for(an, tmp_path / "feedback.html"))
    assert seen.title == "What customers say"
    assert seen.console_errors == []
    assert seen.external_requests == []
    assert seen.ink_fraction() > 0.02


def test_sentence_model_loads_and_embeds_with_no_network():
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from ppx.feedback.embed import embed_texts\n"
        "e = embed_texts(['the grinder broke', 'the grinder stopped working', 'lovely taste'])\n"
        "print(round(float(e[0] @ e[1]), 3), round(float(e[0] @ e[2]), 3))\n"
        # the default routes Japanese and Russian to the packaged e5 model, offline too
        "from ppx.feedback.routing import embed_routed, routes_for\n"
        "v, parts = embed_routed(['壊れました', 'сломалась', 'broke'], routes_for('auto'))\n"
        "assert parts.tolist() == [1, 1, 0] and abs(float(v[0] @ v[0]) - 1) < 1e-4\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    same, other = map(float, out.stdout.split())
    assert same > other + 0.2


def test_japanese_and_russian_texts_are_tagged_with_their_own_languages_themes(analysed):
    _, _, an = analysed
    tagged = an.corpus
    langs = an.model.themes.languages()
    for lg in ("ja", "ru"):
        rows = tagged[(tagged[C.LANGUAGE] == lg) & (tagged["theme_id"] >= 0)].head(5)
        assert len(rows), lg
        # the served tagger routes the text as training did, to the same theme
        tags = an.model.tag(rows[TEXT].tolist())
        assert tags["theme_id"].tolist() == rows["theme_id"].tolist()
        assert all(langs[k] == "ja+ru" for k in tags["theme_id"])
    english = tagged[(tagged[C.LANGUAGE] == "en") & (tagged["theme_id"] >= 0)]
    assert {langs[k] for k in english["theme_id"]} == {"en"}
