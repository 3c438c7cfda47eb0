"""Holdouts and A/B arms: stable assignment, applying arms to decisions, read-outs.

* :mod:`.assign`: which arm a customer is in (a salted hash, stable across processes and
  policy edits that keep the experiment's name, salt and weights) and what that arm does
  to a decision (a holdout loses the experiment's messages and gestures; ``points_scale``
  scales the gestures' points); the decision, its ledger rows and its outbox rows carry
  ``experiment:arm``.
* :mod:`.stats`: difference in means with CUPED on pre-period behaviour, 95 % intervals.
* :mod:`.report`: ``ppx experiment report``: per-customer outcomes from a world or store,
  the ledger and the outbox, and the effect on retention, orders and points cost.
"""

from ppx.rules.experiments.assign import apply_experiments, arm_of

__all__ = ["apply_experiments", "arm_of"]
