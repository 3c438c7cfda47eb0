"""Registered models' scores standing in for ground truth: the replay of a store.

A brand's store has no ``truth/``. Its replay takes every score from the registered
champions instead - what the decision service would have been told:

* delivery: each order's checkout estimate, median and 90 % promise (``ppx-delivery``);
* fraud: each return's and claim's calibrated fraud probability and ring flag
  (``ppx-fraud``); whether a request *was* fraud is the store's own investigation
  finding (``confirmed_fraud``), the only fraud label a brand has;
* churn: a subscriber's 90-day cancellation probability at each month start
  (``ppx-churn``), whose 30-day probability is also the monthly hazard of the expected
  churn estimate; a one-off buyer's risk is the store's observed share of orders not
  followed by another order within 90 days.

A model the store's data needs but the registry lacks is an error naming the command
that trains it; a model the data does not need (no subscriptions, no returns or claims)
is not loaded. No noise is added: these are model scores, not an oracle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.rules.simulator.config import SimulationConfig
from ppx.rules.simulator.inputs import WorldEvents

CHUNK = 5_000


class MissingModelError(ValueError):
    """A model the store's replay needs is not registered."""


def _load(model: str, alias: str):
    import mlflow
    from ppx import tracking

    tracking.configure()
    mv = tracking.get_alias_version(model, alias)
    if mv is None:
        raise MissingModelError(
            f"the replay of a store (no truth/) takes its scores from the registered models, "
            f"and ppx-{model} has no {alias!r} version "
            f"({tracking.missing_alias_hint(model, alias)}); train it with "
            f"`ppx train {model} --world STORE`"
        )
    uri = f"models:/{tracking.registered_name(model)}/{mv.version}"
    return mlflow.pyfunc.load_model(uri).unwrap_python_model(), f"ppx-{model} v{mv.version}"


