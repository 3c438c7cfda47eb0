"""Hyper-parameters of the recommender (one dataclass, logged as MLflow params)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class RecsConfig:
    """SASRec-style transformer trained with full-softmax cross-entropy, plus repeat head.

    The defaults follow the SASRec recipe (two causal self-attention blocks, learned
    positions, last 50 events) with the full-softmax cross-entropy loss that makes it
    much stronger than the original sampled binary loss.
    """

    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    max_len: int = 50
    dropout: float = 0.3
    #: "full" softmax over the whole catalogue, or "sampled" (positive + n_negatives)
    loss: str = "full"
    n_negatives: int = 2048
    #: weight of log(1 + training count) added to the transformer's logits (a popularity
    #: prior; 0 = none); chosen on validation from ``pop_weight_grid`` when that is set
    pop_weight: float = 0.0
    pop_weight_grid: tuple[float, ...] = ()
    #: leave-one-out data only: after selection on validation, train a second network on
    #: the training items *plus each user's validation item* (everything known at the
    #: test moment) replaying the selected run's learning-rate schedule up to its best
    #: epoch, and score test with it (see ``train.refit_for_test``); validation figures
    #: always come from the first network
    refit_on_valid: bool = False
    #: with ``refit_on_valid``: score test with the mean of both networks' logits (True)
    #: or with the refitted network alone (False; validation preferred it on Amazon)
    refit_ensemble: bool = False
    #: with ``refit_on_valid``: refitted networks (seeds seed+1, seed+2, ...) whose logits
    #: are averaged; each one after the first only if the time cap leaves room for it
    refit_seeds: int = 1
    lr: float = 1e-3
    #: multiply the learning rate by this after each validation check without a new best
    #: (1.0 = constant learning rate)
    lr_plateau_factor: float = 1.0
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 30
    #: stop when validation NDCG@10 has not improved for this many evaluations
    patience: int = 4
    eval_every: int = 1
    #: validation metric for early stopping / checkpoint choice: "ndcg_10" (full
    #: ranking) or "ndcg_10_s100" (100 sampled negatives, the SASRec paper's protocol)
    select_metric: str = "ndcg_10"
    #: validation users scored at each check (0 = all)
    eval_users: int = 4000
    #: hard wall-clock limit on transformer training, minutes
    max_minutes: float = 18.0
    threads: int = 2
    seed: int = 7
    # --- repeat / replenishment head (only for data with real timestamps) -------------
    use_repeat: bool = True
    repeat_hidden: int = 32
    repeat_epochs: int = 80
    repeat_lr: float = 1e-2
    #: training cutoffs for the repeat head: this many, spaced this many days apart,
    #: ending one horizon before the validation cutoff
    repeat_cutoffs: int = 6
    repeat_spacing_days: float = 30.0
    # --- world protocol ----------------------------------------------------------------
    #: days after a cutoff in which the next purchase is the target
    horizon_days: float = 60.0

    def __post_init__(self):
        if self.select_metric not in ("ndcg_10", "ndcg_10_s100"):
            raise ValueError(
                f"select_metric: must be 'ndcg_10' or 'ndcg_10_s100', got {self.select_metric!r}"
            )
        if self.loss not in ("full", "sampled"):
            raise ValueError(f"loss: must be 'full' or 'sampled', got {self.loss!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **kw) -> RecsConfig:
        return dataclasses.replace(self, **kw)


def tiny() -> RecsConfig:
    """A configuration that trains in seconds on a tiny world (tests, the serving fixture)."""
    return RecsConfig(epochs=1, max_minutes=0.5, repeat_epochs=5)
