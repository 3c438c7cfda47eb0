"""MLflow pyfunc wrapper of the delivery model (what serving loads by alias).

Input: raw request facts, one row per request (a DataFrame or list of dicts):

==================  ========  ===========================================================
column              required  meaning
==================  ========  ===========================================================
warehouse           yes       shipping warehouse (must be one the model knows)
dest_region         yes       destination region (must be known)
carrier             yes       carrier (must be known; unknown -> clear error)
service_level       yes       ``standard`` / ``express`` (must be known)
ordered_at          yes       order timestamp (ISO string or datetime)
weight_kg           no        parcel weight, >= 0 (missing -> training median)
distance_km         no        >= 0 (missing -> the warehouse->region lane's median)
origin_region       no        missing -> the warehouse's region
promised_days       no        the carrier SLA in days (missing -> lane median); also the
                              default promise for ``p_on_time`` / ``p_late``
promise_target      no        on-time rate of the promise, in (0, 1); default 0.90
promise_date        no        a promise date to price: ``p_on_time`` is for this date
as_of               no        set for a parcel in transit: the moment of re-estimation
picked_up_at        no        in transit: carrier pick-up time, if scanned by ``as_of``
last_scan_type      no        in transit: label_created / picked_up / hub_scan /
                              out_for_delivery / exception (unknown -> ``<unk>``)
last_scan_region    no        in transit: region of the last scan
last_scan_at        no        in transit: time of the last scan
n_scans             no        in transit: scans so far
==================  ========  ===========================================================

Output (one row per request): ``stage`` (checkout / transit), ``p50_days`` and
``p50_date`` (median delivery), ``promise_target``, ``promise_days`` and
``promise_date`` (first day whose calibrated on-time probability reaches the target),
``p_on_time_at_promise``, ``expected_days``, ``asked_promise_days`` (the promise being
priced: ``promise_date`` if given, else ``promised_days`` / the SLA), ``p_on_time``
and ``p_late`` for it (in transit, conditioned on what tracking shows). Days count
calendar days from the order date (0 = same day).

Lane and warehouse history comes from the snapshot artifact written at training time
(the last ``k`` completed shipments per key), so the served model is self-contained.
"""

from __future__ import annotations

import pickle

import pandas as pd

from ppx.models.delivery.schemas import REQUEST_EXAMPLE, TRANSIT_EXAMPLE  # noqa: E402,F401
from ppx.models.served import ServedModel, as_frame

MODEL_ARTIFACT = "model"
HISTORY_ARTIFACT = "history"


def save_artifacts(model, folder) -> dict[str, str]:
    """Write the model state and the history snapshot; returns pyfunc artifact paths."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    st = model.state()
    records = st.pop("history_records")
    meta = st.pop("history_meta")
    records.to_parquet(folder / "history.parquet", index=False)
    (folder / "model.pkl").write_bytes(pickle.dumps(st))
    (folder / "history_meta.pkl").write_bytes(pickle.dumps(meta))
    return {
        MODEL_ARTIFACT: str(folder / "model.pkl"),
        HISTORY_ARTIFACT: str(folder / "history.parquet"),
        "history_meta": str(folder / "history_meta.pkl"),
    }


def load_model(artifacts: dict[str, str]):
    """Rebuild a :class:`DeliveryModel` from the artifact files."""
    from pathlib import Path

    from ppx.features.delivery import DeliveryHistory
    from ppx.models.delivery.model import DeliveryModel

    st = pickle.loads(Path(artifacts[MODEL_ARTIFACT]).read_bytes())
    meta = pickle.loads(Path(artifacts["history_meta"]).read_bytes())
    history = DeliveryHistory.from_frame(pd.read_parquet(artifacts[HISTORY_ARTIFACT]), meta)
    return DeliveryModel.from_state(st, history=history)


class DeliveryPyfunc(ServedModel):
    """``predict(raw requests) -> estimates``; the loaded model is ``self.model``."""

    columnar = True

    def load_model(self, artifacts: dict[str, str]):
        import torch

        torch.set_num_threads(1)
        return load_model(artifacts)

    def predict(self, context, model_input, params=None):
        target = (params or {}).get("promise_target")
        return self.model.predict(as_frame(model_input), target=target)

    def predict_columns(self, columns):
        """Columns in, columns out (field -> list); the model service's fast path."""
        return self.model.predict_columns(columns)


def signature():
    """Explicit model signature: required request columns plus every optional one."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    req = [("warehouse", "string"), ("dest_region", "string"), ("carrier", "string")]
    req += [("service_level", "string"), ("ordered_at", "string")]
    opt = [
        ("weight_kg", "double"),
        ("distance_km", "double"),
        ("origin_region", "string"),
        ("promised_days", "double"),
        ("promise_target", "double"),
        ("promise_date", "string"),
        ("as_of", "string"),
        ("picked_up_at", "string"),
        ("last_scan_type", "string"),
        ("last_scan_region", "string"),
        ("last_scan_at", "string"),
        ("n_scans", "double"),
    ]
    inputs = Schema(
        [ColSpec(t, n) for n, t in req] + [ColSpec(t, n, required=False) for n, t in opt]
    )
    outputs = Schema(
        [
            ColSpec("string", "stage"),
            ColSpec("long", "p50_days"),
            ColSpec("datetime", "p50_date"),
            ColSpec("double", "promise_target"),
            ColSpec("long", "promise_days"),
            ColSpec("datetime", "promise_date"),
            ColSpec("double", "p_on_time_at_promise"),
            ColSpec("double", "expected_days"),
            ColSpec("double", "asked_promise_days"),
            ColSpec("double", "p_on_time"),
            ColSpec("double", "p_late"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)
