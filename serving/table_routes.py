"""Routes of the churn table models: ``POST /churn/table/<name>`` per registered table.

A churn model trained on a user's own customer table (``ppx train churn --table FILE
--target COL --name NAME``, registered as ``ppx-churn-<name>`` and tagged
:data:`~ppx.models.churn.train.TABLE_MODEL_TAG`) takes the table's own columns, so its
request schema exists only once the model does. BentoML fixes a service's API methods
when the class is decorated, so these routes are found when the service module is
imported: the registry is read then, and each table model carrying the serving alias
(``PPX_MODEL_ALIAS``) is loaded once to generate its request model
(:func:`ppx.models.churn.table_schema.table_request_model`). The loaded pyfunc is kept
for the model store, which therefore does not load it a second time.

``PPX_TABLE_MODELS`` chooses the tables: ``auto`` (default) serves every tagged table
model with the alias, ``none`` serves none, ``acme,telco`` serves those (a name as given
to ``--name``). A table model without the alias, or one that fails to load, is not
served and the log says why; the other routes are unaffected.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import ConfigDict, Field, create_model

log = logging.getLogger("ppx.serving")

#: Route prefix of the table models; the model's short name follows.
ROUTE_PREFIX = "/churn/table/"


@dataclass(frozen=True)
class TableModel:
    """A served table model found at import: its route pieces and the loaded pyfunc."""

    registered: str
    short: str
    version: str
    pyfunc: Any
    request: type
    response: type
    id_column: str | None

    @property
    def route(self) -> str:
        return ROUTE_PREFIX + self.short

    @property
    def api_name(self) -> str:
        return "churn_table_" + re.sub(r"\W", "_", self.short)

    def to_frame(self, requests: list[Any]) -> pd.DataFrame:
        """Validated requests -> a frame keyed by the table's own column names."""
        rows = [r.model_dump(by_alias=True, exclude={"explain"}) for r in requests]
        return pd.DataFrame(rows)

    def to_response(self, record: dict[str, Any]) -> dict[str, Any]:
        """The pyfunc's output row -> the response fields (the id column becomes ``id``)."""
        out = {"p_churn": record["p_churn"]}
        if self.id_column and record.get(self.id_column) is not None:
            out["id"] = str(record[self.id_column])
        return out


def short_name(registered: str) -> str:
    """``ppx-churn-acme`` -> ``acme``; another ``ppx-`` name loses only ``ppx-``."""
    if registered.startswith("ppx-churn-"):
        return registered.removeprefix("ppx-churn-")
    return registered.removeprefix("ppx-")


def wanted(setting: str) -> list[str] | None:
    """The registered names ``PPX_TABLE_MODELS`` asks for (None: every tagged one)."""
    from ppx.models.churn.train import table_model_name

    setting = setting.strip()
    if setting.lower() in ("", "auto"):
        return None
    if setting.lower() == "none":
        return []
    names = [n.strip() for n in setting.split(",") if n.strip()]
    return [table_model_name("table.csv", n) for n in names]


def discover(client: Any) -> list[str]:
    """Registered names of every model tagged as a churn table model."""
    from ppx.models.churn.train import TABLE_MODEL_TAG

    key, value = TABLE_MODEL_TAG
    found = []
    for rm in client.search_registered_models(max_results=1000):
        if (rm.tags or {}).get(key) == value:
            found.append(rm.name)
    return sorted(found)


def served_request(churn: Any) -> type:
    """The table's request model plus ``explain``; numbers must be finite."""
    from ppx.models.churn.table_schema import table_request_model

    base = table_request_model(churn)
    explain = (
        bool,
        Field(False, description="Also return the top-3 reason codes for this customer."),
    )
    config = ConfigDict(**{**base.model_config, "allow_inf_nan": False, "str_max_length": 254})
    model = create_model(base.__name__, __base__=base, explain=explain)
    model.model_config = config
    model.model_rebuild(force=True)
    return model


def _load(client: Any, registered: str, alias: str) -> TableModel | None:
    import mlflow
    from ppx.models.churn.table_schema import TableServedResponse

    try:
        mv = client.get_model_version_by_alias(registered, alias)
    except mlflow.exceptions.MlflowException:
        log.warning(
            "table model %s has no version with alias '%s': %s is not served",
            registered,
            alias,
            ROUTE_PREFIX + short_name(registered),
        )
        return None
    pyfunc = mlflow.pyfunc.load_model(f"models:/{registered}/{mv.version}")
    churn = pyfunc.unwrap_python_model().model
    if getattr(churn, "mode", None) != "table":
        log.warning("%s v%s is not a churn table model: not served", registered, mv.version)
        return None
    return TableModel(
        registered=registered,
        short=short_name(registered),
        version=str(mv.version),
        pyfunc=pyfunc,
        request=served_request(churn),
        response=TableServedResponse,
        id_column=churn.info.get("id_column"),
    )


def load_table_models(alias: str, setting: str | None = None) -> list[TableModel]:
    """Every table model to serve under ``alias`` (see the module's docstring).

    Nothing here is fatal: an unreachable registry or a broken model is logged and its
    route left out, so the service's other endpoints still start.
    """
    setting = os.environ.get("PPX_TABLE_MODELS", "auto") if setting is None else setting
    names = wanted(setting)
    if names == []:
        return []
    from mlflow import MlflowClient
    from ppx import tracking

    try:
        tracking.configure()
        client = MlflowClient()
        names = discover(client) if names is None else names
    except Exception as err:
        log.warning("table models not served: cannot read the model registry: %s", err)
        return []
    out = []
    for registered in names:
        try:
            table = _load(client, registered, alias)
        except Exception as err:
            log.warning("table model %s@%s not served: %s", registered, alias, err)
            continue
        if table is not None:
            log.info("serving %s v%s on %s", registered, table.version, table.route)
            out.append(table)
    return out


def table_explainer(python_model: Any) -> Any:
    """Reason codes of a table model (``ppx.explain.reason_codes``, the SHAP fast path).

    A blank numeric cell is explained as the training median, the value the network
    itself imputes (as ``ppx explain churn --model NAME`` does); left blank, the row
    would get no reasons at all.
    """
    from ppx.explain.reason_codes import reason_codes
    from ppx.explain.sources import as_explainable

    churn = as_explainable(python_model)
    medians = {c: churn.encoder.medians.get(c, 0.0) for c in churn.encoder.numeric}

    def explain(frame: pd.DataFrame, k: int) -> list[list[dict]]:
        X = churn.features(frame).fillna(medians)
        return reason_codes(churn, frame, k=k, X=X, model_name="churn")

    return explain
