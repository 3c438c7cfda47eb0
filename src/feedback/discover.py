"""Discover themes: cluster text vectors with HDBSCAN, name clusters, assign new texts.

Why this shape: HDBSCAN finds dense groups without being told how many and leaves
outliers unassigned (most reviews say nothing actionable), but it is quadratic-ish, so
it runs on a sample (``fit_sample`` texts) after a PCA to a few dimensions; every text
— and every new text at serving time — then joins the nearest cluster centre if it is
as close as the cluster's own members typically are (``assign_quantile``), else none.

Names come from c-TF-IDF (BERTopic's class-based TF-IDF: a word's frequency in the
cluster against its frequency across clusters), plus the two member texts nearest the
centre as quotes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

NOISE_LABEL = -1
#: Words that name nothing (English function words plus shop talk every review has).
EXTRA_STOP = {"order", "ordered", "bought", "month", "thanks", "time", "honestly", "fair"}


@dataclass
class ThemeParams:
    """The clusterer's knobs (the model config holds the defaults)."""

    pca_dim: int = 64
    fit_sample: int = 6000
    min_cluster_frac: float = 0.006  # of the fit sample
    min_cluster_size: int = 12
    min_samples: int = 5
    merge_similarity: float = 0.4  # dense groups whose centres are this close: one theme
    assign_quantile: float = 0.05
    n_words: int = 6
    seed: int = 0


