"""Send outbox rows through their channel's gateway: claim, render, renew the lease, send,
settle. Email goes over SMTP (smtplib, here); SMS and push over HTTP
(:mod:`ppx.rules.messages.gateways`). One loop serves all three.

The order of steps is what makes the outbox guarantees hold (see
:mod:`ppx.rules.messages.outbox`): a row is renewed (still ours?) right before it is
handed to the gateway and marked ``sent`` right after the gateway accepts it, one row
at a time, so a killed sender leaves at most one row whose fate the database does not
know; that row is sent again, with the same ``Message-ID`` (email) or
``Idempotency-Key`` (SMS, push), after its lease runs out.

Errors: rows without an address (email, phone number, device id) and rows that cannot be
rendered (a missing template key) fail for good, and so do SMTP 5xx replies and HTTP 4xx
other than 408 and 429; connection trouble, SMTP 4xx, HTTP 408, 429 and 5xx are retried
with back-off (or after the gateway's ``Retry-After``).

Consent and caps are decided when the row is written. Quiet hours are checked twice: the
decision schedules the row outside them, and right before sending, a row of a kind that
respects quiet hours (given the ``policy``) that is due inside the customer's quiet hours
(the row's UTC offset, the decision's own rule,
:func:`ppx.rules.messaging.quiet_hours_end`) goes back to ``pending`` until they end:
deferred, neither sent nor failed, its attempt not spent. That holds for a row sent late
(a backlog, a retry whose back-off ends at night). Opt-outs are checked twice: when the row is written, and again for each row right before it is rendered and
sent (``preferences``: one indexed read of the customer's preference rows, the same
rules as the decision, :func:`ppx.rules.messaging.preference_refusal`), so an
unsubscribe, a preference-page change or an SMS STOP made after the row was queued
holds: the row is settled ``suppressed`` with the reason, on every channel. Locked kinds
(order confirmations, refunds) cannot be turned off and are still sent; a hard channel
opt-out stops them too, as it does in the decision.

The gateway's id for each accepted message (the SMS ``sid``, the push gateway's ``id``,
the SMTP relay's queue id or else the Message-ID) is stored on the row.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate

from ppx.rules.messages.gateways import PushConfig, PushTransport, SmsConfig, SmsTransport
from ppx.rules.messages.outbox import Claimed, Outbox, SentContent, _now
from ppx.rules.messages.preferences import PreferenceStore
from ppx.rules.messages.render import RenderError
from ppx.rules.messages.transport import DeliveryError, Transport
from ppx.rules.messaging import quiet_hours_end
from ppx.rules.policy import Policy

#: Turns a claimed row into what is sent (``ppx.rules.messages.compose.Renderer``).
RenderFn = Callable[[Claimed], SentContent]


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 25
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    mail_from: str = "shop@localhost"
    timeout: float = 30.0

    @classmethod
    def from_settings(cls) -> SmtpConfig:
        from ppx.config import get_settings

        s = get_settings()
        return cls(
            host=s.smtp_host,
            port=s.smtp_port,
            user=s.smtp_user,
            password=s.smtp_password,
            starttls=s.smtp_starttls,
            mail_from=s.mail_from,
        )


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    suppressed: int = 0
    #: due inside the customer's quiet hours: pending again until they end
    deferred: int = 0
    retried: int = 0
    failed: int = 0
    lost_lease: int = 0
    errors: list[str] = field(default_factory=list)


def build_email(row: Claimed, sent: SentContent, mail_from: str) -> EmailMessage:
    """The MIME message: text and HTML alternatives, a fixed Message-ID, unsubscribe headers."""
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = row.to_address
    msg["Subject"] = sent.subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = row.rfc_message_id
    msg["X-PPX-Message-Key"] = row.message_key
    if sent.unsubscribe_url:
        # RFC 2369 + RFC 8058: mail clients show "Unsubscribe" and POST to the URL.
        msg["List-Unsubscribe"] = f"<{sent.unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(sent.body_text)
    msg.add_alternative(sent.body_html, subtype="html")
    msg["Content-Language"] = sent.locale  # after the bodies: set_content drops Content-*
    return msg


class _Smtp(smtplib.SMTP):
    """smtplib's client, keeping the relay's reply to the message (``send_message``
    drops it): it carries the relay's queue id."""

    last_reply: str = ""

    def data(self, msg):
        code, reply = super().data(msg)
        self.last_reply = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        return code, reply


