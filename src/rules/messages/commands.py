"""``ppx messages``: send the outbox (SMTP, SMS, push), show its state, preview a template."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

messages_app = typer.Typer(help="Rendered messages: send the outbox, check it, preview templates.")


def _fail(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _outbox(ledger_url: str | None):
    from ppx.rules.messages.db import make_engine
    from ppx.rules.messages.outbox import Outbox

    return Outbox(make_engine(ledger_url))


class ChannelChoice(StrEnum):
    email = "email"
    sms = "sms"
    push = "push"


def _gateways(channels: list[str], smtp_host: str | None, smtp_port: int | None):
    """({channel: gateway settings} for the configured channels, {channel: unset settings})."""
    import dataclasses

    from ppx.config import get_settings
    from ppx.rules.messages.gateways import PushConfig, SmsConfig, missing_settings
    from ppx.rules.messages.sender import SmtpConfig

    settings = get_settings()
    ready, missing = {}, {}
    for ch in channels:
        if ch == "email":  # SMTP has working defaults (a local relay on port 25)
            cfg = SmtpConfig.from_settings()
            if smtp_host:
                cfg = dataclasses.replace(cfg, host=smtp_host)
            if smtp_port:
                cfg = dataclasses.replace(cfg, port=smtp_port)
            ready[ch] = cfg
        elif unset := missing_settings(ch, settings):
            missing[ch] = unset
        else:
            config = SmsConfig if ch == "sms" else PushConfig
            ready[ch] = config.from_settings(settings)
    return ready, missing


@messages_app.command("send")
def send_cmd(
    ledger_url: str | None = typer.Option(
        None, "--ledger-url", help="Database holding the outbox (default PPX_LEDGER_URL)."
    ),
    channel: ChannelChoice | None = typer.Option(
        None, "--channel", help="Send only this channel (default: every configured one)."
    ),
    smtp_host: str | None = typer.Option(None, "--smtp-host", help="Default PPX_SMTP_HOST."),
    smtp_port: int | None = typer.Option(None, "--smtp-port", help="Default PPX_SMTP_PORT."),
    batch: int = typer.Option(50, "--batch", min=1, max=10_000, help="Rows claimed at a time."),
    lease_seconds: float = typer.Option(
        60.0,
        "--lease-seconds",
        min=0.1,
        help="How long a claimed row is ours before others retry it.",
    ),
    rate: float = typer.Option(
        0.0,
        "--rate",
        min=0.0,
        help="At most this many messages per second per channel (0: no limit).",
    ),
    once: bool = typer.Option(False, "--once", help="One batch per channel, then stop."),
    watch: float = typer.Option(
        0.0, "--watch", min=0.0, help="Keep running: look for due rows every N seconds."
    ),
    policy: Path | None = typer.Option(None, "--policy", help="Policy YAML (templates, locales)."),
) -> None:
    """Render and send due outbox rows until none is left: email over SMTP, SMS and push
    over their HTTP gateways. A channel whose gateway is not configured stays pending."""
    from rich.console import Console
    from rich.table import Table

    from ppx.rules.ledger import Ledger
    from ppx.rules.messages.compose import Renderer, SenderIdentity, ledger_loyalty
    from ppx.rules.messages.outbox import Outbox, new_owner
    from ppx.rules.messages.preferences import PreferenceStore
    from ppx.rules.messages.render import RenderError
    from ppx.rules.messages.sender import send_batch, send_until_empty, transport_for
    from ppx.rules.policy import PolicyError, load_policy

    try:
        pol = load_policy(policy)
        ledger = Ledger(ledger_url)
        render = Renderer(pol, SenderIdentity.from_settings(), ledger_loyalty(ledger, pol))
    except (PolicyError, RenderError) as err:
        _fail(str(err))

    channels = [channel.value] if channel else ["email", "sms", "push"]
    gateways, missing = _gateways(channels, smtp_host, smtp_port)
    if channel and missing:  # asked for this channel by name: not sending it is an error
        _fail(f"{channel.value}: no gateway configured; set {', '.join(missing[channel.value])}")
    outbox = Outbox(ledger.engine)
    owner = new_owner()
    console = Console()
    waiting = outbox.counts_by_channel()
    for ch, unset in missing.items():  # said once, also in --watch mode
        n = waiting.get(ch, {}).get("pending", 0)
        rows = "1 pending row stays" if n == 1 else f"{n} pending rows stay"
        console.print(
            f"[yellow]{ch}: no gateway configured, {rows} pending; set {', '.join(unset)}[/]"
        )
    labels = {ch: transport_for(cfg).label for ch, cfg in gateways.items()}

    prefs = PreferenceStore(ledger.engine, pol)

    def opted_out(row) -> None:
        # The gateway refused: the customer stopped this channel there (replied STOP).
        # Turning the channel off here keeps decisions from choosing it again.
        prefs.gateway_stop(row.customer_id, row.channel)

    def send(ch: str, fn, **kwargs):
        return fn(
            outbox,
            gateways[ch],
            owner,
            render,
            lease_seconds=lease_seconds,
            rate_per_second=rate,
            on_opted_out=opted_out,
            preferences=prefs,  # opt-outs made since a row was queued hold
            policy=pol,  # so do the customer's quiet hours at the moment of sending
            **kwargs,
        )

    if watch > 0:  # a long-running sender: one line per channel and pass that sent something
        import time

        while True:
            for ch in gateways:
                rep = send(ch, send_until_empty, batch=batch)
                if rep.claimed:
                    console.print(
                        f"{ch}: sent {rep.sent}, suppressed {rep.suppressed}, "
                        f"deferred {rep.deferred}, retried later {rep.retried}, "
                        f"failed {rep.failed}"
                    )
            time.sleep(watch)
    t = Table(title="outbox send")
    t.add_column("channel")
    t.add_column("gateway")
    for col in (
        "claimed",
        "sent",
        "suppressed",
        "deferred",
        "retried later",
        "failed",
        "lease lost",
    ):
        t.add_column(col, justify="right")
    errors = []
    for ch in gateways:
        with console.status(f"sending {ch} via {labels[ch]} ..."):
            if once:
                rep = send(ch, send_batch, limit=batch)
            else:
                rep = send(ch, send_until_empty, batch=batch)
        t.add_row(
            ch,
            labels[ch],
            *map(
                str,
                (
                    rep.claimed,
                    rep.sent,
                    rep.suppressed,
                    rep.deferred,
                    rep.retried,
                    rep.failed,
                    rep.lost_lease,
                ),
            ),
        )
        errors += rep.errors
    for ch in missing:
        t.add_row(ch, "[yellow]not configured[/]", *["-"] * 6)
    console.print(t)
    for e in errors[:10]:
        console.print(f"[yellow]{e}[/]")
    counts = outbox.counts()
    console.print("outbox now: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


#: what ``ppx messages status --id`` shows of a row, in this order (bodies left out)
ROW_FIELDS = (
    "id",
    "message_key",
    "customer_id",
    "message_type",
    "channel",
    "category",
    "arm",
    "to_address",
    "status",
    "attempts",
    "next_attempt_at",
    "sent_at",
    "last_error",
    "rfc_message_id",
    "provider_message_id",
    "delivery_status",
    "delivery_at",
    "delivery_error",
    "subject",
    "created_at",
)


@messages_app.command("status")
def status_cmd(
    ledger_url: str | None = typer.Option(None, "--ledger-url"),
    row_id: int | None = typer.Option(
        None, "--id", help="Show this row: status, error or suppression reason, gateway id."
    ),
    key: str | None = typer.Option(None, "--key", help="Show the row with this message key."),
) -> None:
    """Rows of the outbox by channel and status, the sent rows by delivery receipt, or one
    row (--id, --key)."""
    from rich.console import Console
    from rich.table import Table

    from ppx.rules.messages.outbox import STATUSES

    outbox = _outbox(ledger_url)
    if row_id is not None or key is not None:
        if row_id is not None and key is not None:
            _fail("give --id or --key, not both")
        row = outbox.row(row_id=row_id, message_key=key)
        if row is None:
            _fail(
                f"message_outbox has no row with {'id ' + str(row_id) if key is None else 'key ' + key}"
            )
        t = Table(title=f"outbox row {row['id']}", show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value", overflow="fold")
        for f in ROW_FIELDS:
            t.add_row(f, "" if row[f] is None else str(row[f]))
        Console().print(t)
        return
    by_channel = outbox.counts_by_channel()
    t = Table(title="message outbox")
    t.add_column("channel")
    for st in STATUSES:
        t.add_column(st, justify="right")
    t.add_column("total", justify="right")
    totals = dict.fromkeys(STATUSES, 0)
    for ch in sorted(by_channel):
        counts = by_channel[ch]
        t.add_row(ch, *(str(counts[st]) for st in STATUSES), str(sum(counts.values())))
        for st in STATUSES:
            totals[st] += counts[st]
    t.add_section()
    t.add_row(
        "[bold]all[/]",
        *(f"[bold]{totals[st]}[/]" for st in STATUSES),
        f"[bold]{sum(totals.values())}[/]",
    )
    Console().print(t)
    receipts = outbox.delivery_counts_by_channel()
    if receipts:
        Console().print(_receipts_table(receipts))


def _receipts_table(by_channel: dict[str, dict[str, int]]):
    """Sent rows per channel by what the gateway's delivery receipts said."""
    from rich.table import Table

    columns = list(next(iter(by_channel.values())))
    t = Table(title="delivery receipts of sent rows")
    t.add_column("channel")
    for col in columns:
        t.add_column(col, justify="right")
    for ch in sorted(by_channel):
        t.add_row(ch, *(str(by_channel[ch][c]) for c in columns))
    return t


