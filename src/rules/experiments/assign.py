"""Stable, hashed assignment of customers to arms, and what an arm does to a decision.

Assignment: ``u = SHA-256("<salt>:<customer_id>")`` read as a number in [0, 1); the arm is
the one whose cumulative weight first exceeds ``u``. The salt is the experiment's name
unless set, so two experiments split customers independently, and the same customer
always gets the same arm in every process, on every replay, without a table of
assignments. Weights are normalised, so ``{holdout: 1, treatment: 9}`` is a 10 % holdout.

Applying arms is a pure post-processing step of a decision (the decision functions stay
unaware of experiments): a message of a kind the experiment covers is removed for a
held-out customer (listed under ``suppressed`` with the reason) and tagged with the arm
otherwise; a points award of a covered ledger type is removed for a held-out customer and
scaled by the arm's ``points_scale`` otherwise. Reversals are never touched (a refund
takes back what the order earned, whatever the arm).
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime

from ppx.rules.policy import Experiment, Policy
from ppx.rules.types import Decision, SuppressedMessage


def unit_hash(salt: str, customer_id: int) -> float:
    """A uniform number in [0, 1) from the salt and the customer id."""
    digest = hashlib.sha256(f"{salt}:{int(customer_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arm_of(experiment: Experiment, customer_id: int) -> str:
    """The arm a customer is in (stable across processes and replays)."""
    u = unit_hash(experiment.salt or experiment.name, customer_id)
    total = sum(a.weight for a in experiment.arms)
    acc = 0.0
    for a in experiment.arms:
        acc += a.weight / total
        if u < acc:
            return a.name
    return experiment.arms[-1].name


def running(experiment: Experiment, at: datetime) -> bool:
    d = at.date()
    return (experiment.starts is None or d >= experiment.starts) and (
        experiment.ends is None or d <= experiment.ends
    )


def apply_experiments(decision: Decision, policy: Policy, at: datetime) -> Decision:
    """The decision as the customer's arms change it (unchanged without experiments)."""
    if not policy.experiments:
        return decision
    messages = list(decision.messages)
    actions = list(decision.actions)
    suppressed = list(decision.suppressed)
    reasons = list(decision.reasons)
    arms = dict(decision.arms)
    for exp in policy.experiments:
        if not running(exp, at):
            continue
        kinds, gestures = set(exp.messages), set(exp.gestures)
        touches = any(m.message_type in kinds for m in messages) or any(
            a.kind == "award_points" and a.ledger_type in gestures for a in actions
        )
        if not touches:
            continue
        arm_name = arm_of(exp, decision.customer_id)
        arm = next(a for a in exp.arms if a.name == arm_name)
        tag = f"{exp.name}:{arm_name}"
        arms[exp.name] = arm_name
        kept = []
        for m in messages:
            if m.message_type not in kinds:
                kept.append(m)
            elif arm.holdout:
                why = f"{m.message_type} not sent: customer is in holdout arm {tag}"
                suppressed.append(SuppressedMessage(message_type=m.message_type, reason=why))
                reasons.append(why)
            else:
                kept.append(m.model_copy(update={"arm": tag}))
        messages = kept
        kept_actions = []
        for a in actions:
            covered = a.kind == "award_points" and a.ledger_type in gestures
            if not covered:
                kept_actions.append(a)
            elif arm.holdout:
                reasons.append(
                    f"{a.points} {a.ledger_type} points not awarded: customer is in holdout "
                    f"arm {tag}"
                )
            else:
                pts = int(math.floor(a.points * arm.points_scale + 1e-9))
                if pts <= 0:
                    reasons.append(f"{a.ledger_type} points scaled to 0 in arm {tag}")
                    continue
                if pts != a.points:
                    reasons.append(
                        f"{a.ledger_type} points x{arm.points_scale:g} in arm {tag}: "
                        f"{a.points} -> {pts}"
                    )
                kept_actions.append(a.model_copy(update={"points": pts, "arm": tag}))
        actions = kept_actions
    return decision.model_copy(
        update={
            "messages": messages,
            "actions": actions,
            "suppressed": suppressed,
            "reasons": reasons,
            "arms": arms,
        }
    )
