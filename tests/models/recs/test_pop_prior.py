"""The popularity prior: an additive log-count term whose weight validation chooses."""

from __future__ import annotations

import numpy as np

from ppx.data import columns as C
from ppx.models.recs.config import RecsConfig


def test_prior_adds_weighted_log_counts_and_keeps_padding_out():
    import torch

    from ppx.features.recs import sequence_arrays
    from ppx.models.recs.model import Recommender, Vocab
    from ppx.models.recs.network import SASRec

    torch.manual_seed(0)
    inter = pd_frame()
    seq = sequence_arrays(inter)
    vocab = Vocab.from_ids(inter[C.PRODUCT_ID])
    cfg = RecsConfig(d_model=8, max_len=5)
    net = SASRec(len(vocab), cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.max_len, cfg.dropout)
    counts = np.array([0.0, 5.0, 0.0, 2.0])
    plain = Recommender(cfg, vocab, net, counts).sequence_logits(seq)
    prior = Recommender(cfg.replace(pop_weight=0.5), vocab, net, counts).sequence_logits(seq)
    np.testing.assert_allclose(
        prior[:, 1:] - plain[:, 1:],
        np.tile(0.5 * np.log1p(counts[1:]), (2, 1)),
        rtol=1e-5,
        atol=1e-6,
    )
    assert np.isneginf(prior[:, 0]).all()


def test_weight_is_the_best_on_validation_and_zero_on_ties():
    from ppx.models.recs.train import _choose_pop_weight

    cfg = RecsConfig(pop_weight_grid=(0.1, 0.3, 0.5))
    hist: dict = {}
    peaked = _choose_pop_weight(
        None, cfg, lambda net, c: {"ndcg_10": -((c.pop_weight - 0.3) ** 2)}, hist
    )
    assert peaked.pop_weight == 0.3
    assert set(hist["pop_weight_valid"]) == {"0.0", "0.1", "0.3", "0.5"}
    flat = _choose_pop_weight(None, cfg, lambda net, c: {"ndcg_10": 0.5}, {})
    assert flat.pop_weight == 0.0


def pd_frame():
    import pandas as pd

    t0 = pd.Timestamp("2024-01-01")
    rows = [
        (1, 1, t0),
        (1, 3, t0 + pd.Timedelta(days=1)),
        (2, 2, t0),
        (2, 1, t0 + pd.Timedelta(days=2)),
    ]
    df = pd.DataFrame(rows, columns=[C.CUSTOMER_ID, C.PRODUCT_ID, C.EVENT_AT])
    df[C.EVENT_TYPE] = "purchase"
    return df


def test_sampled_negatives_can_come_from_outside_neg_exclude():
    """The paper's code excludes only training items from the 100 negatives: an item
    outside ``neg_exclude`` (the validation item, on test) can be drawn and outrank."""
    import scipy.sparse as sp

    from ppx.features.recs import SequenceArrays
    from ppx.models.recs.evaluate import evaluate_scorer

    seq = SequenceArrays(
        np.array([1]), np.array([0, 1]), np.array([2]), np.array([1]), np.array([0.0])
    )
    scores = np.array([[-np.inf, 1.0, 2.0, 0.0, 0.0]], dtype=np.float32)
    seen = sp.csr_matrix(([1.0], ([0], [2])), shape=(1, 5))
    kw = dict(now_days=None, exclude=seen, exclude_seen=True, progress=False)
    ours = evaluate_scorer(lambda s, t: scores, seq, np.array([1]), **kw)
    paper = evaluate_scorer(
        lambda s, t: scores, seq, np.array([1]), neg_exclude=sp.csr_matrix((1, 5)), **kw
    )
    assert ours["hr_10_s100"] == 1.0 and ours["ndcg_10_s100"] == 1.0
    assert paper["hr_10_s100"] == 0.0
