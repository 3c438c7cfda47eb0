"""One story: sentences, tables and API reasons come from the same field attributions,
in the model's units, with labels instead of input names and directions that agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from story_checks import (
    check_directions,
    check_originals,
    check_reasons,
    check_texts,
    visible_texts,
)

from ppx.explain.dictionary import Column, Field, build
from ppx.explain.shapley import ShapResult
from ppx.explain.story import (
    field_direction,
    group,
    importance_rows,
    summary_sentences,
    units_for,
)


class _Model:
    """Inputs: a log distance (with a missing flag), a one-hot carrier pair, a count."""

    feature_names = ["log_km", "km_missing", "carrier_a", "carrier_b", "late_n"]
    feature_dictionary = build(
        [
            Field("km", "distance from the warehouse", unit="km", decimals=0),
            Field("carrier", "carrier", kind="category"),
            Field("late", "late deliveries in the last 2 months", kind="count"),
        ],
        [
            Column("log_km", "km", "log1p"),
            Column("km_missing", "km", "missing"),
            Column("carrier_a", "carrier", "onehot", "SwiftPost"),
            Column("carrier_b", "carrier", "onehot", "ParcelCo"),
            Column("late_n", "late"),
        ],
    )


def _result(n: int = 400, seed: int = 0) -> ShapResult:
    rng = np.random.default_rng(seed)
    km = rng.uniform(10, 2000, n)
    a = rng.integers(0, 2, n).astype(float)
    late = rng.integers(0, 4, n).astype(float)
    data = pd.DataFrame(
        {
            "log_km": np.log1p(km),
            "km_missing": np.zeros(n),
            "carrier_a": a,
            "carrier_b": 1 - a,
            "late_n": late,
        }
    )
    values = np.column_stack(
        [
            0.5 * (np.log1p(km) - np.log1p(km).mean()),  # farther: longer
            np.zeros(n),
            0.3 * (a - a.mean()),  # half of the carrier effect on each column
            0.3 * (a - a.mean()),
            -0.2 * (late - late.mean()),
        ]
    )
    scores = 3.0 + values.sum(axis=1)
    return ShapResult(values, 3.0, data, scores, list(data), "test", 0.0, 10)


def test_one_hot_groups_and_logs_become_one_field_with_its_original_value():
    fr = group(_result(), _Model(), "delivery")
    assert fr.fields == ["km", "carrier", "late"]
    # the group's attributions are summed onto the field: nothing is lost
    assert np.allclose(fr.values.sum(axis=1), _result().values.sum(axis=1))
    assert fr.originals["km"].between(10, 2000).all()  # kilometres, not their logarithm
    assert set(fr.originals["carrier"]) == {"SwiftPost", "ParcelCo"}
    check_originals(fr, "toy")


def test_delivery_effects_are_days_that_lengthen_or_shorten_the_promise():
    fr = group(_result(), _Model(), "delivery")
    u = fr.units
    assert (u.unit, u.scale) == ("days", 1.0)
    assert u.verb(0.4) == "lengthens the promise" and u.verb(-0.4) == "shortens the promise"
    d = field_direction(fr, "km")
    assert d.sign == 1 and d.high_effect > 0 > d.low_effect
    assert field_direction(fr, "late").sign == -1
    cat = field_direction(fr, "carrier")
    assert cat.categorical and cat.high_label == "SwiftPost"


def test_sentences_and_table_agree_on_every_field_and_name_no_input():
    fr = group(_result(), _Model(), "delivery")
    summary = summary_sentences(fr, "orders")
    table = importance_rows(fr)
    check_directions(fr, summary, table, "toy")
    check_texts(
        [*summary, *table.drop(columns=["field"]).to_numpy().ravel()], _Model.feature_names, "toy"
    )
    text = " ".join(summary)
    assert "Higher distance from the warehouse lengthens the promise" in text
    assert "Higher late deliveries in the last 2 months shortens the promise" in text
    assert "Carrier: SwiftPost lengthens the promise most" in text


def test_a_contradicting_sentence_is_caught():
    fr = group(_result(), _Model(), "delivery")
    summary = summary_sentences(fr, "orders")
    wrong = [s.replace("lengthens", "shortens") for s in summary]
    with pytest.raises(AssertionError):
        check_directions(fr, wrong, importance_rows(fr), "toy")
    with pytest.raises(AssertionError):
        check_texts(["log distance of at least -1.34"], [], "toy")
    with pytest.raises(AssertionError):
        check_texts(["carrier_code = 1"], ["carrier_code"], "toy")


def test_churn_and_fraud_speak_in_probability_points_with_their_horizon():
    churn = units_for(object(), "churn", np.array([0.1, 0.2]))
    assert churn.unit == "points" and churn.scale == 100
    assert churn.headline() == "churn risk (of cancelling within 30 days)"
    assert churn.amount(0.041) == "4.1 points"

    class Horizons:
        horizons = [60, 90]

    assert "within 60 days" in units_for(Horizons(), "churn", np.array([0.1])).headline()
    assert units_for(object(), "fraud", np.array([0.5])).unit == "points"
    assert units_for(object(), "recs", np.array([3.2])).unit == "score points"


def test_a_customer_table_model_names_its_own_target_column_not_a_horizon():
    class TableModel:
        mode = "table"
        horizons = [0]
        info = {"target": "Churn", "target_info": {"positive_label": "Yes"}}

    units = units_for(TableModel(), "churn", np.array([0.1, 0.7]))
    assert units.headline() == "churn risk (Churn = Yes)"
    assert "0 days" not in units.headline()


def test_toy_report_passes_every_check(toy_report, toy_model, tiny_tables):
    from ppx.explain.reason_codes import reason_codes

    page = toy_report.path.read_text()
    fr = toy_report.fields
    check_texts(visible_texts(page), list(toy_model.feature_names), "toy report")
    check_directions(fr, toy_report.summary, importance_rows(fr), "toy report")
    raw = toy_model.explain_requests(tiny_tables, 20, 1)
    check_reasons(reason_codes(toy_model, raw, model_name="churn"), fr, "toy reasons")
