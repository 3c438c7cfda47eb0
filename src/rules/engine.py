"""The decision engine: fetch the scores a decision needs, decide, write the ledger.

This is the only place that does I/O around the pure decision functions. The BentoML
decision service and ``ppx decide`` both call it, so endpoints stay thin and the CLI
behaves exactly like the service.

Which models are called: only those the decision can use, so a delivered-on-time event
does not wait for the churn model. Scores the caller already has (``scores`` in a request)
are used as given and their models are not called. Without a model client (offline), every
missing score takes the policy's fallback and the reasons say so.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ppx.rules.decisions import decide_claim, decide_daily, decide_order_event, decide_return
from ppx.rules.ledger import Ledger, Posting
from ppx.rules.model_client import ModelClient
from ppx.rules.policy import Policy
from ppx.rules.types import (
    ClaimEvent,
    CustomerContext,
    Decision,
    OrderEvent,
    ReturnEvent,
    Scores,
)


class _Req(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: CustomerContext
    scores: Scores | None = None
    model_inputs: dict[str, dict[str, Any]] = Field(
        default={},
        description="Extra raw facts forwarded to a model endpoint, by model name "
        "(delivery, churn, fraud_return, fraud_claim, recs).",
    )


class OrderEventRequest(_Req):
    event: OrderEvent


class ReturnDecisionRequest(_Req):
    request: ReturnEvent


class ClaimDecisionRequest(_Req):
    request: ClaimEvent


class DailyItem(_Req):
    now: datetime


class DailyBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[DailyItem] = Field(min_length=1, max_length=1000)


class DecisionResponse(BaseModel):
    decision: Decision
    ledger: list[dict] = []
    balance: int | None = None


def _iso(v):
    return v.isoformat() if hasattr(v, "isoformat") else v


def fraud_return_payload(r: ReturnEvent) -> dict:
    """The return-fraud model's request for a return (the fields it knows)."""
    payload = {
        "customer_id": r.customer_id,
        "requested_at": _iso(r.requested_at),
        "amount": r.amount,
        "order_id": r.order_id,
        "product_id": r.product_id,
        "reason": r.reason,
        "delivered_at": _iso(r.delivered_at),
    }
    return {k: v for k, v in payload.items() if v is not None}


