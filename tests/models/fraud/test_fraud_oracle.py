"""The benchmark's oracle: a Bayes posterior that no learned model should beat."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from ppx.data import columns as C
from ppx.features import fraud as F
from ppx.models.fraud import evaluate as E


@pytest.fixture(scope="module")
def oracles(tiny_world):
    world, _ = tiny_world
    req = F.all_requests(world.tables)
    prior = E.oracle_scores(req, world.truth)
    post = E.posterior_oracle_scores(req, world.truth, world.tables)
    return world, req, prior, post


def _lags(world) -> pd.DataFrame:
    r = world.tables[C.RETURNS]
    d = world.tables[C.SHIPMENTS].set_index(C.ORDER_ID)[C.DELIVERED_AT]
    lag = (r[C.REQUESTED_AT] - r[C.ORDER_ID].map(d)) / pd.Timedelta(days=1)
    t = world.truth[C.TRUTH_RETURNS].set_index(C.RETURN_ID)
    return pd.DataFrame(
        {
            "lag": lag.to_numpy(),
            "fraud": r[C.RETURN_ID].map(t[C.IS_FRAUD]).to_numpy(dtype=bool),
            "ftype": r[C.RETURN_ID].map(t[C.FRAUD_TYPE]).to_numpy(dtype=object),
            "reason": r[C.REASON].to_numpy(dtype=object),
        }
    )


def test_generator_timing_matches_the_oracle_densities(tiny_world):
    """The densities restated in evaluate.py still describe what the generator draws."""
    world, _ = tiny_world
    L = _lags(world)
    eps = 2 / 86_400
    ward = L[L["fraud"] & (L["ftype"] == "wardrober")]["lag"]
    ring = L[L["fraud"] & (L["ftype"] == "ring")]["lag"]
    honest = L[~L["fraud"]]["lag"]
    assert len(ward) and len(ring) and len(honest)
    assert ward.between(E.WARDROBE_LAG[0] - eps, E.WARDROBE_LAG[1] + eps).all()
    assert ring.between(E.RING_LAG[0] - eps, E.RING_LAG[1] + eps).all()
    assert honest.max() <= E.LAG_CAP + eps
    assert abs(honest[honest < E.LAG_CAP - eps].mean() - E.HONEST_LAG_MEAN) < 1.5
    assert set(L.loc[L["fraud"], "reason"]) <= set(E.FRAUD_REASONS)
    assert set(E.HONEST_REASONS) == set(C.RETURN_REASONS)


def test_posterior_oracle_at_least_as_good_as_prior(oracles):
    _, req, prior, post = oracles
    y = F.label_of(req)
    claim = (req[F.KIND] == F.CLAIM).to_numpy()
    for head in (False, True):
        m = claim == head
        assert y[m].any()
        ap_prior = average_precision_score(y[m], prior[m])
        ap_post = average_precision_score(y[m], post[m])
        assert ap_post >= ap_prior - 1e-9, (head, ap_post, ap_prior)
    # On returns the timing is very informative: the posterior is clearly better.
    r = ~claim
    assert average_precision_score(y[r], post[r]) > average_precision_score(y[r], prior[r]) + 0.1


def test_posterior_is_a_probability_and_keeps_zero_priors_at_zero(oracles):
    _, _, prior, post = oracles
    assert np.all((post >= 0) & (post <= 1))
    assert np.all(post[prior == 0] == 0)


def test_likelihood_ratio_directions():
    # A durable return 25 days after delivery by a wardrober: fraud far more likely.
    assert E.return_likelihood_ratio(np.array([25.0]), ["damaged"], ["wardrober"])[0] > 10
    # An honest-only reason ("wrong_item") rules fraud out.
    assert E.return_likelihood_ratio(np.array([3.0]), ["wrong_item"], ["ring"])[0] == 0
    # At the honest lag cap (point mass) fraud is almost impossible.
    assert E.return_likelihood_ratio(np.array([29.5]), ["damaged"], ["wardrober"])[0] < 1e-3
    # "damaged in transit" claims are never fraud; a claim within hours leans fraud.
    assert E.claim_likelihood_ratio(np.array([0.3]), ["damaged_in_transit"])[0] == 0
    assert E.claim_likelihood_ratio(np.array([0.3]), ["item_not_received"])[0] > 1
    assert E.claim_likelihood_ratio(np.array([8.0]), ["item_not_received"])[0] < 1


def test_linkage_ablation_runs_and_bounds(small_world):
    from ppx.models.fraud.ablation import run

    _, path = small_world
    out = run(str(path), seeds=(7,)).set_index("variant")
    assert list(out.index) == [
        "no_linkage",
        "linkage",
        "linkage+extra",
        "no_linkage+true_ring",
        "no_linkage+true_ring+true_false_claimer",
    ]
    assert np.isfinite(out[["return_val", "claim_val", "return_test", "claim_test"]]).all().all()
    # Knowing the true account types helps claims on validation: the bound is informative.
    full = out.loc["no_linkage+true_ring+true_false_claimer", "claim_val"]
    assert full > out.loc["no_linkage", "claim_val"]
