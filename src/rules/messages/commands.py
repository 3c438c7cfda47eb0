"""``ppx messages``: send the outbox over SMTP, show its state, preview a template."""

from __future__ import annotations

import json
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


@messages_app.command("send")
def send_cmd(
    ledger_url: str | None = typer.Option(
        None, "--ledger-url", help="Database holding the outbox (default PPX_LEDGER_URL)."
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
        0.0, "--rate", min=0.0, help="At most this many messages per second (0: no limit)."
    ),
    once: bool = typer.Option(False, "--once", help="One batch, then stop."),
    watch: float = typer.Option(
        0.0, "--watch", min=0.0, help="Keep running: look for due rows every N seconds."
    ),
    policy: Path | None = typer.Option(None, "--policy", help="Policy YAML (templates, locales)."),
) -> None:
    """Render and send due email rows of the outbox over SMTP until none is left."""
    import dataclasses

    from rich.console import Console
    from rich.table import Table

    from ppx.rules.ledger import Ledger
    from ppx.rules.messages.compose import Renderer, SenderIdentity, ledger_loyalty
    from ppx.rules.messages.outbox import Outbox, new_owner
    from ppx.rules.messages.render import RenderError
    from ppx.rules.messages.sender import SmtpConfig, send_batch, send_until_empty
    from ppx.rules.policy import PolicyError, load_policy

    try:
        pol = load_policy(policy)
        ledger = Ledger(ledger_url)
        render = Renderer(pol, SenderIdentity.from_settings(), ledger_loyalty(ledger, pol))
    except (PolicyError, RenderError) as err:
        _fail(str(err))

    cfg = SmtpConfig.from_settings()
    if smtp_host:
        cfg = dataclasses.replace(cfg, host=smtp_host)
    if smtp_port:
        cfg = dataclasses.replace(cfg, port=smtp_port)
    outbox = Outbox(ledger.engine)
    owner = new_owner()
    fn = send_batch if once else send_until_empty
    kwargs = {"limit": batch} if once else {"batch": batch}
    console = Console()
    if watch > 0:  # a long-running sender: one line per pass that sent something
        import time

        while True:
            rep = send_until_empty(
                outbox,
                cfg,
                owner,
                render,
                batch=batch,
                lease_seconds=lease_seconds,
                rate_per_second=rate,
            )
            if rep.claimed:
                console.print(f"sent {rep.sent}, retried later {rep.retried}, failed {rep.failed}")
            time.sleep(watch)
    with console.status(f"sending via {cfg.host}:{cfg.port} ..."):
        rep = fn(
            outbox, cfg, owner, render, lease_seconds=lease_seconds, rate_per_second=rate, **kwargs
        )
    t = Table(title=f"outbox send ({cfg.host}:{cfg.port})")
    for col in ("claimed", "sent", "retried later", "failed", "lease lost"):
        t.add_column(col, justify="right")
    t.add_row(*map(str, (rep.claimed, rep.sent, rep.retried, rep.failed, rep.lost_lease)))
    console.print(t)
    for e in rep.errors[:10]:
        console.print(f"[yellow]{e}[/]")
    counts = outbox.counts()
    console.print("outbox now: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@messages_app.command("status")
def status_cmd(
    ledger_url: str | None = typer.Option(None, "--ledger-url"),
) -> None:
    """Rows of the outbox by status."""
    from rich.console import Console
    from rich.table import Table

    counts = _outbox(ledger_url).counts()
    t = Table(title="message outbox")
    t.add_column("status")
    t.add_column("rows", justify="right")
    for k, v in counts.items():
        t.add_row(k, str(v))
    Console().print(t)


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
