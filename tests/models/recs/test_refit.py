"""The leave-one-out refit: a schedule replayed on the data known at test, two nets averaged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ppx.data import columns as C
from ppx.features.recs import sequence_arrays
from ppx.models.recs.config import RecsConfig
from ppx.models.recs.model import Recommender, Vocab, fit_sasrec
from ppx.models.recs.network import SASRec, SASRecEnsemble


def _sequences(n_users=60, n_items=12, length=6, seed=0):
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2024-01-01")
    rows = [
        (u, int(rng.integers(1, n_items + 1)), t0 + pd.Timedelta(seconds=k), "purchase")
        for u in range(1, n_users + 1)
        for k in range(length)
    ]
    return pd.DataFrame(rows, columns=[C.CUSTOMER_ID, C.PRODUCT_ID, C.EVENT_AT, C.EVENT_TYPE])


def test_ensemble_logits_are_the_mean_of_the_members():
    torch.manual_seed(0)
    inter = _sequences()
    seq, vocab = sequence_arrays(inter), Vocab.from_ids(inter[C.PRODUCT_ID])
    cfg = RecsConfig(d_model=8, max_len=5, pop_weight=0.3)
    nets = [SASRec(len(vocab), 8, 1, 1, 5, 0.0) for _ in range(2)]
    with torch.no_grad():
        nets[1].item_emb.weight.mul_(3.0)  # members must differ
    pop = np.arange(len(vocab) + 1, dtype=float)
    each = [Recommender(cfg, vocab, n, pop).sequence_logits(seq)[:, 1:] for n in nets]
    assert not np.allclose(each[0], each[1])
    both = Recommender(cfg, vocab, SASRecEnsemble(nets), pop).sequence_logits(seq)
    np.testing.assert_allclose(both[:, 1:], (each[0] + each[1]) / 2, rtol=1e-4, atol=1e-5)
    assert np.isneginf(both[:, 0]).all()


def test_replayed_schedule_sets_epochs_and_learning_rates():
    inter = _sequences()
    seq, vocab = sequence_arrays(inter), Vocab.from_ids(inter[C.PRODUCT_ID])
    cfg = RecsConfig(d_model=8, max_len=5, batch_size=16, epochs=50, threads=1)
    sched = [1e-3, 3e-4, 9e-5]
    _, hist = fit_sasrec(seq, vocab, cfg, None, False, lr_schedule=sched)
    assert hist["epochs_run"] == 3
    assert [r["lr"] for r in hist["curve"]] == pytest.approx(sched)
    with pytest.raises(ValueError, match="lr_schedule"):
        fit_sasrec(seq, vocab, cfg, lambda net: 0.0, False, lr_schedule=sched)


def test_best_epoch_is_recorded_with_the_curve():
    inter = _sequences()
    seq, vocab = sequence_arrays(inter), Vocab.from_ids(inter[C.PRODUCT_ID])
    cfg = RecsConfig(d_model=8, max_len=5, batch_size=16, epochs=4, patience=9, threads=1)
    scores = iter([0.1, 0.3, 0.2, 0.25])
    _, hist = fit_sasrec(seq, vocab, cfg, lambda net: next(scores), False)
    assert hist["best_epoch"] == 2
    assert len(hist["curve"]) == 4


def test_amazon_sequences_known_at_test_add_the_validation_item(tmp_path):
    from ppx.models.recs.data import amazon_problem

    lines = ["1 1", "1 2", "1 3", "1 4", "2 2", "2 3", "3 4", "3 1", "3 2"]
    (tmp_path / "Video.txt").write_text("\n".join(lines) + "\n")
    p = amazon_problem(tmp_path / "Video.txt")
    known = {
        int(c): p.train_test.history(u).tolist() for u, c in enumerate(p.train_test.customer_ids)
    }
    assert known == {1: [1, 2, 3], 2: [2, 3], 3: [4, 1]}  # user 2: too short, training only
    assert {int(c): p.train.history(u).tolist() for u, c in enumerate(p.train.customer_ids)} == {
        1: [1, 2],
        2: [2, 3],
        3: [4],
    }
    assert [p.test.seq.history(u).tolist() for u in range(len(p.test.seq))] == [[1, 2, 3], [4, 1]]
