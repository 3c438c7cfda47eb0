"""``ppx loyalty``: the programme's daily jobs and look-ups on the command line.

``expire`` and ``settle-referrals`` are the two jobs a brand schedules once a day (the
same work as ``POST /loyalty/expiry/run`` and ``/loyalty/referrals/settle``); ``summary``
and ``tier`` are for support staff; ``seed`` loads a store's balances and tiers into the
ledger once, when a brand moves onto it. Heavy imports stay inside the commands.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

loyalty_app = typer.Typer(
    help="The loyalty programme: summaries, tiers, expiry, referral payouts, seeding."
)

_LEDGER = typer.Option(None, "--ledger-url", help="Ledger DB URL (default PPX_LEDGER_URL).")
_POLICY = typer.Option(None, "--policy", help="Policy YAML (default: shipped).")
_NOW = typer.Option(None, "--now", help="ISO date-time to run as of (default: now, UTC).")


def _load(ledger_url: str | None, policy: Path | None):
    from rich.console import Console

    from ppx.rules.ledger import Ledger
    from ppx.rules.policy import PolicyError, load_policy

    try:
        pol = load_policy(policy)
    except PolicyError as err:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {err}")
        raise typer.Exit(2) from None
    return Ledger(ledger_url), pol


def _when(now: str | None) -> datetime | None:
    if now is None:
        return None
    try:
        return datetime.fromisoformat(now)
    except ValueError:
        raise typer.BadParameter(f"--now must be an ISO date-time, got {now!r}") from None


@loyalty_app.command("summary")
def summary_cmd(
    customer_id: int = typer.Argument(..., min=1),
    ledger_url: str | None = _LEDGER,
    policy: Path | None = _POLICY,
    now: str | None = _NOW,
) -> None:
    """Balance, tier, next reward, points to it, and what expires when."""
    from rich.console import Console
    from rich.table import Table

    from ppx.rules.loyalty.summary import loyalty_summary

    lg, pol = _load(ledger_url, policy)
    s = loyalty_summary(lg, pol, customer_id, now=_when(now))
    t = Table(title=f"customer {customer_id}", show_header=False)
    for k, v in s.to_dict().items():
        t.add_row(k, "" if v is None else str(v))
    Console().print(t)


@loyalty_app.command("tier")
def tier_cmd(
    customer_id: int = typer.Argument(..., min=1),
    ledger_url: str | None = _LEDGER,
) -> None:
    """A customer's stored tier and its history."""
    from rich.console import Console
    from rich.table import Table

    from ppx.rules.ledger import Ledger
    from ppx.rules.loyalty.tiers import current_tier, tier_history

    lg = Ledger(ledger_url)
    cur = current_tier(lg, customer_id)
    console = Console()
    console.print(
        f"customer {customer_id}: "
        + (f"{cur['tier']} since {cur['since']}, review {cur['review_at']}" if cur else "no tier")
    )
    t = Table("at", "change", "from", "to", "spend_12m", "reason")
    for h in tier_history(lg, customer_id):
        t.add_row(
            h["at"],
            h["change"],
            h["from_tier"] or "",
            h["to_tier"],
            f"{h['spend_12m']:g}",
            h["reason"],
        )
    console.print(t)


@loyalty_app.command("expire")
def expire_cmd(
    ledger_url: str | None = _LEDGER, policy: Path | None = _POLICY, now: str | None = _NOW
) -> None:
    """Expire every balance whose points lapsed (idempotent: run it daily)."""
    from rich.console import Console

    from ppx.rules.loyalty.expiry import expire_due

    lg, pol = _load(ledger_url, policy)
    out = [p for p in expire_due(lg, pol, _when(now)) if p.created]
    Console().print(f"expired {sum(-p.points for p in out)} points of {len(out)} customers")


@loyalty_app.command("settle-referrals")
def settle_cmd(
    ledger_url: str | None = _LEDGER, policy: Path | None = _POLICY, now: str | None = _NOW
) -> None:
    """Pay referrals whose first order is past the return window (idempotent: run daily)."""
    from rich.console import Console
    from rich.table import Table

    from ppx.rules.loyalty.referrals import settle_referrals

    lg, pol = _load(ledger_url, policy)
    out = settle_referrals(lg, pol, _when(now))
    t = Table("referee", "referrer", "status", "reason")
    for r in out:
        t.add_row(str(r.referee_id), str(r.referrer_id), r.status, r.reason)
    Console().print(t)
    Console().print(f"{sum(r.status == 'paid' for r in out)} paid, {len(out)} settled")


@loyalty_app.command("seed")
def seed_cmd(
    store: Path = typer.Argument(..., help="Store (or world) folder with a loyalty_events table."),
    ledger_url: str | None = _LEDGER,
    policy: Path | None = _POLICY,
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="ISO date-time: the export's balances just before it (default: the store's "
        "end, the nightly run's moment).",
    ),
    only_new: bool = typer.Option(
        False, "--only-new", help="Seed only customers the ledger has no entries for."
    ),
    allow_negative: bool = typer.Option(
        False, "--allow-negative", help="Seed negative balances as they are (else refused)."
    ),
) -> None:
    """Load the store's loyalty balances and tiers into the ledger as opening entries.

    One opening_balance entry per customer, dated at their last earning or redemption so
    expiry deadlines stay the export's; re-runs write nothing twice. Refused when the
    ledger already has other entries for some of them, unless --only-new.
    """
    import pandas as pd
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from ppx.rules.loyalty.seed import SeedError, seed_ledger, store_state

    err = Console(stderr=True, soft_wrap=True)
    lg, pol = _load(ledger_url, policy)
    try:
        state, moment = store_state(store, None if as_of is None else _when(as_of))
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("seeding", total=len(state))
            res = seed_ledger(
                lg,
                pol,
                state,
                moment,
                only_new=only_new,
                allow_negative=allow_negative,
                progress=lambda n: bar.advance(task, n),
            )
    except SeedError as e:
        err.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None
    finally:
        lg.dispose()
    t = Table(title=f"opening entries as of {pd.Timestamp(res.as_of)}", show_header=False)
    t.add_row("customers in the export", f"{res.customers:,}")
    t.add_row("entries written", f"{res.written:,}")
    t.add_row("points written", f"{res.points_written:,}")
    t.add_row("tiers written", f"{res.tiers_written:,}")
    t.add_row("already seeded", f"{res.already_seeded:,}")
    if res.differing:
        t.add_row("  of them with another balance now", f"{res.differing:,}")
    t.add_row("skipped (live ledger entries)", f"{res.skipped_live:,}")
    Console().print(t)
