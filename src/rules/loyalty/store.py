"""Creating the loyalty tables beside the ledger's, once per ledger object."""

from __future__ import annotations

import threading

from ppx.rules.ledger import Ledger
from ppx.rules.loyalty.tables import LOYALTY_TABLES

_LOCK = threading.Lock()


def ensure_tables(ledger: Ledger) -> Ledger:
    """Create the loyalty tables in the ledger's database if missing (cheap after the first call).

    The ledger's own ``create_all`` ran before these models were imported, so the
    programme creates its tables the first time it touches a ledger.
    """
    if getattr(ledger, "_loyalty_ready", False):
        return ledger
    with _LOCK:
        if not getattr(ledger, "_loyalty_ready", False):
            from ppx.rules.ledger import Base

            Base.metadata.create_all(ledger.engine, tables=LOYALTY_TABLES)
            ledger._loyalty_ready = True
    return ledger