#: "250 2.0.0 Ok: queued as 4BqXyZ" (Postfix, SendGrid, most relays)
_QUEUED_AS = re.compile(r"queued as\s+<?([^\s>]+)>?", re.IGNORECASE)


def relay_id(reply: str, message_id: str) -> str:
    """The relay's queue id from its reply to the message, else the Message-ID we sent."""
    m = _QUEUED_AS.search(reply or "")
    return m.group(1) if m else message_id


class _Connection:
    """One SMTP session, opened lazily and reopened after a disconnect."""

    def __init__(self, cfg: SmtpConfig):
        self.cfg = cfg
        self.smtp: _Smtp | None = None

    def get(self) -> _Smtp:
        if self.smtp is None:
            smtp = _Smtp(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout)
            if self.cfg.starttls:
                smtp.starttls()
            if self.cfg.user:
                smtp.login(self.cfg.user, self.cfg.password or "")
            self.smtp = smtp
        return self.smtp

    def drop(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.smtp.quit()
            self.smtp = None


def _permanent(err: Exception) -> bool:
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in err.recipients.values())
    if isinstance(err, smtplib.SMTPResponseException):
        return err.smtp_code >= 500
    return False


class SmtpTransport:
    """Email over one lazily opened SMTP session (reopened after a failure)."""

    channel = "email"
    address = "email address"

    def __init__(self, cfg: SmtpConfig):
        self.cfg = cfg
        self.conn = _Connection(cfg)
        self.label = f"smtp {cfg.host}:{cfg.port}"

    def send(self, row: Claimed, sent: SentContent) -> str:
        try:
            smtp = self.conn.get()
            smtp.send_message(build_email(row, sent, self.cfg.mail_from))
        except (smtplib.SMTPException, OSError) as err:
            self.conn.drop()
            raise DeliveryError(f"{type(err).__name__}: {err}", _permanent(err)) from err
        return relay_id(smtp.last_reply, row.rfc_message_id)

    def close(self) -> None:
        self.conn.drop()


#: a channel's gateway settings, or a transport built already (a test's, a custom one)
Gateway = SmtpConfig | SmsConfig | PushConfig | Transport


def transport_for(gateway: Gateway) -> Transport:
    """The transport that sends through ``gateway``."""
    if isinstance(gateway, SmtpConfig):
        return SmtpTransport(gateway)
    if isinstance(gateway, SmsConfig):
        return SmsTransport(gateway)
    if isinstance(gateway, PushConfig):
        return PushTransport(gateway)
    return gateway


