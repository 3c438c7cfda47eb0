"""Warm-up requests of a loaded model: its own logged input example first.

The model service scores one request per endpoint right after loading, so the lazy
caches (snapshot look-ups, numpy weights) exist before the garbage collector's freeze
and before the first caller. The documented request examples name customers, products
and carriers of the demo world; a model trained on a brand's own store may know none of
them, and a churn table model's columns are the brand's table's. So each model is warmed
with the input example MLflow logged beside it (every ``train`` logs one that the model
accepts) and the endpoint's documented example is the fallback only for a model that
logged none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

#: Where a warm-up body came from, as the log says it.
OWN, DOCUMENTED = "its logged input example", "the documented example"


def request_fields(request: type) -> set[str]:
    """The JSON names a request model accepts (a table model's fields carry aliases)."""
    return {f.alias or name for name, f in request.model_fields.items()}


def logged_bodies(
    example: Any, request: type, constants: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """A model's logged input example -> the request bodies of one endpoint.

    The example is the pyfunc's raw-facts frame (``PyFuncModel.input_example``): rows
    whose constant columns (fraud's ``kind``) belong to another endpoint are left out,
    and each kept row keeps the request's own fields with a value (a frame of return and
    claim rows has every column of both). Values come back in JSON types: the frame was
    read from JSON, and pandas may have turned whole numbers into floats and timestamps
    into ``Timestamp`` on the way.
    """
    if example is None:
        return []
    frame = example if isinstance(example, pd.DataFrame) else pd.DataFrame(example)
    for column, value in (constants or {}).items():
        if column in frame.columns:
            frame = frame[frame[column] == value]
    rows = json.loads(frame.to_json(orient="records", date_format="iso"))
    accepted = request_fields(request) - set(constants or {})
    return [{k: v for k, v in row.items() if k in accepted and v is not None} for row in rows]


def documented_bodies(request: type, example: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request model's OpenAPI examples (the endpoint's example when it has none)."""
    extra = request.model_config.get("json_schema_extra") or {}
    return [dict(b) for b in extra.get("examples", [example])]


def warmup_requests(
    pyfunc: Any, request: type, example: Mapping[str, Any], constants: Mapping[str, Any]
) -> tuple[str, list[dict[str, Any]]]:
    """(source, bodies): the model's own logged example for this endpoint when it has
    one, else the documented examples."""
    own = logged_bodies(getattr(pyfunc, "input_example", None), request, constants)
    if own:
        return OWN, own
    return DOCUMENTED, documented_bodies(request, example)


def validate(request: type, body: Mapping[str, Any], source: str) -> Any:
    """A warm-up body -> the validated request.

    A logged example went through a DataFrame, whose types are looser than the strict
    JSON a caller sends (an id column with a gap is float), so it is validated in lax
    mode; the documented examples pass the strict model as callers' requests do.
    """
    return request.model_validate(dict(body), strict=False if source == OWN else None)
