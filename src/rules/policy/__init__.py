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
from datetime import date, time
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ppx.rules.policy.subscriptions import ReturnResolutions, SaveOffers, SubscriptionRules
from ppx.rules.types import LEDGER_TYPES

CHANNELS = ("email", "sms", "push")
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegInt = Annotated[int, Field(ge=0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]

#: Message types the decision functions send; the catalogue must define each of them.
REQUIRED_MESSAGES = (
    "order_confirmation",
    "shipped",
    "out_for_delivery",
    "delay_notice",
    "delivered",
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
    "points_expiring",
)


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PointsExpiry(_Strict):
    """Points expire after ``inactivity_months`` without earning or redeeming.

    Why inactivity rather than per-earning lots: an active customer never loses points
    (the behaviour loyalty programmes are expected to reward), the rule fits in one
    sentence in a reminder, and the expiry date is one date, not a schedule of lots.
    """

    inactivity_months: Annotated[int, Field(ge=1, le=120)] = 12
    reminder_days: Annotated[int, Field(ge=1, le=365)] = 30


class PointsRule(_Strict):
    per_currency_unit: NonNegFloat = 1.0
    award_on: Literal["delivered"] = "delivered"
    expiry: PointsExpiry | None = None


class Tier(_Strict):
    name: str
    min_spend_12m: NonNegFloat
    points_multiplier: Annotated[float, Field(ge=0.0, le=10.0)] = 1.0
    benefits: list[str] = []
    #: 12-month spend that keeps the tier at its review (entry needs ``min_spend_12m``);
    #: None keeps the entry threshold. Lower than entry so one quiet month does not demote.
    retain_spend_12m: NonNegFloat | None = None
    #: months a tier is held after it is reached or retained, before the next review
    hold_months: Annotated[int, Field(ge=1, le=60)] = 12

    @property
    def retention_spend(self) -> float:
        return self.min_spend_12m if self.retain_spend_12m is None else self.retain_spend_12m


class Referral(_Strict):
    referrer_points: NonNegInt
    referee_points: NonNegInt = 0
    #: the shop page a referral link opens; the code is appended as ``?ref=CODE``
    base_url: str = Field(default="https://shop.example.com/r", pattern=r"^https?://\S+$")
    #: random bytes behind a code (``secrets.token_urlsafe``): 9 bytes = 12 characters
    code_bytes: Annotated[int, Field(ge=6, le=32)] = 9
    #: days after the first order's delivery before both sides are paid; None = the
    #: return window (``returns.window_days``), so a returned first order pays nothing
    settle_after_days: NonNegInt | None = None
    #: refuse a referral between accounts the fraud linkage graph connects (shared
    #: device, payment, address or contact, directly or through other accounts)
    refuse_linked: bool = True


class Review(_Strict):
    points: NonNegInt
    once_per_order: bool = True
    #: points for a review with written text; a star-only rating earns ``points``. The
    #: rating itself never changes the award (never buy good reviews).
    text_points: NonNegInt | None = None

    @model_validator(mode="after")
    def _text_not_below_stars(self) -> Review:
        if self.text_points is not None and self.text_points < self.points:
            raise ValueError(
                f"text_points ({self.text_points}) is below points ({self.points}): a written "
                "review must earn at least a star-only rating"
            )
        return self


class Reward(_Strict):
    """One entry of the rewards catalogue: what the customer gets for ``points``."""

    id: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["discount", "percent_discount", "free_shipping", "product"]
    points: Annotated[int, Field(ge=1)]
    #: money off (``discount``) or percent off (``percent_discount``)
    amount: NonNegFloat | None = None
    product_id: Annotated[int, Field(ge=1)] | None = None
    min_order_value: NonNegFloat = 0.0
    #: days the issued voucher code stays valid
    valid_days: Annotated[int, Field(ge=1)] = 90
    #: lowest tier that may redeem it (None: everyone)
    min_tier: str | None = None

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Reward:
        if self.kind in ("discount", "percent_discount") and not self.amount:
            raise ValueError(f"a {self.kind} reward needs a positive amount")
        if self.kind == "percent_discount" and self.amount and self.amount > 100:
            raise ValueError(f"amount is a percentage, got {self.amount}")
        if self.kind == "product" and self.product_id is None:
            raise ValueError("a product reward needs product_id")
        return self


class Gift(_Strict):
    """A yearly gift (birthday, signup anniversary): a catalogue reward issued free."""

    reward: str
    min_tier: str | None = None


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


class Locales(_Strict):
    """Languages messages are written in; a customer's other locale gets ``default``."""

    default: str = "en"
    supported: list[str] = Field(default=["en", "ja", "ru"], min_length=1)

    @model_validator(mode="after")
    def _default_supported(self) -> Locales:
        if self.default not in self.supported:
            raise ValueError(f"default {self.default!r} is not in supported {self.supported}")
        return self


class Messages(_Strict):
    quiet_hours: QuietHours
    caps: Caps
    transactional_without_consent: list[Literal["email", "sms", "push"]] = ["email"]
    catalogue: dict[str, MessageSpec]
    # Which template renders a kind (file stem under ppx/rules/messages/templates/); a kind
    # not listed uses the template of its own name.
    templates: dict[str, str] = {}
    locales: Locales = Locales()

    def template_for(self, message_type: str) -> str:
        return self.templates.get(message_type, message_type)

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


_COLOUR = r"^#[0-9a-fA-F]{6}$"


class Brand(_Strict):
    """How the shopper's pages look: the shop's name, colours and logo.

    Colours are ``#rrggbb`` so a typo fails on load instead of rendering an unreadable page;
    ``text_on_primary`` is the text colour on the primary colour (buttons, header).
    """

    name: str = Field(default="ppx", min_length=1, max_length=80)
    primary_color: str = Field(default="#1f4e79", pattern=_COLOUR)
    text_on_primary: str = Field(default="#ffffff", pattern=_COLOUR)
    accent_color: str = Field(default="#b45309", pattern=_COLOUR)
    logo_url: str | None = Field(default=None, pattern=r"^(https?://|/)\S+$")
    support_url: str | None = Field(default=None, pattern=r"^https?://\S+$")


class Preferences(_Strict):
    """What the preference centre lets a customer turn off."""

    # Kinds a customer cannot turn off (they are part of the purchase: an order or a refund).
    locked: list[str] = ["order_confirmation", "return_update", "claim_update"]
    # What a one-click unsubscribe turns off: the message's kind on its channel ("kind"),
    # or every marketing message on the channel ("channel").
    one_click: Literal["kind", "channel"] = "kind"


class Arm(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]
    weight: Annotated[float, Field(gt=0.0)]
    holdout: bool = False  # gets none of the experiment's messages and gestures
    points_scale: Annotated[float, Field(ge=0.0, le=10.0)] = 1.0  # scales its gestures' points


class Experiment(_Strict):
    """A holdout or A/B test over some message kinds and point gestures."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,48}$")]
    salt: str | None = None  # defaults to the name; change it to reshuffle the customers
    messages: list[str] = []
    gestures: list[str] = []  # ledger entry types (apology, win_back_bonus ...)
    arms: list[Arm] = Field(min_length=2)
    starts: date | None = None
    ends: date | None = None

    @model_validator(mode="after")
    def _arms(self) -> Experiment:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names repeat: {names}")
        if not self.messages and not self.gestures:
            raise ValueError("an experiment must cover some messages or gestures")
        if self.starts and self.ends and self.ends < self.starts:
            raise ValueError("ends is before starts")
        return self


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
    preferences: Preferences = Preferences()
    brand: Brand = Brand()
    experiments: list[Experiment] = []
    rewards: list[Reward] = []
    birthday: Gift | None = None
    anniversary: Gift | None = None

    @field_validator("rewards")
    @classmethod
    def _rewards_unique(cls, v: list[Reward]) -> list[Reward]:
        ids = [r.id for r in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"reward ids repeat: {dup}")
        return v

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
        for t in v:
            if t.retain_spend_12m is not None and t.retain_spend_12m > t.min_spend_12m:
                raise ValueError(
                    f"tier {t.name}: retain_spend_12m ({t.retain_spend_12m}) is above "
                    f"min_spend_12m ({t.min_spend_12m}); keeping a tier cannot be harder "
                    "than reaching it"
                )
        return v

    @model_validator(mode="after")
    def _tier_references(self) -> Policy:
        names = self.tier_names
        refs = {
            "vip_tiers": self.vip_tiers,
            "surprise_tier_up.max_tier": [self.surprise_tier_up.max_tier],
            "daily.birthday.min_tier": [self.daily.birthday.min_tier],
            "rewards.min_tier": [r.min_tier for r in self.rewards if r.min_tier],
            "birthday.min_tier": [self.birthday.min_tier]
            if self.birthday and self.birthday.min_tier
            else [],
            "anniversary.min_tier": [self.anniversary.min_tier]
            if self.anniversary and self.anniversary.min_tier
            else [],
        }
        for key, values in refs.items():
            unknown = [t for t in values if t not in names]
            if unknown:
                raise ValueError(f"{key}: unknown tier {unknown}; tiers are {names}")
        kinds = set(self.messages.catalogue)
        exps = [e.name for e in self.experiments]
        if len(set(exps)) != len(exps):
            raise ValueError(f"experiments: names repeat: {exps}")
        for e in self.experiments:
            unknown = [m for m in e.messages if m not in kinds]
            if unknown:
                raise ValueError(f"experiments.{e.name}.messages: not in the catalogue: {unknown}")
            unknown = [g for g in e.gestures if g not in LEDGER_TYPES]
            if unknown:
                raise ValueError(
                    f"experiments.{e.name}.gestures: unknown ledger types {unknown}; "
                    f"known: {list(LEDGER_TYPES)}"
                )
        unknown = [m for m in self.preferences.locked if m not in kinds]
        if unknown:
            raise ValueError(f"preferences.locked: not in the catalogue: {unknown}")
        settle = self.referral.settle_after_days
        if settle is not None and settle < self.returns.window_days:
            raise ValueError(
                f"referral.settle_after_days ({settle}) is shorter than returns.window_days "
                f"({self.returns.window_days}): a referral could be paid on a returned order"
            )
        ids = [r.id for r in self.rewards]
        for key, gift in (("birthday", self.birthday), ("anniversary", self.anniversary)):
            if gift is not None and gift.reward not in ids:
                raise ValueError(f"{key}.reward: unknown reward {gift.reward!r}; rewards are {ids}")
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

    def reward(self, reward_id: str) -> Reward:
        for r in self.rewards:
            if r.id == reward_id:
                return r
        raise ValueError(
            f"unknown reward_id {reward_id!r}; the catalogue has {[r.id for r in self.rewards]}"
        )

    @property
    def referral_settle_days(self) -> int:
        """Days after the first order's delivery before a referral pays out."""
        s = self.referral.settle_after_days
        return self.returns.window_days if s is None else s

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
    if not base_path.exists():
        raise PolicyError(
            f"invalid policy {path}:\n  extends: {base_name} not found at {base_path} (the "
            f"name is relative to the policy's own folder; the shipped default is "
            f"{default_policy_path()})"
        )
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
