"""Evaluation problems for the recommender: the world's time split and Amazon's LOO.

Both produce the same :class:`Problem`: training sequences (everything the model may
learn from), and validation/test :class:`EvalSet` s (one history and one target per
user). Parameters of every method are fitted on ``train`` only; test histories also
include what happened before the test moment (the validation item on Amazon, the
validation window on the world), exactly like the SASRec protocol.

World protocol: the last ``horizon_days`` before the end of the data are the test
window, the ``horizon_days`` before that the validation window. The target of a
customer is their first one-off purchase in the window (renewals ship anyway), the
decision moment is the window start, and seen items are *not* excluded (repeat-aware):
a replenishment counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ppx.data import columns as C
from ppx.features.recs import (
    SequenceArrays,
    next_purchases,
    repeat_features,
    repurchase_intervals,
    sequence_arrays,
    to_days,
)
from ppx.models.recs.evaluate import user_item_matrix
from ppx.models.recs.model import Vocab


@dataclass
class EvalSet:
    """Users with one history and one target each (targets are vocabulary indices)."""

    seq: SequenceArrays
    targets: np.ndarray
    now_days: np.ndarray | None
    exclude: sp.csr_matrix
    is_repeat: np.ndarray | None = None
    feats: pd.DataFrame | None = None
    cutoff: pd.Timestamp | None = None
    #: items never drawn as sampled negatives, if not ``exclude`` (see evaluate_scorer)
    neg_exclude: sp.csr_matrix | None = None


@dataclass
class Problem:
    name: str
    vocab: Vocab
    train: SequenceArrays
    valid: EvalSet
    test: EvalSet
    exclude_seen: bool
    interactions: pd.DataFrame | None = None
    products: pd.DataFrame | None = None
    intervals: pd.DataFrame | None = None
    valid_cutoff: pd.Timestamp | None = None
    #: leave-one-out data: every user's sequence as known at the test moment (training
    #: items plus the validation item), for the optional refit of the test models
    train_test: SequenceArrays | None = None


def amazon_problem(path=None) -> Problem:
    """Amazon Games leave-one-out (last item test, second-last validation)."""
    from ppx.data.adapters import amazon_games as ag

    loo = ag.load(path)
    vocab = Vocab.from_ids(np.arange(1, loo.n_items + 1))
    train = sequence_arrays(loo.train)
    pos = train.user_index()

    def evalset(seq_all: SequenceArrays, frame: pd.DataFrame) -> EvalSet:
        users = np.array([pos[int(c)] for c in frame[C.CUSTOMER_ID]])
        seq = seq_all.subset(users)
        return EvalSet(
            seq=seq,
            targets=vocab.encode(frame[C.PRODUCT_ID].to_numpy()),
            now_days=None,
            exclude=user_item_matrix(seq, vocab.encode, len(vocab)),
            # The paper's code draws the 100 negatives from items outside the user's
            # *training* items (on test, the validation item may be drawn).
            neg_exclude=user_item_matrix(train.subset(users), vocab.encode, len(vocab)),
        )

    valid = evalset(train, loo.valid)
    known_at_test = train.append(
        loo.valid[C.CUSTOMER_ID].to_numpy(), loo.valid[C.PRODUCT_ID].to_numpy()
    )
    test = evalset(known_at_test, loo.test)
    return Problem(
        "amazon_games", vocab, train, valid, test, exclude_seen=True, train_test=known_at_test
    )


def world_cutoffs(interactions: pd.DataFrame, horizon_days: float) -> tuple:
    """(validation cutoff, test cutoff): the last two windows of ``horizon_days``."""
    end = interactions[C.EVENT_AT].max().normalize() + pd.Timedelta(days=1)
    test = end - pd.Timedelta(days=horizon_days)
    return test - pd.Timedelta(days=horizon_days), test


def world_evalset(
    interactions: pd.DataFrame,
    vocab: Vocab,
    cutoff: pd.Timestamp,
    horizon_days: float,
    intervals: pd.DataFrame,
) -> EvalSet:
    """Customers who buy in ``[cutoff, cutoff + horizon)``: history before, first buy."""
    tg = next_purchases(interactions, cutoff, horizon_days)
    tg = tg[vocab.encode(tg[C.PRODUCT_ID].to_numpy()) > 0]
    seq = sequence_arrays(interactions, cutoff, customer_ids=tg[C.CUSTOMER_ID].to_numpy())
    now = np.full(len(seq), float(to_days(pd.Timestamp(cutoff))))
    hist = interactions[interactions[C.CUSTOMER_ID].isin(tg[C.CUSTOMER_ID])]
    return EvalSet(
        seq=seq,
        targets=vocab.encode(tg[C.PRODUCT_ID].to_numpy()),
        now_days=now,
        exclude=user_item_matrix(seq, vocab.encode, len(vocab)),
        is_repeat=tg["is_repeat"].to_numpy(),
        feats=repeat_features(hist, pd.Timestamp(cutoff), intervals),
        cutoff=pd.Timestamp(cutoff),
    )


def world_problem(
    interactions: pd.DataFrame, products: pd.DataFrame, horizon_days: float, name: str = "world"
) -> Problem:
    """The world's time split (see module docstring)."""
    vocab = Vocab.from_ids(products[C.PRODUCT_ID].to_numpy())
    valid_cut, test_cut = world_cutoffs(interactions, horizon_days)
    intervals = repurchase_intervals(interactions, valid_cut)
    return Problem(
        name,
        vocab,
        train=sequence_arrays(interactions, valid_cut),
        valid=world_evalset(interactions, vocab, valid_cut, horizon_days, intervals),
        test=world_evalset(interactions, vocab, test_cut, horizon_days, intervals),
        exclude_seen=False,
        interactions=interactions,
        products=products,
        intervals=intervals,
        valid_cutoff=valid_cut,
    )
