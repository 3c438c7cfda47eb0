"""The knobs of a replay and the shape of its result."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of a replay. Defaults are what ``ppx simulate`` uses."""

    seed: int = 7
    sample: float = 1.0  # share of customers replayed (seeded); 1.0 = everyone
    score_noise: float = 0.5  # sd of N(0, s) noise on the logit of stand-in probabilities
    ring_recall: float = 0.8  # share of true ring members the stand-in ring flag finds
    ring_false_positive: float = 0.002  # honest customers wrongly flagged as ring members
    uptake: float = 0.5  # share of customers on whom a retention gesture works
    win_back_recheck_days: int = 30  # a lapsed customer is re-checked this often
    # Save offers (assumption, see ppx.rules.simulator.saves): P(accept) =
    # save_accept_base x (1 or save_mismatch) x (1 - true 90-day churn risk).
    save_accept_base: float = 0.4
    save_mismatch: float = 0.4
    save_horizon_months: int = 12  # saved revenue counts this many months

    def __post_init__(self):
        for name in (
            "sample",
            "ring_recall",
            "ring_false_positive",
            "uptake",
            "save_accept_base",
            "save_mismatch",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {v}")
        if self.sample <= 0:
            raise ValueError("sample must be > 0")
        if self.score_noise < 0:
            raise ValueError(f"score_noise must be >= 0, got {self.score_noise}")
        if self.save_horizon_months < 1:
            raise ValueError("save_horizon_months must be >= 1")
        if self.win_back_recheck_days < 1:
            raise ValueError("win_back_recheck_days must be >= 1")


@dataclass
class SimulationResult:
    """Side-by-side figures; every frame has one column per policy."""

    summary: pd.DataFrame  # metric x policy
    points_by_type: pd.DataFrame  # ledger type x policy (points)
    outcomes: pd.DataFrame  # (request, outcome) x policy (counts)
    messages: pd.DataFrame  # message type x policy (sent)
    notes: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "meta": self.meta,
            "notes": self.notes,
            "summary": {p: {k: plain(v) for k, v in self.summary[p].items()} for p in self.summary},
        }


def plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v)
    return v
