"""The inputs and outputs of the decision functions: events, customer context, scores, Decision.

They are pydantic models so the HTTP service validates requests with the same types the
pure functions take (a bad field gets a 4xx naming it), while the offline simulator builds
them with ``model_construct`` (no validation cost) from already-clean world tables.

Times are naive UTC; an aware datetime is converted to UTC on the way in. Quiet hours are
evaluated in the customer's local time via ``CustomerContext.utc_offset_minutes``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ppx.data.columns import RETURN_REASONS

Channel = Literal["email", "sms", "push"]
#: a phone number in E.164: a plus and 8 to 15 digits (a cheap check, no parsing)
E164 = re.compile(r"\+[1-9]\d{7,14}")
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Money = Annotated[float, Field(ge=0.0, le=1_000_000.0)]
Id = Annotated[int, Field(ge=1)]
ReturnReason = Literal[RETURN_REASONS]  # type: ignore[valid-type]  # what the fraud model knows


def _naive_utc(v):
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v.astimezone(UTC).replace(tzinfo=None)
    return v


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _tz(cls, v):
        return _naive_utc(v)


class SentMessage(_In):
    """A message already sent (or scheduled) to the customer: what caps count."""

    sent_at: datetime
    message_type: str = Field(max_length=64)
    channel: Channel
    category: Literal["transactional", "service", "marketing"] = "marketing"


class ReplenishmentItem(_In):
    """A consumable the customer bought and is not subscribed to, and when it runs out."""

    product_id: Id
    due_at: datetime


class CustomerContext(_In):
    """What the rules know about a customer at decision time (nothing after it)."""

    customer_id: Id
    tier: str = Field(default="bronze", max_length=32)
    spend_12m: Money = 0.0
    points_balance: int = 0
    orders_12m: Annotated[int, Field(ge=0)] = 0
    returns_12m: Annotated[int, Field(ge=0)] = 0
    confirmed_fraud: Annotated[int, Field(ge=0)] = 0
    signup_at: datetime | None = None
    birth_date: date | None = None
    last_order_at: datetime | None = None
    has_active_subscription: bool = False
    subscription_id: Id | None = None  # what the churn model scores (None: no subscription)
    # Marketing consent per channel: only an explicit opt-in counts; a request without
    # consent fields (or with null) gets no marketing message. Order, delay and other
    # service messages may still use the policy's transactional_without_consent channels.
    email_opt_in: bool | None = False
    sms_opt_in: bool | None = False
    push_opt_in: bool | None = False
    # Hard opt-outs ("never contact me here"): never used, not even for an order notice.
    opted_out_channels: list[Channel] = []
    # Opt-outs by message kind from the preference centre: "shipped" (every channel) or
    # "shipped:sms" (one channel). The decision engine fills them from the stored preferences.
    opted_out_messages: Annotated[list[str], Field(max_length=200)] = []
    # How messages are written: a language (en, ja, ru; others fall back to the policy's
    # default) and an IANA time zone for the times they show.
    email: str | None = Field(default=None, max_length=320)  # where email messages go
    phone: str | None = Field(default=None, max_length=64)  # where SMS go (E.164: +4930...)
    device_id: str | None = Field(default=None, max_length=500)  # where push messages go
    locale: str = Field(default="en", max_length=16)
    time_zone: str | None = Field(default=None, max_length=64)
    preferred_channels: list[Channel] = []
    utc_offset_minutes: Annotated[int, Field(ge=-14 * 60, le=14 * 60)] = 0
    recent_messages: Annotated[list[SentMessage], Field(max_length=1000)] = []
    last_surprise_tier_up_at: datetime | None = None
    last_win_back_at: datetime | None = None
    last_replenishment_reminder_at: datetime | None = None
    replenishment_due: Annotated[list[ReplenishmentItem], Field(max_length=200)] = []

    def opted_in(self, channel: str) -> bool:
        return bool(getattr(self, f"{channel}_opt_in"))

    def may_use(self, channel: str, transactional_without_consent: tuple[str, ...] = ()) -> bool:
        """Whether a channel may carry a message (see ppx.rules.messaging)."""
        if channel in self.opted_out_channels:
            return False
        return self.opted_in(channel) or channel in transactional_without_consent

    def contact(self, channel: str) -> str | None:
        """Where a message on ``channel`` goes: email address, phone number or device id."""
        return {"email": self.email, "sms": self.phone, "push": self.device_id}.get(channel)

    def reachable(self, channel: str) -> bool:
        """Whether the channel's contact can carry a message: for SMS only a number in
        E.164 (the gateway refuses others; ``ppx data import`` writes phones so)."""
        contact = self.contact(channel)
        if channel == "sms":
            return contact is not None and E164.fullmatch(contact) is not None
        return bool(contact)

    @property
    def contacts_known(self) -> bool:
        """Whether the context names any contact. Without one the caller delivers the
        messages itself (a what-if request, a simulation), so channels are chosen on
        consent alone; with one, a channel without a contact is skipped."""
        return any((self.email, self.phone, self.device_id))

    def opted_out_of(self, message_type: str, channel: str) -> bool:
        """Whether the preference centre turned this kind off (everywhere or on this channel)."""
        return (
            message_type in self.opted_out_messages
            or f"{message_type}:{channel}" in self.opted_out_messages
        )

    @property
    def return_rate(self) -> float:
        return self.returns_12m / max(self.orders_12m, 1)


class DeliveryEstimate(_In):
    """The delivery model's answer: days from ``ordered_at`` to delivery, two quantiles."""

    p50_days: Annotated[float, Field(ge=0.0, le=120.0)]
    p90_days: Annotated[float, Field(ge=0.0, le=120.0)]


