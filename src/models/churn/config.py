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
        seed: seed of weights and batch order (ensemble member i uses ``seed + i``).
        ensemble: number of networks trained from different seeds whose logits are
            averaged (1 = a single network).
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
    ensemble: int = 1

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


def save_params(config: ChurnConfig, path, **extra) -> None:
    """Write a configuration as JSON (``{"config": {...}, **extra}``) for ``--params``."""
    import json
    from pathlib import Path

    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"config": config.to_dict(), **extra}, indent=2, default=str))


def load_params(path) -> ChurnConfig:
    """A :class:`ChurnConfig` from a ``--params`` JSON file.

    Accepts what ``ppx tune churn --out`` writes (``{"config": {...}}``), MLflow's
    ``best_params.json`` of a study run (``{"best_params": {...}}``) or a plain object
    of config fields; fields left out keep their defaults. Raises ValueError naming
    the file and the problem (missing, not JSON, unknown fields, wrong types).
    """
    import json
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        raise ValueError(f"--params file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"--params file {path} is not valid JSON: {err}") from None
    if isinstance(data, dict):
        data = data.get("config", data.get("best_params", data))
    if not isinstance(data, dict):
        raise ValueError(f"--params file {path} must hold a JSON object of config fields")
    fields = {f.name: f for f in dataclasses.fields(ChurnConfig)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(
            f"--params file {path}: unknown churn config fields {unknown}; "
            f"known fields are {sorted(fields)}"
        )
    base = ChurnConfig()
    clean = {}
    for k, v in data.items():
        want = type(getattr(base, k))
        if want is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, want) or isinstance(v, bool):
            raise ValueError(
                f"--params file {path}: field {k!r} must be {want.__name__}, got {v!r}"
            )
        clean[k] = v
    return base.replace(**clean)


def tiny() -> ChurnConfig:
    """A configuration that trains in seconds on a tiny world (tests, the serving fixture)."""
    return ChurnConfig(max_epochs=1)
