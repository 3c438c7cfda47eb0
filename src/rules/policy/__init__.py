"""The policy: one versioned YAML file a product team edits, validated on load.

Why a typed model instead of a dict: a typo in a YAML key ("aplogy") or a threshold
outside [0, 1] would otherwise surface weeks later as a decision nobody can explain. Every
model forbids unknown keys, and :func:`load_policy` turns pydantic's errors into one
:class:`PolicyError` whose message names the file and the dotted key
(``apology.bands.1.points: Input should be greater than or equal to 0``).

The default policy ships as package data beside this module (``default.yaml``).
"""

from __future__ import annotations

import re
from datetime import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ppx.rules.policy.subscriptions import ReturnResolutions, SaveOffers, SubscriptionRules

CHANNELS = ("email", "sms", "push")
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegInt = Annotated[int, Field(ge=0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]

#: Message types the decision functions send; the catalogue must define each of them.
REQUIRED_MESSAGES = (
    "order_confirmation",
    "shipped",
    "delay_notice",
    "apology",
    "thank_you",
    "review_request",
    "points_earned",
    "tier_upgrade",
    "win_back",
    "anniversary",
    "birthday",
    "replenishment_reminder",
    "return_update",
    "claim_update",
)


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PointsRule(_Strict):
    per_currency_unit: NonNegFloat = 1.0
    award_on: Literal["delivered"] = "delivered"


class Tier(_Strict):
    name: str
    min_spend_12m: NonNegFloat
    points_multiplier: Annotated[float, Field(ge=0.0, le=10.0)] = 1.0
    benefits: list[str] = []


class Referral(_Strict):
    referrer_points: NonNegInt
    referee_points: NonNegInt = 0


class Review(_Strict):
    points: NonNegInt
    once_per_order: bool = True


class LatenessBand(_Strict):
    min_late_days: Annotated[int, Field(ge=1)]
    points: NonNegInt


class ChurnMultiplier(_Strict):
    min_churn_risk: Probability
    multiplier: Annotated[float, Field(ge=0.0, le=10.0)]


class Apology(_Strict):
    grace_days: NonNegInt = 0
    bands: list[LatenessBand] = Field(min_length=1)
    lost_parcel_points: NonNegInt = 0
    churn_multipliers: list[ChurnMultiplier] = Field(min_length=1)
    max_points: NonNegInt

    @field_validator("bands")
    @classmethod
    def _bands_ascending(cls, v: list[LatenessBand]) -> list[LatenessBand]:
        days = [b.min_late_days for b in v]
        if days != sorted(set(days)):
            raise ValueError(f"min_late_days must be strictly increasing, got {days}")
        return v

    @field_validator("churn_multipliers")
    @classmethod
    def _multipliers_ascending(cls, v: list[ChurnMultiplier]) -> list[ChurnMultiplier]:
        risks = [m.min_churn_risk for m in v]
        if risks != sorted(set(risks)):
            raise ValueError(f"min_churn_risk must be strictly increasing, got {risks}")
        return v


class SurpriseTierUp(_Strict):
    min_spend_12m: NonNegFloat
    min_churn_risk: Probability
    max_tier: str
    duration_days: Annotated[int, Field(ge=1)]
    cooldown_days: NonNegInt
    bonus_points: NonNegInt = 0


class QuietHours(_Strict):
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(v)):
            raise ValueError(f"expected a 24-hour time HH:MM, got {v!r}")
        return v

    def window(self) -> tuple[time, time]:
        s = time.fromisoformat(self.start)
        e = time.fromisoformat(self.end)
        return s, e


class Caps(_Strict):
    per_day: Annotated[int, Field(ge=0)]
    per_week: Annotated[int, Field(ge=0)]

    @model_validator(mode="after")
    def _week_covers_day(self) -> Caps:
        if self.per_week < self.per_day:
            raise ValueError(f"per_week ({self.per_week}) is smaller than per_day ({self.per_day})")
        return self


