"""The base class of every served model (each model's ``pyfunc.py``): one wrapped ``model``.

MLflow calls :meth:`ServedModel.load_context` once when a registered version is loaded;
it sets :attr:`ServedModel.model` from :meth:`ServedModel.load_model`: the model object
that predicts and implements :class:`ppx.models.base.ExplainableModel`. Serving,
explanations and the promotion gate reach it the same way for every model:
``pyfunc.unwrap_python_model().model``.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd


class ServedModel(mlflow.pyfunc.PythonModel):
    """Subclasses implement :meth:`load_model`, and :meth:`predict` when the model object's
    ``predict(frame)`` is not the whole story."""

    #: the wrapped model object, set by load_context
    model: Any = None
    #: offers ``predict_columns(columns) -> columns`` (the service's pandas-free fast path)
    columnar: bool = False

    def load_context(self, context) -> None:
        self.model = self.load_model(context.artifacts)

    def load_model(self, artifacts: dict[str, str]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement load_model")

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        return self.model.predict(as_frame(model_input))


def as_frame(model_input: Any) -> pd.DataFrame:
    """One request (dict), a list of them or a frame -> a frame."""
    if isinstance(model_input, pd.DataFrame):
        return model_input
    if isinstance(model_input, dict):
        return pd.DataFrame([model_input])
    return pd.DataFrame(model_input)
