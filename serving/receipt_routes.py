"""Delivery receipts of the decision service: ``POST /receipts/sms`` and ``/receipts/push``.

The gateways call these back (they are open to the internet, like the one-click
unsubscribe, and carry their own proof instead of the API token):

* ``POST /receipts/sms``: the SMS provider's status callback in the Twilio shape, form
  fields ``MessageSid``, ``MessageStatus``, ``ErrorCode``, ``To`` ..., signed with
  ``X-Twilio-Signature`` under ``PPX_SMS_AUTH_TOKEN``. The signature is checked against
  the URL the provider was given (``PPX_PUBLIC_URL`` + ``/receipts/sms``) and the URL the
  request arrived at.
* ``POST /receipts/push``: ``{"id": "<gateway id>", "status": "delivered", "error": null}``
  with ``Authorization: Bearer <PPX_PUSH_TOKEN>``.

Answers: 200 with what the receipt did (also for an id no row has: a provider retries
anything else), 400 for a body without the message id or status, 403 for a missing or
wrong signature or token, 503 when the channel's secret is not configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ppx.rules.messages.outbox import Outbox
from ppx.rules.messages.preferences import PreferenceStore
from ppx.rules.messages.receipts import (
    Receipt,
    bearer_valid,
    callback_url,
    count_receipt,
    record_receipt,
    twilio_signature_valid,
)

#: (the outbox, the preference centre) the receipts are recorded in
Stores = Callable[[], tuple[Outbox, PreferenceStore | None]]


def _settings():
    from ppx.config import get_settings

    return get_settings()


def _error(status: int, message: str, channel: str, outcome: str) -> JSONResponse:
    count_receipt(channel, outcome)
    return JSONResponse({"error": message}, status_code=status)


def receipts_app(stores: Stores, settings: Callable[[], Any] = _settings) -> Starlette:
    """The ``/receipts`` routes over the outbox and preferences ``stores`` gives."""

    async def record(receipt: Receipt) -> JSONResponse:
        def write():
            outbox, prefs = stores()
            return record_receipt(outbox, receipt, prefs)

        # a short database write: off the event loop, as the decisions' writes are
        result = await asyncio.to_thread(write)
        return JSONResponse(result.as_json())

    async def sms(request: Request) -> JSONResponse:
        s = settings()
        if not s.sms_auth_token:
            return _error(
                503, "SMS receipts need PPX_SMS_AUTH_TOKEN to check signatures", "sms", "bad_config"
            )
        form = await request.form()
        params = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        query = f"?{request.url.query}" if request.url.query else ""
        urls = (callback_url(s.public_url, "sms") + query, str(request.url))
        given = request.headers.get("x-twilio-signature", "")
        if not twilio_signature_valid(s.sms_auth_token, urls, params, given):
            why = "wrong" if given else "missing"
            return _error(
                403,
                f"{why} X-Twilio-Signature: the callback must be signed with the account's "
                "auth token (PPX_SMS_AUTH_TOKEN) for " + urls[0],
                "sms",
                "bad_signature",
            )
        sid = form.get("MessageSid") or form.get("SmsSid")
        status = form.get("MessageStatus") or form.get("SmsStatus")
        if not sid or not status:
            return _error(400, "the form needs MessageSid and MessageStatus", "sms", "bad_request")
        return await record(Receipt("sms", str(sid), str(status), form.get("ErrorCode")))

    async def push(request: Request) -> JSONResponse:
        s = settings()
        if not s.push_token:
            return _error(
                503, "push receipts need PPX_PUSH_TOKEN to check the caller", "push", "bad_config"
            )
        if not bearer_valid(s.push_token, request.headers.get("authorization", "")):
            return _error(
                403,
                "missing or wrong bearer token: send Authorization: Bearer <PPX_PUSH_TOKEN>",
                "push",
                "bad_signature",
            )
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body must be JSON", "push", "bad_request")
        if not isinstance(body, dict) or not body.get("id") or not body.get("status"):
            return _error(
                400,
                'the body must be {"id": "<gateway id>", "status": "delivered", "error": null}',
                "push",
                "bad_request",
            )
        error = body.get("error")
        return await record(
            Receipt(
                "push", str(body["id"]), str(body["status"]), None if error is None else str(error)
            )
        )

    return Starlette(
        routes=[
            Route("/sms", sms, methods=["POST"]),
            Route("/push", push, methods=["POST"]),
        ]
    )