class MessageSpec(_Strict):
    trigger: str
    category: Literal["transactional", "service", "marketing"]
    channels: list[Literal["email", "sms", "push"]] = Field(min_length=1)
    respect_quiet_hours: bool = True
    recommendations: NonNegInt = 0
    delay_days: NonNegFloat = 0.0


class Messages(_Strict):
    quiet_hours: QuietHours
    caps: Caps
    transactional_without_consent: list[Literal["email", "sms", "push"]] = ["email"]
    catalogue: dict[str, MessageSpec]

    @field_validator("catalogue")
    @classmethod
    def _complete(cls, v: dict[str, MessageSpec]) -> dict[str, MessageSpec]:
        missing = [m for m in REQUIRED_MESSAGES if m not in v]
        if missing:
            raise ValueError(f"missing message types {missing} (the decision functions send them)")
        return v


class WinBack(_Strict):
    min_days_since_order: Annotated[int, Field(ge=1)]
    max_days_since_order: Annotated[int, Field(ge=1)]
    min_churn_risk: Probability
    offer_points: NonNegInt
    cooldown_days: NonNegInt

    @model_validator(mode="after")
    def _range(self) -> WinBack:
        if self.max_days_since_order < self.min_days_since_order:
            raise ValueError("max_days_since_order is smaller than min_days_since_order")
        return self


class Anniversary(_Strict):
    min_years: Annotated[int, Field(ge=1)] = 1
    points: NonNegInt


class Birthday(_Strict):
    points: NonNegInt
    min_tier: str


class Replenishment(_Strict):
    lead_days: NonNegInt
    cooldown_days: NonNegInt


class Daily(_Strict):
    win_back: WinBack
    anniversary: Anniversary
    birthday: Birthday
    replenishment: Replenishment


class ReturnSegment(_Strict):
    instant_refund_max_amount: NonNegFloat
    inspect_fraud_threshold: Probability
    max_confirmed_fraud: NonNegInt = 0
    max_return_rate: Probability


def _require_vip_and_regular(cls, v):
    """Returns and claims thresholds must cover both customer segments."""
    missing = [s for s in ("vip", "regular") if s not in v]
    if missing:
        raise ValueError(f"missing segments {missing}")
    return v


class Returns(_Strict):
    window_days: Annotated[int, Field(ge=1)]
    inspect_ring_members: bool = True
    segments: dict[Literal["vip", "regular"], ReturnSegment]
    resolutions: ReturnResolutions = ReturnResolutions()

    _both = field_validator("segments")(_require_vip_and_regular)


class ClaimSegment(_Strict):
    fast_pay_max_amount: NonNegFloat
    investigate_fraud_threshold: Probability


class Claims(_Strict):
    inspect_ring_members: bool = True
    segments: dict[Literal["vip", "regular"], ClaimSegment]

    _both = field_validator("segments")(_require_vip_and_regular)


class Fallbacks(_Strict):
    delivery: Literal["carrier_promise"] = "carrier_promise"
    churn_risk: Probability
    fraud_prob: Probability
    ring_member: bool = False
    recommendations: list[int] = []
    instant_on_fallback: bool = False
    model_timeout_seconds: Annotated[float, Field(gt=0.0, le=30.0)] = 0.5


