"""Train the feedback model: embed, discover themes, fit sentiment, track, report, gate.

Recipe: every review and return comment of the world is embedded by the sentence model
of its language (``FeedbackConfig.embedder``, default ``auto``: all-MiniLM-L6-v2 for
English, multilingual-e5-small for Japanese and Russian; ``ppx.feedback.routing``);
themes are fitted per sentence model on texts before the holdout cut (the latest ``holdout_fraction`` of
reviews by time) and assigned to all; sentiment is a logistic regression of "rating >=
4" on the embeddings of training reviews, scored (``roc_auc``, the gate metric) on the
holdout reviews. The run logs theme recovery against the planted truth when the world
has one, the weekly trends, the alerts and the product team's HTML report.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.feedback import alerts as AL
from ppx.feedback.corpus import TEXT, attach_truth, build_corpus
from ppx.feedback.report import ReportData, theme_impact, write_report
from ppx.feedback.routing import CorpusVectors, embed_corpus, routes_for
from ppx.feedback.tagger import FeedbackModel, fit_model, name_all
from ppx.feedback.trends import weekly_counts
from ppx.models.feedback.config import FeedbackConfig
from ppx.models.feedback.evaluate import best_match, sentiment_auc, theme_scores
from ppx.models.spec import TrainResult

MODEL = "feedback"
GATE_METRIC = "roc_auc"


@dataclass
class Analysis:
    """A fitted model and what it says about a corpus."""

    model: FeedbackModel
    corpus: pd.DataFrame  # with theme_id
    holdout: np.ndarray  # bool per corpus row
    weekly: pd.DataFrame
    alerts: pd.DataFrame  # every weekly scan's alerts
    impact: pd.DataFrame
    metrics: dict[str, float]
    matches: pd.DataFrame | None = None
    alert_params: AL.AlertParams = field(default_factory=AL.AlertParams)


def holdout_mask(corpus: pd.DataFrame, fraction: float, seed: int = 0) -> np.ndarray:
    """The latest ``fraction`` of texts by time (the cut is a review-time quantile).

    Undated texts (a reviews export without dates) have no "latest": a seeded random
    ``fraction`` of them is held out instead.
    """
    rv = corpus[corpus[C.SOURCE] == "review"][C.CREATED_AT]
    if rv.empty or fraction <= 0:
        return np.zeros(len(corpus), dtype=bool)
    if rv.isna().all():
        return np.random.default_rng(seed).random(len(corpus)) < fraction
    cut = rv.quantile(1 - fraction)
    return (corpus[C.CREATED_AT] >= cut).to_numpy()


def analyse(corpus: pd.DataFrame, vectors: CorpusVectors, config: FeedbackConfig) -> Analysis:
    """Fit themes and sentiment on the training part, tag everything, trend and alert."""
    hold = holdout_mask(corpus, config.holdout_fraction, config.seed)
    texts = corpus[TEXT].tolist()
    model = fit_model(
        texts,
        corpus[C.RATING].to_numpy(),
        ~hold,
        vectors,
        routes_for(config.embedder),
        config.themes,
        config.sentiment_c,
        config.seed,
        config.negative_below,
        config.positive_above,
    )
    emb, parts = vectors.emb, vectors.parts
    labels, _ = model.assign(emb, parts)
    # Names and quotes from every text, so the report quotes recent customers too.
    name_all(model, texts, emb, parts, config.themes.n_words)
    themes = model.themes
    corpus = corpus.assign(theme_id=labels)
    weekly = weekly_counts(corpus, labels, themes.n_themes)
    alerts = AL.scan(weekly, config.alerts)
    impact = theme_impact(corpus, labels, themes.n_themes)
    p = model.p_positive(emb[hold], parts[hold])
    metrics = {
        GATE_METRIC: sentiment_auc(p, corpus[C.RATING].to_numpy()[hold]),
        "n_themes": float(themes.n_themes),
        "unassigned": float((labels < 0).mean()),
        "texts": float(len(corpus)),
        "alerts_latest_week": float(len(latest_alerts(alerts, weekly))),
    }
    matches = None
    if C.THEME in corpus:
        truth = corpus[C.THEME].fillna("none").to_numpy(object)
        metrics.update({f"theme_{k}": v for k, v in theme_scores(truth, labels).items()})
        if C.LANGUAGE in corpus:
            metrics.update(language_aris(truth, labels, corpus[C.LANGUAGE].to_numpy(object)))
        matches = best_match(truth, labels)
    return Analysis(model, corpus, hold, weekly, alerts, impact, metrics, matches, config.alerts)


def language_aris(truth: np.ndarray, labels: np.ndarray, language: np.ndarray) -> dict:
    """``theme_ari_themed_<lang>``: theme recovery within each language's themed texts."""
    from sklearn.metrics import adjusted_rand_score

    from ppx.feedback.themes import LANGUAGES, NOISE

    out = {}
    for lg in LANGUAGES:
        s = (language == lg) & (truth != NOISE)
        if s.sum() > 1:
            out[f"theme_ari_themed_{lg}"] = float(
                adjusted_rand_score(truth[s].astype(str), labels[s])
            )
    return out


