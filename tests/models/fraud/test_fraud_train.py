"""The full pipeline: MLflow run, registered pyfunc, promotion gate, served == offline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlflow
from ppx import tracking
from ppx.data import columns as C
from ppx.features import fraud as F
from ppx.models.fraud.config import FraudConfig
from ppx.models.fraud.pyfunc import REQUEST_EXAMPLE, load_scorer
from ppx.models.fraud.train import prepare, raw_requests, train

CFG = FraudConfig(max_epochs=25, patience=6, lgb_estimators=150)


@pytest.mark.slow
def test_train_registers_gates_and_serves(small_world, mlflow_tmp):
    world, path = small_world
    P = prepare(path, cfg=CFG)
    first = train(path, CFG, progress=False, prepared=P)
    # champion: it beats the hand-written rules on both heads of its own run
    for head in F.KINDS:
        table = first.details["tables"][head]
        assert table["ppx"]["pr_auc"] > table["rules"]["pr_auc"], head
    assert first.promoted and first.version == "1", first.reason
    assert str(tracking.get_alias_version("fraud", "champion").version) == "1"
    # Same data, same seed: the challenger cannot strictly beat the champion.
    second = train(path, CFG, progress=False, prepared=P)
    assert second.version == "2" and not second.promoted
    assert "same holdout" in second.reason
    # The served pyfunc reproduces the offline scores of the test rows.
    te = P.masks["test"]
    model = mlflow.pyfunc.load_model(tracking.model_uri("fraud"))
    served = model.predict(raw_requests(P.requests.loc[te].head(50)))
    scorer = load_scorer(tracking.model_uri("fraud"))
    offline = scorer.score_features(P.X.loc[te].head(50)[scorer.feature_names].to_numpy())
    np.testing.assert_allclose(served["p_fraud"].to_numpy(), offline, rtol=1e-5)
    assert set(served["recommendation"]) <= {"review", "approve"}
    # The documented example request is valid for a known customer.
    example = dict(REQUEST_EXAMPLE)
    example[C.CUSTOMER_ID] = int(P.requests[C.CUSTOMER_ID].iloc[0])
    out = model.predict(pd.DataFrame([example]))
    assert out.loc[0, "head"] == F.CLAIM
