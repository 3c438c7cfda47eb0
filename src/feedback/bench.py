"""``ppx bench feedback``: theme recovery, alerts, real reviews, scale.

- ``world``: planted-theme recovery (ARI, mean best-match precision / recall / F1) of
  the default model's themes (``ppx``: MiniLM for English, e5 for Japanese and Russian,
  ``ppx.feedback.routing``) against MiniLM for every text (``minilm``) and TF-IDF themes
  (``tfidf``), same clusterer; ARI also within each language.
- ``world_theme_f1``: best-match F1 per planted theme.
- ``world_alerts``: detection of the three themes that start mid-period — detected
  count, mean delay in days from the planted start to the end of the week of the first
  alert, alerts on other (product, theme) pairs — for ``ppx``, ``tfidf`` and
  ``oracle`` (the planted labels themselves: the test's own limit).
- ``clothing``: 5-fold cross-validated ROC AUC of predicting "not recommended" from
  themes + rating (``ppx``) against TF-IDF + rating (``tfidf_logreg``) and rating alone.
- ``scale``: embedding + clustering N distinct texts in a separate process.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.feedback import alerts as AL
from ppx.feedback import themes as T
from ppx.feedback.corpus import TEXT, attach_truth, build_corpus
from ppx.feedback.discover import NOISE_LABEL, ThemeParams, fit_themes
from ppx.feedback.embed import TfidfEmbedder, embed_texts
from ppx.feedback.routing import AUTO, embed_corpus, routes_for
from ppx.feedback.tagger import fit_model
from ppx.feedback.trends import weekly_counts

#: The TF-IDF baseline's clusterer setting, chosen on the validation world like ppx's.
TFIDF_THEME_PARAMS = ThemeParams(pca_dim=100)
CLOTHING_FILE = "Womens Clothing E-Commerce Reviews.csv"


def _uptime() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def alert_delays(
    corpus: pd.DataFrame,
    labels: np.ndarray,
    n_themes: int,
    emerging: pd.DataFrame,
    theme_cluster: dict[str, int],
    params: AL.AlertParams,
) -> dict[str, float]:
    """Detection and false alarms of a labelling against the planted emerging themes."""
    weekly = weekly_counts(corpus, labels, n_themes)
    first = AL.first_alerts(AL.scan(weekly, params))
    planted = set()
    delays, detected = [], 0
    out: dict[str, float] = {}
    for e in emerging.itertuples():
        c = theme_cluster.get(e.theme, NOISE_LABEL)
        planted.add((int(e.product_id), c))
        hits = first[(first[C.PRODUCT_ID] == e.product_id) & (first[C.THEME] == c)]
        hits = hits[hits["week"] + pd.Timedelta(days=7) > e.started_at]
        if len(hits) and c != NOISE_LABEL:
            detected += 1
            d = (hits["week"].iloc[0] + pd.Timedelta(days=7) - e.started_at).days
            delays.append(d)
            out[f"delay_days_{e.theme}"] = float(d)
        else:
            out[f"delay_days_{e.theme}"] = float("nan")
    other = first[
        [
            (int(p), int(t)) not in planted
            for p, t in zip(first[C.PRODUCT_ID], first[C.THEME], strict=True)
        ]
    ]
    late = theme_cluster.get("late_delivery", NOISE_LABEL)
    out.update(
        {
            "detected": float(detected),
            "planted": float(len(emerging)),
            "mean_delay_days": float(np.mean(delays)) if delays else float("nan"),
            "other_alerts": float(len(other)),
            "other_alerts_late_delivery": float((other[C.THEME] == late).sum()),
            "pairs_scanned": float(weekly[[C.PRODUCT_ID, C.THEME]].drop_duplicates().shape[0]),
        }
    )
    return out


def world_bench(customers: int, seed: int, progress: bool = True) -> dict:
    from ppx.data.world import WorldParams, generate_world
    from ppx.models.feedback.evaluate import best_match, theme_scores

    world = generate_world(WorldParams(n_customers=customers, seed=seed))
    corpus = attach_truth(build_corpus(world.tables), world.truth[C.TRUTH_FEEDBACK])
    emerging = world.truth[C.TRUTH_FEEDBACK_EMERGING]
    truth = corpus[C.THEME].fillna(T.NOISE).to_numpy(object)
    texts = corpus[TEXT].tolist()
    t = time.perf_counter()
    routes = routes_for(AUTO)
    vectors = embed_corpus(texts, routes, progress=progress)
    embed_s = time.perf_counter() - t
    minilm = vectors.fit_vectors[next(i for i, r in enumerate(routes) if r.fit_all)]
    tf = TfidfEmbedder().fit_transform(texts)
    res: dict[str, dict] = {"world": {}, "world_theme_f1": {}, "world_alerts": {}}
    params = AL.AlertParams()
    lang = corpus[C.LANGUAGE].to_numpy(object)

    def fit_default():
        model = fit_model(
            texts,
            corpus[C.RATING].to_numpy(),
            np.ones(len(texts), bool),
            vectors,
            routes,
            ThemeParams(),
        )
        return model.assign(vectors.emb, vectors.parts)[0], model.themes.n_themes

    def fit_single(vecs, tp):
        model = fit_themes(vecs, texts, tp)
        return model.assign(vecs)[0], model.n_themes

    methods = (
        ("ppx", fit_default),
        ("minilm", lambda: fit_single(minilm, ThemeParams())),
        ("tfidf", lambda: fit_single(tf, TFIDF_THEME_PARAMS)),
    )
    for method, fit in methods:
        t = time.perf_counter()
        labels, n_themes = fit()
        scores = theme_scores(truth, labels)
        from sklearn.metrics import adjusted_rand_score

        for lg in T.LANGUAGES:
            s = lang == lg
            scores[f"ari_{lg}"] = float(adjusted_rand_score(truth[s].astype(str), labels[s]))
            s &= truth != T.NOISE
            scores[f"ari_themed_{lg}"] = float(adjusted_rand_score(truth[s].astype(str), labels[s]))
        scores["themes"] = float(n_themes)
        scores["cluster_s"] = time.perf_counter() - t
        if method == "ppx":
            scores["embed_s"] = embed_s
        res["world"][method] = scores
        bm = best_match(truth, labels)
        res["world_theme_f1"][method] = dict(zip(bm["theme"], bm["f1"], strict=True))
        res.setdefault("world_theme_precision", {})[method] = dict(
            zip(bm["theme"], bm["precision"], strict=True)
        )
        res.setdefault("world_theme_recall", {})[method] = dict(
            zip(bm["theme"], bm["recall"], strict=True)
        )
        res["world_alerts"][method] = alert_delays(
            corpus,
            labels,
            n_themes,
            emerging,
            dict(zip(bm["theme"], bm["cluster"], strict=True)),
            params,
        )
    names = list(T.THEME_NAMES)
    oracle = np.array([names.index(x) if x in names else NOISE_LABEL for x in truth])
    res["world_alerts"]["oracle"] = alert_delays(
        corpus, oracle, len(names), emerging, {n: i for i, n in enumerate(names)}, params
    )
    res["world"]["ppx"]["texts"] = float(len(corpus))
    return res


def load_clothing(folder: Path) -> pd.DataFrame:
    path = Path(folder) / CLOTHING_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (pass --clothing FOLDER)")
    df = pd.read_csv(path)
    for col in ("Title", "Review Text", "Rating", "Recommended IND"):
        if col not in df:
            raise ValueError(f"{path}: column {col!r} is missing")
    title = df["Title"].fillna("").astype(str).str.strip()
    body = df["Review Text"].fillna("").astype(str).str.strip()
    df[TEXT] = (title + ". " + body).where(title != "", body).str.strip(". ")
    return df[df[TEXT].str.len() > 0].reset_index(drop=True)


def split_sentences(texts, min_words: int = 4) -> list[str]:
    """Sentences of at least ``min_words`` words (split at . ! ? and line breaks)."""
    import re

    split = re.compile(r"(?<=[.!?])\s+|\n+")
    return [s.strip() for t in texts for s in split.split(str(t)) if len(s.split()) >= min_words]


def clothing_bench(folder: Path, seed: int = 0) -> tuple[dict, list[dict]]:
    """CV ROC AUC for "not recommended", and the themes of low-rated reviews."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    df = load_clothing(folder)
    texts = df[TEXT].tolist()
    y = (df["Recommended IND"] == 0).to_numpy()
    rating = np.eye(5)[df["Rating"].to_numpy(int) - 1]
    emb = embed_texts(texts)
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    scores: dict[str, list[float]] = {
        "ppx": [],
        "minilm_logreg": [],
        "tfidf_logreg": [],
        "rating": [],
    }
    params = ThemeParams(fit_sample=5000, min_cluster_size=8, min_samples=4, pca_dim=32)
    for tr, te in cv.split(texts, y):
        model = fit_themes(emb[tr], [texts[i] for i in tr], params)

        def feats(idx, model=model):
            return np.hstack([(model.similarities(emb[idx]) >= 0), rating[idx]])

        lr = LogisticRegression(max_iter=2000).fit(feats(tr), y[tr])
        scores["ppx"].append(roc_auc_score(y[te], lr.predict_proba(feats(te))[:, 1]))
        full = lambda idx: np.hstack([emb[idx], rating[idx]])  # noqa: E731
        lr = LogisticRegression(max_iter=2000).fit(full(tr), y[tr])
        scores["minilm_logreg"].append(roc_auc_score(y[te], lr.predict_proba(full(te))[:, 1]))
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        xtr = hstack([vec.fit_transform([texts[i] for i in tr]), csr_matrix(rating[tr])])
        xte = hstack([vec.transform([texts[i] for i in te]), csr_matrix(rating[te])])
        lr = LogisticRegression(max_iter=2000, C=4.0).fit(xtr, y[tr])
        scores["tfidf_logreg"].append(roc_auc_score(y[te], lr.predict_proba(xte)[:, 1]))
        lr = LogisticRegression(max_iter=2000).fit(rating[tr], y[tr])
        scores["rating"].append(roc_auc_score(y[te], lr.predict_proba(rating[te])[:, 1]))
    table = {
        k: {"roc_auc": float(np.mean(v)), "roc_auc_sd": float(np.std(v))} for k, v in scores.items()
    }
    table["ppx"]["reviews"] = float(len(df))
    low = df["Rating"].to_numpy() <= 2
    # A long review makes several points: themes of low-rated reviews are found among
    # their sentences, and quotes are sentences.
    sentences = split_sentences(df.loc[low, TEXT])
    m = fit_themes(
        embed_texts(sentences),
        sentences,
        ThemeParams(min_cluster_size=6, min_samples=3, pca_dim=16),
    )
    themes = [
        {"theme": m.names()[k], "words": m.words[k], "sentences": m.sizes[k], "quotes": m.quotes[k]}
        for k in np.argsort([-s for s in m.sizes])
    ]
    table["ppx"]["low_rated_reviews"] = float(low.sum())
    table["ppx"]["low_rated_sentences"] = float(len(sentences))
    return table, themes


