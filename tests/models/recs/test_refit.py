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
    # serving loads one network: an ensemble is refused by name, not half-saved
    from ppx.models.recs.serve import save_served

    ensemble = Recommender(cfg, vocab, SASRecEnsemble(nets), pop)
    with pytest.raises(ValueError, match="ensemble"):
        save_served("/nonexistent/never-written", ensemble, inter, None, None, pd.Timestamp(0))


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


def _tiny_amazon(tmp_path, n_users=80, n_items=15, seed=1):
    from ppx.models.recs.data import amazon_problem

    rng = np.random.default_rng(seed)
    lines = [
        f"{u} {int(rng.integers(1, n_items + 1))}"
        for u in range(1, n_users + 1)
        for _ in range(int(rng.integers(3, 8)))
    ]
    (tmp_path / "Video.txt").write_text("\n".join(lines) + "\n")
    return amazon_problem(tmp_path / "Video.txt")


def _tiny_cfg(**overrides) -> RecsConfig:
    """A refit configuration small enough for a test (one thread, no repeat head)."""
    base = dict(d_model=8, max_len=5, batch_size=16, eval_users=0, threads=1)
    return RecsConfig(**base, use_repeat=False, refit_on_valid=True, **overrides)


@pytest.mark.parametrize("seeds,ensemble,members", [(1, False, 1), (2, False, 2), (1, True, 2)])
def test_refit_replays_the_best_epochs_on_the_data_known_at_test(
    tmp_path, seeds, ensemble, members
):
    from ppx.models.recs.train import _popularity, fit_recommender, refit_for_test

    torch.set_num_threads(1)
    p = _tiny_amazon(tmp_path)
    cfg = _tiny_cfg(
        epochs=3,
        patience=9,
        select_metric="ndcg_10_s100",
        refit_seeds=seeds,
        refit_ensemble=ensemble,
        lr_plateau_factor=0.5,
    )
    rec, hist = fit_recommender(p, cfg, progress=False)
    before = hist["train_seconds"]
    out = refit_for_test(p, rec.config, rec, hist, progress=False)
    assert hist["refit_epochs"] == hist["best_epoch"]
    assert hist["refit_networks"] == seeds
    assert hist["train_seconds"] > before
    n = len(out.net.nets) if isinstance(out.net, SASRecEnsemble) else 1
    assert n == members
    assert (rec.net in list(getattr(out.net, "nets", []))) == ensemble
    np.testing.assert_array_equal(out.popularity, _popularity(p, p.train_test))
    assert out.sequence_logits(p.test.seq).shape == (len(p.test.seq), len(p.vocab) + 1)


def test_refit_is_skipped_when_the_time_cap_is_spent(tmp_path):
    from ppx.models.recs.train import fit_recommender, refit_for_test

    p = _tiny_amazon(tmp_path)
    cfg = _tiny_cfg(epochs=2)
    rec, hist = fit_recommender(p, cfg, progress=False)
    hist["train_seconds"] = cfg.max_minutes * 60.0  # nothing left
    assert refit_for_test(p, cfg, rec, hist, progress=False) is rec
    assert hist["refit_epochs"] == 0
