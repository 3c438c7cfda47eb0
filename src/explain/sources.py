"""Where a report's model and rows come from: the MLflow registry and a world's tables.

Loading: the pyfunc of ``ppx-<model>`` at the champion alias (or the model logged in a
given run) is loaded and unwrapped; the ExplainableModel is the unwrapped PythonModel
itself or, for a :class:`~ppx.models.served.ServedModel`, the ``model`` it wraps.

Rows: a report explains the model on a sample of a world, through the same path a served
request takes: raw request rows -> ``model.features(raw)``. The raw rows are built from
the world's tables with the columns of the model's pyfunc ``REQUEST_EXAMPLE``: each model
has a candidate frame (orders joined with shipments for ``delivery``, subscriptions for
``churn``, returns and claims for ``fraud``, customers for ``recs``), columns of the
example found there are taken from rows sampled among the most recent decisions of the world (the
served model's history snapshot is as of the end of the world) and optional fields are left to
the model's defaults (if the model then refuses the rows, time-of-decision columns such
as ``as_of`` are set to the end of the world and other fields keep the example's value). A model object can take over with an optional method
``explain_requests(tables, n, seed) -> DataFrame`` of raw rows. If no raw rows can be
built, the report falls back to the model's own training-feature sample and says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.explain.shapley import align_features, check_model

log = logging.getLogger(__name__)

#: request columns that mean "the moment of the decision"
TIME_KEYS = ("as_of", "now", "at", "cutoff", "request_time", "requested_at_time")
#: column of a candidate frame holding the moment of the decision, when rows have one
DECISION_TIME = "_decision_time"
#: world requests are sampled among the most recent ``RECENT_FACTOR * n`` decisions
RECENT_FACTOR = 4


@dataclass
class LoadedModel:
    model: object
    uri: str
    version: str | None
    run_id: str | None
    world_path: Path | None


def as_explainable(obj: object) -> object:
    """The ExplainableModel a loaded served model wraps (``.model``), or ``obj`` itself."""
    from ppx.models.served import ServedModel

    if isinstance(obj, ServedModel):
        obj = obj.model
    return check_model(obj)  # raises a TypeError naming what is missing


def load_explainable(
    model_name: str, run_id: str | None = None, alias: str | None = None
) -> LoadedModel:
    """Load ``ppx-<model_name>`` (champion, another alias, or the model of ``run_id``)."""
    import mlflow
    from mlflow import MlflowClient
    from ppx import tracking
    from ppx.config import get_settings

    tracking.configure()
    client = MlflowClient()
    name = tracking.registered_name(model_name)
    version = None
    if run_id:
        try:
            run = client.get_run(run_id)
        except mlflow.exceptions.MlflowException as err:
            raise ValueError(f"run {run_id!r} not found in the tracking store: {err}") from err
        uri = f"runs:/{run_id}/model"
    else:
        alias = alias or get_settings().model_alias
        mv = tracking.get_alias_version(model_name, alias)
        if mv is None:
            table_name = name.removeprefix("ppx-churn-") if name.startswith("ppx-churn-") else ""
            train = (
                f"`ppx train churn --table FILE --target COLUMN --name {table_name}`"
                if table_name
                else f"`ppx train {model_name}` or `make demo`"
            )
            raise ValueError(
                f"{name} has no version with alias {alias!r} "
                f"({tracking.missing_alias_hint(model_name, alias)}); train it first "
                f"({train}), or pass --run RUN_ID"
            )
        version, run_id = str(mv.version), mv.run_id
        uri = f"models:/{name}/{version}"
        run = client.get_run(run_id) if run_id else None
    try:
        pyfunc = mlflow.pyfunc.load_model(uri)
    except mlflow.exceptions.MlflowException as err:
        raise ValueError(f"could not load {uri}: {err}") from err
    model = as_explainable(pyfunc.unwrap_python_model())
    world = run.data.tags.get("ppx.world_path") if run is not None else None
    return LoadedModel(model, uri, version, run_id, Path(world) if world else None)


# --- rows from a world -------------------------------------------------------------------


def _end_of_world(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    return pd.Timestamp(tables[C.ORDERS][C.ORDERED_AT].max())


def candidate_frame(model_name: str, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The world rows one request of ``model_name`` corresponds to (its spec says which)."""
    from ppx.models import registry

    return registry.get(model_name).load("explain_candidates")(tables)


