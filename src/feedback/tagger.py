"""The fitted feedback model: themes plus sentiment, tagging any new text.

Kept as plain arrays in one JSON file (the sentence model itself comes from its
installed package, named and version-checked in the file), so a served model is small,
readable and loads without pickles.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.feedback.discover import NOISE_LABEL, ThemeModel
from ppx.feedback.embed import embedder_of, embedder_version
from ppx.feedback.routing import ANY, CorpusVectors, Route, embed_routed, route_texts

THEME_ID = "theme_id"
THEME_NAME = "theme"
THEME_WORDS = "theme_words"
THEME_MARGIN = "theme_margin"
ALL_THEMES = "themes"
P_POSITIVE = "p_positive"
SENTIMENT = "sentiment"
OUTPUT_COLUMNS = (
    THEME_ID,
    THEME_NAME,
    THEME_WORDS,
    THEME_MARGIN,
    ALL_THEMES,
    P_POSITIVE,
    SENTIMENT,
)


#: Words: runs of letters/digits of one script. Japanese has no spaces, so kanji, hiragana
#: and katakana runs are separate units (a kanji stem and its kana ending split, which
#: is coarse but keeps a unit's meaning).
WORD = re.compile(
    r"[\u4e00-\u9fff]+|[\u3040-\u309f]+|[\u30a0-\u30ff]+|[^\W\d_]+(?:'[^\W\d_]+)?|\d+"
)
#: At most this many distinct words of one text are tried (each costs an embedding).
MAX_REASON_WORDS = 48


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the text's words (see :data:`WORD`)."""
    return [m.span() for m in WORD.finditer(text)]


class EmbedderMismatch(RuntimeError):
    """The installed sentence model is not the one the themes were fitted with."""


@dataclass
class ModelPart:
    """The themes and sentiment of the texts one sentence model reads (one language
    group, see :mod:`ppx.feedback.routing`); theme ids start at ``offset``."""

    languages: tuple[str, ...]
    embedder: str  # ``package==version`` of its sentence model
    themes: ThemeModel
    sentiment_coef: np.ndarray
    sentiment_intercept: float
    offset: int = 0

    def route(self) -> Route:
        return Route(embedder_of(self.embedder), tuple(self.languages))

    def to_dict(self) -> dict:
        return {
            "languages": list(self.languages),
            "embedder": self.embedder,
            "themes": self.themes.to_dict(),
            "sentiment_coef": self.sentiment_coef.tolist(),
            "sentiment_intercept": float(self.sentiment_intercept),
            "offset": int(self.offset),
        }

    @classmethod
    def from_dict(cls, d: dict) -> ModelPart:
        return cls(
            languages=tuple(d["languages"]),
            embedder=d["embedder"],
            themes=ThemeModel.from_dict(d["themes"]),
            sentiment_coef=np.asarray(d["sentiment_coef"], dtype=np.float64),
            sentiment_intercept=float(d["sentiment_intercept"]),
            offset=int(d.get("offset", 0)),
        )


@dataclass
class ThemeIndex:
    """Every theme of a model, numbered across its parts (what reports and alerts read)."""

    parts: list[ModelPart]

    @property
    def n_themes(self) -> int:
        return sum(p.themes.n_themes for p in self.parts)

    def names(self) -> list[str]:
        return [n for p in self.parts for n in p.themes.names()]

    @property
    def words(self) -> list[list[str]]:
        return [w for p in self.parts for w in p.themes.words]

    @property
    def quotes(self) -> list[list[str]]:
        return [q for p in self.parts for q in p.themes.quotes]

    @property
    def sizes(self) -> list[int]:
        return [s for p in self.parts for s in p.themes.sizes]

    def languages(self) -> list[str]:
        """Per theme, the languages its part reads (``all`` for a single-model part)."""
        return [p.route().label() for p in self.parts for _ in range(p.themes.n_themes)]


