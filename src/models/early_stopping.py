"""Early stopping shared by the models: keep the best weights seen on validation.

Every network here trains epoch by epoch, scores a validation metric after each (or
every few) epochs, keeps a copy of the best weights and stops after ``patience``
validations without an improvement larger than ``min_delta``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch


class EarlyStopping:
    """Tracks the best validation value and the weights that produced it.

    Args:
        direction: ``minimize`` for a loss, ``maximize`` for a score such as PR AUC.
        patience: validations without improvement before :attr:`stop` turns true.
        min_delta: an improvement must beat the best by more than this.
    """

    def __init__(
        self, direction: Literal["minimize", "maximize"], patience: int, min_delta: float = 0.0
    ):
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', not {direction!r}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.direction = direction
        self.patience = patience
        self.min_delta = min_delta
        self.best = math.inf if direction == "minimize" else -math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch: int | None = None
        self.bad = 0
        self.improved = False

    def step(self, value: float, module: torch.nn.Module, epoch: int | None = None) -> bool:
        """Record one validation value (NaN never improves); returns :attr:`stop`."""
        if self.direction == "minimize":
            self.improved = value < self.best - self.min_delta
        else:
            self.improved = value > self.best + self.min_delta
        if self.improved:
            self.best, self.bad, self.best_epoch = value, 0, epoch
            self.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            self.bad += 1
        return self.stop

    @property
    def stop(self) -> bool:
        """True once ``patience`` validations in a row did not improve."""
        return self.bad >= self.patience

    def restore(self, module: torch.nn.Module) -> None:
        """Load the best weights back into ``module`` (no-op if nothing improved)."""
        if self.best_state is not None:
            module.load_state_dict(self.best_state)
