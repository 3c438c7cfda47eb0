"""Turn a decision's planned messages into rendered outbox rows.

The message key names the event a message is about, not the decision that planned it, so
a duplicate webhook or a replay yields the same key and the outbox keeps one row:
``<kind>:<customer>:order:<id>`` (or ``return:<id>``, ``claim:<id>``,
``subscription:<id>``, ``expires:<date>``), else ``<kind>:<customer>:<send day>`` for daily messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from ppx.rules.messages import unsubscribe
from ppx.rules.messages.outbox import NewMessage
from ppx.rules.messages.render import LOYALTY_KINDS, LoyaltyView, render
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

    @classmethod
    def from_settings(cls) -> SenderIdentity:
        from ppx.config import get_settings

        s = get_settings()
        return cls(s.brand_name, s.public_url, s.unsubscribe_secret)


def message_key(m: PlannedMessage, customer_id: int) -> str:
    for field, label in _SUBJECTS:
        if m.content.get(field) is not None:
            return f"{m.message_type}:{customer_id}:{label}:{m.content[field]}"
    return f"{m.message_type}:{customer_id}:{m.send_at:%Y-%m-%d}"


def compose(
    decision: Decision,
    customer: CustomerContext,
    policy: Policy,
    identity: SenderIdentity,
    loyalty: LoyaltyView | None = None,
) -> list[NewMessage]:
    """Render every planned message of a decision as an outbox row."""
    out = []
    for m in decision.messages:
        template = policy.messages.template_for(m.message_type)
        links = None
        if m.channel == "email":
            if not identity.secret:
                raise ValueError("email needs signed unsubscribe links: set PPX_UNSUBSCRIBE_SECRET")
            links = unsubscribe.links(
                identity.public_url,
                customer.customer_id,
                m.message_type,
                m.channel,
                identity.secret,
            )
        r = render(
            m.message_type,
            m.content,
            customer,
            policy,
            brand=identity.brand,
            loyalty=loyalty if template in LOYALTY_KINDS else None,
            links=links,
        )
        out.append(
            NewMessage(
                message_key=message_key(m, customer.customer_id),
                customer_id=customer.customer_id,
                message_type=m.message_type,
                channel=m.channel,
                category=m.category,
                locale=r.locale,
                subject=r.subject,
                body_text=r.text,
                body_html=r.html,
                send_after=m.send_at,
                to_address=customer.email if m.channel == "email" else None,
                unsubscribe_url=links["unsubscribe"] if links else None,
                arm=m.arm,
            )
        )
    return out
