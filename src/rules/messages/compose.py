"""From a decision to outbox rows, and from an outbox row to the message that is sent.

:func:`outbox_rows` runs in the decision path: it only copies what the decision planned
(kind, content, language, time zone, address, arm) under a message key; nothing is
rendered there. :class:`Renderer` runs in the sender, right before a row goes out: it
renders the templates, signs the unsubscribe links and, for loyalty-bearing kinds, reads
the balance and the next reward (``loyalty_summary``) at that moment. An email gets the
full text and HTML bodies; an SMS or push row gets a short body cut from the same
templates and catalogue (:mod:`ppx.rules.messages.short`).

The row's address is the customer's contact on the row's channel, copied when the row is
written: ``CustomerContext.email`` for email, ``phone`` for SMS, ``device_id`` for push.

The message key names the event a message is about, not the decision that planned it, so
a duplicate webhook or a replay yields the same key and the outbox keeps one row:
``<kind>:<customer>:order:<id>`` (or ``return:<id>``, ``claim:<id>``,
``subscription:<id>``, ``expires:<date>``), else ``<kind>:<customer>:<send day>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ppx.rules.messages import short, unsubscribe
from ppx.rules.messages.outbox import Claimed, NewMessage, SentContent
from ppx.rules.messages.render import (
    LOYALTY_KINDS,
    LoyaltyView,
    RenderError,
    pick_language,
    render,
    render_short,
)
from ppx.rules.messages.render import template_kinds as _template_kinds
from ppx.rules.policy import Policy
from ppx.rules.types import CustomerContext, Decision, PlannedMessage

#: content fields that name what a message is about, and their label in the key
_SUBJECTS = (
    ("order_id", "order"),
    ("return_id", "return"),
    ("claim_id", "claim"),
    ("subscription_id", "subscription"),
    ("expires_on", "expires"),
)


@dataclass(frozen=True)
class SenderIdentity:
    """What every message shows or links to: the brand, public URL and signing key."""

    brand: str
    public_url: str
    secret: str | None
    #: how a shipping message links to the order's tracking page (a signed magic link);
    #: None: the portal is not configured and the messages carry no tracking link
    tracking_link: Callable[[int, int, str], str] | None = None

    @classmethod
    def from_settings(cls) -> SenderIdentity:
        from ppx.config import get_settings

        s = get_settings()
        return cls(s.brand_name, s.public_url, s.unsubscribe_secret, tracking_link(s))


#: Kinds about one order's delivery: their messages link to the order's tracking page.
TRACKING_KINDS = (
    "order_confirmation",
    "shipped",
    "out_for_delivery",
    "delay_notice",
    "delivered",
    "apology",
)


def tracking_link(settings) -> Callable[[int, int, str], str] | None:
    """``(customer_id, order_id, lang) -> URL`` of the tracking page, when the portal is set up."""
    if not settings.portal_secret:
        return None
    from ppx.portal.services import portal_link

    def link(customer_id: int, order_id: int, lang: str) -> str:
        return portal_link(settings, customer_id, order_id=order_id, lang=lang)

    return link


def message_key(m: PlannedMessage, customer_id: int) -> str:
    for field, label in _SUBJECTS:
        if m.content.get(field) is not None:
            return f"{m.message_type}:{customer_id}:{label}:{m.content[field]}"
    return f"{m.message_type}:{customer_id}:{m.send_at:%Y-%m-%d}"


def check_templates(policy: Policy) -> None:
    """Every kind the policy can send has a template (checked when an outbox is set up)."""
    have = set(_template_kinds())
    missing = sorted(
        k for k in policy.messages.catalogue if policy.messages.template_for(k) not in have
    )
    if missing:
        raise RenderError(
            f"no template for message kinds {missing} (add templates/<kind>.txt.j2 and "
            ".html.j2, or map them in messages.templates)"
        )


def address_for(customer: CustomerContext, channel: str) -> str | None:
    """Where a message on ``channel`` goes: email address, phone number or device id."""
    return customer.contact(channel)


def outbox_rows(decision: Decision, customer: CustomerContext) -> list[NewMessage]:
    """The decision's planned messages as outbox rows (not rendered yet)."""
    return [
        NewMessage(
            message_key=message_key(m, customer.customer_id),
            customer_id=customer.customer_id,
            message_type=m.message_type,
            channel=m.channel,
            category=m.category,
            content=m.content,
            send_after=m.send_at,
            locale=customer.locale,
            time_zone=customer.time_zone,
            utc_offset_minutes=customer.utc_offset_minutes,
            to_address=address_for(customer, m.channel),
            arm=m.arm,
        )
        for m in decision.messages
    ]


