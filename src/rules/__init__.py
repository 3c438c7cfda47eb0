"""The rules layer: policy, pure decision functions, messaging, loyalty ledger, simulator.

Models score; these rules act. ``decide_order_event``, ``decide_return``, ``decide_claim``
and ``decide_daily`` take an event, the customer context, the model scores and the policy
and return a :class:`~ppx.rules.types.Decision` with a reason for every action. The
decision service (serving/decision_service.py) and the policy simulator
(:mod:`ppx.rules.simulator`) run these same functions. See docs/rules.md.
"""

from ppx.rules.decisions import decide_claim, decide_daily, decide_order_event, decide_return
from ppx.rules.policy import Policy, PolicyError, load_policy
from ppx.rules.types import (
    ClaimEvent,
    CustomerContext,
    Decision,
    DeliveryEstimate,
    OrderEvent,
    ReturnEvent,
    Scores,
)

__all__ = [
    "ClaimEvent",
    "CustomerContext",
    "Decision",
    "DeliveryEstimate",
    "OrderEvent",
    "Policy",
    "PolicyError",
    "ReturnEvent",
    "Scores",
    "decide_claim",
    "decide_daily",
    "decide_order_event",
    "decide_return",
    "load_policy",
]
