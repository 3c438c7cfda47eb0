"""The synthetic world: deterministic, realistic, and honest about its ground truth.

Realism bounds come from the world's specification and are checked on the small world (4,000 customers,
24 months) with its default parameters. If one fails, the world's defaults are wrong,
not the bound: report the number rather than loosening the test.
"""

from __future__ import annotations

import re

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ppx.data import columns as C
from ppx.data.io import content_hash, load_manifest, load_tables
from ppx.data.summary import late_mask, monthly_churn_rate, world_summary
from ppx.data.world import WorldParams, generate_world

TINY = {"n_customers": 800, "seed": 11, "months": 12}  # the tiny_world fixture's params


# --- determinism and the manifest -------------------------------------------------------


def test_same_seed_gives_identical_tables(tiny_world):
    world, _ = tiny_world
    again = generate_world(WorldParams(**TINY))
    assert content_hash(again.tables) == content_hash(world.tables)
    assert content_hash(again.truth) == content_hash(world.truth)


def test_different_seed_gives_different_tables(tiny_world):
    world, _ = tiny_world
    other = generate_world(WorldParams(**{**TINY, "seed": TINY["seed"] + 1}))
    assert content_hash(other.tables) != content_hash(world.tables)
    assert len(other.tables[C.ORDERS]) != len(world.tables[C.ORDERS])


def test_manifest_records_seed_params_rows_and_hash(small_world):
    world, path = small_world
    manifest = load_manifest(path)
    assert manifest["seed"] == 5
    assert manifest["params"] == WorldParams(n_customers=4000, seed=5, months=24).to_dict()
    assert manifest["rows"] == {name: len(df) for name, df in world.tables.items()}
    assert manifest["content_hash"] == content_hash(world.tables)


def test_small_world_is_valid(small_world):
    _, path = small_world
    tables = load_tables(path)
    assert set(tables) == set(C.TABLES)
    assert all(len(tables[t]) > 0 for t in C.TABLES)


# --- realism ------------------------------------------------------------------------------


def test_weekly_seasonality_in_orders(small_world):
    world, _ = small_world
    dow = world.tables[C.ORDERS][C.ORDERED_AT].dt.day_of_week.value_counts().sort_index()
    _, p_value = stats.chisquare(dow.to_numpy())
    assert p_value < 1e-6, "orders are not spread evenly over the week"
    # weekday_demand makes Saturday the quietest day and Monday busier than it.
    assert dow.idxmin() == 5
    assert dow[0] > 1.1 * dow[5]


def test_holiday_peak_in_orders(small_world):
    world, _ = small_world
    daily = world.tables[C.ORDERS].set_index(C.ORDERED_AT).resample("D").size()
    d = daily.index
    peak = ((d.month == 11) & (d.day >= 20)) | ((d.month == 12) & (d.day <= 23))
    assert daily[peak].mean() > 1.5 * daily[~peak].mean()
    # The busiest day of each simulated year falls in the peak (Black Friday).
    for _, year in daily.groupby(d.year):
        assert peak[daily.index.get_loc(year.idxmax())]


def test_transit_times_are_right_skewed(small_world):
    world, _ = small_world
    t = world.tables
    s = t[C.SHIPMENTS].merge(t[C.ORDERS][[C.ORDER_ID, C.ORDERED_AT]], on=C.ORDER_ID)
    days = ((s[C.DELIVERED_AT] - s[C.ORDERED_AT]).dt.total_seconds() / 86_400).dropna()
    assert days.min() > 0
    assert stats.skew(days) > 0.5
    assert days.mean() > days.median()
    assert abs(stats.skew(np.log(days))) < stats.skew(days), "log-normal-like tail"


def test_late_deliveries_against_the_promise(small_world):
    world, _ = small_world
    t = world.tables
    delivered = t[C.SHIPMENTS][C.STATUS] == "delivered"
    rate = late_mask(t[C.ORDERS], t[C.SHIPMENTS])[delivered].mean()
    assert 0.05 <= rate <= 0.15, f"late-delivery rate {rate:.3f}"
    assert world_summary(t)["late_delivery_rate"] == pytest.approx(rate)


def test_monthly_subscription_churn(small_world):
    world, _ = small_world
    true_rate = world.truth[C.TRUTH_SUBSCRIPTION_MONTHS][C.CHURNED].mean()
    observed = monthly_churn_rate(world.tables)
    assert 0.02 <= true_rate <= 0.08, f"true monthly churn {true_rate:.3f}"
    assert 0.02 <= observed <= 0.08, f"observed monthly churn {observed:.3f}"


def test_returns_and_fraud_share(small_world):
    world, _ = small_world
    t = world.tables
    rate = t[C.RETURNS][C.ORDER_ID].nunique() / len(t[C.ORDERS])
    fraud_share = t[C.RETURNS][C.CONFIRMED_FRAUD].mean()
    assert 0.05 <= rate <= 0.15, f"return rate {rate:.3f}"
    assert 0 < fraud_share < 0.5, f"fraud share of returns {fraud_share:.3f}"