def latest_alerts(alerts: pd.DataFrame, weekly: pd.DataFrame) -> pd.DataFrame:
    """Alerts raised in the last week of data."""
    if alerts.empty or weekly.empty:
        return alerts.iloc[0:0]
    return alerts[alerts["week"] == weekly["week"].max()].reset_index(drop=True)


def load_corpus(world_path: str | Path) -> pd.DataFrame:
    """The world's texts, with the planted theme when the folder has ``truth/``.

    A texts-only store (a reviews export without orders) names its products by the
    catalogue's names when the export had one, else by the export's own keys: both are
    kept in the store's manifest. Categories come from the products table when known.
    """
    from ppx.data.io import holds_texts_only, load_tables, store_product_names

    tables = load_tables(world_path, texts_ok=True)
    corpus = build_corpus(tables)
    truth_file = Path(world_path) / "truth" / f"{C.TRUTH_FEEDBACK}.parquet"
    if truth_file.exists():
        corpus = attach_truth(corpus, pd.read_parquet(truth_file))
    products = tables.get(C.PRODUCTS)
    if products is not None and not holds_texts_only(world_path):
        names = products.set_index(C.PRODUCT_ID)[C.NAME].to_dict()
    else:
        # a bare number (a catalogue id) reads as "product 767", a SKU or name as itself
        names = {
            k: f"product {v}" if v.isdigit() else v
            for k, v in store_product_names(world_path).items()
        }
    corpus.attrs["product_names"] = {int(k): str(v) for k, v in names.items()}
    categories = {}
    if products is not None and C.CATEGORY in products:
        known = products.dropna(subset=[C.CATEGORY])
        categories = dict(
            zip(known[C.PRODUCT_ID].astype(int), known[C.CATEGORY].astype(str), strict=True)
        )
    corpus.attrs["product_categories"] = categories
    corpus.attrs["texts_without_text"] = _texts_without_text(tables)
    return corpus


def _texts_without_text(tables: dict[str, pd.DataFrame]) -> int:
    """Reviews and returns whose text is blank (kept in the store, absent from the corpus)."""
    n = 0
    for name, cols in (
        (C.REVIEWS, (C.REVIEW_TITLE, C.REVIEW_BODY)),
        (C.RETURNS, (C.RETURN_COMMENT,)),
    ):
        t = tables.get(name)
        if t is None or not len(t):
            continue
        blank = np.ones(len(t), dtype=bool)
        for col in cols:
            if col in t:
                s = t[col].fillna("").astype(str).str.strip()
                blank &= (s == "").to_numpy()
        n += int(blank.sum())
    return n


def report_for(analysis: Analysis, path: Path, title: str = "What customers say") -> Path:
    data = ReportData(
        corpus=analysis.corpus,
        themes=analysis.model.themes,
        weekly=analysis.weekly,
        alerts=latest_alerts(analysis.alerts, analysis.weekly),
        impact=analysis.impact,
        product_names=analysis.corpus.attrs.get("product_names", {}),
        product_categories=analysis.corpus.attrs.get("product_categories", {}),
        fdr=analysis.alert_params.fdr,
        without_text=analysis.corpus.attrs.get("texts_without_text", 0),
    )
    return write_report(data, path, title)


def score_model_uri(uri: str, corpus: pd.DataFrame, hold: np.ndarray) -> float:
    """Sentiment ROC AUC of a registered model on this run's holdout reviews."""
    import mlflow.pyfunc

    loaded = mlflow.pyfunc.load_model(uri)
    rows = corpus[hold & (corpus[C.SOURCE] == "review").to_numpy()]
    out = loaded.predict(pd.DataFrame({TEXT: rows[TEXT].tolist()}))
    return sentiment_auc(out["p_positive"].to_numpy(), rows[C.RATING].to_numpy())


