"""Request and response schemas of a churn table model, generated from its own columns.

A table model's inputs are whatever the customer table held: its numeric columns
become optional numbers (integers when every training value was whole), its
categorical columns optional strings listing the categories seen in training (an
unseen category is still accepted and scores as "unknown"), and its id column, when it
has one, an optional string echoed in the response. The OpenAPI document of a route
serving the model is generated from these classes.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from ppx.models.http import ResponseModel


class TableResponse(BaseModel):
    """One scored customer of a table model."""

    p_churn: float = Field(..., ge=0, le=1, description="Calibrated probability of churn.")
    id: str | None = Field(None, description="The request's customer id, when sent.")


class TableServedResponse(ResponseModel):
    """One scored customer of a table model, as the model service answers it."""

    id: str | None = Field(None, description="The request's customer id, when sent.")
    p_churn: float = Field(..., ge=0, le=1, description="Calibrated probability of churn.")


def _field_name(column: str, taken: set[str]) -> str:
    """A Python identifier for a column name (the JSON name stays the column's)."""
    name = re.sub(r"\W+", "_", column).strip("_").lower() or "column"
    if name[0].isdigit():
        name = f"c_{name}"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def table_request_model(model) -> type[BaseModel]:
    """The pydantic request model of a table :class:`~ppx.models.churn.model.ChurnModel`."""
    enc, info = model.encoder, model.info
    types = info.get("column_types") or {}
    fields: dict[str, Any] = {}
    taken: set[str] = set()
    example: dict[str, Any] = {}
    id_col = info.get("id_column")
    if id_col:
        fields[_field_name(id_col, taken)] = (
            str | None,
            Field(None, alias=id_col, description="Customer id, echoed in the response."),
        )
    for col in enc.numeric:
        kind = int if types.get(col) == "integer" else float
        med = enc.medians.get(col, 0.0)
        example[col] = kind(round(med)) if kind is int else round(float(med), 4)
        fields[_field_name(col, taken)] = (
            kind | None,
            Field(None, alias=col, description=f"{col} (numeric; blank = missing)."),
        )
    for col in enc.categorical:
        seen = [v for v in enc.vocab.get(col, []) if v != "<blank>"]
        if seen:
            example[col] = seen[0]
        shown = ", ".join(seen[:20]) + (" ..." if len(seen) > 20 else "")
        fields[_field_name(col, taken)] = (
            str | None,
            Field(
                None,
                alias=col,
                description=f"{col} (category; seen in training: {shown}).",
                json_schema_extra={"examples": seen[:5]},
            ),
        )
    name = re.sub(r"\W+", "", (info.get("registered_model") or "table").title()) + "Request"
    config = ConfigDict(
        extra="forbid", populate_by_name=True, json_schema_extra={"examples": [example]}
    )
    return create_model(name, __config__=config, **fields)


def request_rows(requests: list[BaseModel]) -> list[dict[str, Any]]:
    """Validated requests -> rows keyed by the table's own column names."""
    return [r.model_dump(by_alias=True) for r in requests]
