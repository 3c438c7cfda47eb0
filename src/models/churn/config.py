"""Hyper-parameters of the churn network and its training loop."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class ChurnConfig:
    """Defaults were chosen on the validation split of the default world and on Telco.

    Attributes:
        hidden: width of the deep part's hidden layers.
        depth: number of hidden layers (0 leaves only the wide, logistic part).
        dropout: dropout after each hidden layer.
        emb_dim: largest embedding size of a categorical column (small columns get
            fewer dimensions: ``min(emb_dim, (cardinality + 1) // 2)``).
        lr: Adam learning rate.
        weight_decay: L2 penalty (AdamW), the main regulariser on small tables.
        batch_size: mini-batch size.
        max_epochs: upper bound on epochs; early stopping usually ends sooner.
        patience: epochs without validation improvement before stopping.
        pos_weight_power: class-imbalance handling; positives are weighted by
            ``(negatives / positives) ** pos_weight_power`` in the loss (0 = none). The
            calibration step afterwards removes the bias this weighting introduces.
        calibration: ``platt`` (temperature and bias on the logit, fitted on
            validation), ``isotonic`` or ``none``.
        seed: seed of weights and batch order.
        threads: torch CPU threads (the benchmark machine has two cores).
    """

    hidden: int = 32
    depth: int = 1
    dropout: float = 0.3
    emb_dim: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-2
    batch_size: int = 256
    max_epochs: int = 60
    patience: int = 6
    pos_weight_power: float = 0.5
    calibration: str = "platt"
    seed: int = 0
    threads: int = 1

    def replace(self, **changes) -> ChurnConfig:
        """A copy with some fields changed (Optuna trials use this)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ChurnConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def suggest(trial, base: ChurnConfig | None = None) -> ChurnConfig:
    """The Optuna search space of the churn network."""
    base = base or ChurnConfig()
    return base.replace(
        hidden=trial.suggest_categorical("hidden", [16, 32, 64, 128]),
        depth=trial.suggest_int("depth", 0, 3),
        dropout=trial.suggest_float("dropout", 0.0, 0.4),
        emb_dim=trial.suggest_int("emb_dim", 2, 8),
        lr=trial.suggest_float("lr", 5e-4, 1e-2, log=True),
        weight_decay=trial.suggest_float("weight_decay", 1e-5, 3e-2, log=True),
        pos_weight_power=trial.suggest_float("pos_weight_power", 0.0, 1.0),
    )
