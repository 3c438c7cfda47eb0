"""``ppx train feedback`` end to end: an MLflow run, a registered model that tags text."""

from __future__ import annotations

import pandas as pd
import pytest

from ppx.models.feedback.config import tiny
from ppx.models.feedback.train import train

pytestmark = pytest.mark.slow  # embeds the tiny world's texts and logs a model


def test_train_registers_a_model_whose_endpoint_tags_new_text(tiny_world, mlflow_tmp):
    import mlflow.pyfunc

    from ppx import tracking

    _, path = tiny_world
    result = train(path, tiny(), progress=False)
    assert result.version == "1"
    assert result.metrics["roc_auc"] > 0.8
    assert result.metrics["theme_f1"] > 0.4
    loaded = mlflow.pyfunc.load_model(f"models:/{tracking.registered_name('feedback')}/1")
    out = loaded.predict(
        pd.DataFrame(
            {
                "text": [
                    "Arrived days after the promised date, slow shipping.",
                    "Delicious, smooth and rich. Will order again!",
                ]
            }
        )
    )
    assert out.loc[0, "theme"] != "" and out.loc[0, "sentiment"] == "negative"
    assert out.loc[1, "sentiment"] == "positive"
    # The logged signature names the missing column before the model runs.
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match=r"missing inputs \['text'\]"):
        loaded.predict(pd.DataFrame({"body": ["no text column"]}))
