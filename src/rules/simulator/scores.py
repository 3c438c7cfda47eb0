"""The world's ground truth standing in for model scores, with seeded noise."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.rules.simulator.config import SimulationConfig
from ppx.rules.simulator.inputs import WorldEvents, logit, sigmoid

Z90 = 1.2815515655446004


class StandInScores:
    """The world's ground truth as stand-in model scores, with seeded noise.

    Built once per replay and shared by every policy, so both policies see identical
    scores. Arrays are aligned with the event tables of :class:`WorldEvents`.
    """

    def __init__(self, ev: WorldEvents, truth: dict[str, pd.DataFrame], cfg: SimulationConfig, rng):
        self.cfg = cfg
        noise = cfg.score_noise
        # Delivery: median and 90th percentile of the true log-normal transit time.
        ts = truth[C.TRUTH_SHIPMENTS].set_index(C.SHIPMENT_ID)
        mu = ts[C.TRUE_MU].reindex(ev.orders[C.ORDER_ID]).to_numpy()
        sg = ts[C.TRUE_SIGMA].reindex(ev.orders[C.ORDER_ID]).to_numpy()
        self.p50 = np.exp(mu)
        self.p90 = np.exp(mu + Z90 * sg)
        # Fraud: the request's true fraud probability, noised on the logit.
        tr = truth[C.TRUTH_RETURNS].set_index(C.RETURN_ID)[C.TRUE_FRAUD_PROB]
        tc = truth[C.TRUTH_CLAIMS].set_index(C.CLAIM_ID)[C.TRUE_FRAUD_PROB]
        pr = tr.reindex(ev.returns[C.RETURN_ID]).fillna(0).to_numpy()
        pc = tc.reindex(ev.claims[C.CLAIM_ID]).fillna(0).to_numpy()
        self.return_fraud = sigmoid(logit(pr) + rng.normal(0, noise, len(pr)))
        self.claim_fraud = sigmoid(logit(pc) + rng.normal(0, noise, len(pc)))
        # Ring flags per customer.
        cust = truth[C.TRUTH_CUSTOMERS].set_index(C.CUSTOMER_ID)
        ids = ev.customers[C.CUSTOMER_ID].to_numpy()
        is_ring = cust[C.RING_ID].reindex(ids).fillna(-1).to_numpy() >= 0
        u = rng.random(len(ids))
        flag = np.where(is_ring, u < cfg.ring_recall, u < cfg.ring_false_positive)
        self.ring = dict(zip(ids.tolist(), flag.tolist(), strict=True))
        # Churn: one-off buyers' P(no order in 90 days); subscribers' true 90-day risk.
        rate = ev.params.get("order_rate_per_month", 0.36)
        act = cust["activity"].reindex(ids).fillna(1.0).to_numpy()
        self.oneoff_risk = dict(zip(ids.tolist(), np.exp(-3.0 * rate * act).tolist(), strict=True))
        self.sub_risk = subscriber_risk(ev, truth)
        self.noise = noise
        self._cache: dict[tuple[int, int], float] = {}

    def churn(self, customer_id: int, at: datetime) -> float:
        mi = at.year * 12 + at.month - 1
        hit = self._cache.get((customer_id, mi))
        if hit is not None:
            return hit
        r = self.sub_risk.get((customer_id, mi))
        if r is None:
            r = self.oneoff_risk.get(customer_id, 0.15)
        # Noise keyed by (customer, month) so both policies and repeated looks agree.
        z = hash_normal(self.cfg.seed, customer_id, mi) * self.noise if self.noise else 0.0
        p = min(max(r, 1e-4), 1 - 1e-4)
        out = 1.0 / (1.0 + math.exp(-(math.log(p / (1 - p)) + z)))
        self._cache[(customer_id, mi)] = out
        return out


def hash_normal(seed: int, a: int, b: int) -> float:
    """A deterministic N(0, 1) draw for a (customer, month) pair under a seed."""
    g = np.random.default_rng([seed, a, b])
    return float(g.standard_normal())


def subscriber_risk(ev: WorldEvents, truth) -> dict[tuple[int, int], float]:
    """(customer, month index) -> P(cancel within 90 days), from the true monthly hazard."""
    sm = truth[C.TRUTH_SUBSCRIPTION_MONTHS]
    subs = ev.subs[[C.SUBSCRIPTION_ID, C.CUSTOMER_ID]]
    sm = sm.merge(subs, on=C.SUBSCRIPTION_ID).sort_values([C.SUBSCRIPTION_ID, C.MONTH])
    g = sm.groupby(C.SUBSCRIPTION_ID)[C.TRUE_HAZARD]
    h0 = sm[C.TRUE_HAZARD]
    h1 = g.shift(-1).fillna(h0)
    h2 = g.shift(-2).fillna(h1)
    risk = 1 - (1 - h0) * (1 - h1) * (1 - h2)
    month = pd.to_datetime(sm[C.MONTH])
    mi = (month.dt.year * 12 + month.dt.month - 1).to_numpy()
    frame = pd.DataFrame({"c": sm[C.CUSTOMER_ID].to_numpy(), "mi": mi, "r": risk.to_numpy()})
    frame = frame.groupby(["c", "mi"], sort=False)["r"].max()
    return {(int(c), int(m)): float(r) for (c, m), r in frame.items()}
