"""Request frames (one return or claim per row) from the canonical tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.features.fraud.names import CLAIM, EXCEPTION_SCAN, KIND, REQUEST_ID, RETURN


def delivered_at(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Delivered-scan time per order id (NaT when the parcel never got one)."""
    s = tables[C.SHIPMENTS]
    return pd.Series(s[C.DELIVERED_AT].to_numpy(), index=s[C.ORDER_ID].to_numpy())


def _order_facts(tables, order_ids: np.ndarray) -> pd.DataFrame:
    o = tables[C.ORDERS].set_index(C.ORDER_ID)
    cols = [C.ORDERED_AT, C.ORDER_VALUE, C.DISCOUNT, C.PROMISED_DATE]
    return o.reindex(order_ids)[cols].reset_index(drop=True)


def return_requests(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One request row per return, with its label (``confirmed_fraud``) and id."""
    r = tables[C.RETURNS]
    of = _order_facts(tables, r[C.ORDER_ID].to_numpy())
    deliv = delivered_at(tables).reindex(r[C.ORDER_ID].to_numpy()).to_numpy()
    out = pd.DataFrame(
        {
            REQUEST_ID: r[C.RETURN_ID].to_numpy(),
            KIND: RETURN,
            C.CUSTOMER_ID: r[C.CUSTOMER_ID].to_numpy(),
            C.REQUESTED_AT: r[C.REQUESTED_AT].to_numpy(),
            C.AMOUNT: r[C.REFUND_AMOUNT].to_numpy(dtype=float),
            C.ORDER_ID: r[C.ORDER_ID].to_numpy(),
            **{k: of[k].to_numpy() for k in of.columns},
            C.DELIVERED_AT: deliv,
            C.PRODUCT_ID: r[C.PRODUCT_ID].to_numpy(),
            C.REASON: r[C.REASON].astype(str).to_numpy(),
            C.CONFIRMED_FRAUD: r[C.CONFIRMED_FRAUD].to_numpy(dtype=bool),
        }
    )
    out[KIND] = out[KIND].astype(str)
    return out


def claim_requests(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One request row per claim, with the delivery evidence known at claim time."""
    cl = tables[C.CLAIMS]
    of = _order_facts(tables, cl[C.ORDER_ID].to_numpy())
    s = tables[C.SHIPMENTS].set_index(C.SHIPMENT_ID).reindex(cl[C.SHIPMENT_ID].to_numpy())
    claimed = cl[C.CLAIMED_AT].to_numpy()
    deliv = s[C.DELIVERED_AT].to_numpy()
    seen = ~pd.isna(deliv) & (deliv < claimed)
    ev = tables[C.TRACKING_EVENTS]
    exc = ev[(ev[C.EVENT_TYPE] == "exception") & ev[C.SHIPMENT_ID].isin(cl[C.SHIPMENT_ID])]
    first_exc = exc.groupby(C.SHIPMENT_ID)[C.EVENT_AT].min()
    exc_at = first_exc.reindex(cl[C.SHIPMENT_ID].to_numpy()).to_numpy()
    out = pd.DataFrame(
        {
            REQUEST_ID: cl[C.CLAIM_ID].to_numpy(),
            KIND: CLAIM,
            C.CUSTOMER_ID: cl[C.CUSTOMER_ID].to_numpy(),
            C.REQUESTED_AT: claimed,
            C.AMOUNT: cl[C.AMOUNT].to_numpy(dtype=float),
            C.ORDER_ID: cl[C.ORDER_ID].to_numpy(),
            **{k: of[k].to_numpy() for k in of.columns},
            C.DELIVERED_AT: np.where(seen, deliv, np.datetime64("NaT")),
            C.CLAIM_TYPE: cl[C.CLAIM_TYPE].astype(str).to_numpy(),
            C.SIGNATURE: np.where(seen, s[C.SIGNATURE].to_numpy(dtype=bool), False),
            C.GPS_DISTANCE_M: np.where(seen, s[C.GPS_DISTANCE_M].to_numpy(dtype=float), np.nan),
            EXCEPTION_SCAN: ~pd.isna(exc_at) & (exc_at < claimed),
            C.CONFIRMED_FRAUD: cl[C.CONFIRMED_FRAUD].to_numpy(dtype=bool),
        }
    )
    out[C.DELIVERED_AT] = pd.to_datetime(out[C.DELIVERED_AT])
    out[KIND] = out[KIND].astype(str)
    return out


def all_requests(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Returns and claims in one frame, sorted by request time."""
    frame = pd.concat([return_requests(tables), claim_requests(tables)], ignore_index=True)
    return frame.sort_values([C.REQUESTED_AT, KIND], kind="stable").reset_index(drop=True)


def label_of(requests: pd.DataFrame) -> np.ndarray:
    """The training label of offline request rows (``confirmed_fraud``)."""
    return requests[C.CONFIRMED_FRAUD].to_numpy(dtype=bool)
