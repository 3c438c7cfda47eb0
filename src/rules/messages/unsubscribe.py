"""Signed one-click unsubscribe links (RFC 8058) and preference-centre links.

A link carries what it turns off (customer, message kind, channel) and an HMAC-SHA256
signature under ``PPX_UNSUBSCRIBE_SECRET``: anyone holding the link may turn off exactly
that, nobody can forge a link for another customer or kind, and no database row is
needed per link. Rotating the secret invalidates every link already sent.

Email headers (Gmail and Yahoo require both for bulk senders)::

    List-Unsubscribe: <https://shop.example/preferences/unsubscribe?token=...>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

The mail client then POSTs ``List-Unsubscribe=One-Click`` to that URL, which the decision
service answers (``POST /preferences/unsubscribe``) without asking anything else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

from ppx.rules.policy import CHANNELS

_SIG_BYTES = 16  # 128-bit tag: far beyond guessing, and keeps links short


class InvalidToken(ValueError):
    """A token that was not signed with the current secret, or is malformed."""


@dataclass(frozen=True)
class Scope:
    """What a link turns off: one kind on one channel (kind ``*``: the whole channel)."""

    customer_id: int
    kind: str
    channel: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # Only the one canonical spelling is accepted: base64's unused trailing bits would
    # otherwise let several strings carry the same signature.
    if _b64(raw) != text:
        raise ValueError("not canonical base64")
    return raw


def _secret(secret: str | bytes | None) -> bytes:
    if not secret:
        raise InvalidToken(
            "no unsubscribe secret configured: set PPX_UNSUBSCRIBE_SECRET (a long random string)"
        )
    return secret.encode() if isinstance(secret, str) else secret


def _tag(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, b"ppx-unsubscribe\x00" + payload, hashlib.sha256).digest()[:_SIG_BYTES]


def make_token(scope: Scope, secret: str | bytes | None) -> str:
    if scope.channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {scope.channel!r}")
    payload = f"{int(scope.customer_id)}|{scope.kind}|{scope.channel}".encode()
    return f"{_b64(payload)}.{_b64(_tag(_secret(secret), payload))}"


def read_token(token: str, secret: str | bytes | None) -> Scope:
    """The scope a token grants; :class:`InvalidToken` if it is forged or malformed."""
    key = _secret(secret)
    try:
        body, sig = token.split(".", 1)
        payload, given = _unb64(body), _unb64(sig)
    except (ValueError, TypeError):
        raise InvalidToken("malformed unsubscribe token") from None
    if not hmac.compare_digest(_tag(key, payload), given):
        raise InvalidToken("unsubscribe token signature does not match")
    try:
        cid, kind, channel = payload.decode().split("|")
        return Scope(int(cid), kind, channel)
    except ValueError:
        raise InvalidToken("malformed unsubscribe token") from None


def links(
    base_url: str,
    customer_id: int,
    kind: str,
    channel: str,
    secret: str | bytes | None,
    lang: str = "en",
) -> dict[str, str]:
    """The footer links: one-click unsubscribe (this kind, this channel) and the
    preference page (every kind on this channel, in the message's language)."""
    base = base_url.rstrip("/")
    one = make_token(Scope(customer_id, kind, channel), secret)
    every = make_token(Scope(customer_id, "*", channel), secret)
    return {
        "unsubscribe": f"{base}/preferences/unsubscribe?token={quote(one)}",
        "preferences": f"{base}/preferences/page?token={quote(every)}&lang={quote(lang)}",
    }
