"""Messages the brand sends (and support contacts it receives), with opens and clicks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ppx.data import columns as C

if TYPE_CHECKING:
    from ppx.data.world.simulator import Simulator


def send_messages(sim: Simulator, cust, t, mtype: str, direction: str) -> None:
    """Record one message type to ``cust`` at ``t``; engaged customers open more."""
    n = len(cust)
    if n == 0:
        return
    rng = sim.rng
    if direction == "inbound":
        channel = np.full(n, "support", dtype=object)
        opened = np.ones(n, dtype=bool)
        clicked = np.zeros(n, dtype=bool)
    else:
        c = sim.customers
        sms = c[C.SMS_OPT_IN].to_numpy()[cust]
        push = c[C.PUSH_OPT_IN].to_numpy()[cust]
        channel = np.where(
            (mtype in ("shipped", "delay_notice")) & sms,
            "sms",
            np.where((mtype == "shipped") & push, "push", "email"),
        ).astype(object)
        eng = sim.engagement[cust]
        opened = rng.random(n) < 0.15 + 0.75 * eng
        clicked = opened & (rng.random(n) < 0.1 + 0.5 * eng)
    sim.A["messages"].add(
        cust=cust,
        t=t,
        channel=channel,
        direction=np.full(n, direction, dtype=object),
        mtype=np.full(n, mtype, dtype=object),
        opened=opened,
        clicked=clicked,
    )
