"""The account half of ``make demo``: subscriptions in the ledger and a link to an account.

The tracking link ``make demo`` prints is scoped to one order, so it opens that order's
pages only. For the account pages (subscriptions, rewards, messages) the demo also
registers the world's running subscriptions in the ledger the portal uses (what
``ppx subscriptions import`` does; twice changes nothing) and prints a link to the whole
account of a subscriber with a late parcel. It also loads the world's points balances and
tiers into that ledger as opening entries (what ``ppx loyalty seed --only-new
--allow-negative`` does: customers the ledger already knows are left alone, twice writes
nothing), so the rewards page shows the world's points from the start.
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
    seeded: int  # opening balances written by this run (0 when the ledger had them)


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
    from ppx.rules.loyalty.seed import seed_ledger, store_state
    from ppx.rules.policy import load_policy
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
        # the world's history has a few negative balances (returns after redemptions)
        state, moment = store_state(world)
        seeded = seed_ledger(
            ledger, load_policy(), state, moment, only_new=True, allow_negative=True
        ).written
    finally:
        ledger.dispose()
    customer = pick_customer(StoreData(world), {s.customer_id for s in running})
    url = portal_link(settings, customer.customer_id)
    return AccountLink(url, customer.customer_id, total, seeded)
