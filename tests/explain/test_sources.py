"""Where report rows come from: world requests shaped like the model's request example."""

from __future__ import annotations

import pandas as pd
import pytest
from explain_toy import LinearModel

from ppx.explain import sources


def test_world_requests_take_example_fields_from_the_tables(tiny_tables, monkeypatch):
    example = {"customer_id": 1, "carrier": "swiftpost", "promise_target": 0.9, "as_of": "x"}
    monkeypatch.setattr(sources, "request_example", lambda name: example)
    raw, note = sources.world_requests("delivery", tiny_tables, 25, seed=1)
    assert list(raw.columns) == ["customer_id", "carrier"]  # optional fields left to the model
    assert len(raw) == 25 and raw["carrier"].nunique() > 1
    filled, note = sources.world_requests("delivery", tiny_tables, 5, seed=1, fill=True)
    assert (filled["promise_target"] == 0.9).all()
    assert (filled["as_of"] == tiny_tables["orders"]["ordered_at"].max()).all()
    assert "promise_target=0.9" in note


def test_unknown_model_is_named(tiny_tables):
    with pytest.raises(KeyError, match="unknown model 'shipping'"):
        sources.candidate_frame("shipping", tiny_tables)


def test_explainable_is_the_model_a_served_model_wraps():
    from ppx.models.served import ServedModel

    inner = LinearModel([1.0])

    class Wrapper(ServedModel):
        def load_model(self, artifacts):
            return inner

    wrapper = Wrapper()
    wrapper.load_context(type("Context", (), {"artifacts": {}})())
    assert sources.as_explainable(wrapper) is inner
    assert sources.as_explainable(inner) is inner
    with pytest.raises(TypeError, match="feature_names"):
        sources.as_explainable(object())


def test_world_features_fall_back_to_the_background_and_say_so(tiny_world):
    model = LinearModel([1.0, 2.0])  # its features() needs x0/x1, which no world table has
    X, note = sources.world_features("churn", model, tiny_world[1], n=10)
    assert note.startswith("the model's training-feature sample")
    pd.testing.assert_frame_equal(X, model.background().astype("float64"))
