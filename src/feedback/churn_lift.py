"""Do theme rates help predict churn? Customer and product theme features, measured.

The question is whether what customers *write* tells more about who cancels than what
the churn features already count (late deliveries, low ratings, returns, claims). The
measurement, on the churn model's own time split and on validation snapshots only:

1. themes and sentiment are fitted on texts written before the validation period, then
   every text is tagged (so no later text shapes a feature);
2. a theme is *negative* when its texts' mean p(positive) is below one half;
3. per subscription and snapshot, from texts strictly before the snapshot:
   ``fb_texts_total``, ``fb_negative_3m`` (texts in negative themes in the last 90
   days), ``fb_negative_share`` (of all the customer's texts), ``fb_min_p_positive_3m``
   (the unhappiest recent text, 1 when none) and ``fb_product_negative_rate`` (for the
   products the customer ordered in the last 90 days, the share of everyone's texts
   about them in negative themes over the 90 days before the snapshot);
4. LightGBM and logistic regression on the churn features, with and without these,
   trained on training snapshots and scored on validation snapshots (30-day churn).

The features stay out of the churn model unless they raise validation ROC AUC by more
than its bootstrap standard error; ``docs/benchmarks.md`` has the figure either way.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from ppx.data import columns as C

WINDOW = pd.Timedelta(days=90)
FEATURES = (
    "fb_texts_total",
    "fb_negative_3m",
    "fb_negative_share",
    "fb_min_p_positive_3m",
    "fb_product_negative_rate",
)


def tag_corpus(
    tables: dict, fit_before: pd.Timestamp, progress: bool = False, embedder: str | None = None
) -> pd.DataFrame:
    """Every text with its theme, p(positive) and whether the theme is negative; themes
    and sentiment fitted (as ``ppx train feedback`` fits them, ``embedder`` defaulting to
    ``FeedbackConfig``'s) on texts written before ``fit_before`` only."""
    from ppx.feedback.corpus import TEXT, build_corpus
    from ppx.feedback.routing import embed_corpus, routes_for
    from ppx.feedback.tagger import fit_model
    from ppx.models.feedback.config import FeedbackConfig

    cfg = FeedbackConfig() if embedder is None else FeedbackConfig(embedder=embedder)
    corpus = build_corpus(tables)
    texts = corpus[TEXT].tolist()
    routes = routes_for(cfg.embedder)
    vectors = embed_corpus(texts, routes, progress=progress)
    early = (corpus[C.CREATED_AT] < fit_before).to_numpy()
    model = fit_model(
        texts, corpus[C.RATING].to_numpy(), early, vectors, routes, cfg.themes, seed=cfg.seed
    )
    p = model.p_positive(vectors.emb, vectors.parts)
    labels, _ = model.assign(vectors.emb, vectors.parts)
    fit_p = pd.Series(p[early]).groupby(labels[early]).mean()
    negative = {int(k) for k, v in fit_p.items() if k >= 0 and v < 0.5}
    out = corpus[[C.CUSTOMER_ID, C.PRODUCT_ID, C.CREATED_AT]].copy()
    out["p_positive"] = p
    out["negative"] = np.isin(labels, list(negative))
    return out


def theme_features(tagged: pd.DataFrame, order_items: pd.DataFrame, keys: pd.DataFrame):
    """:data:`FEATURES` for each (customer_id, as_of) row of ``keys``, from texts and
    orders strictly before ``as_of``."""
    rows = []
    for as_of, grp in keys.groupby("as_of", sort=False):
        past = tagged[tagged[C.CREATED_AT] < as_of]
        recent = past[past[C.CREATED_AT] >= as_of - WINDOW]
        by_c = past.groupby(C.CUSTOMER_ID)
        rec_c = recent.groupby(C.CUSTOMER_ID)
        f = pd.DataFrame(index=pd.Index(grp[C.CUSTOMER_ID].unique(), name=C.CUSTOMER_ID))
        f["fb_texts_total"] = by_c.size().reindex(f.index).fillna(0)
        f["fb_negative_3m"] = rec_c["negative"].sum().reindex(f.index).fillna(0)
        f["fb_negative_share"] = by_c["negative"].mean().reindex(f.index).fillna(0)
        f["fb_min_p_positive_3m"] = rec_c["p_positive"].min().reindex(f.index).fillna(1.0)
        prod_rate = recent.groupby(C.PRODUCT_ID)["negative"].mean()
        oi = order_items[
            (order_items[C.ORDERED_AT] < as_of) & (order_items[C.ORDERED_AT] >= as_of - WINDOW)
        ]
        oi = oi[oi[C.CUSTOMER_ID].isin(f.index)]
        rate = oi[C.PRODUCT_ID].map(prod_rate).fillna(0.0)
        f["fb_product_negative_rate"] = (
            rate.groupby(oi[C.CUSTOMER_ID]).mean().reindex(f.index).fillna(0.0)
        )
        f["as_of"] = as_of
        rows.append(f.reset_index())
    feats = pd.concat(rows, ignore_index=True)
    return keys[[C.CUSTOMER_ID, "as_of"]].merge(feats, on=[C.CUSTOMER_ID, "as_of"], how="left")


def _auc_with_se(y: np.ndarray, p: np.ndarray, base: np.ndarray, n_boot: int = 200, seed=0):
    """ROC AUC of ``p``, and the bootstrap standard error of its gain over ``base``."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() == y[i].max():
            continue
        gains.append(roc_auc_score(y[i], p[i]) - roc_auc_score(y[i], base[i]))
    return float(roc_auc_score(y, p)), float(np.std(gains))


def churn_lift(tables: dict, seed: int = 0, progress: bool = False) -> dict:
    """Validation ROC / PR AUC of 30-day churn with and without theme features."""
    import lightgbm as lgb
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ppx.features import churn as F
    from ppx.models.churn.train import world_splits

    splits = world_splits(tables, progress=progress)
    tagged = tag_corpus(tables, splits.val_start, progress=progress)
    oi = tables[C.ORDER_ITEMS].merge(
        tables[C.ORDERS][[C.ORDER_ID, C.CUSTOMER_ID, C.ORDERED_AT]], on=C.ORDER_ID
    )
    frames = {}
    for name, frame in (("train", splits.train), ("val", splits.val)):
        frame = frame[frame["observed_30"] > 0].reset_index(drop=True)
        extra = theme_features(tagged, oi, frame[[C.CUSTOMER_ID, F.AS_OF]])
        frames[name] = pd.concat([frame, extra[list(FEATURES)]], axis=1)
    base_cols = list(F.MODEL_NUMERIC_FEATURES)
    ytr = frames["train"]["churn_30"].to_numpy()
    yva = frames["val"]["churn_30"].to_numpy()

    def design(name, cols):
        x = frames[name][cols].astype(float)
        cats = pd.get_dummies(frames[name][list(F.CATEGORICAL_FEATURES)].astype(str))
        return pd.concat([x, cats.astype(float)], axis=1)

    preds: dict[str, dict[str, np.ndarray]] = {}
    for label, cols in (("churn_features", base_cols), ("with_themes", base_cols + list(FEATURES))):
        xtr, xva = design("train", cols), design("val", cols)
        xva = xva.reindex(columns=xtr.columns, fill_value=0.0)
        gbm = lgb.LGBMClassifier(
            n_estimators=300,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=50,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=seed,
            verbose=-1,
            n_jobs=1,
        ).fit(xtr, ytr)
        lr = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000)).fit(
            xtr.fillna(0), ytr
        )
        preds[label] = {
            "lightgbm": gbm.predict_proba(xva)[:, 1],
            "logreg": lr.predict_proba(xva.fillna(0))[:, 1],
        }
    out: dict[str, dict[str, float]] = {}
    for model in ("lightgbm", "logreg"):
        base = preds["churn_features"][model]
        for label in preds:
            p = preds[label][model]
            auc, se = _auc_with_se(yva, p, base, seed=seed)
            out[f"{model}_{label}"] = {
                "roc_auc": auc,
                "pr_auc": float(average_precision_score(yva, p)),
                "roc_auc_gain_se": se,
            }
    out["validation_rows"] = {
        "rows": float(len(yva)),
        "churn_30_rate": float(yva.mean()),
        "texts_before_validation": float((tagged[C.CREATED_AT] < splits.val_start).sum()),
        "negative_text_share": float(tagged["negative"].mean()),
    }
    return {"churn_theme_features": out}


if __name__ == "__main__":  # python -m ppx.feedback.churn_lift CUSTOMERS SEED
    import json

    import torch

    from ppx.data.world import WorldParams, generate_world

    torch.set_num_threads(1)
    world = generate_world(WorldParams(n_customers=int(sys.argv[1]), seed=int(sys.argv[2])))
    print(json.dumps(churn_lift(world.tables, progress=True)))
