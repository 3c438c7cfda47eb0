"""How the churn network is tuned: validation ROC AUC of the 30-day head (Optuna).

Light to import (the spec names :data:`TUNING`); each worker process loads the world's
splits once in :func:`objective`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ppx.models.churn.config import ChurnConfig, save_params
from ppx.tuning import Tuning


def objective(world_path: Path, base: ChurnConfig | None = None):
    """``trial -> validation roc_auc`` of the survival network's 30-day head."""
    from ppx.data.io import load_tables
    from ppx.metrics import roc_auc
    from ppx.models.churn.config import suggest
    from ppx.models.churn.model import fit_churn_model
    from ppx.models.churn.train import world_encoder, world_splits

    base = base or ChurnConfig()
    sp = world_splits(load_tables(world_path, validate=False), progress=False)
    enc = world_encoder(sp.train)
    obs = sp.val["observed_30"].to_numpy() > 0
    y = sp.val["churn_30"].to_numpy()[obs]
    x_val = enc.numeric_frame(sp.val)

    def score(trial) -> float:
        m = fit_churn_model(
            sp.train, sp.val, enc, suggest(trial, base), [30, 60, 90], "subscriptions"
        )
        return roc_auc(y, m.predict_proba_frame(x_val)[obs, 0])

    return score


def config_of(base: ChurnConfig | None, params: dict[str, Any]) -> ChurnConfig:
    return (base or ChurnConfig()).replace(**params)


TUNING = Tuning(
    objective=objective,
    config_of=config_of,
    default_config=ChurnConfig,
    direction="maximize",
    metric="validation roc_auc (30 days)",
    with_epochs=lambda cfg, epochs: cfg.replace(max_epochs=epochs),
    metric_key="validation_roc_auc",
    save_params=save_params,
    train_hint="ppx train churn --world {world} --params {out}",
)
