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
import contextlib
import math
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, literal_column, null, select, union_all

from ppx.rules.decisions import decide_claim, decide_daily, decide_order_event, decide_return
from ppx.rules.experiments.assign import apply_experiments
from ppx.rules.ledger import Ledger, Posting
from ppx.rules.loyalty.tables import CustomerTier
from ppx.rules.messages.compose import check_templates, outbox_rows
from ppx.rules.messages.outbox import Outbox
from ppx.rules.messages.preferences import PreferenceRow, PreferenceStore, opt_outs_of
from ppx.rules.model_client import ModelClient
from ppx.rules.policy import Policy
from ppx.rules.promise_log import PromiseLog, publish
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
    outbox: list[dict] = []  # the messages enqueued (created=False: already there)


def _iso(v):
    return v.isoformat() if hasattr(v, "isoformat") else v


# The stated on-time rate of the checkout promise: the model's 0.9-quantile day.
PROMISE_TARGET = 0.9


_TIERS = CustomerTier.__table__
_PREFS = PreferenceRow.__table__

#: A customer's persisted tier (one cached statement: read before every decision).
_STORED_TIER = select(_TIERS.c.tier).where(_TIERS.c.customer_id == bindparam("cid"))

#: The customer's stored facts in one round trip: the persisted tier (a row whose ``kind``
#: and ``allowed`` are NULL) and the preference rows (``channel, kind, allowed``).
_FACTS = union_all(
    select(
        literal_column("0").label("pref"),
        _TIERS.c.tier.label("a"),
        null().label("b"),
        null().label("c"),
    ).where(_TIERS.c.customer_id == bindparam("cid")),
    select(literal_column("1"), _PREFS.c.channel, _PREFS.c.kind, _PREFS.c.allowed).where(
        _PREFS.c.customer_id == bindparam("cid")
    ),
)


#: Milliseconds per stage of the decision being made, when a caller collects them
#: (:func:`stage_timings`); None otherwise, and then nothing is timed.
_STAGES: ContextVar[dict[str, float] | None] = ContextVar("ppx_decision_stages", default=None)


@contextlib.contextmanager
def stage_timings() -> Iterator[dict[str, float]]:
    """Collect the stage times (ms) of the decisions made inside the ``with`` block.

    The decision service sends them as a ``Server-Timing`` header, so a slow answer says
    where its time went: ``model`` (the model call, with the customer's stored facts
    read while it is in flight), ``promises`` (the promise log), ``decide`` (the pure
    rules), ``ledger`` (experiments, ledger write, outbox) and ``loyalty`` (refunds of
    vouchers and referrals, tier changes). The stages do not overlap.
    """
    stages: dict[str, float] = {}
    token = _STAGES.set(stages)
    try:
        yield stages
    finally:
        _STAGES.reset(token)


@contextlib.contextmanager
def _stage(name: str) -> Iterator[None]:
    stages = _STAGES.get()
    if stages is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + (time.perf_counter() - t0) * 1e3


def _outbox_answer(rows: list, created: list[bool]) -> list[dict]:
    """The response's ``outbox`` items: each row's key, channel and whether it was new."""
    return [
        {"message_key": r.message_key, "channel": r.channel, "created": c}
        for r, c in zip(rows, created, strict=True)
    ]


