"""Returns and exchanges: exchange, store credit with a bonus, or refund.

* ``decide``: the pure decision (extends ``decide_return``'s trust rules);
* ``store``: resolutions, inventory events and store credit, written with the ledger's
  point reversals in one transaction;
* ``desk``: the API's operations (fraud score from the model service, decide, record).
"""

from ppx.rules.returns_flow.decide import (
    ExchangeItem,
    ResolutionError,
    ReturnChoice,
    decide_return_resolution,
)

__all__ = ["ExchangeItem", "ResolutionError", "ReturnChoice", "decide_return_resolution"]
