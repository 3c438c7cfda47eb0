"""How the recommender is tuned: validation NDCG@10 of the sequence transformer on the
world's validation window (Optuna).

Light to import (the spec names :data:`TUNING`); each worker process builds the world's
train / validation sequences once in :func:`objective`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ppx.models.recs.config import RecsConfig
from ppx.tuning import Tuning


def objective(world_path: Path, base: RecsConfig | None = None):
    """``trial -> validation ndcg_10`` of the transformer."""
    from ppx.models.recs.train import world_objective

    return world_objective(Path(world_path), base or RecsConfig())


def config_of(base: RecsConfig | None, params: dict[str, Any]) -> RecsConfig:
    return (base or RecsConfig()).replace(**params)


TUNING = Tuning(
    objective=objective,
    config_of=config_of,
    default_config=RecsConfig,
    direction="maximize",
    metric="validation ndcg_10",
    with_epochs=lambda cfg, epochs: cfg.replace(epochs=epochs),
    metric_key="validation_ndcg_10",
)
