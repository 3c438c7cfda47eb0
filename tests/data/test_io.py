"""Files in, tables out: bad files get clear messages, worlds are written atomically."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ppx.data import columns as C
from ppx.data.io import (
    MANIFEST,
    OUTPUT_MARKER,
    DataLoadError,
    OutputFolderError,
    content_hash,
    load_manifest,
    load_tables,
    load_truth,
    read_table_file,
    save_world,
)
from ppx.data.schema import SchemaValidationError
from ppx.data.world import World


@pytest.fixture(scope="module")
def customers(tiny_world) -> pd.DataFrame:
    return tiny_world[0].tables[C.CUSTOMERS]


def _message(err: pytest.ExceptionInfo) -> str:
    return " ".join(str(err.value).split())


# --- non-UTF-8 text ----------------------------------------------------------------------


def test_latin1_csv_names_table_column_and_rows(customers, tmp_path):
    c = customers.copy()
    c.loc[[3, 9], C.NAME] = "José Núñez"
    c.to_csv(tmp_path / "customers.csv", index=False, encoding="latin-1")
    with pytest.raises(SchemaValidationError) as err:
        load_tables(tmp_path)
    msg = _message(err)
    assert "table customers" in msg
    assert "not UTF-8" in msg
    assert "column name" in msg
    assert "rows [3, 9]" in msg


def _binary_names(customers: pd.DataFrame, bad_rows: list[int], keep_pandas_meta: bool):
    table = pa.Table.from_pandas(customers, preserve_index=False)
    if not keep_pandas_meta:
        table = table.replace_schema_metadata(None)
    values = [name.encode() for name in customers[C.NAME]]
    for row in bad_rows:
        values[row] = "Zoë Brontë".encode("latin-1")
    i = table.schema.get_field_index(C.NAME)
    return table.set_column(i, C.NAME, pa.array(values, pa.binary()))


@pytest.mark.parametrize("keep_pandas_meta", [False, True], ids=["plain", "pandas-metadata"])
def test_parquet_binary_column_with_non_utf8_bytes(customers, tmp_path, keep_pandas_meta):
    """Another tool wrote names as raw bytes; two of them are Latin-1, not UTF-8."""
    pq.write_table(
        _binary_names(customers, [4, 12], keep_pandas_meta), tmp_path / "customers.parquet"
    )
    with pytest.raises(SchemaValidationError) as err:
        load_tables(tmp_path)
    msg = _message(err)
    assert "table customers" in msg
    assert "column name" in msg
    assert "not UTF-8" in msg
    assert "rows [4, 12]" in msg


def test_parquet_binary_column_that_is_utf8_loads_as_text(customers, tmp_path):
    pq.write_table(_binary_names(customers, [], False), tmp_path / "customers.parquet")
    tables = load_tables(tmp_path)
    assert tables[C.CUSTOMERS][C.NAME].tolist() == customers[C.NAME].tolist()


def test_bytes_objects_in_a_frame_are_named(customers, tmp_path, monkeypatch):
    """Frames from other readers may carry ``bytes`` cells; they are not text."""
    from ppx.data import io

    c = customers.astype({C.NAME: object})
    c.loc[7, C.NAME] = b"\xff\xfe"
    monkeypatch.setattr(io, "read_table_file", lambda path: c)
    (tmp_path / "customers.parquet").write_bytes(b"")
    with pytest.raises(SchemaValidationError) as err:
        load_tables(tmp_path)
    assert "table customers, column name" in _message(err)
    assert "[7]" in _message(err)


# --- files that are not what they claim ---------------------------------------------------


def test_text_file_named_parquet(customers, tmp_path):
    customers.to_csv(tmp_path / "customers.parquet", index=False)
    with pytest.raises(SchemaValidationError) as err:
        load_tables(tmp_path)
    msg = _message(err)
    assert "table customers" in msg
    assert "not a readable Parquet file" in msg
    assert "customers.parquet" in msg


def test_truncated_parquet(customers, tmp_path):
    full = tmp_path / "full.parquet"
    customers.to_parquet(full, index=False)
    data = full.read_bytes()
    (tmp_path / "customers.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataLoadError, match="not a readable Parquet file"):
        read_table_file(tmp_path / "customers.parquet")


def test_empty_csv_file(tmp_path):
    (tmp_path / "orders.csv").write_text("")
    with pytest.raises(SchemaValidationError) as err:
        load_tables(tmp_path)
    assert "table orders" in _message(err)
    assert "empty" in _message(err)


def test_unsupported_file_type(tmp_path):
    (tmp_path / "orders.xlsx").write_bytes(b"PK")
    with pytest.raises(DataLoadError, match="unsupported file type '.xlsx'"):
        read_table_file(tmp_path / "orders.xlsx")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataLoadError, match="no such file"):
        read_table_file(tmp_path / "orders.parquet")
    with pytest.raises(DataLoadError, match="not a folder of canonical tables"):
        load_tables(tmp_path / "nowhere")


def test_folder_without_canonical_tables(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataLoadError, match="no canonical tables found"):
        load_tables(tmp_path)


def test_one_bad_file_loads_nothing(tiny_world, tmp_path):
    """A good customers table is not returned when orders beside it is broken."""
    world, _ = tiny_world
    world.tables[C.CUSTOMERS].to_parquet(tmp_path / "customers.parquet", index=False)
    (tmp_path / "orders.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(SchemaValidationError) as err:
        load_tables(tmp_path)
    assert "table orders" in _message(err)
    assert "table customers" not in _message(err)


# --- good files in other shapes ----------------------------------------------------------


def test_csv_tables_load_and_validate(tiny_world, tmp_path):
    """Users' own exports arrive as CSV with text timestamps; they are coerced."""
    world, _ = tiny_world
    for name in (C.CUSTOMERS, C.PRODUCTS, C.ORDERS, C.SHIPMENTS):
        world.tables[name].to_csv(tmp_path / f"{name}.csv", index=False)
    tables = load_tables(tmp_path)
    assert len(tables[C.ORDERS]) == len(world.tables[C.ORDERS])
    assert str(tables[C.SHIPMENTS][C.DELIVERED_AT].dtype) == "datetime64[ns]"


