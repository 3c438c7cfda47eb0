"""The world rows one fraud request corresponds to: what its SHAP report samples."""

from __future__ import annotations

import pandas as pd

from ppx.data import columns as C

#: column of candidate rows holding the moment of the decision (the report samples the
#: most recent ones, the ones the served history snapshot can answer)
DECISION_TIME = "_decision_time"


def candidate_rows(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Returns and claims with their orders, decided when filed."""
    o = tables[C.ORDERS]
    r = tables[C.RETURNS].merge(o, on=[C.ORDER_ID, C.CUSTOMER_ID], how="left")
    cl = tables[C.CLAIMS].merge(o, on=[C.ORDER_ID, C.CUSTOMER_ID], how="left")
    out = pd.concat([r, cl], ignore_index=True)
    return out.assign(**{DECISION_TIME: out[C.REQUESTED_AT].fillna(out[C.CLAIMED_AT])})


def wire_requests(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every return and claim of the world in the served (wire) form of ppx-fraud."""
    from ppx.features.fraud import all_requests
    from ppx.models.fraud.train import raw_requests

    req = all_requests(tables)
    wire = raw_requests(req).reset_index(drop=True)
    return wire.assign(**{DECISION_TIME: pd.to_datetime(req[C.REQUESTED_AT]).to_numpy()})
