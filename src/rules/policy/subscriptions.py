"""Policy sections for subscription self-service, save offers and return resolutions.

Kept apart from the core policy schema so each concern reads on its own. Every section
has defaults, so an older policy file without them still loads (with save offers off).

* ``subscriptions``: what a subscriber may do alone (cadences, pause length, skips).
* ``save_offers``: what to offer a subscriber who asks to cancel, chosen from the churn
  model's risk and reason codes (and the reason the customer gives), with its cost.
* ``returns.resolutions``: exchange, store credit with a bonus, refund, and who may have
  an exchange shipped or a refund paid before the item is back.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]

#: Why a subscriber leaves, in the groups the save-offer rules speak of.
REASON_GROUPS = ("price", "too_much_product", "delivery", "product", "other")
ReasonGroup = Literal[REASON_GROUPS]  # type: ignore[valid-type]

#: What a subscriber can be offered instead of cancelling.
OFFER_KINDS = ("skip", "pause", "discount", "swap", "cadence")
OfferKind = Literal[OFFER_KINDS]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubscriptionRules(_Strict):
    """Self-service limits: the cadences offered, pause length, skips in a row."""

    cadence_days: list[Annotated[int, Field(ge=7, le=365)]] = Field(
        default=[14, 30, 45, 60], min_length=1
    )
    min_pause_days: Annotated[int, Field(ge=1)] = 7
    max_pause_days: Annotated[int, Field(ge=1)] = 90
    max_consecutive_skips: Annotated[int, Field(ge=1)] = 2

    @field_validator("cadence_days")
    @classmethod
    def _ascending(cls, v: list[int]) -> list[int]:
        if v != sorted(set(v)):
            raise ValueError(f"cadence_days must be strictly increasing, got {v}")
        return v

    @model_validator(mode="after")
    def _pause_range(self) -> SubscriptionRules:
        if self.max_pause_days < self.min_pause_days:
            raise ValueError(
                f"max_pause_days ({self.max_pause_days}) is smaller than min_pause_days "
                f"({self.min_pause_days})"
            )
        return self


class DiscountOffer(_Strict):
    percent: Annotated[float, Field(gt=0.0, le=90.0)] = 20.0
    orders: Annotated[int, Field(ge=1, le=24)] = 3


class PauseOffer(_Strict):
    days: Annotated[int, Field(ge=1, le=365)] = 60


class SwapOffer(_Strict):
    handling_cost: NonNegFloat = 2.0  # repacking and catalogue work per swap
    candidates: Annotated[int, Field(ge=1, le=20)] = 3  # recommendations asked for


class SaveOfferRule(_Strict):
    """One rule: for these reasons (any when empty) and this risk band, make this offer."""

    reasons: list[ReasonGroup] = []
    min_churn_risk: Probability = 0.0
    max_churn_risk: Probability = 1.0
    offer: OfferKind

    @model_validator(mode="after")
    def _band(self) -> SaveOfferRule:
        if self.max_churn_risk < self.min_churn_risk:
            raise ValueError("max_churn_risk is smaller than min_churn_risk")
        return self


_DEFAULT_FEATURES = {
    "price": ["price_now", "price_increase_2m"],
    "too_much_product": ["skips_1m", "skips_3m", "paused_1m", "paused_now", "deliveries_2m"],
    "delivery": ["late_1m", "late_2m", "late_6m", "late_rate", "claims_3m"],
    "product": ["mean_rating", "low_reviews_3m", "returns_3m"],
}
_DEFAULT_STATED = {
    "too_expensive": "price",
    "too_much_product": "too_much_product",
    "delivery_problems": "delivery",
    "not_enjoying": "product",
    "other": "other",
}


class SaveOffers(_Strict):
    """The offer made before a cancel. First matching, feasible rule wins."""

    enabled: bool = False
    cooldown_days: Annotated[int, Field(ge=0)] = 180  # no second offer this soon after one
    offer_valid_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 48
    # The churn model's reason codes (features that raise the risk) -> reason group.
    reason_features: dict[ReasonGroup, list[str]] = _DEFAULT_FEATURES
    # The customer's answer to "why are you leaving?" -> reason group; it comes first.
    stated_reasons: dict[str, ReasonGroup] = _DEFAULT_STATED
    discount: DiscountOffer = DiscountOffer()
    pause: PauseOffer = PauseOffer()
    swap: SwapOffer = SwapOffer()
    rules: list[SaveOfferRule] = [SaveOfferRule(offer="pause")]

    @field_validator("stated_reasons")
    @classmethod
    def _stated_keys(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not k or len(k) > 64]
        if bad:
            raise ValueError(f"stated reason names must be 1-64 characters: {bad}")
        return v


class ReturnResolutions(_Strict):
    """Exchange, store credit or refund; what trusted customers get before the item is back."""

    allowed: list[Literal["exchange", "store_credit", "refund"]] = [
        "exchange",
        "store_credit",
        "refund",
    ]
    store_credit_bonus_pct: Annotated[float, Field(ge=0.0, le=100.0)] = 10.0
    store_credit_max_bonus: NonNegFloat = 25.0
    # Exchanges ship before the returned item arrives for customers trusted with an
    # instant refund (fraud risk, ring, history and tier: the returns segments).
    ship_exchange_ahead: bool = True
    # An exchange for a dearer item: the customer pays the difference, up to this much
    # through ppx (a bigger difference is a new order).
    max_exchange_difference: NonNegFloat = 100.0

    @field_validator("allowed")
    @classmethod
    def _some(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("allow at least one resolution")
        return v


__all__ = [
    "OFFER_KINDS",
    "REASON_GROUPS",
    "ReturnResolutions",
    "SaveOfferRule",
    "SaveOffers",
    "SubscriptionRules",
]