class Scores(_In):
    """Model outputs for one decision. ``None`` means the call failed or was not made.

    ``errors`` carries why a score is missing (e.g. ``{"churn": "timeout after 0.5 s"}``)
    so the reasons can say which fallback was used and why.
    """

    delivery: DeliveryEstimate | None = None
    churn_risk: Probability | None = None
    fraud_prob: Probability | None = None
    ring_member: bool | None = None
    recommendations: list[int] | None = None
    errors: dict[str, str] = {}


OrderEventType = Literal[
    "placed",
    "shipped",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "lost",
    "refunded",
    "review",
    "referral",
]


class OrderEvent(_In):
    """Something that happened to an order (or, for ``referral``, to a referred friend)."""

    event_type: OrderEventType
    order_id: Id
    customer_id: Id
    occurred_at: datetime
    ordered_at: datetime | None = None
    order_value: Money = 0.0
    promised_date: date | None = None
    delivered_at: datetime | None = None
    carrier: str | None = Field(default=None, max_length=64)
    delay_notice_sent: bool = False
    refund_id: Id | None = None
    refund_amount: Money | None = None
    review_id: Id | None = None
    rating: Annotated[int, Field(ge=1, le=5)] | None = None
    #: a review with written text earns ``review.text_points``; a star-only one ``points``
    review_has_text: bool = False
    referee_id: Id | None = None


class ReturnEvent(_In):
    """A return request to decide on (the fraud model scores it; the policy decides)."""

    return_id: Id
    order_id: Id
    customer_id: Id
    product_id: Id | None = None
    requested_at: datetime
    delivered_at: datetime | None = None
    amount: Money
    reason: ReturnReason = "other"


class ClaimEvent(_In):
    """A delivery claim to decide on (the fraud model scores it; the policy decides)."""

    claim_id: Id
    order_id: Id
    customer_id: Id
    claimed_at: datetime
    claim_type: Literal["item_not_received", "damaged_in_transit"]
    amount: Money
    shipment_id: Id | None = None
    carrier_status: Literal["delivered", "in_transit", "lost"] = "delivered"
    signature: bool | None = None


# --- outputs ---------------------------------------------------------------------------

ActionKind = Literal[
    "award_points",
    "reverse_points",
    "set_tier",
    "instant_refund",
    "refund_on_receipt",
    "inspect",
    "manual_review",
    "fast_payout",
    "standard_claim_review",
    "investigate",
    # return resolutions (ppx.rules.returns_flow)
    "exchange_ship_now",
    "exchange_on_receipt",
    "store_credit",
    "store_credit_on_receipt",
    "collect_difference",
]

#: Ledger entry types the actions write (``award_points.ledger_type``).
LEDGER_TYPES = (
    "earn",
    "reversal",
    "apology",
    "referral_bonus",
    "review_bonus",
    "tier_up_bonus",
    "win_back_bonus",
    "anniversary_bonus",
    "birthday_bonus",
    "redeem",
    "redemption_reversal",
    "expiry",
    "opening_balance",
)


class Action(BaseModel):
    """One thing to do. Point actions carry the ledger idempotency key."""

    model_config = ConfigDict(extra="forbid")

    kind: ActionKind
    reason: str
    customer_id: int | None = None  # when not the decision's customer (referee bonus)
    points: int = 0
    ledger_type: str | None = None
    idempotency_key: str | None = None
    order_id: int | None = None
    amount: float | None = None
    tier: str | None = None
    until: datetime | None = None
    arm: str | None = None  # "experiment:arm" when an experiment covers this gesture


class PlannedMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_type: str
    channel: Channel
    category: str
    send_at: datetime
    reason: str
    content: dict = {}
    arm: str | None = None  # "experiment:arm" when an experiment covers this message


class SuppressedMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_type: str
    reason: str


class Decision(BaseModel):
    """What to do about one event, and why, in words a product team can read."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["order_event", "return", "claim", "daily"]
    customer_id: int
    policy_version: str
    outcome: str | None = None
    actions: list[Action] = []
    messages: list[PlannedMessage] = []
    suppressed: list[SuppressedMessage] = []
    reasons: list[str] = []
    fallbacks: list[str] = []
    arms: dict[str, str] = {}  # experiment -> the customer's arm, for experiments it touched

    @property
    def points(self) -> int:
        """Net points this decision moves (awards minus reversals)."""
        return sum(a.points for a in self.actions if a.kind in ("award_points", "reverse_points"))

    def actions_of(self, kind: str) -> list[Action]:
        return [a for a in self.actions if a.kind == kind]

    def message_types(self) -> list[str]:
        return [m.message_type for m in self.messages]
