"""Amazon Games adapter: parsing, canonical shape, and the leave-one-out split."""

from __future__ import annotations

import pytest

from ppx.data import columns as C
from ppx.data.adapters import amazon_games as ag
from ppx.data.adapters import datasets_dir


def _write(tmp_path, text: str):
    p = tmp_path / "Video.txt"
    p.write_text(text)
    return p


def test_leave_one_out_keeps_order_and_holds_out_last_two(tmp_path):
    path = _write(tmp_path, "1 10\n1 11\n1 12\n1 13\n2 20\n2 21\n3 30\n3 31\n3 32\n")
    split = ag.load(path)
    assert split.test.set_index(C.CUSTOMER_ID)[C.PRODUCT_ID].to_dict() == {1: 13, 3: 32}
    assert split.valid.set_index(C.CUSTOMER_ID)[C.PRODUCT_ID].to_dict() == {1: 12, 3: 31}
    train = split.train.groupby(C.CUSTOMER_ID)[C.PRODUCT_ID].apply(list).to_dict()
    # Users with fewer than three items stay in training only (the paper's rule).
    assert train == {1: [10, 11], 2: [20, 21], 3: [30]}
    assert split.n_items == 32
    assert set(split.train[C.EVENT_TYPE]) == {"purchase"}
    # Times are strictly increasing per user, so order survives any sort.
    assert (
        split.train.groupby(C.CUSTOMER_ID)[C.EVENT_AT]
        .apply(lambda s: s.is_monotonic_increasing)
        .all()
    )


def test_bad_lines_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="positive integers"):
        ag.read_pairs(_write(tmp_path, "1 10\n0 5\n"))
    with pytest.raises(ValueError, match="two integers|2 columns"):
        ag.read_pairs(_write(tmp_path, "1 10 3\n2 4 4\n"))
    with pytest.raises(FileNotFoundError):
        ag.read_pairs(tmp_path / "missing.txt")


def test_real_dataset_matches_the_paper_statistics():
    path = datasets_dir() / ag.DATASET / ag.FILE
    if not path.exists():
        pytest.skip(f"{path} not present")
    split = ag.load(path)
    users = split.train[C.CUSTOMER_ID].nunique()
    assert users == 31013  # SASRec paper, Table 2 (Games)
    assert split.n_items == 23715
    assert len(split.test) == len(split.valid) == (users - 112)  # 30 + 82 users have < 3
