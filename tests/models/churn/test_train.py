"""Training on a world logs, registers, gates, and the pyfunc serves customer requests."""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd

from ppx import tracking
from ppx.data import columns as C
from ppx.models.churn.config import ChurnConfig
from ppx.models.churn.pyfunc import REQUEST_EXAMPLE
from ppx.models.churn.train import train_world


def test_train_register_gate_and_serve(tiny_world, mlflow_tmp):
    _, path = tiny_world
    cfg = ChurnConfig(max_epochs=8, patience=3)
    first = train_world(path, config=cfg, progress=False)
    # On the tiny world the network does not beat the run's logistic regression: it is
    # registered, but the first model of the name is not made champion for that.
    assert first.version == "1"
    assert first.metrics["roc_auc"] < first.metrics["logreg_roc_auc"]
    assert not first.promoted and first.alias == "challenger"
    assert "does not beat logreg" in first.reason
    assert tracking.get_alias_version("churn") is None
    model = mlflow.pyfunc.load_model(tracking.model_uri("churn", "challenger"))
    subs = model.unwrap_python_model().model.history["subs"]
    active = subs[subs[C.CANCELLED_AT].isna()][C.CUSTOMER_ID].iloc[0]
    req = pd.DataFrame(
        {C.CUSTOMER_ID: [int(active), 10**9, int(active)], "as_of": [None, None, "2024-06-01"]}
    )
    out = model.predict(req)
    assert list(out["status"][:2]) == ["ok", "unknown_customer"]
    assert 0 < out.loc[0, "p_churn_30"] < out.loc[0, "p_churn_90"] < 1
    assert out.loc[1, "p_churn_30"] != out.loc[1, "p_churn_30"]  # NaN for unknown
    assert set(REQUEST_EXAMPLE) == {C.CUSTOMER_ID, "as_of"}
    # as_of is optional: a request with only the customer id is served.
    only_id = model.predict(pd.DataFrame({C.CUSTOMER_ID: [int(active)]}))
    assert only_id.loc[0, "status"] == "ok"