@messages_app.command("preview")
def preview_cmd(
    kind: str = typer.Argument(..., help="Message kind (e.g. delay_notice)."),
    content: str = typer.Option("{}", "--content", help="The message content as JSON."),
    locale: str = typer.Option("en", "--locale", help="en, ja, ru ..."),
    time_zone: str | None = typer.Option(None, "--tz", help="IANA time zone."),
    balance: int | None = typer.Option(None, "--balance", help="Points balance to show."),
    html: Path | None = typer.Option(None, "--html", help="Also write the HTML body here."),
    policy: Path | None = typer.Option(None, "--policy"),
) -> None:
    """Render one message and print its subject and text (a check for translators)."""
    from rich.console import Console

    from ppx.rules.messages.render import LoyaltyView, RenderError, render
    from ppx.rules.policy import PolicyError, load_policy
    from ppx.rules.types import CustomerContext

    try:
        pol = load_policy(policy)
        cust = CustomerContext(customer_id=1, locale=locale, time_zone=time_zone)
        loyalty = LoyaltyView(balance=balance) if balance is not None else None
        r = render(kind, json.loads(content), cust, pol, loyalty=loyalty)
    except (PolicyError, RenderError, json.JSONDecodeError) as err:
        _fail(str(err))
    Console().print(f"[bold]{r.subject}[/]\n\n{r.text}")
    if html is not None:
        html.write_text(r.html, encoding="utf-8")
