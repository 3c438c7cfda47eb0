"""The month loop: per-customer state, demand, and the order of the monthly steps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.world.assemble import assemble
from ppx.data.world.calendar import Calendar
from ppx.data.world.catalogue import TASTE_DIM, make_products
from ppx.data.world.customers import make_customers
from ppx.data.world.geography import region_index
from ppx.data.world.loyalty import loyalty_month
from ppx.data.world.orders import emit_orders
from ppx.data.world.params import World, WorldParams
from ppx.data.world.subscriptions import churn_month, renewals


class Accumulator:
    """Accumulates column arrays for one table across months."""

    def __init__(self):
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, **cols):
        for k, v in cols.items():
            self.parts.setdefault(k, []).append(np.asarray(v))

    def frame(self) -> pd.DataFrame:
        """Concatenate and release the parts (keeping both would double peak memory)."""
        if not self.parts:
            return pd.DataFrame()
        cols = {}
        for k in list(self.parts):
            cols[k] = np.concatenate(self.parts.pop(k))
        return pd.DataFrame(cols, copy=False)


class Simulator:
    """Runs the month loop; the per-month mechanisms live in this package's modules.

    Holds the per-customer state and the accumulators every mechanism writes to; one
    random stream (``rng``) is shared, so the order of the steps fixes the world.
    """

    def __init__(self, p: WorldParams, shared_seed: int | None = None):
        self.p = p
        self.rng = np.random.default_rng(p.seed)
        # What every customer shares (catalogue, item popularity, weather, warehouse load,
        # lanes) comes from ``shared``: the same stream as everything else by default, or
        # its own seed when a large world is simulated in customer chunks, so every chunk
        # sees the same catalogue and the same shocks.
        shared = self.rng if shared_seed is None else np.random.default_rng(shared_seed)
        self.cal = Calendar(p)
        self.products, self.item_emb, self.successor = make_products(shared)
        self.customers, self.ctruth = make_customers(self.rng, p, self.cal)
        n, n_items = len(self.customers), len(self.products)
        self.n, self.n_items = n, n_items
        self.taste = self.rng.normal(0, 1, size=(n, TASTE_DIM))
        pop = shared.normal(0, 0.8, n_items)
        self.item_bias = pop
        self.price = self.products[C.PRICE].to_numpy()
        self.weight = self.products[C.WEIGHT_KG].to_numpy()
        self.cat = self.products[C.CATEGORY].to_numpy()
        self.consumable = self.products[C.IS_CONSUMABLE].to_numpy()
        self.replenish = self.products[C.REPLENISH_DAYS].to_numpy()
        self.subscribable = self.products[C.SUBSCRIBABLE].to_numpy()
        self.region_idx = region_index(self.customers[C.REGION].to_numpy())
        self.ftype = self.ctruth[C.FRAUD_TYPE].to_numpy()
        self.engagement = self.ctruth[C.ENGAGEMENT].to_numpy()
        self.signup = self.ctruth["_signup_days"].to_numpy()
        self.activity = self.ctruth["activity"].to_numpy()
        # Fraudsters favour expensive, resellable items.
        self.fraud_pref = np.where(np.isin(self.ftype, ["ring", "wardrober"]), 1.2, 0.0)
        # Per-customer state.
        self.last_item = np.full(n, -1)
        self.due_item = np.full(n, -1)
        self.due_at = np.full(n, np.inf)
        self.points = np.zeros(n)
        self.spend_12m = np.zeros(n)
        self.tier = np.zeros(n, dtype=np.int64)
        self.sub_of = np.full(n, -1)  # active subscription index per customer
        M = p.months
        self.late_by_month = np.zeros((n, M + 1), dtype=np.int32)
        self.claim_by_month = np.zeros((n, M + 1), dtype=np.int32)
        self.lowrev_by_month = np.zeros((n, M + 1), dtype=np.int32)
        self.redeem_by_month = np.zeros((n, M + 1), dtype=np.int32)
        # Weekly shocks.
        n_weeks = len(self.cal.dates) // 7 + 2
        self.weather = (
            shared.normal(0, p.weather_sd, (len(C.REGIONS), n_weeks))
            + (shared.random((len(C.REGIONS), n_weeks)) < p.storm_prob) * p.storm_effect
        )
        self.wh_load = shared.normal(0, p.warehouse_load_sd, (len(C.WAREHOUSES), n_weeks))
        # Slow drift: carriers get a little slower in year two (the model must keep up).
        self.lane = shared.normal(0, p.lane_sd, (len(C.CARRIERS), len(C.REGIONS)))
        # Subscriptions (grown as customers subscribe).
        self.subs = {
            "customer": [],
            "product": [],
            "plan": [],
            "start": [],
            "price": [],
            "day": [],
        }
        self.sub_active = np.zeros(0, dtype=bool)
        self.sub_cancel = np.zeros(0)
        self.sub_paused_until = np.zeros(0)
        self.sub_skipped_month = np.zeros(0, dtype=np.int64)
        self.sub_price_month = np.full(0, -99)
        self.sub_price = np.zeros(0)
        # Accumulators.
        self.A = {
            name: Accumulator()
            for name in (
                "orders",
                "items",
                "ship",
                "returns",
                "claims",
                "reviews",
                "views",
                "messages",
                "loyalty",
                "sub_events",
                "sub_months",
            )
        }
        self.next_order_id = 1

    # --- demand -------------------------------------------------------------------------

    def choose_items(self, cust: np.ndarray, prev: np.ndarray) -> np.ndarray:
        """Taste-driven choice, with the planted sequential successor some of the time."""
        rng = self.rng
        out = np.empty(len(cust), dtype=np.int64)
        for lo in range(0, len(cust), 20_000):
            c = cust[lo : lo + 20_000]
            logits = self.taste[c] @ self.item_emb.T * 0.9 + self.item_bias
            logits = logits + np.outer(self.fraud_pref[c], (self.price > 60).astype(float))
            g = rng.gumbel(size=logits.shape)
            out[lo : lo + 20_000] = np.argmax(logits + g, axis=1)
        seq = (prev >= 0) & (rng.random(len(cust)) < self.p.sequential_prob)
        out[seq] = self.successor[prev[seq]]
        return out

    def order_times(self, m: int, n: int) -> np.ndarray:
        days = self.cal.month_days(m)
        w = self.cal.demand[days]
        d = self.rng.choice(days, size=n, p=w / w.sum())
        hour = np.clip(self.rng.normal(15, 4.5, n), 0, 23.99)
        return d + hour / 24.0

    def step_month(self, m: int) -> None:
        p, rng, cal = self.p, self.rng, self.cal
        m0, m1 = cal.month_starts[m], cal.month_starts[m + 1]
        active = self.signup < m1
        season = (
            cal.demand[cal.month_days(m)].mean() / cal.demand[: int(cal.month_starts[-1])].mean()
        )
        rate = p.order_rate_per_month * self.activity * season * active
        n_orders = rng.poisson(rate)
        cust = np.repeat(np.arange(self.n), n_orders)
        t = self.order_times(m, len(cust))
        t = np.maximum(t, self.signup[cust] + 0.01)
        keep = t < m1
        cust, t = cust[keep], t[keep]
        first = self.choose_items(cust, self.last_item[cust])
        kind = np.zeros(len(cust), dtype=np.int64)  # 0 one-off, 1 replenishment, 2 renewal
        # Replenishment: a due consumable is bought again around its due date.
        due = (self.due_at >= m0) & (self.due_at < m1) & (self.sub_of < 0) & active
        due_c = np.flatnonzero(due & (rng.random(self.n) < p.replenish_prob))
        due_t = np.clip(self.due_at[due_c] + rng.normal(0, 2.5, len(due_c)), m0, m1 - 0.01)
        due_t = np.floor(due_t) + np.clip(rng.normal(15, 4.5, len(due_c)), 0, 23.99) / 24
        cust = np.concatenate([cust, due_c])
        t = np.concatenate([t, due_t])
        first = np.concatenate([first, self.due_item[due_c]])
        kind = np.concatenate([kind, np.ones(len(due_c), dtype=np.int64)])
        # Subscription renewals.
        r_cust, r_t, r_item, r_sub = renewals(self, m)
        cust = np.concatenate([cust, r_cust])
        t = np.concatenate([t, r_t])
        first = np.concatenate([first, r_item])
        kind = np.concatenate([kind, np.full(len(r_cust), 2)])
        sub_idx = np.concatenate([np.full(len(cust) - len(r_cust), -1), r_sub])
        order = np.lexsort((cust, t))
        cust, t, first, kind, sub_idx = (
            cust[order],
            t[order],
            first[order],
            kind[order],
            sub_idx[order],
        )
        if len(cust):
            emit_orders(self, m, cust, t, first, kind, sub_idx)
        loyalty_month(self, m)
        churn_month(self, m)

    def run(self, progress=None) -> World:
        for m in range(self.p.months):
            self.step_month(m)
            if progress is not None:
                progress(m + 1, self.p.months)
        return assemble(self)


def generate_world(
    params: WorldParams | None = None, progress=None, shared_seed: int | None = None
) -> World:
    """Simulate a world; the same params (seed included) give identical tables.

    ``shared_seed`` (customer chunks of one large world) seeds the catalogue and the
    shocks separately from the customers; None keeps the single stream.
    """
    return Simulator(params or WorldParams(), shared_seed=shared_seed).run(progress=progress)