@dataclass
class ThemeModel:
    """Fitted themes: the projection, the centres, the acceptance radii and the names."""

    mean: np.ndarray
    components: np.ndarray  # pca_dim x input_dim
    centroids: np.ndarray  # m x pca_dim, unit length: one per dense group
    min_similarity: np.ndarray  # m: a text joins a group at or above this cosine
    group_theme: np.ndarray  # m: the theme each dense group belongs to (0..k-1)
    words: list[list[str]] = field(default_factory=list)
    quotes: list[list[str]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    @property
    def n_themes(self) -> int:
        return int(self.group_theme.max()) + 1 if len(self.group_theme) else 0

    def names(self) -> list[str]:
        return [" / ".join(w[:3]) if w else f"theme {i}" for i, w in enumerate(self.words)]

    def project(self, emb: np.ndarray) -> np.ndarray:
        z = (np.asarray(emb, dtype=np.float32) - self.mean) @ self.components.T
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)

    def similarities(self, emb: np.ndarray) -> np.ndarray:
        """Per text and theme: cosine to the theme's nearest group centre, minus that
        group's acceptance radius (>= 0 means the text belongs to the theme)."""
        k = self.n_themes
        out = np.full((len(emb), k), -2.0, dtype=np.float32)
        if k == 0:
            return out
        margin = self.project(emb) @ self.centroids.T - self.min_similarity
        for g, theme in enumerate(self.group_theme):
            out[:, theme] = np.maximum(out[:, theme], margin[:, g])
        return out

    def assign(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Theme label per text (``NOISE_LABEL`` when no centre is close enough) and its
        margin (how far inside the theme's radius the text is)."""
        margin = self.similarities(emb)
        if margin.shape[1] == 0:
            return np.full(len(emb), NOISE_LABEL), np.zeros(len(emb))
        best = margin.argmax(axis=1)
        top = margin[np.arange(len(margin)), best]
        return np.where(top >= 0, best, NOISE_LABEL), top

    def keep_groups(self, keep: np.ndarray) -> ThemeModel:
        """The same model with only the dense groups in ``keep`` (a bool per group),
        themes renumbered densely in their old order; names must be redone."""
        keep = np.asarray(keep, dtype=bool)
        old = self.group_theme[keep]
        _, new = np.unique(old, return_inverse=True)
        return ThemeModel(
            mean=self.mean,
            components=self.components,
            centroids=self.centroids[keep],
            min_similarity=self.min_similarity[keep],
            group_theme=new.astype(np.int64).ravel(),
        )

    def nearest_group(self, emb: np.ndarray) -> np.ndarray:
        """Per text, the dense group it falls in (the largest margin), -1 for none."""
        if len(self.centroids) == 0:
            return np.full(len(emb), NOISE_LABEL)
        margin = self.project(emb) @ self.centroids.T - self.min_similarity
        best = margin.argmax(axis=1)
        return np.where(margin[np.arange(len(emb)), best] >= 0, best, NOISE_LABEL)

    def to_dict(self) -> dict:
        return {
            "mean": self.mean.tolist(),
            "components": self.components.tolist(),
            "centroids": self.centroids.tolist(),
            "min_similarity": self.min_similarity.tolist(),
            "group_theme": self.group_theme.tolist(),
            "words": self.words,
            "quotes": self.quotes,
            "sizes": self.sizes,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ThemeModel:
        f32 = lambda k: np.asarray(d[k], dtype=np.float32)  # noqa: E731
        return cls(
            mean=f32("mean"),
            components=f32("components"),
            centroids=f32("centroids").reshape(-1, len(d["components"])),
            min_similarity=f32("min_similarity"),
            group_theme=np.asarray(d["group_theme"], dtype=np.int64),
            words=d["words"],
            quotes=d["quotes"],
            sizes=d["sizes"],
        )


def fit_themes(emb: np.ndarray, texts: Sequence[str], params: ThemeParams) -> ThemeModel:
    """Cluster ``emb`` (unit vectors, one per text) into named themes."""
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA

    emb = np.asarray(emb, dtype=np.float32)
    n = len(emb)
    if n < 2 * params.min_cluster_size:
        raise ValueError(
            f"{n} texts are too few to find themes (need at least {2 * params.min_cluster_size})"
        )
    rng = np.random.default_rng(params.seed)
    sample = np.sort(rng.choice(n, min(n, params.fit_sample), replace=False))
    # Density needs points: with few texts, fewer dimensions (16 texts per dimension) or
    # HDBSCAN sees every point as isolated and returns one or two blobs.
    dim = max(2, min(params.pca_dim, emb.shape[1], len(sample) // 16))
    pca = PCA(dim, random_state=params.seed).fit(emb[sample])
    model = ThemeModel(
        mean=pca.mean_.astype(np.float32),
        components=pca.components_.astype(np.float32),
        centroids=np.zeros((0, dim), dtype=np.float32),
        min_similarity=np.zeros(0, dtype=np.float32),
        group_theme=np.zeros(0, dtype=np.int64),
    )
    z = model.project(emb[sample])
    size = max(params.min_cluster_size, int(params.min_cluster_frac * len(sample)))
    labels = HDBSCAN(
        min_cluster_size=size, min_samples=min(params.min_samples, size), copy=True
    ).fit_predict(z)
    ks = [k for k in np.unique(labels) if k != NOISE_LABEL]
    cents, radius = [], []
    for k in ks:
        members = z[labels == k]
        c = members.mean(axis=0)
        c /= max(np.linalg.norm(c), 1e-12)
        cents.append(c)
        radius.append(np.quantile(members @ c, params.assign_quantile))
    model.centroids = np.asarray(cents, dtype=np.float32).reshape(-1, dim)
    model.min_similarity = np.asarray(radius, dtype=np.float32)
    model.group_theme = merge_groups(model.centroids, params.merge_similarity)
    all_labels, sims = model.assign(emb)
    name_themes(model, texts, all_labels, sims, params.n_words)
    return model


def merge_groups(centroids: np.ndarray, min_similarity: float) -> np.ndarray:
    """Theme id per dense group: average-linkage merge of centres closer than the bar.

    HDBSCAN splits one complaint said in different words into several dense groups;
    merging by centre similarity puts the paraphrases back together while keeping each
    group's own radius for assignment.
    """
    m = len(centroids)
    if m < 2:
        return np.zeros(m, dtype=np.int64)
    from sklearn.cluster import AgglomerativeClustering

    labels = AgglomerativeClustering(
        n_clusters=None,
        metric="cosine",
        linkage="average",
        distance_threshold=1.0 - min_similarity,
    ).fit_predict(centroids)
    # Number themes by first appearance so the ids are stable for equal inputs.
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(labels.max() + 1, dtype=np.int64)
    rank[labels[np.sort(first)]] = np.arange(len(first))
    return rank[labels]


#: Words for naming: runs of two or more word characters, as scikit-learn's default
#: (identical on text without Japanese); Japanese has no spaces, so kanji, katakana and
#: hiragana runs are words of their own (a single kanji names something, a single
#: hiragana is a particle and is dropped).
_TOKEN = re.compile(
    r"[\u4e00-\u9fff]+|[\u30a0-\u30ff]+|[\u3040-\u309f]{2,}"
    r"|(?:(?![\u3040-\u30ff\u4e00-\u9fff])\w){2,}"
)


def name_themes(
    model: ThemeModel,
    texts: Sequence[str],
    labels: np.ndarray,
    sims: np.ndarray,
    n_words: int = 6,
) -> None:
    """Fill ``model.words`` (c-TF-IDF), ``model.quotes`` and ``model.sizes`` in place."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    texts = np.asarray(["" if t is None else str(t) for t in texts], dtype=object)
    k = model.n_themes
    docs = [" ".join(texts[labels == j]) for j in range(k)]
    model.sizes = [int((labels == j).sum()) for j in range(k)]
    model.words, model.quotes = [[] for _ in range(k)], [[] for _ in range(k)]
    if k == 0:
        return
    stop = list(ENGLISH_STOP_WORDS | EXTRA_STOP)
    try:
        cv = CountVectorizer(
            stop_words=stop, lowercase=True, tokenizer=_TOKEN.findall, token_pattern=None
        )
        tf = cv.fit_transform(docs).toarray().astype(float)
    except ValueError:  # every cluster is only stop words
        tf = np.zeros((k, 0))
    if tf.shape[1]:
        vocab = np.array(cv.get_feature_names_out())
        # c-TF-IDF: term frequency within the class x log(1 + mean words per class /
        # the term's frequency over all classes).
        tf_norm = tf / np.maximum(tf.sum(axis=1, keepdims=True), 1)
        idf = np.log(1 + tf.sum(axis=1).mean() / np.maximum(tf.sum(axis=0), 1))
        score = tf_norm * idf
        for j in range(k):
            top = np.argsort(-score[j])[:n_words]
            model.words[j] = [str(vocab[i]) for i in top if score[j, i] > 0]
    for j in range(k):
        idx = np.flatnonzero(labels == j)
        seen: list[str] = []
        for i in idx[np.argsort(-sims[idx])]:
            t = str(texts[i]).strip()
            if t and t.lower() not in {s.lower() for s in seen}:
                seen.append(t)
            if len(seen) == 2:
                break
        model.quotes[j] = seen