def scale_bench(n: int, threads: int = 1) -> dict:
    """Run :mod:`ppx.feedback.scale` in its own process (clean peak memory).

    One torch thread by default: on a shared two-core machine a second thread mostly
    waits for the first (measured in ``docs/feedback.md``).
    """
    out = subprocess.run(
        [sys.executable, "-m", "ppx.feedback.scale", str(n), str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_bench(customers: int, seed: int, scale: int, clothing: Path | None) -> dict:
    t0 = time.perf_counter()
    load = {"load_start": _uptime()}
    payload: dict = world_bench(customers, seed)
    meta_extra: dict = {}
    if clothing is not None and (Path(clothing) / CLOTHING_FILE).exists():
        payload["clothing"], meta_extra["clothing_low_rated_themes"] = clothing_bench(clothing)
    if scale:
        payload["scale"] = {"ppx": scale_bench(scale)}
    load["load_end"] = _uptime()
    payload["meta"] = {
        "command": "ppx bench feedback " + " ".join(sys.argv[3:])
        if len(sys.argv) > 3
        else f"ppx bench feedback --customers {customers} --seed {seed} --scale {scale}",
        "seconds": time.perf_counter() - t0,
        "machine": f"{platform.machine()} {platform.processor() or ''} cpus=2".strip(),
        "loadavg": load,
        **meta_extra,
    }
    return {"meta": payload.pop("meta"), **payload}
