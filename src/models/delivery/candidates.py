"""The world rows one delivery request corresponds to: what its SHAP report samples."""

from __future__ import annotations

import pandas as pd

from ppx.data import columns as C

#: column of candidate rows holding the moment of the decision (the report samples the
#: most recent ones, the ones the served history snapshot can answer)
DECISION_TIME = "_decision_time"


def candidate_rows(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Orders joined with their shipments, decided at the order time."""
    o, s = tables[C.ORDERS], tables[C.SHIPMENTS]
    ship = s.drop(columns=[C.CARRIER, C.SERVICE_LEVEL], errors="ignore")
    out = o.merge(ship, on=C.ORDER_ID, how="inner")
    return out.assign(**{DECISION_TIME: out[C.ORDERED_AT]})
