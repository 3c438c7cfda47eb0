"""Shipping choices and the true transit time of every parcel.

Transit time is a log-normal whose location moves with every planted factor: carrier
and service level, distance, weekend and peak congestion, weekly weather and warehouse
load shocks, a fixed carrier x lane effect, heavy parcels and a year-two drift. The
location and scale are kept as ground truth (``truth_shipments``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ppx.data import columns as C
from ppx.data.world.geography import CARRIER_WEIGHTS, distance_km

if TYPE_CHECKING:
    from ppx.data.world.simulator import Simulator


@dataclass
class Shipped:
    """One month's parcels, aligned with its orders."""

    warehouse: np.ndarray
    dest: np.ndarray
    dist: np.ndarray
    carrier_i: np.ndarray
    service_i: np.ndarray
    sla: np.ndarray
    promised: np.ndarray  # promised calendar day index (delivery by end of that day)
    shipped: np.ndarray
    delivered: np.ndarray  # true delivery time, also for parcels still in flight
    delivered_obs: np.ndarray  # NaN unless delivered within the horizon
    deliv_day: np.ndarray
    status: np.ndarray
    late: np.ndarray
    gps: np.ndarray
    signature: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray


def ship_orders(sim: Simulator, m: int, cust, t, value, kind, weight) -> Shipped:
    """Warehouse, carrier and service choice, then the parcel's true journey."""
    p, rng, cal = sim.p, sim.rng, sim.cal
    n = len(cust)
    dest_i = sim.region_idx[cust]
    dest = np.array(C.REGIONS)[dest_i]
    wh = np.where(np.isin(dest, ["north", "east", "central"]), "wh_north", "wh_south")
    wh = np.where(rng.random(n) < 0.1, np.where(wh == "wh_north", "wh_south", "wh_north"), wh)
    dist = distance_km(wh, dest, rng)
    carrier_i = rng.choice(len(C.CARRIERS), n, p=CARRIER_WEIGHTS)
    express = (rng.random(n) < p.express_share * np.where(value > 150, 2.0, 1.0)) & (kind != 2)
    svc_i = express.astype(int)
    sla = np.asarray(p.carrier_sla_days)[carrier_i, svc_i] + (dist > 1200)
    day0 = np.floor(t)
    promised = day0 + sla
    base = np.asarray(p.carrier_base_days)[carrier_i, svc_i]
    week = (t // 7).astype(int)
    dow = cal.dow[day0.astype(int)]
    wh_i = (wh == "wh_south").astype(int)
    peak = cal.is_peak[day0.astype(int)]
    hol_soon = np.zeros(n, dtype=bool)
    for k in range(0, 6):
        hol_soon |= cal.is_holiday[np.minimum(day0.astype(int) + k, len(cal.dates) - 1)]
    mu = (
        np.log(base)
        + p.distance_effect * np.log(dist / 500.0)
        + p.weekend_effect * np.isin(dow, [4, 5])
        + p.peak_effect * (peak | hol_soon)
        + sim.weather[dest_i, week]
        + sim.wh_load[wh_i, week]
        + sim.lane[carrier_i, dest_i]
        + 0.05 * (weight > 5)
        + 0.04 * (m >= 12)  # year-two drift
    )
    sigma = np.asarray(p.carrier_sigma)[carrier_i] + 0.05 * express
    T = np.exp(mu + sigma * rng.standard_normal(n))
    delivered = t + T
    lost = rng.random(n) < p.lost_prob
    handling = T * rng.beta(2, 9, n)
    shipped = t + handling
    horizon = cal.month_starts[-1]
    in_flight = delivered > horizon
    status = np.where(lost, "lost", np.where(in_flight, "in_transit", "delivered"))
    delivered_obs = np.where(status == "delivered", delivered, np.nan)
    deliv_day = np.floor(delivered)
    late = (status == "delivered") & (deliv_day > promised)
    misdeliv = (status == "delivered") & (rng.random(n) < p.misdelivery_prob)
    gps = np.where(
        status == "delivered",
        np.where(misdeliv, rng.uniform(250, 3000, n), np.abs(rng.normal(0, 35, n))),
        np.nan,
    ).round(1)
    signature = (status == "delivered") & (
        rng.random(n) < np.where(express | (value > 150), 0.8, 0.1)
    )
    return Shipped(
        warehouse=wh,
        dest=dest,
        dist=dist,
        carrier_i=carrier_i,
        service_i=svc_i,
        sla=sla,
        promised=promised,
        shipped=shipped,
        delivered=delivered,
        delivered_obs=delivered_obs,
        deliv_day=deliv_day,
        status=status,
        late=late,
        gps=gps,
        signature=signature,
        mu=mu,
        sigma=sigma,
    )
