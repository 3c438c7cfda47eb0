"""What every model package offers the rest of ppx (serving, explanations, rules).

Each ``ppx.models.<name>.pyfunc`` module defines an ``mlflow.pyfunc.PythonModel`` whose
``predict`` takes raw request facts (one row per request) and returns a DataFrame of
outputs. Behind it, the loaded model object also implements :class:`ExplainableModel`
so SHAP reports and reason codes work the same way for all four models.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd


@runtime_checkable
class ExplainableModel(Protocol):
    """The narrow surface SHAP needs: numeric features in, one headline score out."""

    #: Names of the numeric model inputs, in column order.
    feature_names: list[str]

    def features(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Raw request rows -> numeric feature frame (columns = feature_names)."""
        ...

    def score_features(self, X: np.ndarray) -> np.ndarray:
        """Numeric feature matrix -> the headline score per row (1-D float array)."""
        ...

    def background(self) -> pd.DataFrame:
        """A small sample of training features, the SHAP background."""
        ...
