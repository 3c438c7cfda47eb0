"""Fraud features: as-of correctness, no own-label leakage, linkage, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.features import fraud as F


@pytest.fixture(scope="module")
def tables(tiny_world):
    world, _ = tiny_world
    return world.tables


@pytest.fixture(scope="module")
def history(tables):
    return F.build_history(tables)


@pytest.fixture(scope="module")
def requests(tables):
    return F.all_requests(tables)


@pytest.fixture(scope="module")
def features(requests, history):
    return F.fraud_features(requests, history)


def _flip_labels(tables, cid):
    """The tables with every confirmed-fraud label of account ``cid`` flipped."""
    flipped = dict(tables)
    for name in (C.RETURNS, C.CLAIMS):
        df = tables[name].copy()
        m = df[C.CUSTOMER_ID] == cid
        df.loc[m, C.CONFIRMED_FRAUD] = ~df.loc[m, C.CONFIRMED_FRAUD]
        flipped[name] = df
    return flipped


def _with_shared_device(tables, customers, device="dev-shared-ring"):
    out = dict(tables)
    cust = tables[C.CUSTOMERS].copy()
    cust.loc[cust[C.CUSTOMER_ID].isin(customers), C.DEVICE_ID] = device
    out[C.CUSTOMERS] = cust
    return out


def _fraudsters(tables, k=3):
    lab = pd.concat([tables[C.RETURNS], tables[C.CLAIMS]])
    ids = lab.loc[lab[C.CONFIRMED_FRAUD], C.CUSTOMER_ID].drop_duplicates()
    assert len(ids) >= k
    return ids.head(k).tolist()


def _new_account(tables, device):
    t = tables[C.RETURNS][C.REQUESTED_AT].max() + pd.Timedelta(days=20)
    return pd.DataFrame(
        [
            {
                F.KIND: "claim",
                C.CUSTOMER_ID: int(tables[C.CUSTOMERS][C.CUSTOMER_ID].max()) + 1,
                C.REQUESTED_AT: t,
                C.AMOUNT: 80.0,
                C.ORDERED_AT: t - pd.Timedelta(days=5),
                C.ORDER_VALUE: 80.0,
                C.DELIVERED_AT: t - pd.Timedelta(hours=10),
                C.CLAIM_TYPE: "item_not_received",
                C.SIGNATURE: False,
                C.GPS_DISTANCE_M: 12.0,
                C.SIGNUP_AT: t - pd.Timedelta(days=6),
                C.DEVICE_ID: device,
                C.EMAIL: "new.person@example.com",
            }
        ]
    )


def test_frame_shape_and_finite(features, requests):
    assert list(features.columns) == F.FEATURE_NAMES
    assert len(features) == len(requests)
    assert np.isfinite(features.to_numpy()).all()


def test_online_equals_offline(requests, history, features):
    rng = np.random.default_rng(0)
    for i in rng.choice(len(requests), 15, replace=False):
        one = F.fraud_features(requests.iloc[[i]], history)
        pd.testing.assert_series_equal(
            one.iloc[0], features.iloc[i], check_names=False, check_exact=False, rtol=1e-9
        )


def test_features_ignore_the_future(tables, requests, features):
    """A history cut at T gives the same features for every request before T."""
    cut = requests[C.REQUESTED_AT].quantile(0.6)
    early = (requests[C.REQUESTED_AT] < cut).to_numpy()
    cut_hist = F.build_history(tables, until=cut)
    X = F.fraud_features(requests.loc[early], cut_hist)
    pd.testing.assert_frame_equal(X, features.loc[early].reset_index(drop=True))


def test_own_labels_never_in_neighbour_features(tables, requests, features):
    """Flip every label of one linked account: its own rows' linkage features stay put."""
    linked = features["degree"].to_numpy() > 0
    assert linked.any()
    cid = int(requests.loc[linked, C.CUSTOMER_ID].iloc[0])
    flipped = _flip_labels(tables, cid)
    X2 = F.fraud_features(requests, F.build_history(flipped))
    own = (requests[C.CUSTOMER_ID] == cid).to_numpy()
    pd.testing.assert_frame_equal(
        X2.loc[own, F.LINKAGE_FEATURES], features.loc[own, F.LINKAGE_FEATURES]
    )
    # ...and a row's own label is never in its own features at all.
    pd.testing.assert_series_equal(
        X2.loc[own, "own_fraud_known"].iloc[:1], features.loc[own, "own_fraud_known"].iloc[:1]
    )


