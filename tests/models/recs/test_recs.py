"""Recommender behaviour on a tiny world: sequential pattern, replenishment, fallback."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.models.base import ExplainableModel
from ppx.models.recs.config import RecsConfig
from ppx.models.recs.data import world_problem
from ppx.models.recs.evaluate import Popularity, baseline_scorer, evaluate_scorer, user_item_matrix
from ppx.models.recs.pyfunc import REQUEST_EXAMPLE, predict_frame
from ppx.models.recs.serve import ServedRecommender, load_served, save_served
from ppx.models.recs.train import fit_recommender, scorer_of

CFG = RecsConfig(
    epochs=4, eval_users=0, max_minutes=2.0, d_model=32, dropout=0.2, lr=3e-3, patience=2, threads=1
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models on a shared 2-core machine: one thread avoids oversubscription."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fitted(tiny_world):
    world, _ = tiny_world
    problem = world_problem(world[C.INTERACTIONS], world[C.PRODUCTS], CFG.horizon_days)
    rec, hist = fit_recommender(problem, CFG, progress=False)
    return world, problem, rec, hist


@pytest.fixture(scope="module")
def served(fitted):
    world, _, rec, _ = fitted
    inter = world[C.INTERACTIONS]
    return ServedRecommender(
        rec,
        inter,
        world[C.PRODUCTS],
        world[C.RETURNS],
        inter[C.EVENT_AT].max() + pd.Timedelta(seconds=1),
    )


def _planted_sequences(n_users=400, n_items=40, length=12, p_next=0.7, seed=3):
    """A tiny world whose only structure is a planted successor for every item."""
    rng = np.random.default_rng(seed)
    succ = rng.permutation(n_items) + 1
    rows = []
    t0 = pd.Timestamp("2024-01-01")
    for u in range(1, n_users + 1):
        item = int(rng.integers(1, n_items + 1))
        for k in range(length):
            rows.append((u, item, t0 + pd.Timedelta(days=3 * k + rng.random()), "purchase"))
            follow = rng.random() < p_next
            item = int(succ[item - 1]) if follow else int(rng.integers(1, n_items + 1))
    cols = [C.CUSTOMER_ID, C.PRODUCT_ID, C.EVENT_AT, C.EVENT_TYPE]
    return pd.DataFrame(rows, columns=cols), succ


def test_learns_the_planted_successor():
    """Next item = planted successor 70% of the time: the transformer must find it."""
    from ppx.features.recs import sequence_arrays
    from ppx.models.recs.model import Recommender, Vocab, fit_sasrec

    inter, _ = _planted_sequences()
    last = inter.groupby(C.CUSTOMER_ID).tail(1)
    train = inter.drop(last.index)
    vocab = Vocab.from_ids(inter[C.PRODUCT_ID])
    seq = sequence_arrays(train)
    cfg = RecsConfig(epochs=10, d_model=32, dropout=0.1, lr=5e-3, max_len=20, batch_size=32)
    net, _ = fit_sasrec(seq, vocab, cfg, progress=False)
    X = user_item_matrix(seq, vocab.encode, len(vocab))
    rec = Recommender(cfg, vocab, net, np.asarray(X.sum(axis=0)).ravel())
    target = vocab.encode(last.sort_values(C.CUSTOMER_ID)[C.PRODUCT_ID].to_numpy())
    now = seq.last_days() + 3.0
    kw = dict(exclude=None, exclude_seen=False, progress=False)
    ours = evaluate_scorer(lambda s, t: rec.sequence_logits(s, t), seq, target, now, **kw)
    pop = baseline_scorer(Popularity().fit(X), vocab.encode, len(vocab))
    base = evaluate_scorer(pop, seq, target, now, **kw)
    assert ours["hr_10"] > 0.6
    assert ours["ndcg_10"] > base["ndcg_10"] + 0.3, (ours, base)


def test_beats_popularity_and_repeat_head_helps_repeats(fitted):
    _, problem, rec, _ = fitted
    es = problem.test
    kw = dict(exclude=es.exclude, exclude_seen=False, is_repeat=es.is_repeat, progress=False)
    ours = evaluate_scorer(scorer_of(rec, es), es.seq, es.targets, es.now_days, **kw)
    seq_only = evaluate_scorer(scorer_of(rec, es, False), es.seq, es.targets, es.now_days, **kw)
    X = user_item_matrix(problem.train, rec.vocab.encode, len(rec.vocab))
    pop = evaluate_scorer(
        baseline_scorer(Popularity().fit(X), rec.vocab.encode, len(rec.vocab)),
        es.seq,
        es.targets,
        es.now_days,
        **kw,
    )
    assert ours["ndcg_10"] > pop["ndcg_10"]
    assert ours["ndcg_10_repeat"] > seq_only["ndcg_10_repeat"]


def test_due_coffee_is_in_the_top_10(fitted):
    """A customer who re-buys one coffee every ~4 weeks gets it when it is due."""
    world, problem, rec, _ = fitted
    prods = world[C.PRODUCTS]
    beans = prods[(prods[C.CATEGORY] == "beans") & prods[C.IN_STOCK]]
    # A mid-popularity coffee, so popularity alone would not put it in the top 10.
    counts = world[C.INTERACTIONS][C.PRODUCT_ID].value_counts()
    coffee = int(counts.reindex(beans[C.PRODUCT_ID]).fillna(0).sort_values().index[len(beans) // 2])
    now = world[C.INTERACTIONS][C.EVENT_AT].max()
    cycle = float(problem.intervals["interval_days"].get(coffee, 30.0))
    cid = 10**7
    hist = pd.DataFrame(
        {
            C.CUSTOMER_ID: cid,
            C.PRODUCT_ID: coffee,
            C.EVENT_AT: [now - pd.Timedelta(days=cycle * k) for k in (4, 3, 2, 1)],
            C.EVENT_TYPE: "purchase",
        }
    )
    srv = ServedRecommender(rec, hist, prods, None, now)
    due = srv.recommend(cid, k=10)
    assert coffee in due["product_ids"]
    # Just after buying it, the same coffee is not pushed as hard.
    fresh = srv.recommend(cid, k=10, as_of=now - pd.Timedelta(days=cycle) + pd.Timedelta(days=2))
    s_due = dict(zip(due["product_ids"], due["scores"], strict=True)).get(coffee)
    s_fresh = dict(zip(fresh["product_ids"], fresh["scores"], strict=True)).get(coffee, -np.inf)
    assert s_due > s_fresh


def test_no_history_gets_a_popularity_fallback(served):
    out = served.recommend(123456789, k=10)
    assert out["source"] == "popularity_fallback"
    assert len(out["product_ids"]) == 10
    pop = served.rec.popularity.copy()
    pop[~served.catalogue.in_stock] = -1
    expected = served.vocab.decode(np.argsort(-pop, kind="stable")[:10])
    assert set(out["product_ids"]) == set(expected.tolist())


def test_unknown_item_ids_are_ignored_with_a_warning(served):
    known = int(served.vocab.product_ids[0])
    with pytest.warns(UserWarning, match="unknown product id"):
        out = served.recommend(123456789, history=[known, 987654321], k=5)
    assert out["n_unknown_ignored"] == 1 and out["source"] == "history"
    with pytest.warns(UserWarning):
        only_unknown = served.recommend(123456789, history=[987654321], k=5)
    assert only_unknown["source"] == "popularity_fallback"


def test_business_filters(served, fitted):
    world = fitted[0]
    prods = world[C.PRODUCTS].set_index(C.PRODUCT_ID)
    out_of_stock = set(prods.index[~prods[C.IN_STOCK]])
    equipment = int(prods.index[(prods[C.CATEGORY] == "equipment") & prods[C.IN_STOCK]][0])
    for cid in served._users[:50]:
        rec = served.recommend(int(cid), k=20)
        assert not out_of_stock & set(rec["product_ids"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = served.recommend(123456789, history=[equipment], k=len(served.vocab))
    assert equipment not in rec["product_ids"]  # durable goods are not re-sold
    r = world[C.RETURNS].iloc[0]
    rec = served.recommend(int(r[C.CUSTOMER_ID]), k=len(served.vocab))
    assert int(r[C.PRODUCT_ID]) not in rec["product_ids"]  # returned items never again


def test_batched_recommendations_match_one_at_a_time(served):
    ids = [*served._users[:120].tolist(), 123456789]  # the last has no history
    many = served.recommend_many(ids, k=10, batch=32)
    for cid, got in zip(ids, many, strict=True):
        one = served.recommend(int(cid), k=10)
        assert got["product_ids"] == one["product_ids"], cid
        np.testing.assert_allclose(got["scores"], one["scores"], rtol=1e-5, atol=1e-5)
        assert got["source"] == one["source"]
    assert many[-1]["source"] == "popularity_fallback"


def test_pyfunc_frame_round_trip_and_explanations(served, fitted, tmp_path):
    world, _, rec, _ = fitted
    folder = save_served(
        tmp_path / "snap",
        rec,
        world[C.INTERACTIONS],
        world[C.PRODUCTS],
        world[C.RETURNS],
        served.as_of,
    )
    loaded = load_served(folder)
    req = pd.DataFrame(
        [{**REQUEST_EXAMPLE, "history": [int(loaded.vocab.product_ids[3])]}, {C.CUSTOMER_ID: 5}]
    )
    out = predict_frame(loaded, req)
    assert len(out) == 2
    # A known product in the request's history is enough to rank from history.
    assert out["source"].iloc[0] == "history"
    # A customer sent without history is served from the snapshot if it has one.
    expect = "history" if loaded.known_customer(5) else "popularity_fallback"
    assert out["source"].iloc[1] == expect
    assert list(out["product_ids"].iloc[1]) == loaded.recommend(5, k=10)["product_ids"]
    assert out["product_ids"].map(len).tolist() == [10, 10]
    with pytest.raises(ValueError, match="customer_id"):
        predict_frame(loaded, pd.DataFrame([{"k": 3}]))
    with pytest.raises(ValueError, match="k must be"):
        predict_frame(loaded, pd.DataFrame([{C.CUSTOMER_ID: 1, "k": 0}]))
    assert isinstance(loaded, ExplainableModel)
    raw = pd.DataFrame({C.CUSTOMER_ID: [int(c) for c in loaded._users[:5]] + [123456789]})
    X = loaded.features(raw)
    assert list(X.columns) == loaded.feature_names
    top = [loaded.recommend(int(c), k=1)["scores"][0] for c in raw[C.CUSTOMER_ID]]
    np.testing.assert_allclose(loaded.score_features(X.to_numpy()), top, rtol=1e-4, atol=1e-4)
    assert loaded.background().shape[1] == len(loaded.feature_names)


def test_popularity_sampled_negatives_are_harder_for_popularity():
    """``*_s100pop`` draws negatives by popularity: best-sellers no longer win for free."""
    from ppx.features.recs import sequence_arrays

    inter, _ = _planted_sequences(n_users=300, n_items=300, length=6, p_next=0.0)
    seq = sequence_arrays(inter)
    vocab_n = int(inter[C.PRODUCT_ID].max())
    X = user_item_matrix(seq, lambda ids: np.asarray(ids), vocab_n)
    counts = np.asarray(X.sum(axis=0)).ravel()
    rng = np.random.default_rng(0)
    target = rng.choice(np.arange(1, vocab_n + 1), size=len(seq), p=counts[1:] / counts.sum())
    pop = baseline_scorer(Popularity().fit(X), lambda ids: np.asarray(ids), vocab_n)
    kw = dict(exclude=X, exclude_seen=True, progress=False)
    m = evaluate_scorer(pop, seq, target, None, popularity=counts, **kw)
    assert {"hr_10_s100pop", "ndcg_10_s100pop"} <= set(m)
    assert m["ndcg_10_s100pop"] < m["ndcg_10_s100"]
    with pytest.raises(ValueError, match="popularity"):
        evaluate_scorer(pop, seq, target, None, popularity=counts[:-1], **kw)


def test_repeat_head_is_kept_only_if_it_helps_on_validation(fitted):
    _, _, rec, hist = fitted
    helps = hist["valid_ndcg_10_head"] > hist["valid_ndcg_10_no_head"]
    assert (rec.head is not None) == helps


def test_time_cap_stops_inside_the_first_epoch():
    from ppx.features.recs import sequence_arrays
    from ppx.models.recs.model import Vocab, fit_sasrec

    inter, _ = _planted_sequences(n_users=200)
    cfg = RecsConfig(epochs=5, d_model=16, max_len=20, batch_size=8, max_minutes=0.0)
    _, hist = fit_sasrec(
        sequence_arrays(inter), Vocab.from_ids(inter[C.PRODUCT_ID]), cfg, None, False
    )
    assert hist["epochs_run"] == 1


def test_curve_records_sampled_validation_metrics(fitted):
    _, _, _, hist = fitted
    row = [r for r in hist["curve"] if "valid_ndcg_10" in r][0]
    assert {"valid_ndcg_10", "valid_ndcg_10_s100", "valid_hr_10_s100"} <= set(row)
    with pytest.raises(ValueError, match="select_metric"):
        RecsConfig(select_metric="auc")
