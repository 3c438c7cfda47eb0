"""The item re-ranker learns how much an item feature should move a logit."""

from __future__ import annotations

import numpy as np

from ppx.models.recs.rerank import fit_item_reranker, reranked_scorer


def _examples(rng, signal: float, n_items=30, users=400, cutoffs=3):
    """Flat base logits; each cutoff's next purchases drawn with log-odds
    ``signal * feature`` of the items, the feature differing by cutoff."""
    out = []
    for _ in range(cutoffs):
        f = np.zeros((n_items + 1, 2))
        f[1:, 0] = rng.normal(size=n_items)  # carries the signal
        f[1:, 1] = rng.normal(size=n_items)  # noise
        p = np.exp(signal * f[1:, 0])
        y = rng.choice(np.arange(1, n_items + 1), users, p=p / p.sum())
        out.append((np.zeros((users, n_items + 1), dtype=np.float32), y, f))
    return out


def test_a_predictive_feature_gets_weight_and_a_useless_one_almost_none():
    rng = np.random.default_rng(0)
    r = fit_item_reranker(_examples(rng, signal=1.0))
    assert r.weights[0] > 0.5 and abs(r.weights[1]) < 0.2
    flat = fit_item_reranker(_examples(rng, signal=0.0))
    assert np.abs(flat.weights).max() < 0.2


def test_the_boost_is_added_to_every_user_and_never_to_padding():
    rng = np.random.default_rng(1)
    ex = _examples(rng, signal=1.0)
    r = fit_item_reranker(ex)
    feats = ex[0][2]
    scorer = reranked_scorer(lambda seq, now: np.ones((2, feats.shape[0])), r, feats)
    out = scorer(None, None)
    assert out.shape == (2, feats.shape[0]) and np.array_equal(out[0], out[1])
    assert out[0, 0] == 1.0  # padding untouched
    # the item with the largest signal feature is boosted most
    assert np.argmax(out[0, 1:]) == np.argmax(
        feats[1:, 0] * r.weights[0] + feats[1:, 1] * r.weights[1]
    )