def _noted(decision: Decision, why: str | None) -> Decision:
    """The decision with the reason naming where its tier came from."""
    if why is not None:
        decision.reasons.append(why)
    return decision


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
    """Policy + optional model client, ledger, preference centre, outbox and promise log.

    With a preference store, every decision first reads the customer's stored opt-outs
    (so an opted-out delivery stage sends nothing); the policy's experiments are applied
    to every decision; with an outbox, the decision's messages are enqueued with the
    ledger write, in its transaction when the outbox shares the ledger's engine (``ppx
    messages send`` renders and sends them).
    """

    def __init__(
        self,
        policy: Policy,
        models: ModelClient | None = None,
        ledger: Ledger | None = None,
        preferences: PreferenceStore | None = None,
        outbox: Outbox | None = None,
        promises: PromiseLog | None = None,
    ):
        self.policy = policy
        self.models = models
        self.ledger = ledger
        self.promises = promises
        self.preferences = preferences
        self.outbox = outbox
        if ledger is not None:
            from ppx.rules.loyalty.store import ensure_tables

            ensure_tables(ledger)  # the persisted tier is read before every decision
        if outbox is not None:
            check_templates(policy)  # a kind without a template fails here, not at send time

    def _customer(self, c: CustomerContext) -> tuple[CustomerContext, str | None]:
        """The customer as the database knows them, and the reason naming the tier used.

        The tier comes from the persisted tier table (``loyalty_tiers``) when the customer
        has a row there; the caller's ``customer.tier`` is only the fallback. The
        preference centre's opt-outs are added. When the preferences live in the ledger's
        database (the service's set-up) both come from one statement, read without
        SQLite's write lock.
        """
        if self.ledger is None:
            if self.preferences is None:
                return c, None
            return self._with_opt_outs(c, *self.preferences.opt_outs(c.customer_id)), None
        cid = int(c.customer_id)
        opt_outs = None
        with self.ledger.reads.connect() as conn:
            if self.preferences is not None and self.preferences.engine is self.ledger.engine:
                rows = conn.execute(_FACTS, {"cid": cid}).all()
                stored = next((r.a for r in rows if not r.pref), None)
                opt_outs = opt_outs_of((r.a, r.b, r.c) for r in rows if r.pref)
            else:
                stored = conn.execute(_STORED_TIER, {"cid": cid}).scalar_one_or_none()
        if opt_outs is None and self.preferences is not None:
            opt_outs = self.preferences.opt_outs(c.customer_id)
        if stored is not None and stored in self.policy.tier_names:
            if stored != c.tier:
                c = c.model_copy(update={"tier": stored})
            why = f"tier {stored}: the customer's persisted tier"
        else:
            why = f"tier {c.tier}: as given by the caller (no persisted tier)"
        if opt_outs is not None:
            c = self._with_opt_outs(c, *opt_outs)
        return c, why

    @staticmethod
    def _with_opt_outs(
        c: CustomerContext, channels: list[str], kinds: list[str]
    ) -> CustomerContext:
        if not channels and not kinds:
            return c
        return c.model_copy(
            update={
                "opted_out_channels": sorted({*c.opted_out_channels, *channels}),
                "opted_out_messages": sorted({*c.opted_out_messages, *kinds}),
            }
        )

    async def resolve_customer(self, c: CustomerContext) -> tuple[CustomerContext, str | None]:
        """:meth:`_customer` off the event loop when the database is remote."""
        if self.preferences is None and self.ledger is None:
            return c, None
        if self.ledger is None or self.ledger.dialect == "sqlite":
            return self._customer(c)  # a local read: cheaper than a thread hand-off
        return await asyncio.to_thread(self._customer, c)

    def _enqueue(self, res: DecisionResponse, customer: CustomerContext) -> DecisionResponse:
        if self.outbox is None or not res.decision.messages:
            return res
        rows = outbox_rows(res.decision, customer)
        created = self.outbox.enqueue(rows)
        return res.model_copy(update={"outbox": _outbox_answer(rows, created)})

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

    async def _scores_and_customer(
        self,
        req: _Req,
        wanted: dict[str, dict],
        customer: CustomerContext,
        notes: dict[str, str] | None = None,
    ) -> tuple[Scores, tuple[CustomerContext, str | None]]:
        """The model scores and the customer's stored facts, fetched together.

        Neither needs the other, so the stored facts (persisted tier, opt-outs) are read
        while the model call is in flight instead of after its answer.
        """
        with _stage("model"):
            scores, resolved = await asyncio.gather(
                self._scores(req, wanted, notes), self.resolve_customer(customer)
            )
        return scores, resolved

    def _write(self, decision: Decision) -> DecisionResponse:
        if self.ledger is None:
            return DecisionResponse(decision=decision)
        postings: list[Posting]
        postings, balance = self.ledger.apply_with_balance(decision)
        return DecisionResponse(
            decision=decision, ledger=[p.__dict__ for p in postings], balance=balance
        )

    def _finish(
        self, decision: Decision, customer: CustomerContext, at: datetime
    ) -> DecisionResponse:
        decision = apply_experiments(decision, self.policy, at)
        if (
            self.ledger is None
            or self.outbox is None
            or not decision.messages
            or self.outbox.engine is not self.ledger.engine
        ):
            return self._enqueue(self._write(decision), customer)
        # The outbox lives in the ledger's database (the service's set-up): the decision's
        # points, its balance and its messages are one transaction, so a crash or a failed
        # write leaves none of them, and a retried request writes all of them (keyed).
        rows = outbox_rows(decision, customer)
        postings, balance, created = self.ledger.apply_with(
            decision, lambda conn: self.outbox.enqueue(rows, conn)
        )
        return DecisionResponse(
            decision=decision,
            ledger=[p.__dict__ for p in postings],
            balance=balance,
            outbox=_outbox_answer(rows, created),
        )

    async def _commit(
        self, decision: Decision, customer: CustomerContext, at: datetime
    ) -> DecisionResponse:
        with _stage("ledger"):
            if self.ledger is None or self.ledger.dialect == "sqlite":
                # A local file written by one thread at a time in about a millisecond: a
                # thread hand-off would cost about as much as the write itself.
                return self._finish(decision, customer, at)
            # A database over the network: keep its round trips off the event loop.
            return await asyncio.to_thread(self._finish, decision, customer, at)

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
            d = {
                "ordered_at": _iso(e.ordered_at),
                "carrier": e.carrier,
                "promise_target": PROMISE_TARGET,
            }
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
        scores, (c, tier_why) = await self._scores_and_customer(req, wanted, c, notes)
        if self.promises is not None:
            with _stage("promises"):
                if self.promises.engine.dialect.name != "sqlite":
                    await asyncio.to_thread(self._log_promise, req, scores)
                else:
                    self._log_promise(req, scores)
        with _stage("decide"):
            decision = _noted(decide_order_event(e, c, scores, self.policy), tier_why)
        res = await self._commit(decision, c, e.occurred_at)
        if self.ledger is not None:
            with _stage("loyalty"):
                if e.event_type == "refunded":
                    await self._refund_loyalty(e, res)
                if res.decision.actions_of("set_tier"):  # rare: a tier reached or a surprise
                    spend = c.spend_12m + (e.order_value if e.event_type == "delivered" else 0.0)
                    await self._persist_tiers(res, spend, e.occurred_at)
        return res

    async def _persist_tiers(self, res: DecisionResponse, spend: float, now: datetime) -> None:
        """Store the decision's tier changes in the tier table and its history."""
        from ppx.rules.loyalty.tiers import persist_tier_actions

        await asyncio.to_thread(
            persist_tier_actions, self.ledger, self.policy, res.decision, spend, now
        )

    async def _refund_loyalty(self, e: OrderEvent, res: DecisionResponse) -> None:
        """A full refund also returns vouchers spent on the order and cancels a pending
        referral whose first order it was (refunds only: nothing on the other events).

        Full means ``refund_amount >= order_value`` with a known order value; a partial
        refund leaves vouchers spent, and its point reversal alone keeps the referral
        from being paid at settlement.
        """
        from ppx.rules.loyalty.redemption import refund_order

        if not (e.order_value > 0 and (e.refund_amount or 0) >= e.order_value):
            return
        ref = e.refund_id if e.refund_id is not None else "full"
        out = await asyncio.to_thread(
            refund_order,
            self.ledger,
            e.customer_id,
            e.order_id,
            f"{e.order_id}:{ref}",
            points=0,  # the decision's own reversal already took the earned points back
            at=e.occurred_at,
        )
        for p in out.postings:
            res.ledger.append(p.__dict__)
        if out.reversed_redemptions:
            res.decision.reasons.append(
                f"order {e.order_id} fully refunded -> vouchers {out.reversed_redemptions} "
                "cancelled and their points returned"
            )
        if out.cancelled_referral is not None:
            res.decision.reasons.append(
                f"order {e.order_id} was a referred customer's first order -> referral cancelled"
            )
        res.balance = out.balance

    def _log_promise(self, req: OrderEventRequest, scores: Scores) -> None:
        """Record the checkout promise of a placed order (the model's p90 day) and the
        outcome of a delivered or lost one, then refresh its carrier's gauges."""
        e = req.event
        if e.event_type == "placed" and scores.delivery is not None and e.ordered_at is not None:
            days = math.ceil(scores.delivery.p90_days - 1e-9)
            inputs = req.model_inputs.get("delivery", {})
            lane = None
            if inputs.get("warehouse") and inputs.get("dest_region"):
                lane = f"{inputs['warehouse']} > {inputs['dest_region']}"
            self.promises.record_promise(
                e.order_id,
                e.ordered_at,
                (e.ordered_at + timedelta(days=days)).date(),
                PROMISE_TARGET,
                e.carrier or inputs.get("carrier"),
                lane,
            )
        elif (e.event_type == "delivered" and e.delivered_at is not None) or e.event_type == "lost":
            carrier = self.promises.record_outcome(
                e.order_id, e.occurred_at, e.delivered_at, lost=e.event_type == "lost"
            )
            if carrier is not None:
                publish(self.promises.on_time(e.occurred_at, carrier=carrier))

    async def return_(self, req: ReturnDecisionRequest) -> DecisionResponse:
        r = req.request
        wanted = {"fraud_return": fraud_return_payload(r)}
        scores, (c, tier_why) = await self._scores_and_customer(req, wanted, req.customer)
        with _stage("decide"):
            decision = _noted(decide_return(r, c, scores, self.policy), tier_why)
        return await self._commit(decision, c, r.requested_at)

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
        scores, (c, tier_why) = await self._scores_and_customer(req, wanted, req.customer)
        with _stage("decide"):
            decision = _noted(decide_claim(r, c, scores, self.policy), tier_why)
        return await self._commit(decision, c, r.claimed_at)

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
        scores, (c, tier_why) = await self._scores_and_customer(item, wanted, c, notes)
        if self.ledger is None:
            return await self._commit(decide_daily(c, item.now, scores, self.policy), c, item.now)
        # The loyalty figures (expiry reminder) and the yearly gifts need the ledger.
        loyalty = await asyncio.to_thread(self._loyalty_daily, c, item.now)
        summary, gifts = loyalty
        decision = _noted(decide_daily(c, item.now, scores, self.policy, summary), tier_why)
        from ppx.rules.loyalty.gifts import attach_gift

        for kind, voucher, why in gifts:
            code = f": voucher {voucher.voucher_code}" if voucher is not None else ""
            decision.reasons.append(f"{kind}: {why}{code}")
            if voucher is not None:  # the birthday/anniversary message carries it
                attach_gift(
                    decision,
                    kind,
                    self.policy,
                    voucher.reward_id,
                    voucher.voucher_code,
                    voucher.expires_at,
                )
        # Gifts are attached before the commit, so the outbox row carries the voucher.
        res = await self._commit(decision, c, item.now)
        if res.decision.actions_of("set_tier"):
            await self._persist_tiers(res, c.spend_12m, item.now)
        return res

    def _loyalty_daily(self, c: CustomerContext, now: datetime):
        from ppx.rules.loyalty.gifts import yearly_gifts
        from ppx.rules.loyalty.summary import loyalty_summary

        gifts = yearly_gifts(
            self.ledger,
            self.policy,
            c.customer_id,
            now.date(),
            tier=c.tier,
            birth_date=c.birth_date,
            signup_at=c.signup_at,
        )
        return loyalty_summary(self.ledger, self.policy, c.customer_id, now=now, tier=c.tier), gifts

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


def engine_from_environment() -> DecisionEngine:
    """The engine the decision service and the portal build from the environment.

    ``PPX_POLICY`` (default the shipped policy), ``PPX_MODEL_SERVICE_URL`` (the model
    client, with the policy's timeout), ``PPX_LEDGER_URL`` (the ledger, preference centre
    and promise log), and ``PPX_OUTBOX=1`` to enqueue the decisions' messages.
    """
    import os

    from ppx.rules.policy import load_policy

    policy = load_policy(os.environ.get("PPX_POLICY") or None)
    client = ModelClient(timeout=policy.fallbacks.model_timeout_seconds)
    url = os.environ.get("PPX_LEDGER_URL")
    ledger = Ledger(url)
    prefs = PreferenceStore(ledger.engine, policy)
    outbox = Outbox(ledger.engine) if os.environ.get("PPX_OUTBOX", "0") == "1" else None
    return DecisionEngine(policy, client, ledger, prefs, outbox, promises=PromiseLog(url))
