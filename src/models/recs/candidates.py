"""The world rows one recs request corresponds to: what its SHAP report samples."""

from __future__ import annotations

import pandas as pd

from ppx.data import columns as C

#: column of candidate rows holding the moment of the decision (the report samples the
#: most recent ones, the ones the served history snapshot can answer)
DECISION_TIME = "_decision_time"


def candidate_rows(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Customers who bought at least once."""
    buyers = tables[C.ORDERS][C.CUSTOMER_ID].drop_duplicates()
    return tables[C.CUSTOMERS][tables[C.CUSTOMERS][C.CUSTOMER_ID].isin(buyers)]
