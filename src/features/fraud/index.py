"""The request-independent part of a history, built once and reused per request."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.features.fraud.asof import AsOf, to_seconds
from ppx.features.fraud.history import FraudHistory
from ppx.features.fraud.lookup import IdLookup
from ppx.features.fraud.names import (
    DURABLE_CATEGORIES,
    HIGH_VALUE,
    LABEL_AT,
    LATE_WINDOW_DAYS,
    PREMIUM_PRICE,
    RETURN_DEADLINE_DAYS,
)

if TYPE_CHECKING:
    from ppx.features.fraud.linkage import LinkageGraph


class FraudHistoryIndex:
    """Everything request-independent that the features read from a history.

    Sorted as-of indexes of orders, deliveries, items, returns, claims and labels, the
    category codes, the product lookup and each account's first known-fraud time.
    :func:`fraud_features` builds one per call when none is given (training: one call
    for all rows); the served scorer builds it once at load and passes it to every
    request, so a request only pays for the binary searches of its own rows. Both paths
    run the same code on the same index, so online features equal offline ones.
    """

    def __init__(self, history: FraudHistory):
        h = self.history = history
        self.known = np.unique(h.known_customers().astype(np.int64))
        ho_s, ho_ok = to_seconds(h.orders[C.ORDERED_AT])
        self.o_idx = AsOf(
            h.orders[C.CUSTOMER_ID].to_numpy()[ho_ok],
            ho_s[ho_ok],
            {"value": h.orders[C.ORDER_VALUE].to_numpy()[ho_ok]},
        )
        hd_s, hd_ok = to_seconds(h.orders[C.DELIVERED_AT])
        self.od_idx = AsOf(h.orders[C.CUSTOMER_ID].to_numpy()[hd_ok], hd_s[hd_ok], {})
        # Catalogue first: the item and return indexes carry per-item price and kind.
        self.cat_code = {c: i for i, c in enumerate(C.CATEGORIES)}
        prod = h.products
        self.product_lookup = IdLookup(prod[C.PRODUCT_ID].to_numpy(dtype=np.int64), "product_id")
        self.price = prod[C.PRICE].to_numpy(dtype=float)
        self.product_cat = self._codes(prod[C.CATEGORY])
        durable_codes = [self.cat_code[c] for c in DURABLE_CATEGORIES]
        it_cat = self._codes(h.items[C.CATEGORY])
        rt_cat = self._codes(h.returns[C.CATEGORY])
        it_price, _ = self.product(h.items[C.PRODUCT_ID].to_numpy(dtype=np.int64))
        hi_s, hi_ok = to_seconds(h.items[C.DELIVERED_AT])
        # Taste for premium items and how many durable goods were bought: the shopping
        # traits of accounts that wardrobe or return for rings (they buy pricier gear).
        self.i_idx = AsOf(
            h.items[C.CUSTOMER_ID].to_numpy()[hi_ok],
            hi_s[hi_ok],
            {
                "premium": (np.nan_to_num(it_price) > PREMIUM_PRICE).astype(float)[hi_ok],
                "price_log": np.log1p(np.nan_to_num(it_price))[hi_ok],
                "durable": np.isin(it_cat, durable_codes).astype(float)[hi_ok],
            },
        )
        self.kept_idx = self._kept_durables(it_cat, durable_codes)
        hr_s, hr_ok = to_seconds(h.returns[C.REQUESTED_AT])
        raw_lag = h.returns["lag_days"].to_numpy(dtype=float)
        lag = np.nan_to_num(raw_lag)
        hv = (h.returns[C.AMOUNT].to_numpy() > HIGH_VALUE).astype(float)
        lw = (lag >= LATE_WINDOW_DAYS).astype(float)
        r_dur = np.isin(rt_cat, durable_codes).astype(float)
        self.r_idx = AsOf(
            h.returns[C.CUSTOMER_ID].to_numpy()[hr_ok],
            hr_s[hr_ok],
            {
                "hv": hv[hr_ok],
                "lw": lw[hr_ok],
                "lag": lag[hr_ok],
                "durable": r_dur[hr_ok],
                "lw_durable": (lw * r_dur)[hr_ok],
            },
        )
        self.label_delay_s = int(round(float(h.meta.get("label_delay_days", 14.0)) * 86_400))
        hc_s, hc_ok = to_seconds(h.claims[C.REQUESTED_AT])
        self.c_idx = AsOf(
            h.claims[C.CUSTOMER_ID].to_numpy()[hc_ok],
            hc_s[hc_ok],
            {
                "unexplained": h.claims["unexplained"].to_numpy(dtype=float)[hc_ok],
                "fast": h.claims["fast"].to_numpy(dtype=float)[hc_ok],
            },
        )
        # Labels: usable from label_at on; fraud and investigated counts.
        lab = pd.concat(
            [
                h.returns[[C.CUSTOMER_ID, LABEL_AT, C.CONFIRMED_FRAUD]],
                h.claims[[C.CUSTOMER_ID, LABEL_AT, C.CONFIRMED_FRAUD]],
            ],
            ignore_index=True,
        )
        lab_s, lab_ok = to_seconds(lab[LABEL_AT])
        lab_fraud = lab[C.CONFIRMED_FRAUD].to_numpy(dtype=bool)
        lab_cust = lab[C.CUSTOMER_ID].to_numpy()
        # The kind of each confirmed fraud: a late return, an early return, a claim.
        n_r = len(h.returns)
        lab_late = np.zeros(len(lab), dtype=bool)
        lab_late[:n_r] = lag >= LATE_WINDOW_DAYS
        lab_early = np.zeros(len(lab), dtype=bool)  # a return of unknown lag is neither
        lab_early[:n_r] = np.isfinite(raw_lag) & (raw_lag < LATE_WINDOW_DAYS)
        lab_claim = np.zeros(len(lab), dtype=bool)
        lab_claim[n_r:] = True
        self.l_idx = AsOf(
            lab_cust[lab_ok],
            lab_s[lab_ok],
            {
                "fraud": lab_fraud[lab_ok].astype(float),
                "fraud_late": (lab_fraud & lab_late & ~lab_claim)[lab_ok].astype(float),
                "fraud_early": (lab_fraud & lab_early)[lab_ok].astype(float),
                "fraud_claim": (lab_fraud & lab_claim)[lab_ok].astype(float),
            },
        )
        # First time each account became a known fraudster (its earliest confirmed fraud).
        fr = lab_fraud & lab_ok
        self.first_flag = (
            pd.Series(lab_s[fr]).groupby(lab_cust[fr]).min()
            if fr.any()
            else pd.Series(dtype=np.int64)
        )
        # Category / product base-rate indexes.
        self.ci_idx = AsOf(it_cat[hi_ok], hi_s[hi_ok], {})
        self.cr_idx = AsOf(rt_cat[hr_ok], hr_s[hr_ok], {})
        self.pi_idx = AsOf(h.items[C.PRODUCT_ID].to_numpy()[hi_ok], hi_s[hi_ok], {})
        self.pr_idx = AsOf(h.returns[C.PRODUCT_ID].to_numpy()[hr_ok], hr_s[hr_ok], {})
        self._flags: tuple[int, np.ndarray] | None = None

    def _kept_durables(self, it_cat: np.ndarray, durable_codes: list[int]) -> AsOf:
        """Durable items kept past the return window, counted from the window's close.

        A wardrober sends most durable goods back; each durable item whose window
        closed without a return is evidence against that. The event time is the
        window's close, so a request only sees items whose outcome is already known.
        """
        h = self.history
        dur = np.isin(it_cat, durable_codes)
        items = pd.DataFrame(
            {
                "c": h.items[C.CUSTOMER_ID].to_numpy(dtype=np.int64)[dur],
                "p": h.items[C.PRODUCT_ID].to_numpy(dtype=np.int64)[dur],
                "t": pd.to_datetime(h.items[C.DELIVERED_AT].to_numpy()[dur]),
            }
        ).dropna(subset=["t"])
        rets = pd.DataFrame(
            {
                "c": h.returns[C.CUSTOMER_ID].to_numpy(dtype=np.int64),
                "p": h.returns[C.PRODUCT_ID].to_numpy(dtype=np.int64),
                "t": pd.to_datetime(h.returns[C.REQUESTED_AT].to_numpy()),
                "returned": True,
            }
        ).dropna(subset=["t"])
        window = pd.Timedelta(days=RETURN_DEADLINE_DAYS)
        m = pd.merge_asof(
            items.sort_values("t"),
            rets.sort_values("t"),
            on="t",
            by=["c", "p"],
            direction="forward",
            tolerance=window,
        )
        kept = m["returned"].isna().to_numpy()
        close_s, ok = to_seconds((m["t"] + window + pd.Timedelta(seconds=1)).to_numpy())
        return AsOf(m["c"].to_numpy()[ok], close_s[ok], {"kept": kept[ok].astype(float)})

    def _codes(self, categories: pd.Series) -> np.ndarray:
        codes = pd.Series(self.cat_code, dtype=np.int64)
        return (
            pd.Series(categories.astype(object).to_numpy())
            .map(codes)
            .fillna(-1)
            .to_numpy(dtype=np.int64)
        )

    def is_known(self, customer_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(customer_ids, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.known, ids), max(len(self.known) - 1, 0))
        return (self.known[pos] == ids) if len(self.known) else np.zeros(len(ids), dtype=bool)

    def product(self, pid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(price, category code) per product id; NaN / -1 for unknown or missing ids."""
        pos = self.product_lookup.positions(pid)
        ok = pos >= 0
        price = np.where(ok, self.price[np.maximum(pos, 0)], np.nan)
        cat = np.where(ok, self.product_cat[np.maximum(pos, 0)], -1)
        return price, cat

    def flag_seconds(self, graph: LinkageGraph) -> np.ndarray:
        """First known-fraud time per graph node (int64 max when never flagged)."""
        if self._flags is not None and self._flags[0] == id(graph):
            return self._flags[1]
        base = getattr(graph, "_base", None)
        if base is not None and self._flags is not None and self._flags[0] == id(base):
            # An extension of the cached graph by new accounts, which have no labels yet.
            extra = len(graph.customer_ids) - len(base.customer_ids)
            never = np.full(extra, np.iinfo(np.int64).max, dtype=np.int64)
            return np.concatenate([self._flags[1], never])
        flag_s = np.full(len(graph.customer_ids), np.iinfo(np.int64).max, dtype=np.int64)
        if len(self.first_flag):
            pos = graph.nodes(self.first_flag.index.to_numpy())
            keep = pos >= 0
            flag_s[pos[keep]] = self.first_flag.to_numpy()[keep]
        self._flags = (id(graph), flag_s)
        return flag_s
