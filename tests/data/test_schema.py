"""Bad input against the canonical schema: every failure names table, column and rows.

Each case takes the core tables of the tiny generated world, breaks one thing, writes
the tables to a temporary folder and loads it with :func:`ppx.data.io.load_tables`, the
path every loader goes through. The load must raise (so nothing is returned, not even
the tables that were fine) with a message a person can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.data.io import load_tables
from ppx.data.schema import (
    MAX_ROWS_SHOWN,
    SCHEMAS,
    SchemaValidationError,
    validate_table,
    validate_tables,
)

CORE = (
    C.CUSTOMERS,
    C.PRODUCTS,
    C.SUBSCRIPTIONS,
    C.ORDERS,
    C.ORDER_ITEMS,
    C.SHIPMENTS,
    C.RETURNS,
    C.CLAIMS,
)


@pytest.fixture(scope="module")
def core(tiny_world) -> dict[str, pd.DataFrame]:
    """The core tables of the tiny world (tests copy before they break anything)."""
    world, _ = tiny_world
    return {name: world.tables[name] for name in CORE}


def write_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def load_error(folder: Path) -> str:
    """Load a folder that must fail; returns the message with whitespace collapsed."""
    with pytest.raises(SchemaValidationError) as info:
        load_tables(folder)
    assert isinstance(info.value, ValueError)  # callers may catch the standard type
    return " ".join(str(info.value).split())


def _delivered_rows(t: dict[str, pd.DataFrame], n: int = 2) -> pd.Index:
    s = t[C.SHIPMENTS]
    return s.index[s[C.STATUS] == "delivered"][:n]


# --- one mutation per kind of bad input ------------------------------------------------


def missing_column(t):
    t[C.CUSTOMERS] = t[C.CUSTOMERS].drop(columns=[C.EMAIL])
    return ["table customers", "missing column 'email'"]


def wrong_type_number(t):
    o = t[C.ORDERS].copy()
    o[C.ORDER_VALUE] = o[C.ORDER_VALUE].astype(str)
    o.loc[[3, 7], C.ORDER_VALUE] = "abc"
    t[C.ORDERS] = o
    return ["table orders, column order_value", "rows [3, 7]", "'abc'"]


def wrong_type_timestamp(t):
    o = t[C.ORDERS].copy()
    o[C.ORDERED_AT] = o[C.ORDERED_AT].astype(str)
    o.loc[4, C.ORDERED_AT] = "last tuesday"
    t[C.ORDERS] = o
    return ["table orders, column ordered_at", "rows [4]", "last tuesday"]


def wrong_type_category(t):
    c = t[C.CUSTOMERS].copy()
    c[C.REGION] = range(len(c))
    t[C.CUSTOMERS] = c
    return ["table customers, column region", "rows [0, 1, 2, 3, 4] and"]


def unknown_category(t):
    s = t[C.SHIPMENTS].copy()
    s.loc[2, C.SERVICE_LEVEL] = "pigeon_post"
    t[C.SHIPMENTS] = s
    return ["table shipments, column service_level", "isin", "rows [2]", "pigeon_post"]


def broken_foreign_key(t):
    o = t[C.ORDERS].copy()
    o.loc[[1, 5], C.CUSTOMER_ID] = 999_999
    t[C.ORDERS] = o
    return [
        "table orders, column customer_id",
        "no match in customers.customer_id",
        "rows [1, 5]",
        "999999",
    ]


def broken_foreign_key_items(t):
    oi = t[C.ORDER_ITEMS].copy()
    oi.loc[0, C.PRODUCT_ID] = 10_000
    t[C.ORDER_ITEMS] = oi
    return ["table order_items, column product_id", "no match in products.product_id", "rows [0]"]


def time_travel_delivered(t):
    s = t[C.SHIPMENTS].copy()
    rows = _delivered_rows(t)
    ordered = s[C.ORDER_ID].map(t[C.ORDERS].set_index(C.ORDER_ID)[C.ORDERED_AT])
    s.loc[rows, C.DELIVERED_AT] = ordered[rows] - pd.Timedelta(days=1)
    t[C.SHIPMENTS] = s
    where = f"rows [{', '.join(map(str, rows))}]"
    return [
        "table shipments, column delivered_at",
        "time travel, delivered before it was ordered",
        where,
    ]


def time_travel_return(t):
    r = t[C.RETURNS].copy()
    ordered = r[C.ORDER_ID].map(t[C.ORDERS].set_index(C.ORDER_ID)[C.ORDERED_AT])
    r.loc[0, C.REQUESTED_AT] = ordered[0] - pd.Timedelta(hours=3)
    t[C.RETURNS] = r
    return ["table returns, column requested_at", "time travel", "rows [0]"]


def delivered_without_time(t):
    s = t[C.SHIPMENTS].copy()
    rows = _delivered_rows(t, 1)
    s.loc[rows, C.DELIVERED_AT] = pd.NaT
    t[C.SHIPMENTS] = s
    return ["table shipments, column delivered_at", "status delivered but no delivery time"]


def duplicate_key(t):
    c = t[C.CUSTOMERS].copy()
    c.loc[3, C.CUSTOMER_ID] = c.loc[2, C.CUSTOMER_ID]
    t[C.CUSTOMERS] = c
    return ["table customers, column customer_id", "field_uniqueness", "rows [2, 3]"]


def duplicate_compound_key(t):
    oi = t[C.ORDER_ITEMS].copy()
    oi.loc[5, [C.ORDER_ID, C.LINE_NO]] = oi.loc[4, [C.ORDER_ID, C.LINE_NO]].to_numpy()
    t[C.ORDER_ITEMS] = oi
    return ["table order_items, column order_id", "column line_no", "rows [4, 5]"]


def empty_table(t):
    t[C.ORDERS] = t[C.ORDERS].iloc[:0]
    return ["table orders is empty"]


def refund_over_order_value(t):
    r = t[C.RETURNS].copy()
    r.loc[0, C.REFUND_AMOUNT] = 1_000_000.0
    t[C.RETURNS] = r
    return ["table returns, column refund_amount", "refunds exceed the order value", "rows [0"]


def out_of_range(t):
    p = t[C.PRODUCTS].copy()
    p.loc[6, C.PRICE] = -4.0
    t[C.PRODUCTS] = p
    return ["table products, column price", "greater_than_or_equal_to", "rows [6]"]


CASES: list[Callable[[dict], list[str]]] = [
    missing_column,
    wrong_type_number,
    wrong_type_timestamp,
    wrong_type_category,
    unknown_category,
    broken_foreign_key,
    broken_foreign_key_items,
    time_travel_delivered,
    time_travel_return,
    delivered_without_time,
    duplicate_key,
    duplicate_compound_key,
    empty_table,
    refund_over_order_value,
    out_of_range,
]


def test_tiny_world_is_valid(tiny_world):
    """The generator's own output passes every rule (else every other test is moot)."""
    world, path = tiny_world
    tables = load_tables(path)
    assert set(tables) == set(C.TABLES)
    assert {k: len(v) for k, v in tables.items()} == {k: len(v) for k, v in world.tables.items()}


