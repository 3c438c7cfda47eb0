"""The simulation's knobs (``WorldParams``) and its result (``World``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pandas as pd

DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class WorldParams:
    """Every knob of the simulation; defaults are the documented world (docs/world.md)."""

    n_customers: int = 20_000
    seed: int = 7
    start: str = "2024-01-01"
    months: int = 24
    # --- demand --------------------------------------------------------------------
    signup_lead_months: int = 6  # customers may have signed up this long before start
    order_rate_per_month: float = 0.36  # mean one-off orders per active customer-month
    holiday_boost: float = 0.9  # extra demand in the Nov 20 - Dec 22 peak
    weekday_demand: tuple[float, ...] = (1.15, 1.05, 1.0, 1.0, 0.95, 0.85, 1.1)  # Mon..Sun
    sequential_prob: float = 0.35  # next purchase is the previous item's planted successor
    replenish_prob: float = 0.55  # a due consumable is re-bought (if not subscribed)
    subscribe_prob: float = 0.12  # buying a subscribable item starts a subscription
    views_per_order: float = 1.2
    # --- delivery ------------------------------------------------------------------
    carrier_base_days: tuple[tuple[float, float], ...] = ((2.6, 1.2), (3.2, 1.4), (3.9, 1.9))
    carrier_sigma: tuple[float, ...] = (0.24, 0.30, 0.36)
    carrier_sla_days: tuple[tuple[int, int], ...] = ((4, 2), (5, 2), (6, 3))
    distance_effect: float = 0.22  # per log(distance / 500 km)
    weekend_effect: float = 0.18  # ordered Fri/Sat waits over the weekend
    peak_effect: float = 0.22  # Nov 20 - Dec 23 congestion
    weather_sd: float = 0.08  # weekly region shocks
    storm_prob: float = 0.03  # chance a region-week has a storm
    storm_effect: float = 0.45
    warehouse_load_sd: float = 0.10  # weekly warehouse handling load
    lane_sd: float = 0.08  # fixed carrier x destination-region effect
    lost_prob: float = 0.004
    misdelivery_prob: float = 0.02
    express_share: float = 0.15
    delay_notice_prob: float = 0.6  # late parcels that got a proactive notice
    # --- subscriptions & churn ------------------------------------------------------
    churn_base: float = -3.45  # logit of monthly hazard
    churn_late_effect: float = 0.55  # per late delivery in the last two calendar months
    churn_claim_effect: float = 0.8  # any claim in the last three calendar months
    churn_low_review_effect: float = 0.5  # a rating <= 2 in the last three months
    churn_price_effect: float = 0.45  # a price increase in the last two months
    churn_skip_effect: float = 0.35  # skipped or paused last month
    churn_redeem_effect: float = -0.6  # redeemed points in the last three months
    churn_new_effect: float = 0.45  # tenure under three months
    churn_engagement_effect: float = -0.8  # per unit of latent engagement above 0.4
    frailty_sd: float = 0.15
    skip_prob: float = 0.05
    pause_prob: float = 0.015
    price_increase_month: int = 12
    price_increase: float = 0.1
    # --- returns, claims and fraud --------------------------------------------------
    fraud_shares: dict[str, float] = field(
        default_factory=lambda: {
            "serial_returner": 0.03,
            "wardrober": 0.015,
            "ring": 0.025,
            "false_claimer": 0.01,
        }
    )
    ring_size: tuple[int, int] = (3, 9)
    household_share: float = 0.04  # honest customers sharing an address or device
    return_base: dict[str, float] = field(
        default_factory=lambda: {
            "beans": 0.035,
            "ground": 0.035,
            "tea": 0.045,
            "equipment": 0.15,
            "accessories": 0.08,
            "merch": 0.13,
        }
    )
    serial_return_mult: float = 5.0
    wardrobe_prob: float = 0.55
    ring_return_prob: float = 0.30
    false_claim_prob: float = 0.22
    ring_claim_prob: float = 0.12
    honest_claim_prob: float = 0.003
    # --- engagement -----------------------------------------------------------------
    review_prob: float = 0.12
    redeem_threshold: int = 500
    promo_prob: float = 0.35

    def to_dict(self) -> dict:
        """Plain-JSON form for the manifest and MLflow params."""
        return json_ready(dataclasses.asdict(self))


def json_ready(obj):
    """Tuples become lists so the manifest round-trips through JSON."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return obj


@dataclass
class World:
    """The observable tables, the ground truth and the manifest of one simulation."""

    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]
    params: WorldParams

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name] if name in self.tables else self.truth[name]