def _predict(python_model, raw: pd.DataFrame) -> pd.DataFrame:
    parts = [
        pd.DataFrame(python_model.predict(None, raw.iloc[i : i + CHUNK].reset_index(drop=True)))
        for i in range(0, len(raw), CHUNK)
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def delivery_quantiles(python_model, orders: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(median days, 90 % promise days) of every order, at checkout."""
    raw = pd.DataFrame(
        {
            C.WAREHOUSE: orders[C.WAREHOUSE].astype(str),
            C.DEST_REGION: orders[C.DEST_REGION].astype(str),
            C.CARRIER: orders[C.CARRIER].astype(str),
            C.SERVICE_LEVEL: orders[C.SERVICE_LEVEL].astype(str),
            C.ORIGIN_REGION: orders[C.ORIGIN_REGION].astype(str),
            C.ORDERED_AT: orders[C.ORDERED_AT],
            C.DISTANCE_KM: orders[C.DISTANCE_KM].astype(float),
            C.PROMISED_DAYS: orders[C.PROMISED_DAYS].astype(float),
            "promise_target": 0.9,
        }
    )
    pred = _predict(python_model, raw)
    p50 = pred["p50_days"].to_numpy(float)
    p90 = np.maximum(pred["promise_days"].to_numpy(float), p50)
    return np.maximum(p50, 0.5), np.maximum(p90, 0.5)


def observed_oneoff_risk(ev: WorldEvents, customer_ids: np.ndarray) -> dict[int, float]:
    """Per customer, the share of their orders not followed by another within 90 days.

    Orders in the last 90 days of the data have no known follow-up and are left out; a
    customer without any such order gets the store-wide share.
    """
    o = ev.orders[[C.CUSTOMER_ID, C.ORDERED_AT]].sort_values([C.CUSTOMER_ID, C.ORDERED_AT])
    nxt = o.groupby(C.CUSTOMER_ID)[C.ORDERED_AT].shift(-1)
    known = o[C.ORDERED_AT] <= o[C.ORDERED_AT].max() - pd.Timedelta(days=90)
    lapsed = (nxt.isna() | (nxt - o[C.ORDERED_AT] > pd.Timedelta(days=90)))[known]
    overall = float(lapsed.mean()) if len(lapsed) else 0.5
    per = lapsed.groupby(o.loc[known, C.CUSTOMER_ID]).agg(["sum", "count"])
    # shrink toward the store-wide share: two pseudo-orders at the overall rate
    rate = (per["sum"] + 2 * overall) / (per["count"] + 2)
    return {int(c): float(rate.get(c, overall)) for c in customer_ids}


def month_starts(ev: WorldEvents) -> pd.DatetimeIndex:
    return pd.date_range(ev.start.normalize().replace(day=1), ev.end, freq="MS")


def churn_months(python_model, ev: WorldEvents) -> pd.DataFrame:
    """(subscription, month) rows of active subscriptions with the model's 30/90-day risk."""
    subs = ev.subs
    rows = []
    for m in month_starts(ev):
        active = subs[
            (subs[C.STARTED_AT] < m) & (subs[C.CANCELLED_AT].isna() | (subs[C.CANCELLED_AT] >= m))
        ]
        if len(active):
            rows.append(active[[C.SUBSCRIPTION_ID, C.CUSTOMER_ID]].assign(**{C.MONTH: m}))
    if not rows:
        return pd.DataFrame(columns=[C.SUBSCRIPTION_ID, C.CUSTOMER_ID, C.MONTH, "p30", "p90"])
    sm = pd.concat(rows, ignore_index=True)
    req = sm[[C.CUSTOMER_ID, C.MONTH]].drop_duplicates().reset_index(drop=True)
    raw = pd.DataFrame(
        {
            C.CUSTOMER_ID: req[C.CUSTOMER_ID].astype(np.int64),
            "as_of": req[C.MONTH].dt.strftime("%Y-%m-%d"),
        }
    )
    pred = _predict(python_model, raw)
    req["p30"] = pred["p_churn_30"].to_numpy(float)
    req["p90"] = pred["p_churn_90"].to_numpy(float) if "p_churn_90" in pred else req["p30"]
    return sm.merge(req, on=[C.CUSTOMER_ID, C.MONTH], how="left")


class ModelScores:
    """Scores from the registered champions, with the interface of ``StandInScores``."""

    def __init__(
        self,
        ev: WorldEvents,
        cfg: SimulationConfig,
        tables: dict[str, pd.DataFrame],
        alias: str = "champion",
    ):
        self.cfg = cfg
        self.noise = 0.0
        self._cache: dict[tuple[int, int], float] = {}
        self.sources: list[str] = []
        model, name = _load("delivery", alias)
        self.p50, self.p90 = delivery_quantiles(model, ev.orders)
        self.sources.append(name)
        ids = ev.customers[C.CUSTOMER_ID].to_numpy()
        self.ring = dict.fromkeys(ids.tolist(), False)
        self.return_fraud = np.zeros(len(ev.returns))
        self.claim_fraud = np.zeros(len(ev.claims))
        if len(ev.returns) or len(ev.claims):
            self._fraud(ev, tables, alias)
        self.oneoff_risk = observed_oneoff_risk(ev, ids)
        self.sub_risk: dict[tuple[int, int], float] = {}
        self.subscription_months = pd.DataFrame()
        if len(ev.subs):
            model, name = _load("churn", alias)
            sm = churn_months(model, ev)
            self.sources.append(name)
            mi = (sm[C.MONTH].dt.year * 12 + sm[C.MONTH].dt.month - 1).to_numpy()
            frame = pd.DataFrame({"c": sm[C.CUSTOMER_ID].to_numpy(), "mi": mi, "r": sm["p90"]})
            frame = frame.groupby(["c", "mi"], sort=False)["r"].max()
            self.sub_risk = {(int(c), int(m)): float(r) for (c, m), r in frame.items()}
            self.subscription_months = sm

    def _fraud(self, ev: WorldEvents, tables: dict[str, pd.DataFrame], alias: str) -> None:
        from ppx.features import fraud as F
        from ppx.models.fraud.train import raw_requests

        model, name = _load("fraud", alias)
        self.sources.append(name)
        req = F.all_requests(tables)
        pred = _predict(model, raw_requests(req).reset_index(drop=True))
        p = pd.Series(pred["p_fraud"].to_numpy(float))
        ring = (
            pred["ring_member"].to_numpy(bool) if "ring_member" in pred else np.zeros(len(p), bool)
        )
        is_claim = (req[F.KIND] == F.CLAIM).to_numpy()
        rid = req[F.REQUEST_ID].to_numpy()
        by_return = pd.Series(p.to_numpy()[~is_claim], index=rid[~is_claim])
        by_claim = pd.Series(p.to_numpy()[is_claim], index=rid[is_claim])
        self.return_fraud = by_return.reindex(ev.returns[C.RETURN_ID]).fillna(0).to_numpy()
        self.claim_fraud = by_claim.reindex(ev.claims[C.CLAIM_ID]).fillna(0).to_numpy()
        for c in req.loc[ring, C.CUSTOMER_ID].unique().tolist():
            self.ring[int(c)] = True

    def churn(self, customer_id: int, at) -> float:
        mi = at.year * 12 + at.month - 1
        r = self.sub_risk.get((customer_id, mi))
        if r is None:
            r = self.oneoff_risk.get(customer_id, 0.15)
        return float(min(max(r, 1e-4), 1 - 1e-4))

    def truth_like(self, ev: WorldEvents) -> dict[str, pd.DataFrame]:
        """The frames the replay reads from ``truth/``, made from scores and findings."""
        sm = self.subscription_months
        out = {
            C.TRUTH_SUBSCRIPTION_MONTHS: pd.DataFrame(
                {
                    C.SUBSCRIPTION_ID: sm.get(C.SUBSCRIPTION_ID, pd.Series(dtype=np.int64)),
                    C.MONTH: sm.get(C.MONTH, pd.Series(dtype="datetime64[ns]")),
                    C.TRUE_HAZARD: sm.get("p30", pd.Series(dtype=float)),
                }
            ),
            C.TRUTH_RETURNS: pd.DataFrame(
                {
                    C.RETURN_ID: ev.returns[C.RETURN_ID].to_numpy(),
                    C.IS_FRAUD: ev.returns[C.CONFIRMED_FRAUD].astype(bool).to_numpy(),
                }
            ),
            C.TRUTH_CLAIMS: pd.DataFrame(
                {
                    C.CLAIM_ID: ev.claims[C.CLAIM_ID].to_numpy(),
                    C.IS_FRAUD: ev.claims[C.CONFIRMED_FRAUD].astype(bool).to_numpy(),
                }
            ),
        }
        return out