class Renderer:
    """Render an outbox row for sending: templates, signed links, loyalty figures."""

    def __init__(
        self,
        policy: Policy,
        identity: SenderIdentity,
        loyalty: Callable[[int], LoyaltyView] | None = None,
    ):
        if not identity.secret:
            raise RenderError("email needs signed unsubscribe links: set PPX_UNSUBSCRIBE_SECRET")
        self.policy = policy
        self.identity = identity
        self.loyalty = loyalty

    def __call__(self, row: Claimed) -> SentContent:
        template = self.policy.messages.template_for(row.message_type)
        loyalty = None
        if template in LOYALTY_KINDS:
            if self.loyalty is None:
                raise RenderError(f"{row.message_type} shows the balance: no loyalty source")
            loyalty = self.loyalty(row.customer_id)
        links = unsubscribe.links(
            self.identity.public_url,
            row.customer_id,
            row.message_type,
            row.channel,
            self.identity.secret,
            pick_language(row.locale, self.policy),
        )
        order_id = row.content.get("order_id")
        if (
            self.identity.tracking_link is not None
            and order_id is not None
            and row.message_type in TRACKING_KINDS
        ):
            lang = pick_language(row.locale, self.policy)
            links["tracking"] = self.identity.tracking_link(row.customer_id, int(order_id), lang)
        customer = CustomerContext.model_construct(
            customer_id=row.customer_id,
            locale=row.locale,
            time_zone=row.time_zone,
            utc_offset_minutes=row.utc_offset_minutes,
        )
        if row.channel in ("sms", "push"):
            return self._short(row, customer, loyalty, links.get("tracking"))
        r = render(
            row.message_type,
            row.content,
            customer,
            self.policy,
            brand=self.identity.brand,
            loyalty=loyalty,
            links=links,
        )
        return SentContent(r.subject, r.text, r.html, r.locale, links["unsubscribe"])

    def _short(
        self,
        row: Claimed,
        customer: CustomerContext,
        loyalty: LoyaltyView | None,
        tracking: str | None,
    ) -> SentContent:
        """An SMS (subject + one-segment body) or a push (title, body, deep link)."""
        s = render_short(
            row.message_type,
            row.content,
            customer,
            self.policy,
            brand=self.identity.brand,
            loyalty=loyalty,
        )
        if row.channel == "sms":
            body = short.sms_body(s, self.identity.brand, tracking)
            return SentContent(s.subject, body, None, s.locale, None, tracking)
        return SentContent(s.subject, short.push_body(s), None, s.locale, None, tracking)


def ledger_loyalty(ledger, policy: Policy) -> Callable[[int], LoyaltyView]:
    """Balance and next reward from the loyalty ledger, at the moment of sending."""
    from ppx.rules.loyalty.summary import loyalty_summary

    def look(customer_id: int) -> LoyaltyView:
        s = loyalty_summary(ledger, policy, customer_id)
        has_next = s.next_reward_name is not None
        return LoyaltyView(
            balance=int(s.balance),
            next_reward=s.next_reward_name,
            points_to_next_reward=int(s.points_to_next_reward) if has_next else None,
        )

    return look
