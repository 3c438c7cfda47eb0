"""Feature dictionaries: every registered model declares one, and user tables get labels
from their column names, overridable in a small YAML file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppx.explain.dictionary import for_model, label_from_name, table_dictionary
from ppx.models import registry


def _static_inputs(name: str) -> list[str]:
    """The inputs of the four models, from their feature modules (no training needed)."""
    if name == "delivery":
        from ppx.features import delivery as fd
        from ppx.models.delivery.model import CATS

        return [f"{c}_code" for c in CATS] + list(fd.NUMERIC)
    if name == "churn":
        from ppx.features import churn as F

        return [*F.MODEL_NUMERIC_FEATURES, *F.CATEGORICAL_FEATURES]
    if name == "fraud":
        from ppx.features import fraud as F

        return list(F.FEATURE_NAMES)
    if name == "recs":
        from ppx.models.recs.serve import EXPLAIN_FEATURES

        return list(EXPLAIN_FEATURES)
    return []


@pytest.mark.parametrize("name", registry.explainable())
def test_every_registered_model_labels_every_input(name):
    d = registry.get(name).feature_dictionary()
    assert d is not None, f"{name} declares no feature dictionary"
    assert d.missing(_static_inputs(name)) == []
    for f in d.fields.values():
        assert "_" not in f.label, f"{name}: label {f.label!r} looks like a column name"
    assert registry.get(name).horizon, f"{name} does not say what its score refers to"


def test_a_model_that_is_not_tabular_says_how_it_is_explained():
    text_models = [s for s in registry.specs() if not s.tabular]
    assert [s.name for s in text_models] == ["feedback"]
    for spec in text_models:
        assert spec.name not in registry.explainable()
        assert spec.explain_note and spec.horizon


def test_delivery_inputs_are_shown_unscaled_and_decoded():
    from ppx.features import delivery as fd

    d = registry.get("delivery").feature_dictionary()

    class Fitted:
        vocab = {"carrier": ["<unk>", "SwiftPost", "ParcelCo"], "weekday_cat": ["0", "4"]}
        num_mean = np.zeros(len(fd.NUMERIC))
        num_std = np.full(len(fd.NUMERIC), 2.0)

    names = ["carrier_code", "weekday_cat_code", "log_distance", "distance_missing"]
    X = pd.DataFrame(
        {
            "carrier_code": [1.0, 2.0],
            "weekday_cat_code": [1.0, 0.0],
            "log_distance": [np.log1p(820.0) / 2, 0.0],
            "distance_missing": [0.0, 0.5],
        }
    )
    out = d.originals(Fitted(), X[names])
    assert out["carrier"].tolist() == ["SwiftPost", "ParcelCo"]
    assert out["weekday"].tolist() == ["Friday", "Monday"]
    assert out["distance"].iloc[0] == pytest.approx(820.0)
    assert np.isnan(out["distance"].iloc[1])  # flagged missing: (0.5 * 2 + 0) > 0.5
    assert d.fields["distance"].describe(820.0) == "distance from the warehouse: 820 km"


def test_labels_come_from_column_names():
    assert label_from_name("late_2m") == "late in the last 2 months"
    assert label_from_name("TotalCharges") == "total charges"
    assert label_from_name("is_senior") == "senior"


def test_a_users_table_gets_labels_units_and_yaml_overrides(tmp_path):
    frame = pd.DataFrame(
        {"tenure_days": [10, 400], "PaperlessBilling": [0, 1], "Contract": ["monthly", "year"]}
    )
    (tmp_path / "labels.yaml").write_text(
        "tenure_days: {label: days as a customer, decimals: 0}\nContract: contract type\n"
    )
    d = table_dictionary(
        list(frame), tmp_path / "labels.yaml", frame=frame, categorical=["Contract"]
    )
    assert d.fields["tenure_days"].describe(400) == "days as a customer: 400 days"
    assert d.fields["PaperlessBilling"].describe(1) == "paperless billing: yes"
    assert d.fields["Contract"].label == "contract type"
    assert d.columns["Contract"].transform == "code"

    class TableModel:
        feature_names = list(frame)

        class encoder:  # noqa: N801 - the shape of a table model's encoder
            categorical = ["Contract"]
            vocab = {"Contract": ["monthly", "year"]}

    X = pd.DataFrame({"tenure_days": [10.0], "PaperlessBilling": [1.0], "Contract": [2.0]})
    assert d.originals(TableModel(), X)["Contract"].tolist() == ["year"]
    # a model without its own dictionary: labels from its input names
    assert for_model(TableModel(), "").fields["PaperlessBilling"].label == "paperless billing"


def test_bad_overrides_name_the_column(tmp_path):
    with pytest.raises(ValueError, match="'tenure' is not in the table"):
        table_dictionary(["tenure_days"], {"tenure": {"label": "x"}})
    with pytest.raises(ValueError, match="unknown key"):
        table_dictionary(["tenure_days"], {"tenure_days": {"colour": "red"}})
    with pytest.raises(ValueError, match="does not exist"):
        table_dictionary(["tenure_days"], tmp_path / "nope.yaml")
