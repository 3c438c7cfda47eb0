"""A full import (orders and returns): the brand's own return-reason labels are mapped
onto the fraud model's reasons, each row keeping its label, and the fraud features run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.data.io import load_tables
from ppx.data.stores.commands import import_store
from ppx.data.stores.read import StoreImportError

RETURNS_FILE = "Returns export.csv"
REASON_COLUMN = "Return reason"
#: (the brand's label, the reason a store of orders records)
BRAND = [
    ("Too small", "changed_mind"),  # size_fit: the fraud model's reasons have no size
    ("DAMAGED IN TRANSIT", "damaged"),
    ("Didn't like the colour", "changed_mind"),
    ("Gift for my aunt", "other"),  # no known phrasing: other, the label kept
    ("", "other"),  # blank: other, no label
]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _export(world, folder, returns: pd.DataFrame):
    """The world's tables as a brand's export: returns as a CSV with its own reason
    column, named in a mapping YAML; every other table as canonical Parquet."""
    folder.mkdir(parents=True)
    for name, df in world.tables.items():
        if name != C.RETURNS:
            df.to_parquet(folder / f"{name}.parquet", index=False)
    returns.rename(columns={C.REASON: REASON_COLUMN}).to_csv(folder / RETURNS_FILE, index=False)
    mapping = folder / "mapping.yaml"
    mapping.write_text(
        f"tables:\n  returns:\n    file: {RETURNS_FILE}\n    columns: {{reason: {REASON_COLUMN}}}\n"
    )
    return folder, mapping


@pytest.fixture(scope="module")
def labelled(tiny_world, tmp_path_factory):
    """The tiny world's returns, every third one relabelled in the brand's words."""
    world, _ = tiny_world
    returns = world.tables[C.RETURNS].copy()
    relabel = np.arange(len(returns)) % 3 == 0
    labels = [BRAND[i % len(BRAND)][0] for i in range(int(relabel.sum()))]
    returns[C.REASON] = returns[C.REASON].astype(object)
    returns.loc[relabel, C.REASON] = labels
    root = tmp_path_factory.mktemp("reasons")
    src, mapping = _export(world, root / "export", returns)
    out, tables, report = import_store(src, root / "store", mapping=mapping)
    return world, returns, relabel, out, tables, report


def test_brand_labels_are_mapped_and_kept_and_codes_pass_unchanged(labelled):
    world, returns, relabel, out, tables, report = labelled
    assert not report.texts_only
    rt = tables[C.RETURNS]
    assert rt[C.RETURN_ID].tolist() == returns[C.RETURN_ID].tolist()
    expected = dict(BRAND)
    given = returns.loc[relabel, C.REASON]
    got = rt.loc[relabel, C.REASON]
    assert got.tolist() == [expected[g] for g in given]
    kept = rt.loc[relabel, C.REASON_LABEL]
    assert kept.tolist() == [g if g else None for g in given]
    assert set(given) == set(expected)  # every label occurs
    # ppx's own codes pass unchanged
    original = world.tables[C.RETURNS][C.REASON]
    assert rt.loc[~relabel, C.REASON].tolist() == original[~relabel].tolist()
    assert set(rt[C.REASON]) <= set(C.RETURN_REASONS)
    # the store keeps both
    loaded = load_tables(out)[C.RETURNS]
    assert (loaded[C.REASON_LABEL] == "Too small").sum() == (given == "Too small").sum()
    assert loaded[C.REASON].tolist() == rt[C.REASON].tolist()


def test_the_note_counts_what_mapped_and_names_the_unknown_labels(labelled):
    _, returns, relabel, _, _, report = labelled
    note = _flat(next(n for n in report.notes if "return reasons" in n))
    given = returns.loc[relabel, C.REASON]
    n_blank = int((given == "").sum())
    n_unknown = int((given == "Gift for my aunt").sum())
    n_size = int((given == "Too small").sum())
    labelled = len(returns) - n_blank
    assert RETURNS_FILE in note and f"'{REASON_COLUMN} (-> reason)'" in note
    assert f"{labelled - n_unknown} of {labelled} labelled returns map" in note
    assert f"{n_unknown} fell to 'other' ('Gift for my aunt' ({n_unknown}))" in note
    assert f"{n_size} size_fit labels recorded as 'changed_mind'" in note
    assert f"{n_blank} blank, recorded as 'other'" in note


def test_fraud_features_are_built_on_the_store(labelled):
    from ppx.features.fraud.names import KIND, REQUEST_ID, RETURN
    from ppx.models.fraud.train import prepare

    _, returns, relabel, out, _, _ = labelled
    prep = prepare(world_path=out)
    is_ret = (prep.requests[KIND] == RETURN).to_numpy()
    ids = prep.requests[REQUEST_ID].to_numpy()
    assert len(prep.X) == len(prep.requests) and np.isfinite(prep.X.to_numpy(float)).all()
    by_label = returns.loc[relabel].set_index(C.RETURN_ID)[C.REASON]
    for label, reason in dict(BRAND).items():
        rows = is_ret & np.isin(ids, by_label.index[by_label == label])
        assert rows.any()
        assert (prep.X.loc[rows, f"reason_{reason}"] == 1).all(), label


def test_the_feedback_corpus_shows_the_brand_labels(labelled):
    from ppx.feedback.corpus import build_corpus

    *_, out, _, _ = labelled
    corpus = build_corpus(load_tables(out))
    ret = corpus[corpus[C.SOURCE] == "return"]
    too_small = ret[ret[C.REASON_LABEL] == "Too small"]
    assert len(too_small) and (too_small[C.REASON] == "changed_mind").all()
    assert corpus.loc[corpus[C.SOURCE] == "review", C.REASON_LABEL].isna().all()


def test_a_world_without_labels_keeps_its_reasons_and_gets_its_codes_as_labels(
    tiny_world, tmp_path
):
    world, _ = tiny_world
    src, mapping = _export(world, tmp_path / "export", world.tables[C.RETURNS])
    _, tables, report = import_store(src, tmp_path / "store", mapping=mapping)
    rt, original = tables[C.RETURNS], world.tables[C.RETURNS]
    assert rt[C.REASON].tolist() == original[C.REASON].tolist()
    assert rt[C.REASON_LABEL].tolist() == original[C.REASON].tolist()
    n = len(original)
    assert any(f"{n} of {n} labelled returns map" in n_ for n_ in report.notes)


def test_a_store_exported_again_keeps_its_labels(labelled, tmp_path):
    *_, out, tables, _ = labelled
    src = tmp_path / "again"
    src.mkdir()
    for name, df in load_tables(out).items():
        df.to_parquet(src / f"{name}.parquet", index=False)
    _, again, _ = import_store(src, tmp_path / "store")
    rt = tables[C.RETURNS]
    assert again[C.RETURNS][C.REASON].tolist() == rt[C.REASON].tolist()
    # "Too small" stays the label of its changed_mind rows; blanks stay blank
    assert again[C.RETURNS][C.REASON_LABEL].tolist() == rt[C.REASON_LABEL].tolist()


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (
            lambda r: r.assign(**{C.REQUESTED_AT: r[C.REQUESTED_AT].astype(str)}).assign(
                **{C.REQUESTED_AT: lambda d: d[C.REQUESTED_AT].where(d.index != 4, "soon")}
            ),
            [RETURNS_FILE, "'requested_at'", "'soon'", "rows [4]"],
        ),
        (
            lambda r: r.assign(**{C.RETURN_ID: r[C.RETURN_ID].where(r.index != 2, 1)}),
            ["table returns, column return_id", "field_uniqueness"],
        ),
        (lambda r: r.drop(columns=[C.REASON]), [RETURNS_FILE, "['Return reason'] not in"]),
    ],
)
def test_bad_returns_are_still_refused_by_file_column_and_rows(
    tiny_world, tmp_path, edit, fragments
):
    world, _ = tiny_world
    returns = edit(world.tables[C.RETURNS].copy())
    src, mapping = _export(world, tmp_path / "export", returns)
    with pytest.raises(StoreImportError) as err:
        import_store(src, tmp_path / "store", mapping=mapping)
    for fragment in fragments:
        assert fragment in _flat(str(err.value))
    assert not (tmp_path / "store").exists()
