"""The rules layer: policy, pure decision functions, messaging, loyalty ledger, simulator.

Models score; these rules act. ``decide_order_event``, ``decide_return``, ``decide_claim``
and ``decide_daily`` take an event, the customer context, the model scores and the policy
and return a :class:`~ppx.rules.models.Decision` with a reason for every action. The
decision service (serving/decision_service.py) and the policy simulator
(:mod:`ppx.rules.simulator`) run these same functions. See docs/rules.md.
"""

from ppx.rules.decisions import decide_claim, decide_daily, decide_order_event, decide_return
from ppx.rules.models import (
    ClaimRequest,
    CustomerContext,
    Decision,
    DeliveryEstimate,
    OrderEvent,
    ReturnRequest,
    Scores,
)
from ppx.rules.policy import Policy, PolicyError, load_policy

__all__ = [
    "ClaimRequest",
    "CustomerContext",
    "Decision",
    "DeliveryEstimate",
    "OrderEvent",
    "Policy",
    "PolicyError",
    "ReturnRequest",
    "Scores",
    "decide_claim",
    "decide_daily",
    "decide_order_event",
    "decide_return",
    "load_policy",
]
