"""Which sentence model reads which text: one model per language group.

No installed sentence model reads all three of the brands' languages well: MiniLM
groups English complaints by meaning far better than multilingual-e5 does (ARI 0.89
against 0.26 on the benchmark world) but groups Japanese and Russian by language
instead of meaning, where e5 reads them (``docs/feedback.md``). So the default
(``embedder="auto"``) reads each text's language from its script and sends it to the
model that reads that language best (:data:`LANGUAGE_EMBEDDERS`); the texts of one
sentence model form a *part*, clustered into themes of its own (Japanese and Russian
share e5's part, so a theme there gathers both languages' texts of one complaint).

Script-based detection is enough for these three languages (kana or kanji: Japanese,
Cyrillic: Russian, otherwise English; 100% right on the world's texts). A text in
another Latin-script language goes to the English part, one in Chinese to the Japanese
(e5) part, which reads Chinese too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ppx.feedback.embed import EMBED_DIM, EMBEDDERS, embed
from ppx.feedback.languages import detect_languages

#: The default routing: language -> the sentence model that reads it best (measured).
LANGUAGE_EMBEDDERS: dict[str, str] = {"en": "minilm", "ja": "e5", "ru": "e5"}
#: Where a language not in the routing goes (script detection returns en/ja/ru only).
DEFAULT_LANGUAGE = "en"
AUTO = "auto"
ANY = "*"


@dataclass(frozen=True)
class Route:
    """One part: a sentence model and the languages whose texts it embeds."""

    embedder: str
    languages: tuple[str, ...]
    #: cluster on every text's vector from this model (not only its own languages'),
    #: then keep the themes its own languages' texts fall in (see :func:`routes_for`)
    fit_all: bool = False

    def label(self) -> str:
        return "all" if self.languages == (ANY,) else "+".join(self.languages)


def routes_for(embedder: str) -> list[Route]:
    """The parts of a feedback model: one per sentence model (``auto``) or a single one.

    With ``auto``, MiniLM's part (English) is clustered on the MiniLM vectors of every
    text, as a MiniLM-only model is, and keeps the themes English texts fall in: on the
    validation world, clustering the English texts alone found the English themes less
    well (ARI 0.63-0.84 depending on the minimum theme size, against 0.89), since
    HDBSCAN's density hierarchy is sensitive to the corpus it is built on
    (``docs/feedback.md``). e5's part is clustered on its own texts.
    """
    if embedder != AUTO:
        if embedder not in EMBEDDERS:
            raise ValueError(
                f"embedder: unknown {embedder!r}; choose {AUTO!r} or one of {', '.join(EMBEDDERS)}"
            )
        return [Route(embedder, (ANY,))]
    by_model: dict[str, list[str]] = {}
    for lang, model in LANGUAGE_EMBEDDERS.items():
        by_model.setdefault(model, []).append(lang)
    return [
        Route(m, tuple(langs), fit_all=DEFAULT_LANGUAGE in langs) for m, langs in by_model.items()
    ]


def route_index(languages: Sequence[str], routes: Sequence[Route]) -> np.ndarray:
    """Part index per text from its language (unknown languages: the English part)."""
    lookup: dict[str, int] = {}
    for i, r in enumerate(routes):
        for lang in r.languages:
            lookup[lang] = i
    if ANY in lookup:
        return np.full(len(languages), lookup[ANY], dtype=np.int64)
    fallback = lookup.get(DEFAULT_LANGUAGE, 0)
    return np.asarray([lookup.get(lg, fallback) for lg in languages], dtype=np.int64)


def route_texts(texts: Sequence[str], routes: Sequence[Route]) -> np.ndarray:
    """Part index per text, from the script of each text."""
    if len(routes) == 1:
        return np.zeros(len(texts), dtype=np.int64)
    return route_index(detect_languages(texts), routes)


def embed_routed(
    texts: Sequence[str],
    routes: Sequence[Route],
    parts: np.ndarray | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Each text's unit vector from its part's sentence model, and the part index.

    The vectors of different parts live in different spaces (same width, 384): compare
    a vector only with the centres and weights of its own part.
    """
    texts = list(texts)
    parts = route_texts(texts, routes) if parts is None else np.asarray(parts, dtype=np.int64)
    out = np.zeros((len(texts), EMBED_DIM), dtype=np.float32)
    for i, r in enumerate(routes):
        rows = np.flatnonzero(parts == i)
        if len(rows):
            out[rows] = embed([texts[j] for j in rows], r.embedder, progress=progress)
    return out, parts


@dataclass
class CorpusVectors:
    """A corpus embedded for fitting: each text's own vector and, for parts clustered on
    every text (``Route.fit_all``), that part's model's vectors of all texts."""

    emb: np.ndarray
    parts: np.ndarray
    fit_vectors: dict[int, np.ndarray]


def embed_corpus(
    texts: Sequence[str], routes: Sequence[Route], progress: bool = False
) -> CorpusVectors:
    """Embed a training corpus: every text once per sentence model it is needed by."""
    texts = list(texts)
    parts = route_texts(texts, routes)
    emb = np.zeros((len(texts), EMBED_DIM), dtype=np.float32)
    fit_vectors: dict[int, np.ndarray] = {}
    for i, r in enumerate(routes):
        own = parts == i
        if r.fit_all and not own.all():
            fit_vectors[i] = embed(texts, r.embedder, progress=progress)
            emb[own] = fit_vectors[i][own]
        elif own.any():
            rows = np.flatnonzero(own)
            emb[rows] = embed([texts[j] for j in rows], r.embedder, progress=progress)
    return CorpusVectors(emb, parts, fit_vectors)
