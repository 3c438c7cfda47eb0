"""The served churn model (``mlflow.pyfunc``), self-contained with its customer history.

Input (one row per request), subscription models (``ppx-churn``):
    customer_id (int, required): the customer to score.
    as_of (timestamp or ISO string, optional): the decision moment; defaults to the end
        of the training data. Features use only history strictly before it.

Output columns:
    customer_id, as_of, status (``ok`` | ``no_active_subscription`` |
    ``unknown_customer``), p_churn_30, p_churn_60, p_churn_90 (calibrated probability of
    cancelling within that many days; NaN unless status is ok) and
    expected_lifetime_days (expected remaining subscription life, extending the 90-day
    hazard beyond the horizon).

Table models (``ppx train churn --table``, registered as ``ppx-churn-<table>``) take
rows with the table's feature columns and return ``p_churn`` (and the id column when
present).

The customer history is a compact copy of the canonical tables written at training
time (:func:`ppx.features.churn.history_tables`) and logged as the ``history``
artifact, so the model needs no database at serving time. It is indexed by customer at
load time, so a request reads only its customer's rows.

Speed: the model also carries ``snapshot.parquet``, the feature rows of every active
subscription at the last six month starts up to the end of the training data
(:func:`ppx.features.churn.serving_snapshot`, the offline feature function's own
output). A request whose ``as_of`` is omitted or one of those month starts is a row
lookup: a binary search over arrays built at load, the batch's rows scored together by
the members' module-free scorers (:mod:`ppx.models.churn.scoring`, the modules' own
numbers bit for bit), well under a millisecond in-process for a batch of one to eight;
any other ``as_of`` computes the features from the customer's history with the same
function (tens of milliseconds).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ppx.models.churn.schemas import REQUEST_EXAMPLE  # noqa: E402,F401
from ppx.models.served import ServedModel


def save_history(history: dict[str, pd.DataFrame], folder: str | Path) -> Path:
    """Write a churn history (dict of frames) as Parquet files in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in history.items():
        if name.startswith("__"):  # an in-memory index, not a table
            continue
        df.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def load_history(folder: str | Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted(Path(folder).glob("*.parquet"))}


class ChurnPyfunc(ServedModel):
    """Loads the :class:`~ppx.models.churn.model.ChurnModel` and its history."""

    columnar = True

    def load_model(self, artifacts: dict[str, str]):
        from ppx.models.churn.model import ChurnModel

        model = ChurnModel.load(artifacts["model"])
        if "history" in artifacts:
            from ppx.features.churn import index_history

            model.history = index_history(load_history(artifacts["history"]))
            model._snapshot_lookup()  # at load, not on the first request
        return model

    def predict(self, context, model_input, params=None):
        df = pd.DataFrame(model_input)
        m = self.model
        if m.mode == "table":
            out = m.predict_table(df)
            id_col = m.info.get("id_column")
            if id_col and id_col in df.columns:
                out.insert(0, id_col, df[id_col].to_numpy())
            return out.reset_index(drop=True)
        return m.score_requests(df)

    def predict_columns(self, columns):
        """Columns in, columns out (field -> list); the model service's fast path."""
        if self.model.mode == "table":
            out = self.predict(None, pd.DataFrame(dict(columns)))
            return {c: out[c].to_numpy() for c in out.columns}
        return self.model.score_columns(columns)
