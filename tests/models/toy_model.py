"""A fifth model for the registry's acceptance test: everything it needs, in one module.

``toy`` scores how likely an order is a high-value one (above the median order value of
the training months) from its value and discount, with a scikit-learn logistic
regression. It is deliberately small, but it goes through the whole contract: a train
that logs ``ppx-toy`` to MLflow, registers a served model and runs the promotion gate
against a constant baseline, an endpoint with its request/response schemas and one
example, explain candidates from a world's orders, and CLI commands.
"""

from __future__ import annotations

import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from pydantic import Field

from ppx.models.http import RequestModel, ResponseModel
from ppx.models.served import ServedModel
from ppx.models.spec import EndpointSpec, ModelSpec

FEATURES = ["order_value", "discount"]
EXAMPLE = {"order_value": 42.0, "discount": 0.0}


@dataclass(frozen=True)
class ToyConfig:
    C: float = 1.0


class ToyRequest(RequestModel):
    """One order to score."""

    order_value: float = Field(ge=0, le=1_000_000)
    discount: float = Field(default=0.0, ge=0, le=1_000_000)


class ToyResponse(ResponseModel):
    p_high_value: float = Field(description="P(order value above the training median).")


class ToyModel:
    """Logistic regression over two order facts; implements ExplainableModel."""

    feature_names = FEATURES

    def __init__(self, lr, background: pd.DataFrame):
        self.lr = lr
        self._background = background

    def features(self, raw: pd.DataFrame) -> pd.DataFrame:
        raw = pd.DataFrame(raw)
        if "discount" not in raw:
            raw = raw.assign(discount=0.0)
        return raw[FEATURES].astype(float).fillna(0.0)

    def score_features(self, X) -> np.ndarray:
        return self.lr.predict_proba(np.asarray(X, dtype=float))[:, 1]

    def background(self) -> pd.DataFrame:
        return self._background

    def predict(self, raw: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"p_high_value": self.score_features(self.features(raw))})


class ToyPyfunc(ServedModel):
    def load_model(self, artifacts: dict[str, str]) -> ToyModel:
        return pickle.loads(Path(artifacts["model"]).read_bytes())


def _frames(world_path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from ppx.data.io import load_tables

    orders = load_tables(world_path, validate=False)["orders"].sort_values("ordered_at")
    cut = int(len(orders) * 0.75)
    return orders.iloc[:cut], orders.iloc[cut:]


def _labels(frame: pd.DataFrame, median: float) -> np.ndarray:
    return (frame["order_value"].to_numpy() > median).astype(int)


def train(world_path, cfg: ToyConfig | None = None, register: bool = True, progress: bool = True):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from ppx import tracking

    cfg = cfg or ToyConfig()
    tracking.configure()
    train_rows, test_rows = _frames(world_path)
    median = float(train_rows["order_value"].median())
    X = train_rows[FEATURES].astype(float)
    lr = LogisticRegression(C=cfg.C, max_iter=500).fit(X.to_numpy(), _labels(train_rows, median))
    model = ToyModel(lr, X.sample(min(50, len(X)), random_state=0).reset_index(drop=True))
    y = _labels(test_rows, median)
    auc = float(roc_auc_score(y, model.score_features(test_rows[FEATURES])))
    metrics = {"roc_auc": auc, "constant_roc_auc": 0.5}

    def score_champion(uri: str) -> float:
        import mlflow

        out = mlflow.pyfunc.load_model(uri).predict(test_rows[FEATURES])
        return float(roc_auc_score(y, out["p_high_value"]))

    with tracking.start_run("toy", run_name="train", world_path=world_path, dataset=X) as run:
        import mlflow

        mlflow.log_metrics(metrics)
        version = gate = None
        if register:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.pkl"
                path.write_bytes(pickle.dumps(model))
                version = tracking.log_pyfunc_model(
                    "toy",
                    ToyPyfunc(),
                    artifacts={"model": str(path)},
                    input_example=pd.DataFrame([EXAMPLE]),
                )
            gate = tracking.promote(
                "toy",
                version,
                "roc_auc",
                auc,
                score_champion,
                [tracking.BaselineCheck("toy", "roc_auc", auc, "constant", 0.5)],
                heads=("toy",),
            )
    return tracking.train_result("toy", run.info.run_id, metrics, version, gate)


def evaluate(world_path, alias: str = "champion") -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    import mlflow
    from ppx import tracking

    train_rows, test_rows = _frames(world_path)
    out = mlflow.pyfunc.load_model(tracking.model_uri("toy", alias)).predict(test_rows[FEATURES])
    y = _labels(test_rows, float(train_rows["order_value"].median()))
    return {"roc_auc": float(roc_auc_score(y, out["p_high_value"]))}


def train_toy(world: Path = typer.Option(..., "--world", help="World folder.")) -> None:
    """Train the toy model, log it to ppx-toy, register it and run the gate."""
    from ppx.terminal import print_train_result

    print_train_result(train(world))


def evaluate_toy(
    world: Path = typer.Option(..., "--world", help="World folder."),
    alias: str = typer.Option("champion", "--alias"),
) -> None:
    """Score the registered toy model on the world's last months."""
    from ppx.terminal import print_table

    print_table("ppx-toy", [evaluate(world, alias)])


def register_commands(groups: dict) -> None:
    groups["train"].command("toy")(train_toy)
    groups["evaluate"].command("toy")(evaluate_toy)


SPEC = ModelSpec(
    name="toy",
    summary="Toy: P(high-value order) from its value and discount.",
    gate_metric="roc_auc",
    heads=("toy",),
    config=ToyConfig,
    train=train,
    evaluate=evaluate,
    served_model=ToyPyfunc,
    endpoints=(
        EndpointSpec(
            name="toy_score",
            route="/toy/score",
            request=ToyRequest,
            response=ToyResponse,
            example=EXAMPLE,
            doc="Probability an order is a high-value one.",
        ),
    ),
    explain_candidates=lambda tables: tables["orders"],
    test_config=ToyConfig,
    register_commands=register_commands,
    demo=train,
    score_words=("high-value probability", "", "orders"),
)
