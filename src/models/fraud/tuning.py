"""How the fraud network is tuned: the validation mean PR AUC of its two heads (returns
and claims), Optuna.

Light to import (the spec names :data:`TUNING`); each worker process builds the world's
point-in-time requests and features once in :func:`objective`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ppx.models.fraud.config import FraudConfig
from ppx.tuning import Tuning


def objective(world_path: Path, base: FraudConfig | None = None):
    """``trial -> validation mean PR AUC`` of the two-head network."""
    from ppx.models.fraud.train import network_objective, prepare

    base = base or FraudConfig()
    return network_objective(prepare(world_path, cfg=base), base)


def config_of(base: FraudConfig | None, params: dict[str, Any]) -> FraudConfig:
    return (base or FraudConfig()).replace(**params)


def lightgbm_objective(world_path: Path, base: FraudConfig | None = None):
    """``trial -> validation mean PR AUC`` of the LightGBM baseline (the blend's trees)."""
    from ppx.models.fraud.train import lightgbm_objective as objective_on
    from ppx.models.fraud.train import prepare

    base = base or FraudConfig()
    return objective_on(prepare(world_path, cfg=base), base)


def lightgbm_config_of(base: FraudConfig | None, params: dict[str, Any]) -> FraudConfig:
    """The config with LightGBM's best parameters in its ``lgb_*`` fields."""
    return (base or FraudConfig()).replace(**{f"lgb_{k}": v for k, v in params.items()})


#: ``ppx tune fraud --baseline lightgbm``: LightGBM gets the network's budget and metric;
#: its ``lgb_*`` parameters serve the benchmark's baseline and the blend's trees.
LIGHTGBM = Tuning(
    objective=lightgbm_objective,
    config_of=lightgbm_config_of,
    default_config=FraudConfig,
    direction="maximize",
    metric="validation mean pr_auc (returns, claims)",
    metric_key="validation_mean_pr_auc",
)

TUNING = Tuning(
    objective=objective,
    config_of=config_of,
    default_config=FraudConfig,
    direction="maximize",
    metric="validation mean pr_auc (returns, claims)",
    with_epochs=lambda cfg, epochs: cfg.replace(max_epochs=epochs),
    metric_key="validation_mean_pr_auc",
    baselines={"lightgbm": LIGHTGBM},
)