def request_example(model_name: str) -> dict:
    """The model's request example (its first endpoint's): the fields a request carries."""
    from ppx.models import registry

    spec = registry.get(model_name)
    return {**spec.endpoints[0].example, **dict(spec.endpoints[0].columns)}


def world_requests(
    model_name: str, tables: dict[str, pd.DataFrame], n: int, seed: int = 0, fill: bool = False
) -> tuple[pd.DataFrame, str]:
    """Raw request rows for ``model_name`` sampled from a world, and how they were made.

    Columns of the model's REQUEST_EXAMPLE found in the world's tables come from the
    sampled rows. With ``fill=False`` the other (optional) fields are left out so the model
    uses its own defaults; with ``fill=True`` time-of-decision fields get the end of the
    world and the rest keep the example's value (for models that require them).
    """
    from ppx.models import registry

    spec = registry.get(model_name)
    if spec.explain_requests is not None:
        built = spec.load("explain_requests")(tables)
        built = built.sort_values(DECISION_TIME, kind="stable").tail(RECENT_FACTOR * n)
        rows = built.sample(min(n, len(built)), random_state=seed).drop(columns=DECISION_TIME)
        note = f"{len(rows):,} recent {model_name} requests built by the model package"
        return rows.reset_index(drop=True), note
    example = request_example(model_name)
    frame = candidate_frame(model_name, tables)
    if frame.empty:
        raise ValueError(f"the world has no {model_name} request rows")
    if DECISION_TIME in frame.columns:
        # The served model's history snapshot is as of the end of the world, so the
        # decisions it would make now are the recent ones: older requests would look up
        # a history that (point in time) does not exist yet for them.
        frame = frame.sort_values(DECISION_TIME, kind="stable").tail(RECENT_FACTOR * n)
    rows = frame.sample(min(n, len(frame)), random_state=seed).reset_index(drop=True)
    end = _end_of_world(tables)
    out, filled = {}, []
    for key, value in example.items():
        if key in rows.columns:
            out[key] = rows[key].to_numpy()
        elif not fill:
            continue
        elif key in TIME_KEYS:
            out[key] = np.repeat(np.datetime64(end, "ns"), len(rows))
            filled.append(f"{key}=end of world")
        else:
            out[key] = [value] * len(rows)
            filled.append(f"{key}={value!r}")
    if not out:
        raise ValueError(f"no field of the {model_name} request example is in the world's tables")
    note = f"{len(rows):,} {model_name} requests sampled from the world's tables"
    if filled:
        note += f" (fields not in the tables: {', '.join(filled)})"
    return pd.DataFrame(out), note


def world_features(
    model_name: str, model: object, world_path: str | Path, n: int, seed: int = 0
) -> tuple[pd.DataFrame, str]:
    """Feature rows of a world sample for ``model`` and a note on where they came from."""
    _raw, X, note = world_rows(model_name, model, world_path, n, seed)
    return X, note


def world_rows(
    model_name: str, model: object, world_path: str | Path, n: int, seed: int = 0
) -> tuple[pd.DataFrame | None, pd.DataFrame, str]:
    """(raw request rows or None, their feature rows, a note on where they came from)."""
    from ppx.data.io import load_tables

    check_model(model)
    names = list(model.feature_names)
    world_path = Path(world_path)
    if not world_path.exists():
        raise ValueError(f"world {world_path} does not exist")
    tables = load_tables(world_path, validate=False)
    try:
        hook = getattr(model, "explain_requests", None)
        if callable(hook):
            raw = hook(tables, n, seed)
            note = f"{len(raw):,} requests from the model's explain_requests()"
            X = align_features(model.features(raw), names, "features(raw)")
        else:
            try:
                raw, note = world_requests(model_name, tables, n, seed)
                X = align_features(model.features(raw), names, "features(raw)")
            except (ValueError, KeyError, TypeError):
                raw, note = world_requests(model_name, tables, n, seed, fill=True)
                X = align_features(model.features(raw), names, "features(raw)")
        if len(X) == 0:
            raise ValueError("features(raw) returned no rows")
        return raw, X, note
    except Exception as err:  # noqa: BLE001 - any failure falls back, and is reported
        log.warning(
            "ppx-%s: could not build world requests (%s); explaining background", model_name, err
        )
        bg = align_features(model.background(), names, "background()")
        return None, bg, f"the model's training-feature sample (world requests failed: {err})"