def send_batch(
    outbox: Outbox,
    cfg: Gateway,
    owner: str,
    render: RenderFn,
    *,
    limit: int = 50,
    lease_seconds: float = 60.0,
    rate_per_second: float = 0.0,
    on_sent: Callable[[Claimed], None] | None = None,
    on_opted_out: Callable[[Claimed], None] | None = None,
    preferences: PreferenceStore | None = None,
    policy: Policy | None = None,
) -> SendReport:
    """Claim up to ``limit`` due rows of the gateway's channel and send them, one
    committed row at a time (``cfg``: SMTP, SMS or push settings, or a transport).

    ``preferences``: the preference centre, read again for each row right before it is
    sent; a row the customer opted out of since it was queued is settled ``suppressed``.
    Without it the row's queue-time decision stands (``ppx messages send`` always passes it).

    ``policy``: the policy in force; a row of a kind that respects quiet hours, due inside
    the customer's quiet hours now, is deferred to their end (``ppx messages send`` passes
    it). Without it the row's scheduled time stands.

    ``on_opted_out``: called with a row the gateway refused because its recipient opted
    out there (an SMS number that replied STOP), after the row is failed; ``ppx messages
    send`` turns the channel off in the preference centre so decisions stop choosing it.
    """
    report = SendReport()
    transport = transport_for(cfg)
    gap = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
    try:
        rows = outbox.claim(
            owner, limit=limit, lease_seconds=lease_seconds, channel=transport.channel
        )
        report.claimed = len(rows)
        for row in rows:
            refusal = preferences.refusal(row) if preferences is not None else None
            if refusal is not None:
                why = f"{refusal} after it was queued"
                if outbox.mark_suppressed(row.id, owner, why):
                    report.suppressed += 1
                else:
                    report.lost_lease += 1
                continue
            quiet_end = (
                quiet_hours_end(row.message_type, row.utc_offset_minutes, _now(), policy)
                if policy is not None
                else None
            )
            if quiet_end is not None:
                why = f"deferred to {quiet_end:%Y-%m-%d %H:%M} UTC: the customer's quiet hours"
                if outbox.mark_deferred(row.id, owner, quiet_end, why):
                    report.deferred += 1
                else:
                    report.lost_lease += 1
                continue
            if not row.to_address:
                why = f"no {transport.address}"
                outbox.mark_failed(row.id, owner, row.attempts, why, True)
                report.failed += 1
                report.errors.append(f"{row.message_key}: {why}")
                continue
            try:
                sent = render(row)
            except RenderError as err:  # a template or catalogue gap: fix it, do not retry
                outbox.mark_failed(row.id, owner, row.attempts, f"render: {err}", True)
                report.failed += 1
                report.errors.append(f"{row.message_key}: {err}")
                continue
            except Exception as err:  # e.g. the loyalty read failed: try again later
                status = outbox.mark_failed(row.id, owner, row.attempts, f"render: {err}")
                report.failed += status == "failed"
                report.retried += status != "failed"
                report.errors.append(f"{row.message_key}: {err}")
                continue
            if not outbox.renew(row.id, owner, lease_seconds):
                report.lost_lease += 1  # another sender took it after our lease ran out
                continue
            started = time.monotonic()
            try:
                provider_id = transport.send(row, sent)
            except DeliveryError as err:
                status = outbox.mark_failed(
                    row.id, owner, row.attempts, str(err), err.permanent, err.retry_after
                )
                report.errors.append(f"{row.message_key}: {err}")
                if err.opted_out and on_opted_out is not None:
                    on_opted_out(row)
                if status == "failed":
                    report.failed += 1
                else:
                    report.retried += 1
                continue
            outbox.mark_sent(row.id, owner, sent, provider_id)
            report.sent += 1
            if on_sent is not None:
                on_sent(row)
            if gap:
                time.sleep(max(0.0, gap - (time.monotonic() - started)))
    finally:
        if transport is not cfg:  # a transport the caller passed is the caller's to close
            transport.close()
    return report


def send_until_empty(
    outbox: Outbox,
    cfg: Gateway,
    owner: str,
    render: RenderFn,
    *,
    batch: int = 50,
    lease_seconds: float = 60.0,
    rate_per_second: float = 0.0,
    on_sent: Callable[[Claimed], None] | None = None,
    on_opted_out: Callable[[Claimed], None] | None = None,
    preferences: PreferenceStore | None = None,
    policy: Policy | None = None,
) -> SendReport:
    """Send batches until no due row is left (rows retried later are left for later)."""
    total = SendReport()
    while True:
        r = send_batch(
            outbox,
            cfg,
            owner,
            render,
            limit=batch,
            lease_seconds=lease_seconds,
            rate_per_second=rate_per_second,
            on_sent=on_sent,
            on_opted_out=on_opted_out,
            preferences=preferences,
            policy=policy,
        )
        for f in ("claimed", "sent", "suppressed", "deferred", "retried", "failed", "lost_lease"):
            setattr(total, f, getattr(total, f) + getattr(r, f))
        total.errors += r.errors
        if r.claimed == 0:
            return total