def tfidf_sentiment_auc(corpus: pd.DataFrame, hold: np.ndarray, seed: int = 0) -> float:
    """The gate's simple baseline: TF-IDF + logistic regression sentiment, same holdout."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    rating = corpus[C.RATING].to_numpy(float)
    fit = ~hold & np.isfinite(rating) & (rating != 3)
    if len(np.unique(rating[fit] >= 4)) < 2:  # no rated reviews (return comments alone)
        return float("nan")
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x = vec.fit_transform(corpus.loc[fit, TEXT])
    lr = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed)
    lr.fit(x, rating[fit] >= 4)
    p = lr.predict_proba(vec.transform(corpus.loc[hold, TEXT]))[:, 1]
    return sentiment_auc(p, rating[hold])


def train(
    world_path: str | Path,
    cfg: FeedbackConfig | None = None,
    register: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Fit, log to MLflow (``ppx-feedback``), register and run the promotion gate.

    The gate: held-out sentiment ROC AUC must beat TF-IDF + logistic regression on the
    same reviews, and the current champion.
    """
    from mlflow.models import infer_signature

    import mlflow
    from ppx import tracking
    from ppx.models.feedback.pyfunc import ARTIFACT, FeedbackPyfunc
    from ppx.models.feedback.schemas import REQUEST_EXAMPLE

    cfg = cfg or FeedbackConfig()
    tracking.configure()
    corpus = load_corpus(world_path)
    vectors = embed_corpus(corpus[TEXT].tolist(), routes_for(cfg.embedder), progress=progress)
    an = analyse(corpus, vectors, cfg)
    an.metrics["roc_auc_tfidf_logreg"] = tfidf_sentiment_auc(corpus, an.holdout, cfg.seed)
    with (
        tracking.start_run(
            MODEL, world_path=world_path, dataset=corpus[[C.SOURCE, C.TEXT_ID, TEXT]]
        ) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        tmp = Path(tmp)
        mlflow.log_params({**cfg.flat(), "embedder_package": an.model.embedder})
        mlflow.log_metrics({k: v for k, v in an.metrics.items() if v == v})
        themes_json = pd.DataFrame(
            {
                "theme_id": range(an.model.themes.n_themes),
                "name": an.model.themes.names(),
                "words": an.model.themes.words,
                "quotes": an.model.themes.quotes,
                "texts": an.model.themes.sizes,
                "languages": an.model.themes.languages(),
            }
        )
        tracking.log_json(themes_json.to_dict("records"), "themes.json")
        if an.matches is not None:
            tracking.log_json(an.matches.to_dict("records"), "theme_matches.json")
        an.alerts.to_csv(tmp / "alerts.csv", index=False)
        mlflow.log_artifact(str(tmp / "alerts.csv"))
        mlflow.log_artifact(str(report_for(an, tmp / "feedback_report.html")))
        model_file = an.model.save(tmp / "feedback_model.json")
        example = pd.DataFrame([REQUEST_EXAMPLE])
        signature = infer_signature(example, an.model.tag(example[TEXT].tolist()))
        version = tracking.log_pyfunc_model(
            MODEL,
            FeedbackPyfunc(),
            artifacts={ARTIFACT: str(model_file)},
            input_example=example,
            signature=signature,
            register=register,
        )
        gate = None
        if register:
            gate = tracking.promote(
                MODEL,
                version,
                GATE_METRIC,
                an.metrics[GATE_METRIC],
                lambda uri: score_model_uri(uri, an.corpus, an.holdout),
                baselines=[
                    tracking.BaselineCheck(
                        head=MODEL,
                        metric=GATE_METRIC,
                        candidate=an.metrics[GATE_METRIC],
                        baseline_name="tfidf_logreg",
                        baseline=an.metrics["roc_auc_tfidf_logreg"],
                    )
                ],
                heads=(MODEL,),
            )
    return TrainResult(
        model=MODEL,
        run_id=run.info.run_id,
        version=str(version.version) if register else None,
        alias=gate.alias if gate else None,
        promoted=bool(gate.promoted) if gate else False,
        reason=gate.reason if gate else "not registered",
        metrics={k: float(v) for k, v in an.metrics.items()},
        details={"analysis": an},
    )


def evaluate_registered(world_path: str | Path, alias: str = "champion") -> dict[str, float]:
    """Sentiment ROC AUC of the registered model on this world's holdout reviews."""
    from ppx import tracking

    tracking.configure()
    corpus = load_corpus(world_path)
    cfg = FeedbackConfig()
    hold = holdout_mask(corpus, cfg.holdout_fraction, cfg.seed)
    return {GATE_METRIC: score_model_uri(tracking.model_uri(MODEL, alias), corpus, hold)}


def candidate_rows(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The requests this model answers, from a world: one ``text`` per review / comment."""
    return build_corpus(tables)[[TEXT]]