def test_new_account_linked_to_three_fraudsters(tables):
    fr = _fraudsters(tables)
    hist = F.build_history(_with_shared_device(tables, fr))
    linked = F.fraud_features(_new_account(tables, "dev-shared-ring"), hist)
    alone = F.fraud_features(_new_account(tables, "dev-nobody-else"), hist)
    assert linked.loc[0, "n_shared_device"] == 3
    assert linked.loc[0, "nb_fraud_accounts"] == 3
    assert linked.loc[0, "nb_fraud_rate"] == 1.0
    assert linked.loc[0, "component_size"] >= 4
    assert alone.loc[0, "degree"] == 0 and alone.loc[0, "component_size"] == 1


def test_component_only_counts_accounts_that_existed(tables):
    """Accounts opened after the request are not in its component."""
    fr = _fraudsters(tables)
    hist = F.build_history(_with_shared_device(tables, fr))
    req = _new_account(tables, "dev-shared-ring")
    signups = tables[C.CUSTOMERS].set_index(C.CUSTOMER_ID).loc[fr, C.SIGNUP_AT]
    early = signups.min() - pd.Timedelta(days=2)
    req[C.REQUESTED_AT] = early
    req[C.ORDERED_AT] = early - pd.Timedelta(days=3)
    req[C.DELIVERED_AT] = early - pd.Timedelta(hours=5)
    req[C.SIGNUP_AT] = early - pd.Timedelta(days=4)
    X = F.fraud_features(req, hist)
    assert X.loc[0, "degree"] == 0 and X.loc[0, "component_size"] == 1


def test_hashed_history_has_no_raw_identifiers(history, tables):
    text = history.identities.astype(str).to_string()
    raw = tables[C.CUSTOMERS]
    for col in (C.EMAIL, C.DEVICE_ID, C.PAYMENT_FINGERPRINT):
        assert raw[col].iloc[0] not in text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({C.CUSTOMER_ID: 10**9}, "customer_id"),
        ({C.AMOUNT: -5.0}, "amount"),
        ({F.KIND: "chargeback"}, "kind"),
        ({C.REQUESTED_AT: None}, "requested_at"),
    ],
)
def test_malformed_requests_raise_clear_errors(requests, history, change, field):
    req = requests.iloc[[0]].copy()
    for k, v in change.items():
        req[k] = v
    with pytest.raises(F.FraudRequestError, match=field):
        F.fraud_features(req, history)


def test_claim_before_delivery_is_rejected(requests, history):
    req = requests.loc[requests[F.KIND] == "claim"].iloc[[0]].copy()
    req[C.DELIVERED_AT] = req[C.REQUESTED_AT] + pd.Timedelta(hours=3)
    with pytest.raises(F.FraudRequestError, match="claim before delivery"):
        F.fraud_features(req, history)
    req[C.DELIVERED_AT] = pd.NaT
    req[C.ORDERED_AT] = req[C.REQUESTED_AT] + pd.Timedelta(days=1)
    with pytest.raises(F.FraudRequestError, match="ordered_at"):
        F.fraud_features(req, history)


