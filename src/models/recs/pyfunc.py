"""MLflow pyfunc wrapper of the recommender (what serving loads by alias).

Input: a DataFrame, one row per request:

* ``customer_id`` (int, required) - the customer; their history comes from the snapshot
  written at training time (the ``recs_snapshot`` artifact).
* ``history`` (list of int, optional) - product ids just purchased (e.g. the order a
  thank-you email is about), appended to the snapshot history. Unknown ids are ignored
  with a warning, never an error.
* ``k`` (int, optional, default 10) - number of recommendations.
* ``as_of`` (timestamp, optional) - the decision moment; defaults to the snapshot time.

Output: a DataFrame with one row per request: ``customer_id``, ``product_ids`` (list,
best first), ``scores`` (list of logits), ``source`` (``history`` or
``popularity_fallback`` when the customer has no usable history) and
``n_unknown_ignored``. Business filters (stock, returns, repurchase policy, active
subscriptions) are applied.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.errors import RequestError
from ppx.models.recs.schemas import REQUEST_EXAMPLE  # noqa: E402,F401
from ppx.models.served import ServedModel

ARTIFACT = "recs_snapshot"


def _cell(row, name, default=None):
    v = row.get(name, default)
    if v is None:
        return default
    if isinstance(v, float) and np.isnan(v):
        return default
    return v


def predict_frame(served, requests: pd.DataFrame) -> pd.DataFrame:
    """Run requests through a :class:`~ppx.models.recs.serve.ServedRecommender`."""
    if C.CUSTOMER_ID not in requests.columns:
        raise RequestError(f"request: missing required column {C.CUSTOMER_ID!r}")
    out = []
    for i, row in enumerate(requests.to_dict("records")):
        cid = row.get(C.CUSTOMER_ID)
        try:
            cid = int(cid)
        except (TypeError, ValueError) as err:
            raise RequestError(
                f"request row {i}: {C.CUSTOMER_ID} must be an integer, got {cid!r}"
            ) from err
        hist = _cell(row, "history")
        if hist is not None and not isinstance(hist, (list, tuple, np.ndarray)):
            raise RequestError(f"request row {i}: history must be a list of product ids")
        try:
            k = int(_cell(row, "k", 10))
        except (TypeError, ValueError) as err:
            raise RequestError(f"request row {i}: k must be an integer") from err
        if k < 1:
            raise RequestError(f"request row {i}: k must be >= 1, got {k}")
        as_of = _cell(row, "as_of")
        out.append(served.recommend(cid, None if hist is None else list(hist), k, as_of))
    return pd.DataFrame(
        out, columns=[C.CUSTOMER_ID, "product_ids", "scores", "source", "n_unknown_ignored"]
    )


class RecsPyfunc(ServedModel):
    """Loads the snapshot folder (``self.model``) and answers top-k requests."""

    def load_model(self, artifacts: dict[str, str]):
        from ppx.models.recs.serve import load_served

        return load_served(artifacts[ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return predict_frame(self.model, pd.DataFrame(model_input))
