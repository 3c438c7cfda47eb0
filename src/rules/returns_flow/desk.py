"""The returns API's operations: score the return, decide the resolution, record it.

The fraud score comes the way every return decision gets it (``DecisionEngine._scores``:
scores given in the request are used as given, a failed call takes the policy's
fallback and the reasons say so). A repeated request for a recorded return answers from
the store without calling the model again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ppx.rules.engine import DecisionEngine, ReturnDecisionRequest, fraud_return_payload
from ppx.rules.returns_flow.decide import ReturnChoice, decide_return_resolution
from ppx.rules.returns_flow.store import ReturnsStore


class ResolveRequest(ReturnDecisionRequest):
    """``request`` (the return), ``customer``, ``scores?``, ``model_inputs?`` and ``choice``."""

    choice: ReturnChoice = ReturnChoice()


class ReceiveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inspection: Literal["passed", "failed"] | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ReturnsDesk:
    def __init__(
        self,
        engine: DecisionEngine,
        store: ReturnsStore,
        clock: Callable[[], datetime] = _utcnow,
    ):
        self.engine = engine
        self.store = store
        self.clock = clock

    async def resolve(self, req: ResolveRequest) -> dict:
        r = req.request
        if r.customer_id != req.customer.customer_id:
            raise ValueError("request.customer_id does not match customer.customer_id")
        try:
            done = self.store.summary(r.return_id)
        except LookupError:
            done = None
        if done is not None:
            return {"decision": None, "resolution": {**done, "replayed": True}}
        scores = await self.engine._scores(req, {"fraud_return": fraud_return_payload(r)})
        policy = self.engine.policy
        # the persisted tier (the caller's only as a fallback) and the opt-outs
        customer, tier_why = await self.engine.resolve_customer(req.customer)
        decision = decide_return_resolution(r, req.choice, customer, scores, policy)
        if tier_why is not None:
            decision.reasons.append(tier_why)
        res = self.store.open(r, req.choice, decision, customer.tier, self.clock())
        return {"decision": decision.model_dump(mode="json"), "resolution": res}

    def receive(self, return_id: int, body: ReceiveRequest) -> dict:
        return {"resolution": self.store.receive(return_id, body.inspection, self.clock())}