def test_extra_linkage_features_exclude_own_and_future_labels(tables, requests, history):
    """The linkage ablation's extra features (2-hop, per-kind, rates) do not leak."""
    X = F.fraud_features(requests, history, extra_linkage=True)
    assert list(X.columns) == F.FEATURE_NAMES + F.EXTRA_LINKAGE_FEATURES
    assert np.isfinite(X.to_numpy()).all()
    pd.testing.assert_frame_equal(X[F.FEATURE_NAMES], F.fraud_features(requests, history))
    # Own labels: flip every label of a linked account; its rows' features stay put.
    linked = (X["hop2_accounts"].to_numpy() > 0) & (X["degree"].to_numpy() > 0)
    assert linked.any()
    cid = int(requests.loc[linked, C.CUSTOMER_ID].iloc[0])
    flipped = _flip_labels(tables, cid)
    X2 = F.fraud_features(requests, F.build_history(flipped), extra_linkage=True)
    own = (requests[C.CUSTOMER_ID] == cid).to_numpy()
    pd.testing.assert_frame_equal(
        X2.loc[own, F.EXTRA_LINKAGE_FEATURES], X.loc[own, F.EXTRA_LINKAGE_FEATURES]
    )
    # Future labels and accounts: a history cut at T changes nothing before T.
    cut = requests[C.REQUESTED_AT].quantile(0.6)
    early = (requests[C.REQUESTED_AT] < cut).to_numpy()
    Xc = F.fraud_features(
        requests.loc[early], F.build_history(tables, until=cut), extra_linkage=True
    )
    pd.testing.assert_frame_equal(Xc, X.loc[early].reset_index(drop=True))


def test_graph_extend_equals_rebuild(tables, history):
    """Adding new accounts incrementally gives the graph a full rebuild would give."""
    from ppx.features.identity import hash_identities

    cust = tables[C.CUSTOMERS]
    top = int(cust[C.CUSTOMER_ID].max())
    new = cust.head(4).copy()  # re-use existing identifiers: the new accounts link
    new[C.CUSTOMER_ID] = np.arange(top + 1, top + 5)
    new.loc[new.index[3], C.DEVICE_ID] = "dev-only-new"  # a hash the history has not seen
    new.loc[new.index[2], C.DEVICE_ID] = "dev-only-new"
    hashed = hash_identities(new)
    base = F.LinkageGraph.build(history.identities)
    grown = base.extend(hashed)
    full = F.LinkageGraph.build(pd.concat([history.identities, hashed], ignore_index=True))
    np.testing.assert_array_equal(grown.customer_ids, full.customer_ids)
    np.testing.assert_array_equal(grown.signup_s, full.signup_s)
    assert (grown.adjacency != full.adjacency).nnz == 0
    for k in grown.by_kind:
        assert (grown.by_kind[k] != full.by_kind[k]).nnz == 0
    np.testing.assert_array_equal(grown.static_component, full.static_component)
    assert grown.adjacency[len(base.customer_ids) :].nnz > 0
    # An account that shares nothing: a singleton component, as in a rebuild.
    lone = hash_identities(
        pd.DataFrame(
            {
                C.CUSTOMER_ID: [top + 9],
                C.SIGNUP_AT: [pd.Timestamp("2025-01-01")],
                C.DEVICE_ID: ["dev-lonely"],
                C.EMAIL: ["lonely@example.org"],
            }
        )
    )
    grown = base.extend(lone)
    full = F.LinkageGraph.build(pd.concat([history.identities, lone], ignore_index=True))
    assert (grown.adjacency != full.adjacency).nnz == 0
    np.testing.assert_array_equal(grown.static_component, full.static_component)


def test_return_at_the_deadline_has_its_own_flag_and_no_lag_bin(requests, history):
    """Honest late returns pile up at the window's close; fraud never lands exactly there."""
    ret = requests[(requests[F.KIND] == F.RETURN) & requests[C.DELIVERED_AT].notna()].head(2)
    lag = pd.to_timedelta([F.RETURN_DEADLINE_DAYS, F.RETURN_DEADLINE_DAYS - 0.6], unit="D")
    ret = ret.assign(**{C.REQUESTED_AT: ret[C.DELIVERED_AT].to_numpy() + lag})
    X = F.fraud_features(ret, history)
    assert X["at_return_deadline"].tolist() == [1.0, 0.0]
    assert X.loc[0, F.LAG_BIN_FEATURES].sum() == 0
    assert X.loc[1, F.LAG_BIN_FEATURES].sum() == 1