# --- world folders -----------------------------------------------------------------------


def test_world_folder_layout_and_manifest(tiny_world):
    world, path = tiny_world
    assert sorted(p.stem for p in (path / "tables").glob("*.parquet")) == sorted(C.TABLES)
    assert sorted(p.stem for p in (path / "truth").glob("*.parquet")) == sorted(world.truth)
    manifest = load_manifest(path)
    assert manifest["seed"] == world.params.seed
    assert manifest["params"] == json.loads(json.dumps(world.params.to_dict()))
    assert manifest["rows"] == {k: len(v) for k, v in world.tables.items()}
    assert manifest["truth_rows"] == {k: len(v) for k, v in world.truth.items()}
    assert manifest["content_hash"] == content_hash(world.tables)


def test_manifest_hash_verifies_the_files(tiny_world):
    """The hash of the tables read back from disk matches the manifest's."""
    _, path = tiny_world
    raw = load_tables(path, validate=False)
    assert content_hash(raw) == load_manifest(path)["content_hash"]


def test_content_hash_sees_a_single_changed_cell(tiny_world):
    world, _ = tiny_world
    changed = dict(world.tables)
    orders = world.tables[C.ORDERS].copy()
    orders.loc[0, C.ORDER_VALUE] += 0.01
    changed[C.ORDERS] = orders
    assert content_hash(changed) != content_hash(world.tables)


def test_truth_round_trips(tiny_world):
    world, path = tiny_world
    truth = load_truth(path)
    assert set(truth) == set(world.truth)
    pd.testing.assert_frame_equal(
        truth[C.TRUTH_SHIPMENTS], world.truth[C.TRUTH_SHIPMENTS], check_dtype=False
    )


def test_truth_and_manifest_missing_are_explained(tmp_path):
    with pytest.raises(DataLoadError, match="no truth/ folder"):
        load_truth(tmp_path)
    with pytest.raises(DataLoadError, match=f"no {MANIFEST}"):
        load_manifest(tmp_path)


def test_save_world_replaces_atomically(tiny_world, tmp_path):
    world, _ = tiny_world
    out = tmp_path / "w"
    save_world(world, out)
    (out / "stale.txt").write_text("from an older world")
    save_world(world, out, overwrite=True)
    assert not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["w"], "no temporary folders left"


def test_save_world_refuses_a_folder_it_did_not_create(tiny_world, tmp_path):
    """A user's folder is never deleted, not even with overwrite."""
    world, _ = tiny_world
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my own file")
    for overwrite in (False, True):
        with pytest.raises(OutputFolderError, match="not created by ppx"):
            save_world(world, out, overwrite=overwrite)
    assert (out / "notes.txt").read_text() == "my own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_save_world_replaces_its_own_folder_only_when_asked(tiny_world, tmp_path):
    world, _ = tiny_world
    out = save_world(world, tmp_path / "w")
    assert (out / OUTPUT_MARKER).is_file()
    with pytest.raises(OutputFolderError, match="--overwrite"):
        save_world(world, out)
    save_world(world, tmp_path / "empty_is_fine")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="is a file"):
        save_world(world, tmp_path / "file")


def test_failed_save_leaves_the_old_world(tiny_world, tmp_path):
    """An interrupted write never leaves a half-written world behind."""
    world, _ = tiny_world
    out = save_world(world, tmp_path / "w")
    before = load_manifest(out)
    bad_messages = pd.DataFrame({"x": [1, "two"]})  # mixed types: Parquet refuses
    broken = World(
        tables={**world.tables, C.MESSAGES: bad_messages}, truth=world.truth, params=world.params
    )
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        save_world(broken, out, overwrite=True)
    assert load_manifest(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["w"]