class DecisionEngine:
    """Policy + optional model client + optional ledger."""

    def __init__(
        self, policy: Policy, models: ModelClient | None = None, ledger: Ledger | None = None
    ):
        self.policy = policy
        self.models = models
        self.ledger = ledger

    async def _scores(
        self, req: _Req, wanted: dict[str, dict], notes: dict[str, str] | None = None
    ) -> Scores:
        given = req.scores or Scores()
        if notes:
            extra = {k: v for k, v in notes.items() if k not in given.errors}
            given = given.model_copy(update={"errors": {**given.errors, **extra}})
        have = {
            "delivery": given.delivery is not None,
            "churn": given.churn_risk is not None,
            "fraud_return": given.fraud_prob is not None,
            "fraud_claim": given.fraud_prob is not None,
            "recs": given.recommendations is not None,
        }
        need = {k: {**v, **req.model_inputs.get(k, {})} for k, v in wanted.items() if not have[k]}
        if not need:
            return given
        if self.models is None:
            errors = dict(given.errors)
            for k in need:
                errors.setdefault(
                    "fraud" if k.startswith("fraud") else k, "no model service configured"
                )
            return given.model_copy(update={"errors": errors})
        fetched = await self.models.scores(need, self.policy.churn_horizon_days)
        merged = given.model_dump(exclude_none=True, exclude={"errors"})
        merged.update(fetched.model_dump(exclude_none=True, exclude={"errors"}))
        return Scores(**merged, errors={**given.errors, **fetched.errors})

    def _write(self, decision: Decision) -> DecisionResponse:
        if self.ledger is None:
            return DecisionResponse(decision=decision)
        postings: list[Posting]
        postings, balance = self.ledger.apply_with_balance(decision)
        return DecisionResponse(
            decision=decision, ledger=[p.__dict__ for p in postings], balance=balance
        )

    async def _commit(self, decision: Decision) -> DecisionResponse:
        if self.ledger is None:
            return DecisionResponse(decision=decision)
        if self.ledger.dialect == "sqlite":
            # A local file written by one thread at a time in about a millisecond: a
            # thread hand-off would cost about as much as the write itself.
            return self._write(decision)
        # A database over the network: keep its round trips off the event loop.
        return await asyncio.to_thread(self._write, decision)

    def _churn_payload(self, c: CustomerContext) -> dict | None:
        """The churn request: the customer's risk from the model's latest feature snapshot.

        No ``as_of``: the model service knows the customer's history only up to that
        snapshot (refreshed at each training), so a later event time would add nothing
        but a shifted tenure, and it would cost the snapshot look-up (a full online
        feature computation instead). ``model_inputs.churn.as_of`` still sets one.
        """
        if c.subscription_id is None:
            return None
        return {"customer_id": c.customer_id}

    async def order_event(self, req: OrderEventRequest) -> DecisionResponse:
        e, c = req.event, req.customer
        wanted: dict[str, dict] = {}
        notes: dict[str, str] = {}
        if e.event_type in ("placed", "shipped", "in_transit"):
            # The lane facts the model also needs (warehouse, dest_region, service_level)
            # come from ``model_inputs.delivery``; the p90 promise is the policy's date.
            d = {"ordered_at": _iso(e.ordered_at), "carrier": e.carrier, "promise_target": 0.9}
            if e.event_type == "in_transit":
                d["as_of"] = _iso(e.occurred_at)
            wanted["delivery"] = {k: v for k, v in d.items() if v is not None}
        elif e.event_type in ("delivered", "lost"):
            late = e.event_type == "lost" or (
                e.promised_date is not None
                and e.delivered_at is not None
                and (e.delivered_at.date() - e.promised_date).days > self.policy.apology.grace_days
            )
            if late:
                churn = self._churn_payload(c)
                if churn is None:
                    notes["churn"] = "no subscription to score"
                else:
                    wanted["churn"] = churn
            else:
                k = self.policy.messages.catalogue["thank_you"].recommendations
                wanted["recs"] = {
                    "customer_id": c.customer_id,
                    "k": k,
                    "as_of": _iso(e.occurred_at),
                }
        scores = await self._scores(req, wanted, notes)
        return await self._commit(decide_order_event(e, c, scores, self.policy))

    async def return_(self, req: ReturnDecisionRequest) -> DecisionResponse:
        r = req.request
        scores = await self._scores(req, {"fraud_return": fraud_return_payload(r)})
        return await self._commit(decide_return(r, req.customer, scores, self.policy))

    async def claim(self, req: ClaimDecisionRequest) -> DecisionResponse:
        r = req.request
        wanted = {}
        if r.carrier_status != "lost":
            payload = {
                "customer_id": r.customer_id,
                "requested_at": _iso(r.claimed_at),
                "amount": r.amount,
                "order_id": r.order_id,
                "claim_type": r.claim_type,
                "signature": r.signature,
            }
            wanted["fraud_claim"] = {k: v for k, v in payload.items() if v is not None}
        scores = await self._scores(req, wanted)
        return await self._commit(decide_claim(r, req.customer, scores, self.policy))

    async def daily(self, item: DailyItem) -> DecisionResponse:
        c = item.customer
        wanted: dict[str, dict] = {}
        notes: dict[str, str] = {}
        churn = self._churn_payload(c)
        if churn is None:
            notes["churn"] = "no subscription to score"
        else:
            wanted["churn"] = churn
        if c.replenishment_due:
            k = self.policy.messages.catalogue["replenishment_reminder"].recommendations
            wanted["recs"] = {"customer_id": c.customer_id, "k": k, "as_of": _iso(item.now)}
        scores = await self._scores(item, wanted, notes)
        return await self._commit(decide_daily(c, item.now, scores, self.policy))

    async def daily_batch(self, req: DailyBatchRequest) -> list[DecisionResponse]:
        return list(await asyncio.gather(*(self.daily(it) for it in req.items)))

    def balance(self, customer_id: int, limit: int = 20) -> dict:
        if self.ledger is None:
            raise ValueError("no ledger configured")
        return {
            "customer_id": customer_id,
            "balance": self.ledger.balance(customer_id),
            "entries": self.ledger.history(customer_id, limit),
        }