def test_kept_durables_count_only_closed_windows(tables, history, requests, features):
    """Durable items whose return window closed before the request without a return."""
    items = history.items[history.items[C.CATEGORY].isin(F.DURABLE_CATEGORIES)]
    rets = history.returns
    window = pd.Timedelta(days=F.RETURN_DEADLINE_DAYS)
    rng = np.random.default_rng(1)
    buyers = np.flatnonzero(features["n_durable_items"].to_numpy() > 0)
    for i in rng.choice(buyers, 40, replace=False):
        cid, t = requests.loc[i, C.CUSTOMER_ID], requests.loc[i, C.REQUESTED_AT]
        mine = items[(items[C.CUSTOMER_ID] == cid) & (items[C.DELIVERED_AT] + window < t)]
        kept = 0
        for pid, at in zip(mine[C.PRODUCT_ID], mine[C.DELIVERED_AT], strict=True):
            r = rets[(rets[C.CUSTOMER_ID] == cid) & (rets[C.PRODUCT_ID] == pid)]
            kept += not ((r[C.REQUESTED_AT] >= at) & (r[C.REQUESTED_AT] <= at + window)).any()
        assert features.loc[i, "n_durable_kept"] == kept
    assert features.loc[buyers, "n_durable_kept"].max() > 0


def test_known_fraud_kinds_and_pending_requests_use_only_the_past(history, requests, features):
    """Known-fraud kinds count labels finished before the request; pending = filed within
    the label delay (outcome unknown); both recomputed by brute force from the history."""
    delay = pd.Timedelta(days=history.meta["label_delay_days"])
    rets, cls = history.returns, history.claims
    kinds = ["own_fraud_late_returns", "own_fraud_early_returns", "own_fraud_claims"]
    np.testing.assert_array_equal(features[kinds].sum(axis=1), features["own_fraud_known"])
    rng = np.random.default_rng(2)
    fraudsters = np.flatnonzero(features["own_fraud_known"].to_numpy() > 0)
    pending = np.flatnonzero(features["n_pending_returns"].to_numpy() > 0)
    assert len(fraudsters) and len(pending)
    rows = np.concatenate(
        [
            rng.choice(fraudsters, min(25, len(fraudsters)), replace=False),
            rng.choice(pending, min(25, len(pending)), replace=False),
        ]
    )
    for i in rows:
        cid, t = requests.loc[i, C.CUSTOMER_ID], requests.loc[i, C.REQUESTED_AT]
        r = rets[(rets[C.CUSTOMER_ID] == cid)]
        known = r[(r[F.LABEL_AT] < t) & r[C.CONFIRMED_FRAUD]]
        late = known["lag_days"] >= F.LATE_WINDOW_DAYS
        assert features.loc[i, "own_fraud_late_returns"] == late.sum()
        assert features.loc[i, "own_fraud_early_returns"] == (~late).sum()
        c = cls[(cls[C.CUSTOMER_ID] == cid)]
        assert (
            features.loc[i, "own_fraud_claims"]
            == ((c[F.LABEL_AT] < t) & c[C.CONFIRMED_FRAUD]).sum()
        )
        open_ = r[(r[C.REQUESTED_AT] < t) & (r[C.REQUESTED_AT] >= t - delay)]
        assert features.loc[i, "n_pending_returns"] == len(open_)
        late_durable = (open_["lag_days"] >= F.LATE_WINDOW_DAYS) & open_[C.CATEGORY].isin(
            F.DURABLE_CATEGORIES
        )
        assert features.loc[i, "n_pending_late_durable"] == late_durable.sum()


