"""SMS and push over HTTP: the two gateways the outbox sender speaks to besides SMTP.

**SMS**, in the Twilio Messages shape that many providers offer a compatible endpoint
for::

    POST {PPX_SMS_BASE_URL}/2010-04-01/Accounts/{PPX_SMS_ACCOUNT_SID}/Messages.json
    Authorization: Basic base64(sid:token)
    Idempotency-Key: <row digest>
    Content-Type: application/x-www-form-urlencoded

    To=+4930123456&From=+4915550001&Body=Kaffee: ...      (MessagingServiceSid=... instead of From)
    &StatusCallback={PPX_PUBLIC_URL}/receipts/sms         (when PPX_PUBLIC_URL is set)

200 or 201 with a JSON ``sid`` is accepted; the ``sid`` is stored on the row, and the
provider's delivery receipts name it (:mod:`ppx.rules.messages.receipts`).

**Push**, to the brand's push provider or a small relay in front of APNs / FCM::

    POST {PPX_PUSH_URL}
    Authorization: Bearer {PPX_PUSH_TOKEN}
    Idempotency-Key: <row digest>
    Content-Type: application/json

    {"id": "<row digest>", "to": "<device id>", "title": "...", "body": "...",
     "url": "https://.../portal/auth?token=..." | null, "kind": "shipped", "locale": "en"}

Any 2xx is accepted; a JSON body's ``id`` (or ``message_id``, or FCM's ``name``) is
stored on the row as the gateway's id for the message.

Failures (both): 4xx other than 408 and 429 fail the row for good with the gateway's
message (a bad number, a number that replied STOP, a bad token; a STOP refusal,
:data:`OPTED_OUT_CODES`, also turns the channel off for the customer); 429 waits what
``Retry-After`` says (so does a 503 that sends it); 408, 5xx, a connection error or a
timeout is retried with the outbox's back-off. A request that timed out may still have been accepted, so its
retry carries the same ``Idempotency-Key`` (the digest in the row's Message-ID): a gateway
that honours the header sends it once, others send a duplicate (at least once).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from ppx.rules.messages.outbox import Claimed, SentContent, idempotency_key
from ppx.rules.messages.transport import DeliveryError

#: the settings each HTTP channel needs, named as environment variables
REQUIRED_SETTINGS = {
    "sms": (
        "PPX_SMS_BASE_URL",
        "PPX_SMS_ACCOUNT_SID",
        "PPX_SMS_AUTH_TOKEN",
        "PPX_SMS_FROM (or PPX_SMS_MESSAGING_SERVICE_SID)",
    ),
    "push": ("PPX_PUSH_URL", "PPX_PUSH_TOKEN"),
}


#: where the decision service takes each channel's delivery receipts (under PPX_PUBLIC_URL)
RECEIPT_PATHS = {"sms": "/receipts/sms", "push": "/receipts/push"}


def callback_url(public_url: str, channel: str) -> str:
    """The URL a gateway calls back with ``channel``'s delivery receipts."""
    return public_url.rstrip("/") + RECEIPT_PATHS[channel]


@dataclass(frozen=True)
class SmsConfig:
    base_url: str
    account_sid: str
    auth_token: str
    from_number: str | None = None
    messaging_service_sid: str | None = None
    timeout: float = 30.0
    #: sent as ``StatusCallback``: where the provider posts delivery receipts (None: the
    #: account's default, or none)
    status_callback: str | None = None

    def __post_init__(self):
        if not (self.from_number or self.messaging_service_sid):
            raise ValueError("SMS needs a sender: PPX_SMS_FROM or PPX_SMS_MESSAGING_SERVICE_SID")

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    @classmethod
    def from_settings(cls, settings=None) -> SmsConfig | None:
        """The configured gateway, None when a required setting is unset."""
        s = settings or _settings()
        if missing_settings("sms", s):
            return None
        return cls(
            base_url=s.sms_base_url,
            account_sid=s.sms_account_sid,
            auth_token=s.sms_auth_token,
            from_number=s.sms_from,
            messaging_service_sid=s.sms_messaging_service_sid,
            timeout=s.gateway_timeout,
            # only a URL set on purpose: the default (loopback) is unreachable for a provider
            status_callback=(
                callback_url(s.public_url, "sms") if "public_url" in s.model_fields_set else None
            ),
        )


@dataclass(frozen=True)
class PushConfig:
    url: str
    token: str
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings=None) -> PushConfig | None:
        """The configured gateway, None when a required setting is unset."""
        s = settings or _settings()
        if missing_settings("push", s):
            return None
        return cls(url=s.push_url, token=s.push_token, timeout=s.gateway_timeout)


def _settings():
    from ppx.config import get_settings

    return get_settings()


def missing_settings(channel: str, settings) -> list[str]:
    """The unset settings that keep ``channel``'s gateway from sending (empty: ready)."""
    s = settings
    if channel == "sms":
        have = {
            "PPX_SMS_BASE_URL": s.sms_base_url,
            "PPX_SMS_ACCOUNT_SID": s.sms_account_sid,
            "PPX_SMS_AUTH_TOKEN": s.sms_auth_token,
            REQUIRED_SETTINGS["sms"][3]: s.sms_from or s.sms_messaging_service_sid,
        }
    elif channel == "push":
        have = {"PPX_PUSH_URL": s.push_url, "PPX_PUSH_TOKEN": s.push_token}
    else:
        return []
    return [name for name, value in have.items() if not value]


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


