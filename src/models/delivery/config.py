"""Hyper-parameters of the delivery model (one dataclass; Optuna tunes a few of them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class DeliveryConfig:
    """Everything that shapes a delivery model run.

    Attributes:
        d_max: last day of the hazard grid; the last bin means "``d_max`` days or more".
        emb_dim: embedding width per categorical feature.
        hidden: widths of the MLP layers.
        dropout: dropout after each hidden layer.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        epochs: maximum epochs (early stopping on the validation likelihood).
        patience: epochs without validation improvement before stopping.
        batch_size: rows per optimiser step.
        transit_rows: in-transit snapshots sampled per training shipment (0 = none);
            they teach the same network to re-estimate from tracking scans.
        target: default promise on-time rate (a policy parameter, in (0, 1)).
        val_months: months before the test period used for early stopping,
            tuning and calibration.
        test_months: last months of the world held out for evaluation.
        threads: torch CPU threads (the benchmark machine has two cores).
        seed: seed for sampling and initialisation.
        strict_fields: categorical request fields whose unseen values are an error;
            other unseen categories fall back to a shared ``<unk>`` embedding.
    """

    d_max: int = 30
    emb_dim: int = 6
    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.05
    lr: float = 3e-3
    weight_decay: float = 1e-5
    epochs: int = 12
    patience: int = 2
    batch_size: int = 2048
    transit_rows: int = 1
    target: float = 0.90
    val_months: int = 3
    test_months: int = 3
    threads: int = 1
    seed: int = 0
    strict_fields: tuple[str, ...] = ("warehouse", "dest_region", "carrier", "service_level")
    extra: dict = field(default_factory=dict)

    def to_params(self) -> dict:
        """Flat dict for ``mlflow.log_params``."""
        d = asdict(self)
        d["hidden"] = "x".join(map(str, self.hidden))
        d["strict_fields"] = ",".join(self.strict_fields)
        d.pop("extra")
        return d


def check_target(target: float, name: str = "promise_target") -> float:
    """A promise target is an on-time probability strictly between 0 and 1."""
    try:
        t = float(target)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a number in (0, 1), got {target!r}") from None
    if not 0.0 < t < 1.0:
        raise ValueError(f"{name}: must be strictly between 0 and 1, got {t}")
    return t


def tiny() -> DeliveryConfig:
    """A configuration that trains in seconds on a tiny world (tests, the serving fixture)."""
    return DeliveryConfig(epochs=1)
