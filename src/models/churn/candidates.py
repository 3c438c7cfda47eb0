"""The world rows one churn request corresponds to: what its SHAP report samples."""

from __future__ import annotations

import pandas as pd

from ppx.data import columns as C

#: column of candidate rows holding the moment of the decision (the report samples the
#: most recent ones, the ones the served history snapshot can answer)
DECISION_TIME = "_decision_time"


def candidate_rows(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Active subscriptions (all of them if none is active) with their customers."""
    subs = tables[C.SUBSCRIPTIONS]
    active = subs[subs[C.CANCELLED_AT].isna()]
    return (active if len(active) else subs).merge(
        tables[C.CUSTOMERS], on=C.CUSTOMER_ID, how="left"
    )
