"""Explanations: SHAP values, HTML reports for product teams, and fast reason codes.

* :func:`ppx.explain.report.build_report` — the report of a registered model on a world
  (``ppx explain MODEL``, ``make demo``);
* :func:`ppx.explain.report.write_report` — the same for an in-memory model and frame;
* :func:`ppx.explain.reason_codes.reason_codes` — top-k contributions per request, for
  the serving endpoints' ``explain=true``;
* :func:`ppx.explain.shapley.compute_shap` — the SHAP values themselves.

Importing this package is cheap; shap and matplotlib load when first used.
"""
