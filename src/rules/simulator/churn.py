"""Expected cancellations with and without a policy's retention gestures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.rules.simulator.inputs import WorldEvents, logit, sigmoid


def expected_churn(
    ev: WorldEvents, truth, retention: dict[int, list], effect: float, uptake: float
) -> tuple[float, float]:
    """(expected cancellations without, with the policy's retention gestures).

    A subscription month is "reached" with strength s = min(1, sum of the gestures'
    strengths in the three months before it), where a surprise tier-up has strength 1
    and points have strength points / redeem_threshold (a gift worth one redemption acts
    like one). Months after a real redemption are already lowered by the world and get
    no extra effect. h' = uptake * s * sigmoid(logit h + effect) + (1 - uptake * s) * h.
    """
    sm = truth[C.TRUTH_SUBSCRIPTION_MONTHS].merge(
        ev.subs[[C.SUBSCRIPTION_ID, C.CUSTOMER_ID]], on=C.SUBSCRIPTION_ID
    )
    if sm.empty:
        return 0.0, 0.0
    h = sm[C.TRUE_HAZARD].to_numpy()
    month = pd.to_datetime(sm[C.MONTH]).to_numpy().astype("datetime64[ns]")
    lo = (pd.to_datetime(sm[C.MONTH]) - pd.DateOffset(months=3)).to_numpy().astype("datetime64[ns]")
    cust = sm[C.CUSTOMER_ID].to_numpy()
    order = np.argsort(cust, kind="stable")
    cs = cust[order]
    bounds = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1], True])

    def window_sum(events: dict[int, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        out = np.zeros(len(h))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            got = events.get(int(cs[a]))
            if got is None:
                continue
            t, w = got
            cum = np.r_[0.0, np.cumsum(w)]
            rows = order[a:b]
            i = np.searchsorted(t, lo[rows], side="left")
            k = np.searchsorted(t, month[rows], side="left")
            out[rows] = cum[k] - cum[i]
        return out

    red = ev.loyalty[ev.loyalty[C.EVENT_TYPE] == "redeem"]
    redeemed = {
        int(c): (np.sort(g[C.EVENT_AT].to_numpy().astype("datetime64[ns]")), np.ones(len(g)))
        for c, g in red.groupby(C.CUSTOMER_ID)
    }
    acted = {}
    for c, items in retention.items():
        if not items:
            continue
        items = sorted(items, key=lambda x: x[0])
        t = np.array([x[0] for x in items], dtype="datetime64[ns]")
        acted[c] = (t, np.array([x[1] for x in items], dtype=float))
    strength = np.minimum(window_sum(acted), 1.0)
    strength[window_sum(redeemed) > 0] = 0.0
    reach = uptake * strength
    h_new = reach * sigmoid(logit(h) + effect) + (1 - reach) * h
    return float(h.sum()), float(h_new.sum())


# --- public API -------------------------------------------------------------------------
