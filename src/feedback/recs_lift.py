"""Do theme rates help recommend? Per-product theme rates as item features, measured.

The question is whether what customers *write* about a product (the share of its
reviews and return comments in negative themes, its mean sentiment) ranks the next
purchase better than the recommender already does from purchase sequences. The
measurement, on the recommender's own time split (``ppx.models.recs.data.world_problem``:
validation window, then test window) and with its metric (full-ranking ``ndcg_10``):

1. the recommender (transformer + repeat head) is trained as ``ppx train recs`` trains
   it, on data before the validation window;
2. themes and sentiment are fitted on texts written before the validation window only
   (``ppx.feedback.churn_lift.tag_corpus``), then every text is tagged;
3. per product and decision moment, from texts strictly before it,
   ``ppx.features.recs.item_theme_rates`` (:data:`~ppx.features.recs.ITEM_THEME_FEATURES`);
4. a linear re-ranker of those features (``ppx.models.recs.rerank``) is fitted on the
   repeat head's training cutoffs, the recommender frozen, and both rankings — the
   recommender alone and with the re-ranker — are scored on the same validation and
   test customers; the standard error of the ``ndcg_10`` difference comes from 200
   paired bootstrap resamples of customers.

The features stay out of the served recommender unless the validation gain is larger
than its standard error; ``docs/feedback.md`` has the figure either way.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from ppx.data import columns as C

K = 10


def _ndcg_per_user(r: np.ndarray) -> np.ndarray:
    return np.where(r < K, 1.0 / np.log2(np.asarray(r) + 2.0), 0.0)


def _paired(base_ranks: np.ndarray, new_ranks: np.ndarray, n_boot: int = 200, seed: int = 0):
    a, b = _ndcg_per_user(base_ranks), _ndcg_per_user(new_ranks)
    rng = np.random.default_rng(seed)
    d = b - a
    boots = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(n_boot)]
    return float(a.mean()), float(b.mean()), float(d.mean()), float(np.std(boots))


def _ranks(scorer, es) -> np.ndarray:
    from ppx.models.recs.evaluate import ranks

    rng = np.random.default_rng(0)
    out = np.empty(len(es.seq))
    for lo in range(0, len(es.seq), 1024):
        rows = np.arange(lo, min(lo + 1024, len(es.seq)))
        sc = scorer(es.seq.subset(rows), None if es.now_days is None else es.now_days[rows])
        out[rows] = ranks(sc, es.targets[rows], None, None, rng)
    return out


def item_feature_matrix(tagged: pd.DataFrame, cutoff: pd.Timestamp, vocab) -> np.ndarray:
    """``[n+1, k]`` item theme features by vocabulary index (row 0 padding, zeros)."""
    from ppx.features.recs import ITEM_THEME_FEATURES, item_theme_rates

    f = item_theme_rates(tagged, cutoff, vocab.product_ids)
    out = np.zeros((len(vocab) + 1, len(ITEM_THEME_FEATURES)))
    out[1:] = f[ITEM_THEME_FEATURES].to_numpy(float)
    return out


def training_examples(rec, problem, tagged: pd.DataFrame, cfg) -> list:
    """(recommender logits, next purchase, item features) at the repeat head's cutoffs."""
    from ppx.features.recs import next_purchases, repeat_features, sequence_arrays, to_days

    inter = problem.interactions
    last = problem.valid_cutoff - pd.Timedelta(days=cfg.horizon_days)
    cutoffs = [
        last - pd.Timedelta(days=cfg.repeat_spacing_days * k) for k in range(cfg.repeat_cutoffs)
    ]
    cutoffs = [c for c in cutoffs if c > inter[C.EVENT_AT].min() + pd.Timedelta(days=60)]
    out = []
    before = inter[inter[C.EVENT_AT] < problem.valid_cutoff]
    for c in cutoffs:
        tg = next_purchases(before, c, cfg.horizon_days)
        tg = tg[rec.vocab.encode(tg[C.PRODUCT_ID].to_numpy()) > 0]
        seq = sequence_arrays(inter, c, customer_ids=tg[C.CUSTOMER_ID].to_numpy())
        keep = seq.lengths() > 0
        seq, tg = seq.subset(np.flatnonzero(keep)), tg[keep]
        if len(seq) == 0:
            continue
        now = np.full(len(seq), float(to_days(c)))
        hist = inter[inter[C.CUSTOMER_ID].isin(tg[C.CUSTOMER_ID])]
        logits = rec.score(seq, now, repeat_features(hist, c, problem.intervals))
        out.append(
            (
                logits,
                rec.vocab.encode(tg[C.PRODUCT_ID].to_numpy()),
                item_feature_matrix(tagged, c, rec.vocab),
            )
        )
    return out


def recs_lift(tables: dict, cfg=None, progress: bool = False) -> dict:
    """Validation and test ``ndcg_10`` of the recommender with and without theme rates."""
    from ppx.feedback.churn_lift import tag_corpus
    from ppx.models.recs.config import RecsConfig
    from ppx.models.recs.data import world_problem
    from ppx.models.recs.rerank import fit_item_reranker, reranked_scorer
    from ppx.models.recs.train import fit_recommender, scorer_of

    cfg = cfg or RecsConfig()
    problem = world_problem(tables[C.INTERACTIONS], tables[C.PRODUCTS], cfg.horizon_days)
    rec, hist = fit_recommender(problem, cfg, progress)
    tagged = tag_corpus(tables, problem.valid_cutoff, progress=progress)
    reranker = fit_item_reranker(training_examples(rec, problem, tagged, cfg))
    out: dict[str, dict[str, float]] = {}
    for name, es in (("valid", problem.valid), ("test", problem.test)):
        base = scorer_of(rec, es)
        feats = item_feature_matrix(tagged, es.cutoff, rec.vocab)
        r0 = _ranks(base, es)
        r1 = _ranks(reranked_scorer(base, reranker, feats), es)
        a, b, d, se = _paired(r0, r1)
        out[name] = {
            "ndcg_10_recs": a,
            "ndcg_10_with_themes": b,
            "difference": d,
            "difference_se": se,
            "users": float(len(r0)),
        }
    from ppx.features.recs import ITEM_THEME_FEATURES

    out["reranker_weights"] = dict(
        zip(ITEM_THEME_FEATURES, map(float, reranker.weights), strict=True)
    )
    out["recommender"] = {
        "epochs": float(hist["epochs_run"]),
        "repeat_head": float(rec.head is not None),
        "texts_before_validation": float((tagged[C.CREATED_AT] < problem.valid_cutoff).sum()),
        "negative_text_share": float(tagged["negative"].mean()),
    }
    keep = out["valid"]["difference"] > out["valid"]["difference_se"]
    out["decision"] = {"keep_theme_features": float(keep)}
    return {"recs_theme_features": out}


if __name__ == "__main__":  # python -m ppx.feedback.recs_lift CUSTOMERS SEED [MINUTES]
    import json

    import torch

    from ppx.data.world import WorldParams, generate_world
    from ppx.models.recs.config import RecsConfig

    torch.set_num_threads(1)
    minutes = float(sys.argv[3]) if len(sys.argv) > 3 else 6.0
    world = generate_world(WorldParams(n_customers=int(sys.argv[1]), seed=int(sys.argv[2])))
    cfg = RecsConfig(threads=1, max_minutes=minutes)
    print(json.dumps(recs_lift(world.tables, cfg, progress=True)))
