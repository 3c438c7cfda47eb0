"""Subscriber self-service: pause, skip, resume, change cadence and cancel with a save offer.

The one place with I/O around the pure transitions (``lifecycle``) and offer choice
(``offers``): it calls the churn model (with reason codes) and the recs model (swap
candidates) before a cancel, and writes through :class:`SubscriptionStore`. The decision
service's ``/subscriptions/...`` routes and tests call it; an illegal action raises
:class:`TransitionError` carrying the HTTP status (404, 409 or 422).

Cancel is two calls. The first (no ``decision``) answers ``status: offer`` with the policy's
save offer and its cost, and records ``save_offer_made``; or, when no offer applies,
cancels at once (``status: cancelled``, the reasons say why). The second carries
``decision: accept`` with the ``offer_id`` (the offer is applied: ``status: saved``) or
``decision: confirm`` (``status: cancelled``, the offer recorded as declined). Every call
carries a request key (body ``request_key`` or header ``Idempotency-Key``); a retry with the
same key gets the first answer and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ppx.rules.model_client import ModelClient
from ppx.rules.policy import Policy
from ppx.rules.subscriptions import lifecycle as L
from ppx.rules.subscriptions.lifecycle import Change, Subscription, TransitionError
from ppx.rules.subscriptions.offers import OfferChoice, SaveOffer, choose_save_offer
from ppx.rules.subscriptions.store import SubscriptionStore, state_dict

Key = Annotated[str, Field(min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_key: Key | None = None


class RegisterBody(_Body):
    customer_id: Annotated[int, Field(ge=1)]
    product_id: Annotated[int, Field(ge=1)]
    cadence_days: Annotated[int, Field(ge=1, le=365)]
    price: Annotated[float, Field(ge=0.0, le=100_000.0)]
    next_delivery_at: datetime
    status: Literal["active", "paused"] = "active"
    paused_until: datetime | None = None


class PauseBody(_Body):
    resume_on: date


class CadenceBody(_Body):
    cadence_days: Annotated[int, Field(ge=1, le=365)]


class CancelBody(_Body):
    reason: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    decision: Literal["accept", "confirm"] | None = None
    offer_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class SubscriptionActions:
    """Policy + store + optional model client; ``clock`` is injectable for tests."""

    def __init__(
        self,
        policy: Policy,
        store: SubscriptionStore,
        models: ModelClient | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ):
        self.policy = policy
        self.store = store
        self.models = models
        self.clock = clock

    @staticmethod
    def _key(body: _Body, header_key: str | None) -> str:
        key = body.request_key or header_key
        if not key:
            raise TransitionError(
                422, "a request key is required (body request_key or header Idempotency-Key)"
            )
        return key

    def get(self, subscription_id: int, limit: int = 50) -> dict:
        sub = self.store.get(subscription_id)
        return {
            "subscription": state_dict(sub),
            "events": self.store.events(subscription_id, limit),
        }

    def register(self, subscription_id: int, body: RegisterBody, header_key=None) -> dict:
        now = self.clock()
        sub = Subscription(
            subscription_id=subscription_id,
            customer_id=body.customer_id,
            product_id=body.product_id,
            status=body.status,
            cadence_days=body.cadence_days,
            price=body.price,
            next_delivery_at=body.next_delivery_at,
            paused_until=body.paused_until,
        )
        if body.status == "paused" and body.paused_until is None:
            raise TransitionError(422, "a paused subscription needs paused_until")
        key = self._key(body, header_key) if (body.request_key or header_key) else None
        return self.store.upsert(sub, key or f"register:{subscription_id}", now)

    def _simple(self, sid: int, action: str, key: str, fn) -> dict:
        now = self.clock()

        def step(cur: Subscription):
            before = _settled(cur, now)
            ch = fn(before[-1].state if before else cur, now)
            changes = [*before, ch]
            return changes, {"status": ch.state.status, "reasons": [c.reason for c in changes]}

        return self.store.run(sid, action, key, now, step)

    def renew(self, sid: int, body: _Body, header_key=None) -> dict:
        """A delivery went out (the shop's platform reports it)."""
        key = self._key(body, header_key)
        return self._simple(sid, "renew", key, lambda s, now: L.renew(s, now))

    def pause(self, sid: int, body: PauseBody, header_key=None) -> dict:
        key = self._key(body, header_key)
        return self._simple(
            sid, "pause", key, lambda s, now: L.pause(s, body.resume_on, now, self.policy)
        )

    def resume(self, sid: int, body: _Body, header_key=None) -> dict:
        key = self._key(body, header_key)
        return self._simple(sid, "resume", key, lambda s, now: L.resume(s, now, self.policy))

    def skip(self, sid: int, body: _Body, header_key=None) -> dict:
        key = self._key(body, header_key)
        return self._simple(sid, "skip", key, lambda s, now: L.skip_next(s, now, self.policy))

    def change_cadence(self, sid: int, body: CadenceBody, header_key=None) -> dict:
        key = self._key(body, header_key)
        return self._simple(
            sid,
            "cadence",
            key,
            lambda s, now: L.change_cadence(s, body.cadence_days, now, self.policy),
        )

    # --- cancel with a save offer ------------------------------------------------------

    async def _churn(self, sub: Subscription) -> tuple[float, list[dict], str | None]:
        """(risk, reason codes, a note when the policy's fallback risk was used)."""
        fb = self.policy.fallbacks.churn_risk
        if self.models is None:
            return fb, [], f"churn model not configured; policy fallback risk {fb:.2f}"
        got, err = await self.models.churn_explained(
            {"customer_id": sub.customer_id}, self.policy.churn_horizon_days
        )
        if err is not None:
            return fb, [], f"churn model unavailable ({err}); policy fallback risk {fb:.2f}"
        return got[0], got[1], None

    async def _swap_candidates(self, sub: Subscription) -> list[int] | None:
        uses_swap = any(r.offer == "swap" for r in self.policy.save_offers.rules)
        if self.models is None or not uses_swap or not self.policy.save_offers.enabled:
            return None
        k = self.policy.save_offers.swap.candidates + 1
        ids, err = await self.models.recommend({"customer_id": sub.customer_id, "k": k})
        return None if err is not None else ids

    async def cancel(self, sid: int, body: CancelBody, header_key=None) -> dict:
        key = self._key(body, header_key)
        action = f"cancel:{body.decision or 'ask'}"
        done = self.store.answered(key, sid, action)
        if done is not None:
            return done
        if body.decision == "accept":
            step = _settling(self._accept_step(body), self.clock)
            return self.store.run(sid, action, key, self.clock(), step)
        if body.decision == "confirm":
            step = _settling(self._confirm_step(body), self.clock)
            return self.store.run(sid, action, key, self.clock(), step)
        sub = self.store.get(sid)
        L.cancel(sub, self.clock(), None)  # 409 now, before calling any model
        now = self.clock()
        risk, reasons, note, swap = 0.0, [], None, None
        if not _open(sub, now):  # an open offer is shown again without asking the models
            risk, reasons, note = await self._churn(sub)
            swap = await self._swap_candidates(sub)

        def step(cur: Subscription):
            L.cancel(cur, now, None)  # still cancellable under the lock
            if _open(cur, now):
                offer = cur.pending_offer
                ch = Change(
                    cur,
                    "save_offer_shown",
                    {"offer_id": offer["offer_id"]},
                    "open offer shown again",
                )
                return [ch], {"status": "offer", "offer": offer, "reasons": offer["reasons"]}
            c: OfferChoice = choose_save_offer(
                cur, risk, reasons, body.reason, now, self.policy, swap, note
            )
            if c.offer is None:
                ch = L.cancel(cur, now, body.reason)
                return [ch], {
                    "status": "cancelled",
                    "offer": None,
                    "reasons": [*c.reasons, ch.reason],
                }
            offer = c.offer.model_dump(mode="json")
            new = replace(cur, pending_offer=offer, last_offer_at=now)
            detail = {
                "offer_id": c.offer.offer_id,
                "kind": c.offer.kind,
                "reason_group": c.offer.reason_group,
                "cost": c.offer.cost,
                "deferred_revenue": c.offer.deferred_revenue,
                "churn_risk": c.offer.churn_risk,
                "stated_reason": body.reason,
            }
            ch = Change(new, "save_offer_made", detail, c.offer.reasons[-1])
            return [ch], {"status": "offer", "offer": offer, "reasons": c.reasons}

        return self.store.run(sid, action, key, now, _settling(step, lambda: now))

    def _open_offer(self, cur: Subscription, offer_id: str | None, now: datetime) -> dict:
        offer = cur.pending_offer
        if offer is None:
            raise TransitionError(
                409,
                f"subscription {cur.subscription_id} has no open save offer; ask to cancel first",
            )
        if offer_id is not None and offer_id != offer["offer_id"]:
            raise TransitionError(
                422, f"offer_id {offer_id!r} is not the open offer ({offer['offer_id']})"
            )
        if datetime.fromisoformat(offer["expires_at"]) <= now:
            raise TransitionError(
                409, f"save offer {offer['offer_id']} expired at {offer['expires_at']}"
            )
        return offer

    def _accept_step(self, body: CancelBody):
        policy = self.policy

        def step(cur: Subscription):
            now = self.clock()
            if body.offer_id is None:
                raise TransitionError(422, "accepting an offer needs its offer_id")
            L.require(cur, ("active", "paused"), "accept a save offer for")
            offer = self._open_offer(cur, body.offer_id, now)
            o = SaveOffer.model_validate(offer)
            base = replace(cur, pending_offer=None)
            t = o.terms
            if o.kind == "skip":
                effect = L.skip_next(base, now, policy)
            elif o.kind == "pause":
                effect = L.pause(base, date.fromisoformat(t["resume_on"]), now, _lenient(policy, o))
            elif o.kind == "discount":
                effect = L.discount(base, float(t["percent"]), int(t["orders"]))
            elif o.kind == "cadence":
                effect = L.change_cadence(base, int(t["cadence_days"]), now, policy)
            else:
                effect = L.swap_product(base, int(t["product_id"]))
            accepted = Change(
                base,
                "save_offer_accepted",
                {
                    "offer_id": o.offer_id,
                    "kind": o.kind,
                    "cost": o.cost,
                    "deferred_revenue": o.deferred_revenue,
                },
                f"save offer accepted: {o.description}",
            )
            return [accepted, effect], {
                "status": "saved",
                "offer": offer,
                "reasons": [accepted.reason, effect.reason],
            }

        return step

    def _confirm_step(self, body: CancelBody):
        def step(cur: Subscription):
            now = self.clock()
            changes: list[Change] = []
            if cur.pending_offer is not None:
                offer = cur.pending_offer
                declined = replace(cur, pending_offer=None)
                changes.append(
                    Change(
                        declined,
                        "save_offer_declined",
                        {"offer_id": offer["offer_id"], "kind": offer["kind"]},
                        f"save offer declined: {offer['description']}",
                    )
                )
                cur = declined
            ch = L.cancel(cur, now, body.reason)
            changes.append(ch)
            return changes, {
                "status": "cancelled",
                "offer": None,
                "reasons": [c.reason for c in changes],
            }

        return step


def _settled(sub: Subscription, now: datetime) -> list[Change]:
    """The automatic resume of a pause that has run out, if any (recorded first)."""
    ch = L.due_resume(sub, now)
    return [] if ch is None else [ch]


def _settling(step, clock: Callable[[], datetime]):
    """``step`` run on the state after any due automatic resume, which is recorded first."""

    def run(cur: Subscription):
        before = _settled(cur, clock())
        changes, answer = step(before[-1].state if before else cur)
        if before:
            answer = {**answer, "reasons": [before[0].reason, *answer.get("reasons", [])]}
        return [*before, *changes], answer

    return run


def _open(sub: Subscription, now: datetime) -> bool:
    """Whether the subscription has a save offer that has not expired."""
    o = sub.pending_offer
    return o is not None and datetime.fromisoformat(o["expires_at"]) > now


def _lenient(policy: Policy, offer: SaveOffer) -> Policy:
    """The policy with the offer's pause length allowed (the brand chose it, not the user)."""
    rules = policy.subscriptions
    days = int(offer.terms.get("days", rules.max_pause_days))
    if rules.min_pause_days <= days <= rules.max_pause_days:
        return policy
    wider = rules.model_copy(update={"max_pause_days": max(days, rules.max_pause_days)})
    return policy.model_copy(update={"subscriptions": wider})
