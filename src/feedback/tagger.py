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
from ppx.feedback.embed import embed, embedder_of, embedder_version

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
class FeedbackModel:
    themes: ThemeModel
    sentiment_coef: np.ndarray
    sentiment_intercept: float
    negative_below: float = 0.35
    positive_above: float = 0.65
    embedder: str = ""

    def p_positive(self, emb: np.ndarray) -> np.ndarray:
        z = np.asarray(emb, dtype=np.float64) @ self.sentiment_coef + self.sentiment_intercept
        return 1.0 / (1.0 + np.exp(-z))

    def tag_embeddings(self, emb: np.ndarray) -> pd.DataFrame:
        """One row per text: its theme (or none), every theme it fits, and sentiment."""
        labels, margin = self.themes.assign(emb)
        names = self.themes.names()
        words = [", ".join(w) for w in self.themes.words]
        fits = self.themes.similarities(emb) >= 0
        p = self.p_positive(emb)
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
        return self.tag_embeddings(self.embed(texts))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors from the sentence model the themes were fitted with."""
        return embed(texts, embedder_of(self.embedder) if self.embedder else "minilm")

    def reason_codes(self, texts: Sequence[str], k: int = 3) -> list[list[dict]]:
        """Per text, the ``k`` words that move p(positive) most, largest effect first.

        Occlusion: a word's contribution is p(positive) of the text minus p(positive)
        of the text with every occurrence of that word removed, so a positive number
        means the word makes the text read happier. Texts are short, so the extra
        embeddings (one per distinct word, at most :data:`MAX_REASON_WORDS`) are cheap.
        """
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
        p = self.p_positive(self.embed(variants))
        full = {i: p[j] for j, (i, w) in enumerate(owners) if w is None}
        out: list[list[dict]] = [[] for _ in texts]
        for j, (i, w) in enumerate(owners):
            if w is not None:
                out[i].append(_word_reason(w, float(full[i] - p[j]), float(full[i])))
        return [sorted(r, key=lambda r: -abs(r["contribution"]))[:k] for r in out]

    def to_dict(self) -> dict:
        return {
            "themes": self.themes.to_dict(),
            "sentiment_coef": self.sentiment_coef.tolist(),
            "sentiment_intercept": float(self.sentiment_intercept),
            "negative_below": self.negative_below,
            "positive_above": self.positive_above,
            "embedder": self.embedder,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | Path, check_embedder: bool = True) -> FeedbackModel:
        d = json.loads(Path(path).read_text())
        installed = embedder_version(embedder_of(d["embedder"]))
        if check_embedder and d["embedder"] != installed:
            raise EmbedderMismatch(
                f"{path}: themes were fitted with {d['embedder']} but {installed} is "
                "installed; install that version or retrain (`ppx train feedback`)"
            )
        return cls(
            themes=ThemeModel.from_dict(d["themes"]),
            sentiment_coef=np.asarray(d["sentiment_coef"], dtype=np.float64),
            sentiment_intercept=float(d["sentiment_intercept"]),
            negative_below=d["negative_below"],
            positive_above=d["positive_above"],
            embedder=d["embedder"],
        )


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
