"""Send outbox email over SMTP (smtplib): claim, render, renew the lease, send, settle.

The order of steps is what makes the outbox guarantees hold (see
:mod:`ppx.rules.messages.outbox`): a row is renewed (still ours?) right before it is
handed to the SMTP server and marked ``sent`` right after the server accepts it, one row
at a time, so a killed sender leaves at most one row whose fate the database does not
know; that row is sent again, with the same ``Message-ID``, after its lease runs out.

Errors: SMTP 5xx replies (recipient refused, message rejected), rows without an address
and rows that cannot be rendered (a missing template key) fail for good; connection trouble and 4xx replies are retried with back-off.
"""

from __future__ import annotations

import contextlib
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate

from ppx.rules.messages.outbox import Claimed, Outbox, SentContent
from ppx.rules.messages.render import RenderError

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


class _Connection:
    """One SMTP session, opened lazily and reopened after a disconnect."""

    def __init__(self, cfg: SmtpConfig):
        self.cfg = cfg
        self.smtp: smtplib.SMTP | None = None

    def get(self) -> smtplib.SMTP:
        if self.smtp is None:
            smtp = smtplib.SMTP(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout)
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


def send_batch(
    outbox: Outbox,
    cfg: SmtpConfig,
    owner: str,
    render: RenderFn,
    *,
    limit: int = 50,
    lease_seconds: float = 60.0,
    rate_per_second: float = 0.0,
    on_sent: Callable[[Claimed], None] | None = None,
) -> SendReport:
    """Claim up to ``limit`` due email rows and send them, one committed row at a time."""
    report = SendReport()
    rows = outbox.claim(owner, limit=limit, lease_seconds=lease_seconds, channel="email")
    report.claimed = len(rows)
    conn = _Connection(cfg)
    gap = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
    try:
        for row in rows:
            if not row.to_address:
                outbox.mark_failed(row.id, owner, row.attempts, "no email address", True)
                report.failed += 1
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
                conn.get().send_message(build_email(row, sent, cfg.mail_from))
            except (smtplib.SMTPException, OSError) as err:
                conn.drop()
                status = outbox.mark_failed(
                    row.id, owner, row.attempts, f"{type(err).__name__}: {err}", _permanent(err)
                )
                report.errors.append(f"{row.message_key}: {err}")
                if status == "failed":
                    report.failed += 1
                else:
                    report.retried += 1
                continue
            outbox.mark_sent(row.id, owner, sent)
            report.sent += 1
            if on_sent is not None:
                on_sent(row)
            if gap:
                time.sleep(max(0.0, gap - (time.monotonic() - started)))
    finally:
        conn.drop()
    return report


def send_until_empty(
    outbox: Outbox,
    cfg: SmtpConfig,
    owner: str,
    render: RenderFn,
    *,
    batch: int = 50,
    lease_seconds: float = 60.0,
    rate_per_second: float = 0.0,
    on_sent: Callable[[Claimed], None] | None = None,
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
        )
        for f in ("claimed", "sent", "retried", "failed", "lost_lease"):
            setattr(total, f, getattr(total, f) + getattr(r, f))
        total.errors += r.errors
        if r.claimed == 0:
            return total
