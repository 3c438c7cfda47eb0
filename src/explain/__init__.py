"""Explanations: SHAP values, HTML reports for product teams, and fast reason codes.

* :func:`ppx.explain.report.build_report` — the report of a registered model on a world
  (``ppx explain MODEL``, ``make demo``);
* :func:`ppx.explain.report.write_report` — the same for an in-memory model and frame;
* :func:`ppx.explain.reason_codes.reason_codes` — top-k contributions per request, for
  the serving endpoints' ``explain=true``;
* :func:`ppx.explain.shapley.compute_shap` — the SHAP values themselves.

Importing this package is cheap; shap and matplotlib load when first used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: the reason-code fields the serving schema (ppx.models.http ReasonCode) accepts
SERVING_FIELDS = ("feature", "value", "contribution", "text")


def reason_code_explainer(python_model: Any, model_name: str | None = None) -> Callable:
    """The serving fast path: ``explainer(raw_frame, k) -> list[list[dict]]``.

    Called once per loaded model by serving/model_service.py. ``python_model`` is the
    unwrapped pyfunc PythonModel (or the ExplainableModel itself); the model name, used
    for the wording of ``text``, is taken from its module (``ppx.models.<name>.pyfunc``)
    when not given. Each dict has the serving schema's fields only
    (feature, value, contribution, text); see :func:`ppx.explain.reason_codes.reason_codes`
    for the method and the full dicts.
    """
    from ppx.explain.reason_codes import reason_codes, references
    from ppx.explain.sources import as_explainable

    model = as_explainable(python_model)
    if model_name is None:
        parts = type(python_model).__module__.split(".")
        model_name = parts[2] if len(parts) > 2 and parts[:2] == ["ppx", "models"] else ""
    references(model)  # draw and cache the reference rows at load time, not per request

    def explain(raw: Any, k: int = 3) -> list[list[dict]]:
        codes = reason_codes(model, raw, k=k, model_name=model_name)
        return [[{f: c[f] for f in SERVING_FIELDS} for c in row] for row in codes]

    return explain
