"""A reference below the oracle: what any as-of model could reach on the synthetic world.

The generator's transit location ``true_mu`` is a sum of *fixed* parts (carrier x
service, distance, weekend, peak / holiday, weight, carrier x region, year-two drift)
and *weekly shocks* (weather per destination region and warehouse load, drawn afresh
each week, independent of earlier weeks). An order placed early in its week has no
evidence of that week's shock yet: none of its week's parcels has moved. So even a
model that knew every fixed part and, from then on, each week's shock exactly cannot
beat the oracle on those orders.

``week_blind_cdf`` is that model: it knows the fixed parts (a least-squares fit of
``true_mu`` on the generator's fixed terms, on the training orders) and the true
``mu`` for orders placed later than ``blind_days`` into their week; for the first
``blind_days`` of a week it mixes over the shocks seen in the training weeks. It is an
optimistic bound for an as-of model (from day ``blind_days`` on it knows the shock
exactly), not a method: the benchmark reports it beside the oracle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from ppx.data import columns as C
from ppx.features import delivery as fd

N_SHOCKS = 300  # shock draws mixed over for a blind order


def _design(df: pd.DataFrame, start: pd.Timestamp) -> np.ndarray:
    """The generator's fixed terms of ``true_mu`` (see ``ppx.data.world``)."""
    t = df[C.ORDERED_AT]
    day = t.dt.normalize()
    cs = df[C.CARRIER].astype(str) + "|" + df[C.SERVICE_LEVEL].astype(str)
    lane = df[C.CARRIER].astype(str) + "#" + df[C.DEST_REGION].astype(str)
    md = t.dt.month * 100 + t.dt.day
    congested = (((md >= 1120) & (md <= 1130)) | ((md >= 1201) & (md <= 1223))).to_numpy().copy()
    holidays = {m * 100 + d for m, d in fd.DEFAULT_HOLIDAYS}
    for k in range(fd.HOLIDAY_HORIZON + 1):
        dk = day + pd.Timedelta(days=k)
        congested |= (dk.dt.month * 100 + dk.dt.day).isin(holidays).to_numpy()
    months = (t.dt.year - start.year) * 12 + t.dt.month - start.month
    cols = [
        np.log(df[C.DISTANCE_KM].to_numpy(float) / 500.0),
        t.dt.weekday.isin([4, 5]).to_numpy(float),
        (df[C.WEIGHT_KG].to_numpy(float) > 5).astype(float),
        (months >= 12).to_numpy(float),
        congested.astype(float),
    ]
    dummies = pd.get_dummies(pd.concat([cs, lane], axis=1), dtype=float).to_numpy()
    return np.column_stack([dummies, *cols])


def week_blind_cdf(
    orders: pd.DataFrame,
    truth: pd.DataFrame,
    rows: pd.DataFrame,
    train_end: pd.Timestamp,
    blind_days: int,
    d_max: int,
) -> np.ndarray:
    """CDF of the delivery day offset for ``rows`` (checkout view), see module doc.

    ``orders`` must carry ``weight_kg`` and ``shipment_id`` (one shipment per order);
    ``truth`` is ``truth_shipments``; the fit and the shock distribution use only
    orders placed before ``train_end``.
    """
    df = orders.merge(truth, on=C.SHIPMENT_ID)
    df = df[df[C.ORDERED_AT] < train_end].reset_index(drop=True)
    start = df[C.ORDERED_AT].min().normalize()
    # One design over the fit rows and the scored rows, so the dummy columns agree.
    sel = truth.set_index(C.SHIPMENT_ID).loc[rows[C.SHIPMENT_ID].to_numpy()]
    both = pd.concat([df, rows.assign(**{C.TRUE_MU: sel[C.TRUE_MU].to_numpy()})])
    X = _design(both.reset_index(drop=True), start)
    X_fit, X_rows = X[: len(df)], X[len(df) :]
    coef, *_ = np.linalg.lstsq(X_fit, df[C.TRUE_MU].to_numpy(), rcond=None)
    resid = df[C.TRUE_MU].to_numpy() - X_fit @ coef
    week = (df[C.ORDERED_AT] - start).dt.days // 7
    cells = pd.Series(resid).groupby([df[C.DEST_REGION], df[C.WAREHOUSE], week]).mean()
    rng = np.random.default_rng(0)
    shocks = rng.choice(cells.to_numpy(), min(N_SHOCKS, len(cells)), replace=False)

    t = rows[C.ORDERED_AT]
    frac = ((t - t.dt.normalize()).dt.total_seconds() / 86400.0).to_numpy()
    log_x = np.log(np.maximum(np.arange(d_max + 1)[None, :] + 1 - frac[:, None], 1e-9))
    mu, sig = sel[C.TRUE_MU].to_numpy(), sel[C.TRUE_SIGMA].to_numpy()
    cdf = norm.cdf((log_x - mu[:, None]) / sig[:, None])
    # The generator's shock weeks count from its first day (the first order's day).
    blind = ((t - start).dt.days % 7).to_numpy() < blind_days
    fixed = X_rows[blind] @ coef
    acc = np.zeros((int(blind.sum()), d_max + 1))
    for s in shocks:
        acc += norm.cdf((log_x[blind] - fixed[:, None] - s) / sig[blind, None])
    cdf[blind] = acc / len(shocks)
    cdf[:, -1] = 1.0
    return cdf
