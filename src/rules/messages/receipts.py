"""Delivery receipts: what the SMS and push gateways say became of a sent message.

A row is ``sent`` once its gateway accepts it; the gateway then reports, by calling the
decision service back, whether the message reached the phone (``delivered``), could not
be delivered (``undelivered``, ``failed``, with the provider's error code) or was read.
:func:`record_receipt` stores that on the row (``delivery_status``, ``delivery_at``,
``delivery_error``; the send state stays ``sent``) and only ever moves it forward
(:data:`ppx.rules.messages.outbox.DELIVERY_RANK`).

* **SMS**, the Twilio status callback: a form-encoded POST with ``MessageSid``,
  ``MessageStatus``, ``ErrorCode``, signed with ``X-Twilio-Signature`` = base64 of the
  HMAC-SHA1, under the account's auth token, of the full callback URL followed by every
  form field's name and value, sorted by name (:func:`twilio_signature`).
* **Push**: a JSON POST ``{"id", "status", "error"}`` carrying the push gateway's own
  bearer token (``Authorization: Bearer <PPX_PUSH_TOKEN>``): the relay that sends for us
  already holds it, and it is compared in constant time.

An undelivered or failed SMS whose error code says the number stopped us or blocks us
(:data:`ppx.rules.messages.gateways.OPTED_OUT_CODES`) turns the customer's SMS channel
off, as the same refusal does at send time (:meth:`PreferenceStore.gateway_stop`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from ppx.rules.messages.gateways import OPTED_OUT_CODES, callback_url
from ppx.rules.messages.outbox import DELIVERY_RANK, DeliveryUpdate, Outbox
from ppx.rules.messages.preferences import PreferenceStore

__all__ = [
    "NOT_DELIVERED",
    "Receipt",
    "ReceiptOutcome",
    "bearer_valid",
    "callback_url",
    "count_receipt",
    "record_receipt",
    "twilio_signature",
    "twilio_signature_valid",
]

log = logging.getLogger(__name__)

#: delivery statuses that mean the message did not arrive (an error code may say why)
NOT_DELIVERED = ("undelivered", "failed")


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """``X-Twilio-Signature`` of a form POST to ``url``: base64(HMAC-SHA1(token, url +
    name1 + value1 + name2 + value2 ...)), fields sorted by name (then value)."""
    data = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def twilio_signature_valid(
    auth_token: str, urls: Iterable[str], params: list[tuple[str, str]], given: str
) -> bool:
    """True when ``given`` signs ``params`` for one of ``urls`` (the URL the provider was
    given and the one the request arrived at: a proxy in front may change the latter)."""
    if not given:
        return False
    return any(
        hmac.compare_digest(twilio_signature(auth_token, u, params).encode(), given.encode())
        for u in dict.fromkeys(urls)
    )


def bearer_valid(token: str, authorization: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    return bool(authorization) and hmac.compare_digest(
        authorization.encode(), f"Bearer {token}".encode()
    )


@dataclass(frozen=True)
class Receipt:
    """One gateway callback: which message (the gateway's id), its status, error code."""

    channel: str
    provider_id: str
    status: str
    error_code: str | None = None


@dataclass(frozen=True)
class ReceiptOutcome:
    """What a receipt did: ``recorded`` (the row moved forward), ``stale`` (the row is
    already at or past that status), ``unknown_id`` (no sent row has that id) or
    ``unknown_status``; ``stopped``: the customer's channel was turned off."""

    outcome: str
    row_id: int | None = None
    delivery_status: str | None = None
    stopped: bool = False

    def as_json(self) -> dict:
        return {
            "outcome": self.outcome,
            "row_id": self.row_id,
            "delivery_status": self.delivery_status,
            "channel_turned_off": self.stopped,
        }


def record_receipt(
    outbox: Outbox, receipt: Receipt, preferences: PreferenceStore | None = None
) -> ReceiptOutcome:
    """Store ``receipt`` on its row (forward only) and apply a STOP or block it reports."""
    status = receipt.status.strip().lower()
    if status not in DELIVERY_RANK:
        log.warning(
            "%s receipt for %s with unknown status %r ignored",
            receipt.channel,
            receipt.provider_id,
            receipt.status,
        )
        return _count(receipt.channel, ReceiptOutcome("unknown_status"))
    code = (receipt.error_code or "").strip() or None
    if code == "0":  # Twilio sends ErrorCode=0 with some successful statuses
        code = None
    upd: DeliveryUpdate = outbox.record_delivery(receipt.channel, receipt.provider_id, status, code)
    if not upd.found:
        # Answered 200 all the same: the provider would retry anything else, and an id we
        # never stored (another system's message, a purged row) never becomes known. Only
        # a receipt that beat the sender's own commit would be found later: it is lost.
        log.warning(
            "%s receipt for unknown id %s (%s)", receipt.channel, receipt.provider_id, status
        )
        return _count(receipt.channel, ReceiptOutcome("unknown_id"))
    stopped = False
    if status in NOT_DELIVERED and code in OPTED_OUT_CODES and preferences is not None:
        preferences.gateway_stop(upd.customer_id, receipt.channel)
        stopped = True
    outcome = ReceiptOutcome(
        "recorded" if upd.changed else "stale", upd.row_id, upd.delivery_status, stopped
    )
    return _count(receipt.channel, outcome)


_COUNTER = None


def _count(channel: str, outcome: ReceiptOutcome) -> ReceiptOutcome:
    count_receipt(channel, outcome.outcome)
    return outcome


def count_receipt(channel: str, outcome: str) -> None:
    """``ppx_message_receipts_total{channel, outcome}`` on the service's ``/metrics``
    (created on first use, after BentoML has set up its multi-process metrics)."""
    global _COUNTER
    if _COUNTER is None:
        from prometheus_client import Counter

        _COUNTER = Counter(
            "ppx_message_receipts",
            "Delivery receipts received, by channel and what they did (recorded, stale, "
            "unknown_id, unknown_status, bad_signature, bad_request)",
            labelnames=["channel", "outcome"],
        )
    _COUNTER.labels(channel=channel, outcome=outcome).inc()


def receipt_count(channel: str, outcome: str) -> float:
    """The counter's value in this process (0 before the first such receipt)."""
    from prometheus_client import REGISTRY

    labels = {"channel": channel, "outcome": outcome}
    return REGISTRY.get_sample_value("ppx_message_receipts_total", labels) or 0.0
