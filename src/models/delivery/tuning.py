"""How the delivery network is tuned: the mean of the 0.5 and 0.9 pinball losses of its
raw quantiles on the validation months' delivered parcels (minimised, Optuna).

Light to import (the spec names :data:`TUNING`); each worker process builds the world's
time-split frames once in :func:`objective`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ppx.models.delivery.config import DeliveryConfig
from ppx.tuning import Tuning


def objective(world_path: Path, base: DeliveryConfig | None = None):
    """``trial -> validation pinball loss`` of the hazard network (the search space and
    loss of ``ppx train delivery --trials``)."""
    from ppx.models.delivery.train import load_data, network_objective

    base = base or DeliveryConfig()
    _tables, _truth, data = load_data(world_path, base, validate=False)
    return network_objective(data, base)


def config_of(base: DeliveryConfig | None, params: dict[str, Any]) -> DeliveryConfig:
    from ppx.models.delivery.train import best_config

    return best_config(base or DeliveryConfig(), params)


def lightgbm_objective(world_path: Path, base: DeliveryConfig | None = None):
    """``trial -> validation pinball loss`` of the LightGBM baseline (same rows, same loss)."""
    from ppx.models.delivery.train import lightgbm_objective as objective_on
    from ppx.models.delivery.train import load_data

    base = base or DeliveryConfig()
    _tables, _truth, data = load_data(world_path, base, validate=False)
    return objective_on(data, base.seed)


#: ``ppx tune delivery --baseline lightgbm``: LightGBM gets the network's budget and loss;
#: its best parameters are what ``ppx bench delivery`` would fit (it tunes its own).
LIGHTGBM = Tuning(
    objective=lightgbm_objective,
    config_of=lambda base, params: dict(params),
    default_config=DeliveryConfig,
    direction="minimize",
    metric="validation pinball loss (0.5 and 0.9)",
    metric_key="validation_pinball",
)

TUNING = Tuning(
    objective=objective,
    config_of=config_of,
    default_config=DeliveryConfig,
    direction="minimize",
    metric="validation pinball loss (0.5 and 0.9)",
    with_epochs=lambda cfg, epochs: replace(cfg, epochs=epochs),
    metric_key="validation_pinball",
    baselines={"lightgbm": LIGHTGBM},
)
