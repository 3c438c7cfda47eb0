"""The loyalty ledger: points, redemptions, tiers and the monthly promotion mail."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ppx.data import columns as C
from ppx.data.world.messages import send_messages

if TYPE_CHECKING:
    from ppx.data.world.simulator import Simulator


def record_points(sim: Simulator, cust, t, kind: str, points, tier=None) -> None:
    """One ledger row per customer; ``tier`` only for tier changes."""
    n = len(cust)
    sim.A["loyalty"].add(
        cust=cust,
        t=t,
        kind=np.full(n, kind, dtype=object),
        points=points,
        tier=np.full(n, None, dtype=object) if tier is None else tier,
    )


def loyalty_month(sim: Simulator, m: int) -> None:
    """Redemptions, tier moves from rolling spend, and promotions for month ``m``."""
    p, rng, cal = sim.p, sim.rng, sim.cal
    m0, m1 = cal.month_starts[m], cal.month_starts[m + 1]
    active = sim.signup < m1
    can = active & (sim.points >= p.redeem_threshold)
    red = np.flatnonzero(can & (rng.random(sim.n) < 0.05 + 0.45 * sim.engagement))
    rt = rng.uniform(m0, m1, len(red))
    record_points(sim, red, rt, "redeem", np.full(len(red), -p.redeem_threshold))
    sim.points[red] -= p.redeem_threshold
    sim.redeem_by_month[red, m] += 1
    # Tiers from rolling spend (decayed monthly, a stand-in for a 12-month window).
    new_tier = np.searchsorted([200, 600, 1500], sim.spend_12m, side="right")
    changed = np.flatnonzero(active & (new_tier != sim.tier))
    record_points(
        sim,
        changed,
        np.full(len(changed), m1 - 0.01),
        "tier_change",
        np.zeros(len(changed), dtype=np.int64),
        tier=np.array(C.TIERS, dtype=object)[new_tier[changed]],
    )
    sim.tier = np.where(active, new_tier, sim.tier)
    sim.spend_12m *= 11 / 12
    opt = sim.customers[C.EMAIL_OPT_IN].to_numpy()
    pr = np.flatnonzero(active & opt & (rng.random(sim.n) < p.promo_prob))
    send_messages(sim, pr, rng.uniform(m0, m1, len(pr)), "promotion", "outbound")