def _normalise(customers: pd.DataFrame) -> dict[str, pd.Series]:
    """Identifiers as a fraud analyst would key them: case, punctuation and tags removed."""

    def email(e: str) -> str:
        user, domain = e.lower().split("@")
        return user.split("+")[0].replace(".", "") + "@" + domain

    return {
        "device": customers[C.DEVICE_ID],
        "payment": customers[C.PAYMENT_FINGERPRINT],
        "address": customers[C.ADDRESS].str.lower().str.replace(r"\bstreet\b", "st", regex=True)
        + "|"
        + customers[C.REGION],
        "email": customers[C.EMAIL].map(email),
        "phone": customers[C.PHONE].map(lambda p: re.sub(r"\D", "", p)[-10:]),
    }


def test_fraud_rings_are_connected_components(small_world):
    """Linking customers that share any identifier recovers every planted ring whole."""
    world, _ = small_world
    customers = world.tables[C.CUSTOMERS]
    graph = nx.Graph()
    graph.add_nodes_from(customers[C.CUSTOMER_ID])
    for key in _normalise(customers).values():
        for _, ids in customers[C.CUSTOMER_ID].groupby(key.to_numpy()):
            ids = ids.to_numpy()
            graph.add_edges_from(zip(ids[:-1], ids[1:], strict=True))
    component = {}
    for k, nodes in enumerate(nx.connected_components(graph)):
        component.update(dict.fromkeys(nodes, (k, len(nodes))))
    truth = world.truth[C.TRUTH_CUSTOMERS]
    comp = truth[C.CUSTOMER_ID].map(lambda c: component[c][0])
    size = truth[C.CUSTOMER_ID].map(lambda c: component[c][1])
    ring = truth[C.RING_ID] >= 0
    assert truth.loc[ring, C.RING_ID].nunique() >= 10
    # Each ring lies inside a single component ...
    assert (comp[ring].groupby(truth.loc[ring, C.RING_ID]).nunique() == 1).all()
    # ... of three or more accounts, which honest customers almost never are.
    assert (size[ring] >= 3).mean() > 0.9
    assert (size[~ring] >= 3).mean() < 0.05


# --- ground truth beside, never inside, the observable tables ------------------------------

TRUTH_ONLY = {
    C.TRUE_MU,
    C.TRUE_SIGMA,
    C.TRUE_HAZARD,
    C.CHURNED,
    C.FRAUD_TYPE,
    C.RING_ID,
    C.TRUE_FRAUD_PROB,
    C.IS_FRAUD,
    C.ENGAGEMENT,
    C.FRAILTY,
    "true_delivered_at",
    "successor_id",
    "popularity",
    "activity",
}


def test_no_truth_columns_in_the_tables(small_world):
    world, path = small_world
    for name, df in load_tables(path).items():
        leaked = (set(df.columns) & TRUTH_ONLY) | {c for c in df.columns if c.startswith(C.TASTE)}
        assert not leaked, f"table {name} carries ground truth {leaked}"
    assert set(world.tables) == set(C.TABLES)
    assert not set(world.truth) & set(C.TABLES)
    assert not list((path / "tables").glob("truth_*"))


def test_truth_is_keyed_to_the_observable_rows(small_world):
    world, _ = small_world
    t, tr = world.tables, world.truth
    pairs = [
        (C.TRUTH_SHIPMENTS, C.SHIPMENTS, C.SHIPMENT_ID),
        (C.TRUTH_CUSTOMERS, C.CUSTOMERS, C.CUSTOMER_ID),
        (C.TRUTH_RETURNS, C.RETURNS, C.RETURN_ID),
        (C.TRUTH_CLAIMS, C.CLAIMS, C.CLAIM_ID),
        ("truth_products", C.PRODUCTS, C.PRODUCT_ID),
    ]
    for truth_name, table, key in pairs:
        assert tr[truth_name][key].tolist() == t[table][key].tolist(), truth_name
    months = tr[C.TRUTH_SUBSCRIPTION_MONTHS]
    assert months[C.SUBSCRIPTION_ID].isin(t[C.SUBSCRIPTIONS][C.SUBSCRIPTION_ID]).all()
    assert {f"{C.TASTE}_{k}" for k in range(6)} <= set(tr[C.TRUTH_CUSTOMERS].columns)


def test_true_transit_distribution_is_the_one_sampled(small_world):
    """(log T - true_mu) / true_sigma is standard normal: the oracle is exact."""
    world, _ = small_world
    ts = world.truth[C.TRUTH_SHIPMENTS].merge(
        world.tables[C.ORDERS][[C.ORDER_ID, C.ORDERED_AT]],
        left_on=C.SHIPMENT_ID,
        right_on=C.ORDER_ID,
    )
    days = (ts["true_delivered_at"] - ts[C.ORDERED_AT]).dt.total_seconds() / 86_400
    z = (np.log(days) - ts[C.TRUE_MU]) / ts[C.TRUE_SIGMA]
    assert abs(z.mean()) < 0.03
    assert abs(z.std() - 1) < 0.03


def test_true_hazard_and_fraud_probabilities_are_calibrated(small_world):
    world, _ = small_world
    months = world.truth[C.TRUTH_SUBSCRIPTION_MONTHS]
    se = np.sqrt((months[C.TRUE_HAZARD] * (1 - months[C.TRUE_HAZARD])).sum()) / len(months)
    assert abs(months[C.CHURNED].mean() - months[C.TRUE_HAZARD].mean()) < 4 * se
    for name in (C.TRUTH_RETURNS, C.TRUTH_CLAIMS):
        tr = world.truth[name]
        assert tr.groupby(C.IS_FRAUD)[C.TRUE_FRAUD_PROB].mean().is_monotonic_increasing, name
