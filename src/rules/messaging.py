"""Message planning: channel choice with opt-outs, quiet hours, per-customer caps.

One function, :func:`plan_message`, decides whether and how a message goes out, so every
decision respects the same three guarantees:

* an opted-out channel is never used: a hard opt-out (``opted_out_channels``) blocks the
  channel for everything, and marketing messages need the customer's explicit consent on
  the channel (``<channel>_opt_in``; missing consent is no consent). Transactional and
  service messages (order, shipping, delay, return and claim notices, apologies, points
  and tier news) may also use the channels listed in the policy's
  ``messages.transactional_without_consent`` (email by default: the order contact), unless
  hard-opted-out. If no allowed channel is left, the message is suppressed, never
  "upgraded" to a channel the customer refused; a kind the customer turned off in the
  preference centre (``opted_out_messages``: ``shipped`` or ``shipped:sms``) is never sent
  on that channel, unless the policy's ``preferences.locked`` says the kind cannot be
  turned off (order confirmations, refunds); the sender asks the same question again
  (:func:`preference_refusal`) right before sending, so a later opt-out holds;
* a channel the customer has no contact for (no phone number in E.164 for SMS, no device
  id for push, no email address) is skipped, and the next allowed channel in the
  catalogue's order is used; if none is left the message is suppressed, saying which
  contacts are missing. A context naming no contact at all is one whose caller delivers
  the messages itself: there channels are chosen on consent alone;
* a message that respects quiet hours is deferred to the end of the quiet window in the
  customer's local time, not dropped (:func:`quiet_hours_end`; the sender asks again right
  before sending);
* marketing messages obey the per-day (local calendar day) and per-week caps. The week cap
  is checked conservatively against every message within 7 days either side of the send
  time, which guarantees that *any* rolling 7-day window holds at most ``per_week``
  marketing messages even when messages are scheduled ahead (review requests).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from ppx.rules.policy import Policy
from ppx.rules.types import CustomerContext, PlannedMessage, SentMessage, SuppressedMessage

WEEK = timedelta(days=7)


def in_quiet_hours(local: datetime, start: time, end: time) -> bool:
    """Whether a local time falls in the quiet window (which may cross midnight)."""
    t = local.time()
    if start == end:
        return False
    if start < end:
        return start <= t < end
    return t >= start or t < end


def defer_past_quiet_hours(local: datetime, start: time, end: time) -> datetime:
    """The first local time at or after ``local`` that is outside the quiet window."""
    if not in_quiet_hours(local, start, end):
        return local
    candidate = datetime.combine(local.date(), end)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate


#: what a channel's contact is called in a decision's reasons
CONTACT_NAMES = {"email": "email address", "sms": "phone number", "push": "device id"}


def choose_channel(
    customer: CustomerContext,
    allowed: list[str],
    without_consent: tuple[str, ...] = (),
    need_contact: bool = True,
) -> str | None:
    """The customer's preferred allowed channel they may be reached on, else None.

    The order is the customer's ``preferred_channels``, then the catalogue's channel
    order. With ``need_contact`` (and a context that names any contact), a channel the
    customer has no contact for is skipped: its row could only fail at send time.
    """
    order = [c for c in customer.preferred_channels if c in allowed]
    order += [c for c in allowed if c not in order]
    if need_contact and customer.contacts_known:
        order = [c for c in order if customer.reachable(c)]
    # A channel the customer opted into first; the consent-free channels only as a fallback.
    for c in order:
        if customer.may_use(c):
            return c
    for c in order:
        if customer.may_use(c, without_consent):
            return c
    return None


def kind_turned_off(
    message_type: str, channel: str, customer: CustomerContext, policy: Policy
) -> bool:
    """Whether the preference centre turned this kind off on this channel (a kind in
    ``preferences.locked`` cannot be turned off)."""
    return message_type not in policy.preferences.locked and customer.opted_out_of(
        message_type, channel
    )


def preference_refusal(
    message_type: str, channel: str, customer: CustomerContext, policy: Policy
) -> str | None:
    """Why the customer's opt-outs forbid this kind on this channel, else None.

    The same rules :func:`plan_message` applies (a hard channel opt-out blocks every kind,
    locked ones too; a kind opt-out blocks all but locked kinds); the sender asks it again
    for each row right before sending, so an opt-out made after the row was queued holds.
    """
    if channel in customer.opted_out_channels:
        return f"customer opted out of every message on {channel}"
    if kind_turned_off(message_type, channel, customer, policy):
        return f"customer opted out of {message_type} on {channel}"
    return None


def _local(customer: CustomerContext, t: datetime) -> datetime:
    return t + timedelta(minutes=customer.utc_offset_minutes)


def quiet_hours_end(
    message_type: str, utc_offset_minutes: int, at: datetime, policy: Policy
) -> datetime | None:
    """When the customer's quiet hours end (UTC), if a message of this kind at ``at``
    (UTC) falls in them and the kind respects quiet hours; else None.

    The decision moves a planned message there; the sender asks again right before
    sending (a row due in the evening but sent at night waits for the morning).
    """
    spec = policy.messages.catalogue.get(message_type)
    if spec is None or not spec.respect_quiet_hours:
        return None
    start, end = policy.messages.quiet_hours.window()
    offset = timedelta(minutes=utc_offset_minutes)
    local = at + offset
    deferred = defer_past_quiet_hours(local, start, end)
    return None if deferred == local else deferred - offset


def plan_message(
    message_type: str,
    customer: CustomerContext,
    now: datetime,
    policy: Policy,
    reason: str,
    already_planned: list[PlannedMessage] | None = None,
    content: dict | None = None,
) -> PlannedMessage | SuppressedMessage:
    """Plan one message, or say why it is suppressed.

    Args:
        message_type: a key of the policy's message catalogue.
        customer: the customer's contact permissions and recent messages.
        now: the decision time (UTC); the catalogue's ``delay_days`` is added to it.
        policy: the policy in force.
        reason: why the decision wants to send it (kept in the message).
        already_planned: messages planned earlier in the same decision (caps count them).
        content: what the message carries (points, recommendations, dates).
    """
    spec = policy.messages.catalogue.get(message_type)
    if spec is None:
        raise ValueError(f"message type {message_type!r} is not in the policy's catalogue")
    free = (
        tuple(policy.messages.transactional_without_consent) if spec.category != "marketing" else ()
    )
    allowed = list(spec.channels)
    if customer.opted_out_messages:
        allowed = [c for c in allowed if not kind_turned_off(message_type, c, customer, policy)]
        if not allowed:
            return SuppressedMessage(
                message_type=message_type,
                reason=f"{message_type} not sent: turned off in the customer's preferences",
            )
    channel = choose_channel(customer, allowed, free)
    # The channel consent alone would choose: when it differs, it was skipped for want of
    # a contact, and the reason says so.
    wanted = choose_channel(customer, allowed, free, need_contact=False)
    if channel is None:
        if wanted is None:
            why = f"customer opted out of every allowed channel ({', '.join(spec.channels)})"
        else:
            missing = [
                f"no {CONTACT_NAMES[c]} for {c}"
                for c in allowed
                if customer.may_use(c, free) and not customer.reachable(c)
            ]
            why = "no contact on any channel the customer allows (" + ", ".join(missing) + ")"
        return SuppressedMessage(
            message_type=message_type, reason=f"{message_type} not sent: {why}"
        )
    send_at = now + timedelta(days=spec.delay_days)
    notes = []
    if wanted != channel:
        notes.append(f"{wanted} skipped: no {CONTACT_NAMES[wanted]}")
    quiet_end = quiet_hours_end(message_type, customer.utc_offset_minutes, send_at, policy)
    if quiet_end is not None:
        send_at = quiet_end
        notes.append(
            f"deferred to {_local(customer, send_at):%H:%M} local (quiet hours "
            f"{policy.messages.quiet_hours.start}-{policy.messages.quiet_hours.end})"
        )
    if spec.category == "marketing":
        caps = policy.messages.caps
        sent = [m.sent_at for m in customer.recent_messages if m.category == "marketing"]
        sent += [m.send_at for m in already_planned or [] if m.category == "marketing"]
        day = _local(customer, send_at).date()
        same_day = sum(1 for s in sent if _local(customer, s).date() == day)
        near = sum(1 for s in sent if abs(s - send_at) < WEEK)
        if same_day >= caps.per_day:
            return SuppressedMessage(
                message_type=message_type,
                reason=f"{message_type} not sent: daily marketing cap {caps.per_day} reached",
            )
        if near >= caps.per_week:
            return SuppressedMessage(
                message_type=message_type,
                reason=f"{message_type} not sent: weekly marketing cap {caps.per_week} reached",
            )
    text = f"{reason} -> {message_type} by {channel}"
    if notes:
        text += "; " + "; ".join(notes)
    return PlannedMessage(
        message_type=message_type,
        channel=channel,
        category=spec.category,
        send_at=send_at,
        reason=text,
        content=content or {},
    )


def as_sent(message: PlannedMessage) -> SentMessage:
    """The record a caller appends to ``CustomerContext.recent_messages`` after sending."""
    return SentMessage.model_construct(
        sent_at=message.send_at,
        message_type=message.message_type,
        channel=message.channel,
        category=message.category,
    )
