"""``ppx data import`` writes ``customers.phone`` in E.164 or blank, one rule for every format."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from ppx.cli import app
from ppx.data import columns as C
from ppx.data.io import load_tables
from ppx.data.stores.commands import import_store
from ppx.data.stores.read import StoreImportError, read_export

from .store_exports import write_shopify

runner = CliRunner()

#: raw phones of the first customers, as brands' exports write them
RAW = [
    "(202) 555-0143",  # US national
    "0151 23456789",  # German mobile, national
    "+44 20 7946 0958",  # international: any region
    "12",  # not a number anywhere
    "",  # none given
]


@pytest.fixture
def canonical_export(tiny_world, tmp_path):
    """The tiny world as canonical CSV files, the first customers' phones replaced."""
    world, _ = tiny_world
    src = tmp_path / "exports"
    src.mkdir()
    for name, df in world.tables.items():
        if name != C.CUSTOMERS:
            df.to_parquet(src / f"{name}.parquet", index=False)
    customers = world.tables[C.CUSTOMERS].copy()
    customers[C.PHONE] = customers[C.PHONE].astype(object)
    customers.loc[: len(RAW) - 1, C.PHONE] = RAW
    customers.to_csv(src / "customers.csv", index=False)
    return src


def _phones(tables) -> list:
    return tables[C.CUSTOMERS][C.PHONE].head(len(RAW)).tolist()


def _blank(value) -> bool:
    return value is None or pd.isna(value)


def test_us_region_reads_national_numbers_as_us(canonical_export, tmp_path):
    _, tables, report = import_store(canonical_export, tmp_path / "s", phone_region="us")
    us, de, uk, bad, none = _phones(tables)
    assert us == "+12025550143"
    assert _blank(de)  # "0151 ..." is no valid US number: blank, never a wrong one
    assert uk == "+442079460958"
    assert _blank(bad) and _blank(none)
    (note,) = [n for n in report.notes if "not valid numbers" in n]
    assert "(region US)" in note and "rows [1, 3" in note
    # masked to the last two digits; the raw values are nowhere in the note
    assert "'xxxx xxxxxx89'" in note and "0151" not in note


def test_de_region_from_the_mapping_yaml(canonical_export, tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("phone_region: DE\ntables:\n  customers:\n    file: customers.csv\n")
    _, tables, _ = import_store(canonical_export, tmp_path / "s", mapping=mapping)
    _, de, uk, *_ = _phones(tables)
    assert de == "+4915123456789" and uk == "+442079460958"
    # what the store holds is what the import returned
    stored = load_tables(tmp_path / "s")[C.CUSTOMERS][C.PHONE].head(len(RAW)).tolist()
    assert stored[1] == "+4915123456789"


def test_without_a_region_only_international_numbers_are_kept(
    canonical_export, tiny_world, tmp_path
):
    _, tables, report = import_store(canonical_export, tmp_path / "s")
    us, de, uk, bad, _ = _phones(tables)
    assert uk == "+442079460958"
    assert _blank(us) and _blank(de) and _blank(bad)
    (note,) = [n for n in report.notes if "no --phone-region" in n]
    assert note.startswith("canonical customers: ") and "rows [0, 1, 3," in note
    # the world's numbers carry their country code (fictional area 555, of possible
    # length): kept as they are, so an imported world keeps its SMS contacts
    source = tiny_world[0].tables[C.CUSTOMERS][C.PHONE].iloc[len(RAW) :]
    e164 = source.astype(object).str.fullmatch(r"\+1555\d{7}").fillna(False).astype(bool)
    assert e164.mean() > 0.9
    got = tables[C.CUSTOMERS][C.PHONE].iloc[len(RAW) :]
    assert (got[e164] == source[e164]).all()


def test_an_unknown_region_is_refused_before_reading(canonical_export, tmp_path):
    with pytest.raises(StoreImportError, match="phone region 'XX'"):
        import_store(canonical_export, tmp_path / "s", phone_region="XX")
    assert not (tmp_path / "s").exists()


def test_the_region_setting_applies_when_no_option_names_one(
    canonical_export, tmp_path, monkeypatch
):
    from ppx.config import get_settings

    monkeypatch.setenv("PPX_PHONE_REGION", "DE")
    get_settings.cache_clear()
    try:
        _, tables, _ = import_store(canonical_export, tmp_path / "s")
        assert _phones(tables)[1] == "+4915123456789"
        _, tables, _ = import_store(canonical_export, tmp_path / "t", phone_region="US")
        assert _phones(tables)[0] == "+12025550143" and _blank(_phones(tables)[1])
    finally:
        monkeypatch.delenv("PPX_PHONE_REGION")
        get_settings.cache_clear()


def test_platform_export_phones_through_the_same_rule(tmp_path):
    orders, _ = write_shopify(tmp_path / "shop", n_orders=40, n_customers=6)
    raw = read_export(orders)
    numbers = {
        "shopper0@example.com": "+1 416 123 456",  # a digit short: blank
        "shopper1@example.com": "(416) 967-1111",  # Toronto, national
        "shopper2@example.com": "not given",
    }
    raw["Phone"] = raw["Email"].map(numbers).fillna("")
    raw.to_csv(orders, sep=";", index=False, encoding="cp1252")
    result = runner.invoke(
        app, ["data", "import", str(orders.parent), "--out", str(tmp_path / "s"),
              "--phone-region", "CA"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    customers = load_tables(tmp_path / "s")[C.CUSTOMERS].set_index(C.EMAIL)
    phone = customers[C.PHONE]
    assert phone["shopper1@example.com"] == "+14169671111"
    assert _blank(phone["shopper0@example.com"]) and _blank(phone["shopper2@example.com"])
    assert "2 phones not valid numbers (region CA)" in " ".join(result.output.split())


def test_international_numbers_need_a_possible_length_not_an_assigned_range():
    from ppx.data.stores.phones import to_e164

    # the synthetic world's fictional +1 555 numbers survive an import of the world
    assert to_e164("+15550123456", None) == ("+15550123456", None)
    assert to_e164("+1555012345", None) == (None, "invalid")  # a digit short
    assert to_e164("(555) 012-3456", "US") == (None, "invalid")  # national: must be valid