def test_columns_give_the_frame_features_and_the_same_errors(requests, history):
    """Request columns (what the model service passes) and a frame of the same rows give
    identical features; malformed columns are refused with a clear message."""
    rows = requests.drop(columns=[F.REQUEST_ID, C.CONFIRMED_FRAUD]).iloc[::7].head(50)
    columns = {c: rows[c].tolist() for c in rows.columns}
    X = F.fraud_features(columns, history, as_frame=False)
    np.testing.assert_array_equal(X, F.fraud_features(rows, history).to_numpy())
    one = {c: v[:1] for c, v in columns.items()}
    with pytest.raises(F.FraudRequestError, match="unequal length"):
        F.fraud_features({**one, C.AMOUNT: [1.0, 2.0]}, history)
    with pytest.raises(F.FraudRequestError, match="empty"):
        F.fraud_features({c: [] for c in columns}, history)
    with pytest.raises(F.FraudRequestError, match="missing required"):
        F.fraud_features({k: v for k, v in one.items() if k != C.AMOUNT}, history)
    with pytest.raises(F.FraudRequestError, match="amount"):
        F.fraud_features({**one, C.AMOUNT: [-3.0]}, history)


def test_id_lookup_gives_pandas_positions():
    """The id -> row map answers what ``pd.Index.get_indexer`` answers, missing ids -1."""
    from ppx.features.fraud.lookup import IdLookup

    rng = np.random.default_rng(0)
    ids = rng.choice(np.arange(-500, 5_000), size=700, replace=False)
    query = np.concatenate([rng.choice(ids, 300), rng.integers(-600, 6_000, 300), [ids[0]]])
    lookup = IdLookup(ids)
    expected = pd.Index(ids).get_indexer(query)
    np.testing.assert_array_equal(lookup.positions(query), expected)
    np.testing.assert_array_equal(lookup.contains(query), expected >= 0)
    assert (lookup.positions(query) < 0).any() and (lookup.positions(query) >= 0).any()
    empty = IdLookup(np.array([], dtype=np.int64))
    np.testing.assert_array_equal(empty.positions([3, 4]), [-1, -1])
    with pytest.raises(ValueError, match="duplicate product_id"):
        IdLookup(np.array([4, 2, 4]), "product_id")


def test_graph_nodes_and_component_members_match_a_plain_search(tables, history):
    """Nodes (also of an extended graph) and the members of components come from maps
    built once; they must be what a search over every node finds."""
    from ppx.features.identity import hash_identities

    base = F.LinkageGraph.build(history.identities)
    comp = base.static_component
    rng = np.random.default_rng(1)
    assert (np.bincount(comp) > 1).any()  # linked accounts exist
    for wanted in (comp[:1], rng.choice(comp, 25), np.unique(comp)):
        wanted = np.unique(wanted)
        np.testing.assert_array_equal(
            base.component_members(wanted), np.flatnonzero(np.isin(comp, wanted))
        )
    cust = tables[C.CUSTOMERS]
    new = cust.head(3).copy()
    new[C.CUSTOMER_ID] = np.arange(3) + int(cust[C.CUSTOMER_ID].max()) + 1
    grown = base.extend(hash_identities(new))
    query = np.concatenate([new[C.CUSTOMER_ID], rng.choice(base.customer_ids, 20), [-7]])
    np.testing.assert_array_equal(
        grown.nodes(query), pd.Index(grown.customer_ids).get_indexer(query)
    )
    wanted = np.unique(grown.static_component[grown.nodes(new[C.CUSTOMER_ID])])
    np.testing.assert_array_equal(
        grown.component_members(wanted),
        np.flatnonzero(np.isin(grown.static_component, wanted)),
    )


def test_as_of_window_reads_count_the_events_before_each_time():
    """Counts and sums read from one window equal a brute-force scan of the events."""
    from ppx.features.fraud.asof import AsOf

    rng = np.random.default_rng(2)
    group = rng.integers(0, 30, 2_000)
    sec = rng.integers(0, 10**6, 2_000)
    value = rng.normal(size=2_000)
    idx = AsOf(group, sec, {"v": value})
    qg, qt = rng.integers(0, 32, 200), rng.integers(0, 10**6, 200)
    for window in (None, 50_000):
        at = idx.at(qg, qt, window)
        for i in range(len(qg)):
            m = (group == qg[i]) & (sec < qt[i])
            if window is not None:
                m &= sec >= qt[i] - window
            assert at.count()[i] == m.sum()
            assert at.sum("v")[i] == pytest.approx(value[m].sum(), abs=1e-9)
        np.testing.assert_array_equal(at.count(), idx.count(qg, qt, window))