#: provider error codes meaning "this recipient opted out with us": the Twilio Messages
#: API answers 21610 ("Attempt to send to unsubscribed recipient") for a number that
#: replied STOP, and a delivery receipt says 30004 ("Message blocked") for a number that
#: blocks the sender. Such a refusal, when sending or in a receipt, also turns the
#: channel off in the preference centre (:meth:`PreferenceStore.gateway_stop`).
OPTED_OUT_CODES = frozenset({"21610", "30004"})


def _provider_error(resp: httpx.Response) -> tuple[str | None, str]:
    """(error code, the gateway's own words): a JSON error body's ``code`` and ``message``
    (or ``error`` / ``detail``), else the start of its text."""
    try:
        body = resp.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    if isinstance(body, dict):
        words = body.get("message") or body.get("error") or body.get("detail")
        if isinstance(words, dict):  # {"error": {"message": ...}}
            words = words.get("message")
        if words:
            code = body.get("code")
            if code is None:
                return None, str(words)
            return str(code), f"{code} {words}"
    return None, " ".join(resp.text.split())[:300] or resp.reason_phrase


def _provider_message(resp: httpx.Response) -> str:
    return _provider_error(resp)[1]


def check_response(resp: httpx.Response) -> httpx.Response:
    """The response if 2xx, else a DeliveryError saying whether to retry and when."""
    code = resp.status_code
    if 200 <= code < 300:
        return resp
    error_code, words = _provider_error(resp)
    why = f"HTTP {code}: {words}"
    if code == 429:
        raise DeliveryError(why, retry_after=retry_after_seconds(resp.headers.get("Retry-After")))
    if code == 408 or code >= 500:
        # 503 may say when to come back too
        raise DeliveryError(why, retry_after=retry_after_seconds(resp.headers.get("Retry-After")))
    # Other 4xx: the request is wrong or refused; a 3xx: the URL points at a redirect
    # (httpx does not follow it: a POST must not be replayed elsewhere silently).
    raise DeliveryError(why, permanent=True, opted_out=error_code in OPTED_OUT_CODES)


class _HttpTransport:
    """One keep-alive client per batch, opened on the first request; connection errors
    and timeouts are temporary."""

    def __init__(self, timeout: float, client: httpx.Client | None = None):
        self.timeout = timeout
        self.client = client

    def _post(self, url: str, **kw) -> httpx.Response:
        if self.client is None:
            self.client = httpx.Client(timeout=self.timeout)
        try:
            resp = self.client.post(url, **kw)
        except httpx.HTTPError as err:  # connect, read timeout, protocol error: try again
            raise DeliveryError(f"{type(err).__name__}: {err}") from err
        return check_response(resp)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class SmsTransport(_HttpTransport):
    channel = "sms"
    address = "phone number (customers.phone)"

    def __init__(self, cfg: SmsConfig, client: httpx.Client | None = None):
        super().__init__(cfg.timeout, client)
        self.cfg = cfg
        self.label = f"sms {cfg.base_url}"

    def send(self, row: Claimed, sent: SentContent) -> str:
        form = {"To": row.to_address, "Body": sent.body_text}
        if self.cfg.messaging_service_sid:
            form["MessagingServiceSid"] = self.cfg.messaging_service_sid
        else:
            form["From"] = self.cfg.from_number
        if self.cfg.status_callback:
            form["StatusCallback"] = self.cfg.status_callback
        resp = self._post(
            self.cfg.url,
            data=form,
            auth=(self.cfg.account_sid, self.cfg.auth_token),
            headers={"Idempotency-Key": idempotency_key(row)},
        )
        try:
            sid = resp.json().get("sid")
        except (ValueError, AttributeError):
            sid = None
        if not sid:
            # Not the API we expect (a web page answering 200?): sending again would not
            # help and might send twice, so the row stops here for someone to look at.
            raise DeliveryError(
                f"HTTP {resp.status_code} without a message sid: {_provider_message(resp)}",
                permanent=True,
            )
        return str(sid)


class PushTransport(_HttpTransport):
    channel = "push"
    address = "device id (customers.device_id)"

    def __init__(self, cfg: PushConfig, client: httpx.Client | None = None):
        super().__init__(cfg.timeout, client)
        self.cfg = cfg
        self.label = f"push {cfg.url}"

    def send(self, row: Claimed, sent: SentContent) -> str | None:
        key = idempotency_key(row)
        resp = self._post(
            self.cfg.url,
            json=push_payload(row, sent),
            headers={"Authorization": f"Bearer {self.cfg.token}", "Idempotency-Key": key},
        )
        return push_id(resp)


def push_id(resp: httpx.Response) -> str | None:
    """The push gateway's id for an accepted message: a JSON body's ``id``, ``message_id``
    or ``name`` (FCM: ``projects/.../messages/<id>``); None for an empty or other body."""
    try:
        body = resp.json()
    except (ValueError, json.JSONDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    for field in ("id", "message_id", "name"):
        value = body.get(field)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def push_payload(row: Claimed, sent: SentContent) -> dict:
    """The JSON body of a push request (documented in docs/rules.md)."""
    return {
        "id": idempotency_key(row),
        "to": row.to_address,
        "title": sent.subject,
        "body": sent.body_text,
        "url": sent.link,
        "kind": row.message_type,
        "locale": sent.locale,
    }