@dataclass
class FeedbackModel:
    """Themes and sentiment per part (one part per sentence model), tagging any text.

    A text is routed to its part by its language (:mod:`ppx.feedback.routing`),
    embedded by that part's sentence model and compared with that part's themes and
    sentiment weights only; theme ids are numbered across parts.
    """

    parts: list[ModelPart]
    negative_below: float = 0.35
    positive_above: float = 0.65

    @classmethod
    def single(
        cls,
        themes: ThemeModel,
        sentiment_coef: np.ndarray,
        sentiment_intercept: float,
        embedder: str,
        negative_below: float = 0.35,
        positive_above: float = 0.65,
    ) -> FeedbackModel:
        """One sentence model for every language."""
        part = ModelPart((ANY,), embedder, themes, sentiment_coef, sentiment_intercept)
        return cls([part], negative_below, positive_above)

    @property
    def themes(self) -> ThemeIndex:
        return ThemeIndex(self.parts)

    @property
    def embedder(self) -> str:
        """The sentence models, ``package==version`` joined by ``+``."""
        return "+".join(dict.fromkeys(p.embedder for p in self.parts))

    def routes(self) -> list[Route]:
        return [p.route() for p in self.parts]

    def route(self, texts: Sequence[str]) -> np.ndarray:
        """Part index per text (from its script)."""
        return route_texts(texts, self.routes())

    def embed(self, texts: Sequence[str], parts: np.ndarray | None = None):
        """Vectors from each text's part's sentence model, and the part indices."""
        return embed_routed(texts, self.routes(), parts)

    def _rows(self, parts: np.ndarray):
        for i, part in enumerate(self.parts):
            rows = np.flatnonzero(parts == i)
            if len(rows):
                yield part, rows

    def p_positive(self, emb: np.ndarray, parts: np.ndarray) -> np.ndarray:
        out = np.empty(len(emb))
        for part, rows in self._rows(parts):
            z = np.asarray(emb[rows], dtype=np.float64) @ part.sentiment_coef
            out[rows] = 1.0 / (1.0 + np.exp(-(z + part.sentiment_intercept)))
        return out

    def similarities(self, emb: np.ndarray, parts: np.ndarray) -> np.ndarray:
        """Per text and theme (numbered across parts): inside-radius margin, -2 for the
        themes of other parts."""
        out = np.full((len(emb), self.themes.n_themes), -2.0, dtype=np.float32)
        for part, rows in self._rows(parts):
            k = part.themes.n_themes
            out[np.ix_(rows, range(part.offset, part.offset + k))] = part.themes.similarities(
                emb[rows]
            )
        return out

    def assign(self, emb: np.ndarray, parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Theme id per text (numbered across parts, ``NOISE_LABEL`` for none), margin."""
        labels = np.full(len(emb), NOISE_LABEL, dtype=np.int64)
        margin = np.zeros(len(emb))
        for part, rows in self._rows(parts):
            lab, mar = part.themes.assign(emb[rows])
            labels[rows] = np.where(lab >= 0, lab + part.offset, NOISE_LABEL)
            margin[rows] = mar
        return labels, margin

    def tag_embeddings(self, emb: np.ndarray, parts: np.ndarray) -> pd.DataFrame:
        """One row per text: its theme (or none), every theme it fits, and sentiment."""
        labels, margin = self.assign(emb, parts)
        names = self.themes.names()
        words = [", ".join(w) for w in self.themes.words]
        fits = self.similarities(emb, parts) >= 0
        p = self.p_positive(emb, parts)
        sentiment = np.where(
            p < self.negative_below,
            "negative",
            np.where(p > self.positive_above, "positive", "neutral"),
        )
        return pd.DataFrame(
            {
                THEME_ID: labels.astype(np.int64),
                THEME_NAME: [names[k] if k != NOISE_LABEL else "" for k in labels],
                THEME_WORDS: [words[k] if k != NOISE_LABEL else "" for k in labels],
                THEME_MARGIN: margin.astype(float),
                ALL_THEMES: ["; ".join(names[k] for k in np.flatnonzero(f)) for f in fits],
                P_POSITIVE: p.astype(float),
                SENTIMENT: sentiment,
            }
        )

    def tag(self, texts: Sequence[str]) -> pd.DataFrame:
        return self.tag_embeddings(*self.embed(texts))

    def reason_codes(self, texts: Sequence[str], k: int = 3) -> list[list[dict]]:
        """Per text, the ``k`` words that move p(positive) most, largest effect first.

        Occlusion: a word's contribution is p(positive) of the text minus p(positive)
        of the text with every occurrence of that word removed, so a positive number
        means the word makes the text read happier. Texts are short, so the extra
        embeddings (one per distinct word, at most :data:`MAX_REASON_WORDS`) are cheap.
        Every variant is read by the sentence model of the whole text's language.
        """
        text_parts = self.route(texts)
        variants, owners = [], []
        for i, text in enumerate(texts):
            spans = word_spans(text)
            words = list(dict.fromkeys(text[a:b].lower() for a, b in spans))[:MAX_REASON_WORDS]
            variants.append(text)
            owners.append((i, None))
            for w in words:
                kept = [text[last:a] for (last, a) in _gaps(spans, text, w)]
                variants.append(re.sub(r"\s+", " ", "".join(kept)).strip() or ".")
                owners.append((i, w))
        parts = text_parts[[i for i, _ in owners]]
        p = self.p_positive(self.embed(variants, parts)[0], parts)
        full = {i: p[j] for j, (i, w) in enumerate(owners) if w is None}
        out: list[list[dict]] = [[] for _ in texts]
        for j, (i, w) in enumerate(owners):
            if w is not None:
                out[i].append(_word_reason(w, float(full[i] - p[j]), float(full[i])))
        return [sorted(r, key=lambda r: -abs(r["contribution"]))[:k] for r in out]

    def to_dict(self) -> dict:
        return {
            "parts": [p.to_dict() for p in self.parts],
            "negative_below": self.negative_below,
            "positive_above": self.positive_above,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | Path, check_embedder: bool = True) -> FeedbackModel:
        d = json.loads(Path(path).read_text())
        if "parts" not in d:  # a single-model file: one part for every language
            d["parts"] = [
                {
                    "languages": [ANY],
                    "embedder": d["embedder"],
                    "themes": d["themes"],
                    "sentiment_coef": d["sentiment_coef"],
                    "sentiment_intercept": d["sentiment_intercept"],
                }
            ]
        parts = [ModelPart.from_dict(p) for p in d["parts"]]
        for part in parts:
            installed = embedder_version(embedder_of(part.embedder))
            if check_embedder and part.embedder != installed:
                raise EmbedderMismatch(
                    f"{path}: themes were fitted with {part.embedder} but {installed} is "
                    "installed; install that version or retrain (`ppx train feedback`)"
                )
        return cls(parts, d["negative_below"], d["positive_above"])


def _gaps(spans: list[tuple[int, int]], text: str, word: str) -> list[tuple[int, int]]:
    """The pieces of ``text`` that remain when every occurrence of ``word`` is cut out."""
    pieces, last = [], 0
    for a, b in spans:
        if text[a:b].lower() == word:
            pieces.append((last, a))
            last = b
    pieces.append((last, len(text)))
    return pieces


def _word_reason(word: str, contribution: float, p_full: float) -> dict:
    direction = "raises" if contribution >= 0 else "lowers"
    mood = "happier" if contribution >= 0 else "less happy"
    return {
        "feature": "word",
        "label": "a word of the text",
        "value": word,
        "baseline": None,
        "contribution": contribution,
        "direction": direction,
        "text": (
            f"“{word}” makes the text read {mood}: p(positive) {p_full:.2f}, "
            f"{p_full - contribution:.2f} without it"
        ),
    }


def fit_sentiment(emb: np.ndarray, rating: np.ndarray, c: float = 1.0, seed: int = 0):
    """Logistic regression of "rating >= 4" on embeddings, from reviews rated 1-2 or 4-5."""
    from sklearn.linear_model import LogisticRegression

    rating = np.asarray(rating, dtype=float)
    keep = np.isfinite(rating) & (rating != 3)
    y = rating[keep] >= 4
    if keep.sum() < 10 or y.all() or not y.any():
        raise ValueError(
            f"sentiment needs reviews rated both 1-2 and 4-5; got {int(keep.sum())} "
            f"({int(y.sum())} positive)"
        )
    lr = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed)
    lr.fit(emb[keep], y)
    return lr.coef_[0].astype(np.float64), float(lr.intercept_[0])


def empty_themes(dim: int) -> ThemeModel:
    """A theme model with no themes (a part with too few texts to cluster)."""
    return ThemeModel(
        mean=np.zeros(dim, dtype=np.float32),
        components=np.zeros((1, dim), dtype=np.float32),
        centroids=np.zeros((0, 1), dtype=np.float32),
        min_similarity=np.zeros(0, dtype=np.float32),
        group_theme=np.zeros(0, dtype=np.int64),
    )


def fit_model(
    texts: Sequence[str],
    ratings: np.ndarray,
    fit_mask: np.ndarray,
    vectors: CorpusVectors,
    routes: Sequence[Route],
    params,
    sentiment_c: float = 1.0,
    seed: int = 0,
    negative_below: float = 0.35,
    positive_above: float = 0.65,
) -> FeedbackModel:
    """Themes and sentiment per part from the texts in ``fit_mask``.

    A part clusters its own texts' vectors (or, with ``Route.fit_all``, every text's
    vector from its model, keeping the dense groups most of whose members are its own
    languages' texts). A part with too few texts to cluster has no themes; one with too
    few rated reviews of both kinds reads every text as neutral (p(positive) 0.5).
    """
    from ppx.feedback.discover import fit_themes, name_themes

    texts = ["" if t is None else str(t) for t in texts]
    ratings = np.asarray(ratings, dtype=float)
    fit_mask = np.asarray(fit_mask, dtype=bool)
    parts_out: list[ModelPart] = []
    offset = 0
    dim = vectors.emb.shape[1]
    for i, route in enumerate(routes):
        own = vectors.parts == i
        x = vectors.fit_vectors.get(i, vectors.emb)
        rows = np.flatnonzero(fit_mask & (True if i in vectors.fit_vectors else own))
        own_rows = np.flatnonzero(fit_mask & own)
        if len(rows) >= 2 * params.min_cluster_size and len(own_rows):
            themes = fit_themes(x[rows], [texts[j] for j in rows], params)
            if i in vectors.fit_vectors:
                group = themes.nearest_group(x[rows])
                mine = own[rows]
                keep = np.array(
                    [
                        mine[group == g].mean() >= 0.5 if (group == g).any() else False
                        for g in range(len(themes.centroids))
                    ],
                    dtype=bool,
                )
                themes = themes.keep_groups(keep)
            labels, sims = themes.assign(vectors.emb[own_rows])
            name_themes(themes, [texts[j] for j in own_rows], labels, sims, params.n_words)
        else:
            themes = empty_themes(dim)
        try:
            coef, intercept = fit_sentiment(
                vectors.emb[own_rows], ratings[own_rows], sentiment_c, seed
            )
        except ValueError:
            coef, intercept = np.zeros(dim), 0.0
        parts_out.append(
            ModelPart(
                route.languages,
                embedder_version(route.embedder),
                themes,
                coef,
                intercept,
                offset,
            )
        )
        offset += themes.n_themes
    return FeedbackModel(parts_out, negative_below, positive_above)


def name_all(model: FeedbackModel, texts: Sequence[str], emb, parts, n_words: int = 6) -> None:
    """Re-name every part's themes and pick its quotes from all its texts (in place)."""
    from ppx.feedback.discover import name_themes

    texts = list(texts)
    for part, rows in model._rows(np.asarray(parts)):
        if part.themes.n_themes:
            labels, sims = part.themes.assign(emb[rows])
            name_themes(part.themes, [texts[j] for j in rows], labels, sims, n_words)
