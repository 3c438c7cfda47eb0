"""Identity normalisation: ring re-typings collide, hashes hide raw values."""

from __future__ import annotations

import pandas as pd

from ppx.data import columns as C
from ppx.features import identity as I


def test_email_variants_collide():
    assert I.normalise_email("vik.murphy6746@example.net") == I.normalise_email(
        "VIKMURPHY6746+23@EXAMPLE.NET"
    )
    assert I.normalise_email("a.b@x.com") != I.normalise_email("a.c@x.com")
    assert I.normalise_email(None) is None and I.normalise_email("  ") is None


def test_phone_variants_collide():
    assert I.normalise_phone("+1-555-468-2185") == I.normalise_phone("(555) 468 2185")
    assert I.normalise_phone("12") is None


def test_address_variants_collide_within_region_only():
    a = I.normalise_address("383 Elm St", "south")
    assert a == I.normalise_address("383 ELM STREET", "South")
    assert a != I.normalise_address("383 Elm St", "north")


def test_world_ring_variants_hash_equal(tiny_world):
    """Every messy variant the world writes for a ring member links to its leader."""
    world, _ = tiny_world
    cust = world.tables[C.CUSTOMERS]
    hashed = I.hash_identities(cust)
    for kind in (C.EMAIL, C.PHONE):
        if kind == C.EMAIL:
            retyped = cust[kind].str.contains("+", regex=False)
        else:
            retyped = cust[kind].str.startswith("(")
        assert retyped.any()
        col = I.hash_column_name(kind)
        counts = hashed[col].value_counts()
        # Each re-typed value shares its hash with at least one other account.
        assert (hashed.loc[retyped.to_numpy(), col].map(counts) >= 2).all()


def test_hashes_hide_raw_values_and_depend_on_salt():
    df = pd.DataFrame(
        {
            C.CUSTOMER_ID: [1, 2],
            C.SIGNUP_AT: pd.to_datetime(["2024-01-01", "2024-02-01"]),
            C.EMAIL: ["Ann.Lee@Example.com", "annlee+7@example.com"],
            C.PHONE: ["+1-555-111-2222", None],
            C.ADDRESS: ["1 Oak St", "2 Oak St"],
            C.REGION: ["north", "north"],
            C.DEVICE_ID: ["dev-1", "DEV-1 "],
            C.PAYMENT_FINGERPRINT: ["pm_1", "pm_2"],
        }
    )
    h = I.hash_identities(df)
    assert set(h.columns) == {C.CUSTOMER_ID, C.SIGNUP_AT, *I.HASH_COLUMNS}
    text = h.astype(str).to_string().lower()
    for raw in ("ann", "oak", "dev-1", "pm_1", "555"):
        assert raw not in text
    assert h.loc[0, "h_email"] == h.loc[1, "h_email"]
    assert h.loc[0, "h_device_id"] == h.loc[1, "h_device_id"]
    assert pd.isna(h.loc[1, "h_phone"])
    other = I.hash_identities(df, salt="another")
    assert other.loc[0, "h_email"] != h.loc[0, "h_email"]
