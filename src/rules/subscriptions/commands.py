"""``ppx subscriptions``: seed and inspect the subscription state of the self-service API."""

from __future__ import annotations

import json
from pathlib import Path

import typer

subscriptions_app = typer.Typer(help="Subscription self-service state (ledger database).")


def _fail(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _store(ledger_url: str | None):
    from ppx.rules.ledger import Ledger
    from ppx.rules.subscriptions.store import SubscriptionStore

    return SubscriptionStore(Ledger(ledger_url))


@subscriptions_app.command("import")
def import_cmd(
    world: Path = typer.Option(..., "--world", help="A world or store folder (its tables/)."),
    ledger_url: str | None = typer.Option(
        None, "--ledger-url", help="SQLAlchemy URL (default PPX_LEDGER_URL or data/ledger.db)."
    ),
) -> None:
    """Register every subscription still running at the data's end (twice changes nothing)."""
    from rich.console import Console
    from rich.progress import Progress

    from ppx.rules.subscriptions.importer import current_subscriptions, import_subscriptions

    if not (world / "tables" / "subscriptions.parquet").exists():
        _fail(f"{world}: no tables/subscriptions.parquet; give a folder from `ppx data world`")
    try:
        total = len(current_subscriptions(world)[0])
        store = _store(ledger_url)
        with Progress(transient=True) as bar:
            task = bar.add_task("registering subscriptions", total=total)
            res = import_subscriptions(world, store, lambda i: bar.update(task, completed=i))
    except ValueError as err:
        _fail(str(err))
    Console().print(
        f"{res['subscriptions']:,} running subscriptions as of {res['as_of']:%Y-%m-%d %H:%M}: "
        f"{res['registered']:,} registered, {res['already_known']:,} already known"
    )


@subscriptions_app.command("show")
def show_cmd(
    subscription_id: int = typer.Argument(..., min=1),
    ledger_url: str | None = typer.Option(None, "--ledger-url"),
) -> None:
    """Print a subscription's state and events as JSON."""
    from ppx.rules.subscriptions.lifecycle import TransitionError
    from ppx.rules.subscriptions.store import state_dict

    store = _store(ledger_url)
    try:
        sub = store.get(subscription_id)
    except TransitionError as err:
        _fail(str(err))
    out = {"subscription": state_dict(sub), "events": store.events(subscription_id)}
    typer.echo(json.dumps(out, indent=2, default=str))