def test_core_tables_load(core, tmp_path):
    """The untouched core tables (the baseline of every case below) load cleanly."""
    tables = load_tables(write_tables(tmp_path, dict(core)))
    assert set(tables) == set(CORE)


@pytest.mark.parametrize("mutate", CASES, ids=lambda f: f.__name__)
def test_bad_input_is_named_and_nothing_loads(core, tmp_path, mutate):
    tables = dict(core)
    fragments = mutate(tables)
    message = load_error(write_tables(tmp_path, tables))
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


def test_in_memory_validation_names_the_same_problem(core):
    """validate_tables (used by adapters) raises the same message as the file loader."""
    tables = dict(core)
    fragments = broken_foreign_key(tables)
    with pytest.raises(SchemaValidationError) as info:
        validate_tables(tables)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert info.value.problems, "problems are available as a list for programs"


def test_every_problem_is_reported_at_once(core, tmp_path):
    """A user fixes all problems in one pass: two broken tables, two messages."""
    tables = dict(core)
    expected = missing_column(tables) + out_of_range(tables)
    message = load_error(write_tables(tmp_path, tables))
    for fragment in expected:
        assert fragment in message


def test_only_the_first_rows_are_listed(core, tmp_path):
    """A column that is wrong everywhere gives a short message, not thousands of rows."""
    tables = dict(core)
    o = tables[C.ORDERS].copy()
    o[C.SERVICE_LEVEL] = "pigeon_post"
    tables[C.ORDERS] = o
    message = load_error(write_tables(tmp_path, tables))
    shown = ", ".join(str(i) for i in range(MAX_ROWS_SHOWN))
    assert f"rows [{shown}] and {len(o) - MAX_ROWS_SHOWN} more" in message
    assert len(message) < 2_000


def test_a_brands_own_carriers_and_regions_are_accepted(core, tmp_path):
    """Carrier, region, warehouse and category are the brand's words in a store."""
    tables = dict(core)
    o = tables[C.ORDERS].copy()
    o[C.CARRIER], o[C.DEST_REGION], o[C.DISTANCE_KM] = "correios", "SP", float("nan")
    tables[C.ORDERS] = o
    loaded = load_tables(write_tables(tmp_path, tables))
    assert set(loaded[C.ORDERS][C.CARRIER]) == {"correios"}


def test_failed_validation_leaves_the_input_untouched(core):
    """Nothing is coerced in place: the caller's frames are what they were."""
    tables = {name: df.copy() for name, df in core.items()}
    tables[C.ORDERS][C.ORDERED_AT] = tables[C.ORDERS][C.ORDERED_AT].astype(str)
    before = tables[C.ORDERS].copy()
    tables[C.CUSTOMERS] = tables[C.CUSTOMERS].drop(columns=[C.NAME])
    with pytest.raises(SchemaValidationError):
        validate_tables(tables)
    pd.testing.assert_frame_equal(tables[C.ORDERS], before)


def test_unknown_table_is_named():
    out, problems = validate_table("order_lines", pd.DataFrame({"x": [1]}))
    assert out is None
    assert "unknown table 'order_lines'" in problems[0]


def test_empty_optional_table_is_allowed(core):
    """Small or young businesses may have no claims yet; that is not an error."""
    tables = dict(core)
    tables[C.CLAIMS] = core[C.CLAIMS].iloc[:0]
    assert len(validate_tables(tables)[C.CLAIMS]) == 0


def test_every_table_has_a_schema_named_like_it():
    assert set(SCHEMAS) == set(C.TABLES)
    assert all(schema.name == name for name, schema in SCHEMAS.items())
