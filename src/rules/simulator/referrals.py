"""Referrals in the replay: the live attribution checks and the payout after the return window.

The world records who referred whom (``customers.referred_by``). Each referred customer's
first delivered order is attributed as :func:`ppx.rules.loyalty.referrals.attribute_referral`
attributes it, with the same refusals: a self-referral, accounts joined in the fraud
linkage graph of the world's whole customers table (shared device, payment fingerprint,
address, e-mail or phone, directly or through other accounts: a ring), or a referral
cycle. An accepted referral is paid (the ``referral`` order event's awards, on both
sides) ``referral.settle_after_days`` after that delivery (default: the return window),
unless the first order's points were reversed by then (a refund), when it is cancelled,
as :func:`ppx.rules.loyalty.referrals.settle_referrals` does. Referrals whose payday
falls after the replayed period stay pending.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.rules.simulator.inputs import py_datetimes


@dataclass(frozen=True)
class ReferralRow:
    """One referred customer's first delivered order and what the checks found."""

    referrer: int
    order_id: int
    referee: int
    delivered_at: datetime
    linked: str | None  # the linkage graph's reason, None when not linked
    cycle: bool  # the referrer was referred, up the chain, by the referee


@dataclass
class ReferralTally:
    attributed: int = 0
    refused_linked: int = 0
    refused_self_or_cycle: int = 0
    paid: int = 0
    cancelled: int = 0

    def metrics(self, pending: int) -> dict:
        return {
            "referrals attributed": self.attributed,
            "referrals refused: linked accounts (ring)": self.refused_linked,
            "referrals refused: self-referral or cycle": self.refused_self_or_cycle,
            "referrals paid after the return window": self.paid,
            "referrals cancelled (first order refunded)": self.cancelled,
            "referrals pending at the end": pending,
        }


def referral_rows(
    customers: pd.DataFrame, orders: pd.DataFrame, everyone: pd.DataFrame | None
) -> list[ReferralRow]:
    """The replayed referrals: referee and referrer both replayed, first order delivered.

    ``everyone``: the world's whole customers table (raw identifiers), for the linkage
    graph; None skips the linkage check (the output then has no linked refusals).
    """
    ref_by = customers.set_index(C.CUSTOMER_ID)[C.REFERRED_BY].dropna().astype("int64")
    ids = set(customers[C.CUSTOMER_ID].tolist())
    dl = orders[orders[C.STATUS] == "delivered"].sort_values(C.DELIVERED_AT, kind="stable")
    firsts = dl.drop_duplicates(C.CUSTOMER_ID)
    firsts = firsts[firsts[C.CUSTOMER_ID].isin(ref_by.index)]
    referrer = ref_by.reindex(firsts[C.CUSTOMER_ID]).to_numpy()
    keep = np.isin(referrer, list(ids))
    firsts, referrer = firsts[keep], referrer[keep]
    graph = None
    if everyone is not None and len(firsts):
        from ppx.features.fraud.linkage import LinkageGraph
        from ppx.features.identity import hash_identities

        graph = LinkageGraph.build(hash_identities(everyone))
    chain = (
        everyone.set_index(C.CUSTOMER_ID)[C.REFERRED_BY].dropna().astype("int64").to_dict()
        if everyone is not None
        else ref_by.to_dict()
    )
    rows = []
    for a, oid, b, t in zip(
        referrer.tolist(),
        firsts[C.ORDER_ID].tolist(),
        firsts[C.CUSTOMER_ID].tolist(),
        py_datetimes(firsts[C.DELIVERED_AT]),
        strict=True,
    ):
        linked = None
        if graph is not None and a != b:
            from ppx.rules.loyalty.referrals import linkage_reason

            linked = linkage_reason(graph, int(a), int(b))
        rows.append(ReferralRow(int(a), int(oid), int(b), t, linked, _cycle(chain, a, b)))
    return rows


def _cycle(chain: dict, referrer: int, referee: int) -> bool:
    seen, cur = set(), referrer
    while cur in chain and cur not in seen:
        seen.add(cur)
        cur = chain[cur]
        if cur == referee:
            return True
    return False


class ReferralBook:
    """One policy's referrals during a replay: attributed now, paid on their payday."""

    def __init__(self, policy):
        self.policy = policy
        self.tally = ReferralTally()
        self.due: list = []  # (payday, seq, row)
        self._seq = 0

    def attribute(self, row: ReferralRow) -> None:
        if row.referrer == row.referee or row.cycle:
            self.tally.refused_self_or_cycle += 1
        elif row.linked is not None and self.policy.referral.refuse_linked:
            self.tally.refused_linked += 1
        else:
            self.tally.attributed += 1
            payday = row.delivered_at + timedelta(days=self.policy.referral_settle_days)
            heapq.heappush(self.due, (payday, self._seq, row))
            self._seq += 1

    def settle(self, now: datetime, refunded: set[int], pay) -> None:
        """Pay (``pay(row, payday)``) or cancel every referral whose payday is <= now."""
        while self.due and self.due[0][0] <= now:
            payday, _, row = heapq.heappop(self.due)
            if row.order_id in refunded:
                self.tally.cancelled += 1
            else:
                self.tally.paid += 1
                pay(row, payday)

    def metrics(self) -> dict:
        return self.tally.metrics(len(self.due))
