"""Returns and delivery claims: honest and fraudulent requests from one code path.

Both kinds of request are drawn the same way: an honest hazard and a fraud hazard per
row, one draw for whether a request is made at all and a second for whether it is the
fraudulent one, a time after delivery, and the generator's own fraud probability kept
as ground truth. They differ only in what drives the hazards and in their columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ppx.data import columns as C

if TYPE_CHECKING:
    from collections.abc import Callable

    from ppx.data.world.simulator import Simulator


def split_fraud(
    rng: np.random.Generator,
    honest: np.ndarray,
    fraud: np.ndarray,
    eligible: np.ndarray,
    cap: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(made, fraudulent, true fraud probability) for rows with two competing hazards.

    ``cap`` bounds the chance of any request; the fraud share is taken from the
    uncapped hazards so capping does not change what a request's fraud odds are.
    """
    total = honest + fraud
    p_fraud = np.where(total > 0, fraud / np.maximum(total, 1e-9), 0.0)
    made = eligible & (rng.random(len(total)) < np.minimum(total, cap))
    is_fraud = made & (rng.random(len(total)) < p_fraud)
    return made, is_fraud, p_fraud


def draw_returns(
    sim: Simulator,
    oid: np.ndarray,
    cust: np.ndarray,
    delivered: np.ndarray,
    late: np.ndarray,
    delivered_ok: np.ndarray,
    kind: np.ndarray,
    line_order: np.ndarray,
    line_item: np.ndarray,
    qty: np.ndarray,
    unit: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per order line: serial returners, wardrobers and rings on top of honest returns.

    Returns the customer, request time and refund of every return made, for the points
    reversal that follows it.
    """
    p, rng = sim.p, sim.rng
    horizon = sim.cal.month_starts[-1]
    n_lines = len(line_item)
    li_c = cust[line_order]
    li_ft = sim.ftype[cust][line_order]
    li_cat = sim.cat[line_item]
    base = np.vectorize(p.return_base.get)(li_cat)
    honest = (
        base
        * (1 + 1.5 * late[line_order])
        * np.where(li_ft == "serial_returner", p.serial_return_mult, 1.0)
    )
    honest = np.where(kind[line_order] == 2, honest * 0.3, honest)
    pricey = sim.price[line_item] > 40
    fraud = np.where(
        (li_ft == "wardrober") & np.isin(li_cat, ["equipment", "merch"]), p.wardrobe_prob, 0.0
    )
    fraud = fraud + np.where((li_ft == "ring") & pricey, p.ring_return_prob, 0.0)
    # Honest returns come first; fraud fills what is left up to 90%.
    honest = np.minimum(honest, 0.9)
    fraud = np.minimum(fraud, 0.9 - honest)
    ret, is_fraud, p_fraud = split_fraud(rng, honest, fraud, delivered_ok[line_order])
    lag = np.where(
        is_fraud & (li_ft == "wardrober"),
        rng.uniform(18, 29.5, n_lines),
        np.where(
            is_fraud,
            rng.uniform(0.5, 10, n_lines),
            np.minimum(rng.exponential(7, n_lines), 29.5),
        ),
    )
    req = delivered[line_order] + lag
    ret &= req < horizon
    r = np.flatnonzero(ret)
    reason = np.where(
        is_fraud[r],
        rng.choice(["not_as_described", "damaged", "changed_mind"], len(r), p=[0.45, 0.35, 0.2]),
        rng.choice(list(C.RETURN_REASONS), len(r), p=[0.4, 0.15, 0.2, 0.1, 0.15]),
    )
    refund = (unit[r] * qty[r]).round(2)
    sim.A["returns"].add(
        order=oid[line_order[r]],
        cust=li_c[r],
        item=line_item[r],
        t=req[r],
        reason=reason,
        refund=refund,
        fraud=is_fraud[r],
        p_fraud=p_fraud[r],
        ftype=li_ft[r],
    )
    return li_c[r], req[r], unit[r] * qty[r]


def draw_claims(
    sim: Simulator,
    oid: np.ndarray,
    cust: np.ndarray,
    t: np.ndarray,
    delivered: np.ndarray,
    status: np.ndarray,
    gps: np.ndarray,
    signature: np.ndarray,
    value: np.ndarray,
) -> None:
    """Per order: lost and misdelivered parcels, and false "not received" claims."""
    p, rng, cal = sim.p, sim.rng, sim.cal
    n = len(oid)
    horizon = cal.month_starts[-1]
    ftype = sim.ftype[cust]
    ok = status == "delivered"
    lost = status == "lost"
    misdeliv = ok & (gps > 200)
    honest = np.where(lost, 0.9, np.where(misdeliv, 0.5, np.where(ok, p.honest_claim_prob, 0.0)))
    fraud = np.where(ok & ~misdeliv & (ftype == "false_claimer"), p.false_claim_prob, 0.0)
    fraud = fraud + np.where(ok & ~misdeliv & (ftype == "ring"), p.ring_claim_prob, 0.0)
    fraud = fraud * np.where(signature, 0.5, 1.0)
    claim, c_fraud, pc = split_fraud(rng, honest, fraud, status != "in_transit", cap=0.95)
    ref = np.where(lost, t + np.asarray(p.carrier_sla_days).max() + 4, delivered)
    c_t = ref + np.where(c_fraud, rng.exponential(1.2, n) + 0.05, rng.exponential(2.5, n) + 0.1)
    claim &= c_t < horizon
    ci = np.flatnonzero(claim)
    ctype = np.where(rng.random(len(ci)) < 0.85, "item_not_received", "damaged_in_transit")
    ctype = np.where(lost[ci] | c_fraud[ci], "item_not_received", ctype)
    sim.A["claims"].add(
        order=oid[ci],
        cust=cust[ci],
        t=c_t[ci],
        ctype=ctype,
        amount=value[ci],
        fraud=c_fraud[ci],
        p_fraud=pc[ci],
        ftype=ftype[ci],
    )
    cm = np.clip(cal.month_of(c_t[ci]), 0, p.months)
    np.add.at(sim.claim_by_month, (cust[ci], cm), 1)


def request_tables(
    raw: pd.DataFrame,
    id_col: str,
    columns: Callable[[pd.DataFrame], dict],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The observed table and its truth for returns or claims, numbered in time order.

    ``columns`` gives the kind's own observed columns (between the id and the
    confirmed-fraud flag) from the time-sorted raw rows.
    """
    r = raw.sort_values("t", kind="stable")
    table = pd.DataFrame(
        {
            id_col: np.arange(1, len(r) + 1, dtype=np.int64),
            **columns(r),
            C.CONFIRMED_FRAUD: r["fraud"].to_numpy().astype(bool),
        }
    )
    truth = pd.DataFrame(
        {
            id_col: table[id_col],
            C.TRUE_FRAUD_PROB: r["p_fraud"].to_numpy(),
            C.IS_FRAUD: r["fraud"].to_numpy().astype(bool),
            C.FRAUD_TYPE: r["ftype"].to_numpy().astype(str),
        }
    )
    return table, truth
