"""What the sender needs from a channel's gateway (SMTP, SMS API, push gateway).

A transport hands one rendered row to its gateway and returns when the gateway has
accepted it, or raises :class:`DeliveryError` saying whether trying again can help and,
when the gateway said so, after how long.
"""

from __future__ import annotations

from typing import Protocol

from ppx.rules.messages.outbox import Claimed, SentContent


class DeliveryError(Exception):
    """The gateway did not accept a message.

    Args:
        message: what the gateway said (stored on the row as ``last_error``).
        permanent: True when a retry cannot help (recipient refused, bad request).
        retry_after: seconds the gateway asked us to wait (HTTP ``Retry-After``).
        opted_out: the gateway refused because the recipient opted out with it (an SMS
            number that replied STOP): the sender records that in the preference centre.
    """

    def __init__(
        self,
        message: str,
        permanent: bool = False,
        retry_after: float | None = None,
        opted_out: bool = False,
    ):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.opted_out = opted_out


class Transport(Protocol):
    #: the outbox channel this transport sends (``email``, ``sms``, ``push``)
    channel: str
    #: what a row's ``to_address`` is on this channel, for the "no ..." failure
    address: str
    #: where messages go, for the command's output (``smtp 127.0.0.1:25``)
    label: str

    def send(self, row: Claimed, sent: SentContent) -> str | None:
        """Hand one message over; return once accepted, with the gateway's id for it
        (None when it gives none), else raise DeliveryError."""

    def close(self) -> None:
        """Release connections (called once after a batch)."""
