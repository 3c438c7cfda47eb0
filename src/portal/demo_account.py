"""The account half of ``make demo``: subscriptions in the ledger and a link to an account.

The tracking link ``make demo`` prints is scoped to one order, so it opens that order's
pages only. For the account pages (subscriptions, rewards, messages) the demo also
registers the world's running subscriptions in the ledger the portal uses (what
``ppx subscriptions import`` does; twice changes nothing) and prints a link to the whole
account of a subscriber with a late parcel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ppx.config import Settings


@dataclass(frozen=True)
class AccountLink:
    url: str
    customer_id: int
    subscriptions: int  # running subscriptions in the world (all registered)


def account_link(
    world: Path,
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
) -> AccountLink:
    """Register the world's subscriptions in ``settings``' ledger; a link to a subscriber."""
    from ppx.portal.bench import pick_customer
    from ppx.portal.data import StoreData
    from ppx.portal.services import portal_link
    from ppx.rules.ledger import Ledger
    from ppx.rules.subscriptions.importer import current_subscriptions, import_subscriptions
    from ppx.rules.subscriptions.store import SubscriptionStore

    running, _ = current_subscriptions(world)
    ledger = Ledger(settings.ledger_url)
    try:
        total = len(running)
        import_subscriptions(
            world,
            SubscriptionStore(ledger),
            None if progress is None else (lambda i: progress(i, total)),
        )
    finally:
        ledger.dispose()
    customer = pick_customer(StoreData(world), {s.customer_id for s in running})
    return AccountLink(portal_link(settings, customer.customer_id), customer.customer_id, total)
