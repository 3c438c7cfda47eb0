"""Amazon Games review sequences (the SASRec paper's ``Video.txt``) for the recommender.

The file holds one ``user item`` pair per line, both 1-based integers, with each user's
lines in time order (the order *is* the sequence; there are no timestamps). This adapter
turns it into the canonical ``interactions`` shape (``customer_id``, ``product_id``,
``event_at``, ``event_type``) with a synthetic, strictly increasing ``event_at`` per user
so the same sequence code serves the world and this dataset, and into the leave-one-out
split the paper uses: last item test, second-last validation, the rest training. Users
with fewer than three items keep everything in training, as in the paper's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.adapters import dataset_path

DATASET = "amazon_games"
FILE = "Video.txt"


@dataclass(frozen=True)
class LeaveOneOut:
    """Leave-one-out split: ``train`` interactions, and one held-out item per user.

    ``valid`` and ``test`` have one row per evaluated user (``customer_id``,
    ``product_id``). The validation history is ``train``; the test history is ``train``
    plus the validation item, exactly as in the SASRec protocol.
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    n_items: int


def read_pairs(path: str | Path | None = None) -> pd.DataFrame:
    """Read ``user item`` lines into ``customer_id``/``product_id`` int64 columns.

    Raises:
        ValueError: when a line does not hold two positive integers (names the line).
    """
    path = Path(path) if path is not None else dataset_path(DATASET) / FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (expected the SASRec Video.txt)")
    try:
        raw = np.loadtxt(path, dtype=np.int64, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: every line must be 'user item' (two integers): {err}") from err
    if raw.shape[1] != 2:
        raise ValueError(f"{path}: expected 2 columns 'user item', found {raw.shape[1]}")
    bad = np.flatnonzero((raw <= 0).any(axis=1))
    if len(bad):
        raise ValueError(
            f"{path}: customer_id/product_id must be positive integers; first bad line "
            f"{int(bad[0]) + 1}: {raw[bad[0]].tolist()}"
        )
    return pd.DataFrame({C.CUSTOMER_ID: raw[:, 0], C.PRODUCT_ID: raw[:, 1]})


def to_interactions(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs in file order -> canonical interactions with per-user increasing times.

    The k-th action of a user gets ``event_at = 2000-01-01 + k seconds``; only the order
    matters (the model's time-gap inputs are constant for this dataset).
    """
    pos = pairs.groupby(C.CUSTOMER_ID, sort=False).cumcount().to_numpy()
    t0 = pd.Timestamp("2000-01-01")
    out = pd.DataFrame(
        {
            C.CUSTOMER_ID: pairs[C.CUSTOMER_ID].to_numpy(),
            C.PRODUCT_ID: pairs[C.PRODUCT_ID].to_numpy(),
            C.EVENT_AT: t0 + pd.to_timedelta(pos, unit="s"),
            C.EVENT_TYPE: "purchase",
        }
    )
    # Stable sort by user keeps each user's file order.
    return out.sort_values(C.CUSTOMER_ID, kind="stable").reset_index(drop=True)


def leave_one_out(interactions: pd.DataFrame) -> LeaveOneOut:
    """Split time-ordered interactions: last item test, second-last validation."""
    df = interactions.sort_values([C.CUSTOMER_ID, C.EVENT_AT], kind="stable")
    df = df.reset_index(drop=True)
    n_user = df.groupby(C.CUSTOMER_ID, sort=False)[C.PRODUCT_ID].transform("size").to_numpy()
    rank_from_end = (
        df.groupby(C.CUSTOMER_ID, sort=False).cumcount(ascending=False).to_numpy()
    )  # 0 = last
    evaluated = n_user >= 3
    is_test = evaluated & (rank_from_end == 0)
    is_valid = evaluated & (rank_from_end == 1)
    cols = [C.CUSTOMER_ID, C.PRODUCT_ID]
    return LeaveOneOut(
        train=df[~(is_test | is_valid)].reset_index(drop=True),
        valid=df.loc[is_valid, cols].reset_index(drop=True),
        test=df.loc[is_test, cols].reset_index(drop=True),
        n_items=int(df[C.PRODUCT_ID].max()),
    )


def load(path: str | Path | None = None) -> LeaveOneOut:
    """Read ``Video.txt`` and return its leave-one-out split."""
    return leave_one_out(to_interactions(read_pairs(path)))