class Policy(_Strict):
    """A whole policy file. Cross-field rules (tier names, ordering) are checked here."""

    version: str = Field(min_length=1)
    name: str = Field(min_length=1)
    currency: str = "EUR"
    point_value: NonNegFloat
    churn_horizon_days: Literal[30, 60, 90] = 90
    points: PointsRule
    tiers: list[Tier] = Field(min_length=1)
    vip_tiers: list[str]
    referral: Referral
    review: Review
    apology: Apology
    surprise_tier_up: SurpriseTierUp
    messages: Messages
    daily: Daily
    returns: Returns
    claims: Claims
    fallbacks: Fallbacks
    subscriptions: SubscriptionRules = SubscriptionRules()
    save_offers: SaveOffers = SaveOffers()

    @field_validator("tiers")
    @classmethod
    def _tiers_ascending(cls, v: list[Tier]) -> list[Tier]:
        spend = [t.min_spend_12m for t in v]
        if spend != sorted(set(spend)) or spend[0] != 0:
            raise ValueError(f"min_spend_12m must start at 0 and strictly increase, got {spend}")
        names = [t.name for t in v]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names repeat: {names}")
        return v

    @model_validator(mode="after")
    def _tier_references(self) -> Policy:
        names = self.tier_names
        refs = {
            "vip_tiers": self.vip_tiers,
            "surprise_tier_up.max_tier": [self.surprise_tier_up.max_tier],
            "daily.birthday.min_tier": [self.daily.birthday.min_tier],
        }
        for key, values in refs.items():
            unknown = [t for t in values if t not in names]
            if unknown:
                raise ValueError(f"{key}: unknown tier {unknown}; tiers are {names}")
        return self

    # --- helpers the decision functions use -------------------------------------------

    @property
    def tier_names(self) -> list[str]:
        return [t.name for t in self.tiers]

    def tier(self, name: str) -> Tier:
        for t in self.tiers:
            if t.name == name:
                return t
        raise ValueError(f"unknown tier {name!r}; the policy's tiers are {self.tier_names}")

    def tier_rank(self, name: str) -> int:
        return self.tier_names.index(self.tier(name).name)

    def tier_for_spend(self, spend_12m: float) -> str:
        name = self.tiers[0].name
        for t in self.tiers:
            if spend_12m >= t.min_spend_12m:
                name = t.name
        return name

    def segment(self, tier: str) -> Literal["vip", "regular"]:
        return "vip" if tier in self.vip_tiers else "regular"


def _format_errors(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the policy schema; check the spelling)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"{key}: {msg}")
    return f"invalid policy {source}:\n  " + "\n  ".join(lines)


def default_policy_path() -> Path:
    """Where the shipped default policy lives (package data)."""
    return Path(str(resources.files("ppx.rules.policy") / "default.yaml"))


def parse_policy(data: object, source: str = "<dict>") -> Policy:
    """Validate an already-parsed policy mapping; raise :class:`PolicyError` naming keys."""
    if not isinstance(data, dict):
        raise PolicyError(
            f"invalid policy {source}: the top level must be a mapping of keys, got "
            f"{type(data).__name__}"
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as err:
        raise PolicyError(_format_errors(source, err)) from None


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> object:
    """A policy file's mapping, with ``extends: BASE.yaml`` resolved.

    A variant names the file it starts from (relative to itself) and lists only what it
    changes: mappings merge key by key, anything else (lists, numbers) replaces the
    base's value. So a variant follows every later change of its base.
    """
    if not path.exists():
        raise PolicyError(f"policy file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise PolicyError(f"policy file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict) or "extends" not in data:
        return data
    base_name = data.pop("extends")
    if not isinstance(base_name, str) or not base_name:
        raise PolicyError(f"invalid policy {path}:\n  extends: expected a file name")
    base_path = (path.parent / base_name).resolve()
    if base_path in seen or base_path == path.resolve():
        raise PolicyError(f"invalid policy {path}:\n  extends: {base_name} extends itself")
    base = _read_yaml(base_path, (*seen, path.resolve()))
    if not isinstance(base, dict):
        raise PolicyError(f"invalid policy {path}:\n  extends: {base_name} is not a mapping")
    return _merge(base, data)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate a policy YAML file (the shipped default when ``path`` is None)."""
    path = Path(path) if path is not None else default_policy_path()
    return parse_policy(_read_yaml(path), str(path))


__all__ = [
    "CHANNELS",
    "Policy",
    "PolicyError",
    "REQUIRED_MESSAGES",
    "default_policy_path",
    "load_policy",
    "parse_policy",
]
