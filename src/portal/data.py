"""What the pages show, read from a world or store folder (the canonical Parquet tables).

The tables are read once per process (lazily, on the first page) and indexed by customer,
order and shipment, so a page costs a few dictionary look-ups, not a scan. The store's
clock is the moment its data ends (:func:`ppx.scoring.data_end`): a generated world is
history, so "now" on a tracking page is the last recorded event, and every estimate is
made as of that moment.

Every read takes the customer from the session: an order of another customer is
:class:`LookupError` exactly like a missing one (the page answers 403 for both, so a
shopper cannot probe which order ids exist).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.io import read_table_file

TABLES = (
    C.CUSTOMERS,
    C.PRODUCTS,
    C.ORDERS,
    C.ORDER_ITEMS,
    C.SHIPMENTS,
    C.TRACKING_EVENTS,
    C.RETURNS,
    C.CLAIMS,
    C.SUBSCRIPTIONS,
)

#: The tracking page's stages, in order.
STAGES = ("ordered", "shipped", "in_transit", "out_for_delivery", "delivered")


class StoreError(ValueError):
    """The portal's store folder is missing or lacks a table; the message names it."""


def _ts(v) -> datetime | None:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return pd.Timestamp(v).to_pydatetime()


@dataclass(frozen=True)
class Item:
    line_no: int
    product_id: int
    name: str
    category: str
    quantity: int
    unit_price: float

    @property
    def total(self) -> float:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class Scan:
    at: datetime
    event_type: str
    region: str


@dataclass(frozen=True)
class Stage:
    name: str
    done: bool
    at: datetime | None
    current: bool = False
    detail: Scan | None = None  # in transit: the last scan


@dataclass(frozen=True)
class Order:
    """One order as the shopper sees it: lines, shipment, scans, returns and claims."""

    order_id: int
    customer_id: int
    ordered_at: datetime
    order_value: float
    carrier: str
    service_level: str
    warehouse: str
    origin_region: str
    dest_region: str
    distance_km: float | None
    promised_days: int
    promised_date: date
    subscription_id: int | None
    items: list[Item]
    shipment_id: int | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    status: str = "processing"  # processing / in_transit / delivered / lost
    weight_kg: float | None = None
    signature: bool | None = None
    scans: list[Scan] = field(default_factory=list)
    returns: list[dict] = field(default_factory=list)
    claims: list[dict] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status in ("processing", "in_transit")

    @property
    def late_days(self) -> int:
        """Whole days past the promised date: delivered late, or still travelling at ``now``."""
        if self.delivered_at is not None:
            return max((self.delivered_at.date() - self.promised_date).days, 0)
        return 0

    def stages(self) -> list[Stage]:
        """The timeline: ordered, shipped, in transit (last scan), out for delivery, delivered."""
        transit = [s for s in self.scans if s.event_type in ("picked_up", "hub_scan", "exception")]
        ofd = [s for s in self.scans if s.event_type == "out_for_delivery"]
        done = {
            "ordered": self.ordered_at,
            "shipped": self.shipped_at,
            "in_transit": transit[0].at if transit else None,
            "out_for_delivery": ofd[-1].at if ofd else None,
            "delivered": self.delivered_at,
        }
        if done["delivered"] is not None:  # a delivered parcel passed every stage
            for name in STAGES:
                if done[name] is None and name != "out_for_delivery":
                    done[name] = done["delivered"]
        last_done = max((i for i, n in enumerate(STAGES) if done[n] is not None), default=0)
        out = []
        for i, name in enumerate(STAGES):
            detail = transit[-1] if name == "in_transit" and transit else None
            out.append(
                Stage(name, done[name] is not None, done[name], i == last_done, detail=detail)
            )
        return out

    @property
    def last_scan(self) -> Scan | None:
        return self.scans[-1] if self.scans else None


class StoreData:
    """The canonical tables of one world or store, indexed for the portal's pages."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        folder = self.path / "tables"
        if not folder.is_dir():
            raise StoreError(
                f"{self.path}: not a world or store folder (no tables/); build one with "
                "`ppx data world` or `ppx data import`, then set PPX_PORTAL_STORE"
            )
        t: dict[str, pd.DataFrame] = {}
        for name in TABLES:
            f = folder / f"{name}.parquet"
            if not f.is_file():
                if name in (C.RETURNS, C.CLAIMS, C.SUBSCRIPTIONS, C.TRACKING_EVENTS):
                    continue  # optional in a store
                raise StoreError(f"{f}: table {name!r} is missing from the portal's store")
            t[name] = read_table_file(f)
        self.tables = t
        from ppx.scoring import data_end

        self.now: datetime = data_end(t).to_pydatetime()
        self._index()

    def _index(self) -> None:
        t = self.tables
        self.customers = t[C.CUSTOMERS].set_index(C.CUSTOMER_ID, drop=False)
        self.products = t[C.PRODUCTS].set_index(C.PRODUCT_ID, drop=False)
        o = t[C.ORDERS].sort_values([C.CUSTOMER_ID, C.ORDERED_AT], kind="stable")
        self.orders = o.set_index(C.ORDER_ID, drop=False)
        self._orders_of = _groups(o, C.CUSTOMER_ID)
        self._items_of = _groups(t[C.ORDER_ITEMS].sort_values([C.ORDER_ID, C.LINE_NO]), C.ORDER_ID)
        s = t[C.SHIPMENTS]
        self.shipments = s.drop_duplicates(C.ORDER_ID, keep="last").set_index(
            C.ORDER_ID, drop=False
        )
        ev = t.get(C.TRACKING_EVENTS)
        self._events = (
            ev.sort_values([C.SHIPMENT_ID, C.EVENT_AT], kind="stable") if ev is not None else None
        )
        self._events_of = _groups(self._events, C.SHIPMENT_ID) if ev is not None else {}
        self._returns_of = _groups(t[C.RETURNS], C.ORDER_ID) if C.RETURNS in t else {}
        self._claims_of = _groups(t[C.CLAIMS], C.ORDER_ID) if C.CLAIMS in t else {}
        self._email = {
            str(e).strip().lower(): int(c)
            for c, e in zip(self.customers[C.CUSTOMER_ID], self.customers[C.EMAIL], strict=True)
        }

    # --- customers ----------------------------------------------------------------------

    def has_customer(self, customer_id: int) -> bool:
        return int(customer_id) in self.customers.index

    def customer_by_email(self, email: str) -> int | None:
        return self._email.get(email.strip().lower())

    def customer_row(self, customer_id: int) -> pd.Series:
        try:
            return self.customers.loc[int(customer_id)]
        except KeyError:
            raise LookupError(f"no customer {customer_id}") from None

    # --- orders -------------------------------------------------------------------------

    def order_ids(self, customer_id: int) -> list[int]:
        """The customer's orders, newest first."""
        rows = self._orders_of.get(int(customer_id))
        if rows is None:
            return []
        return [int(x) for x in self.tables[C.ORDERS].loc[rows, C.ORDER_ID][::-1]]

    def orders_of(self, customer_id: int, limit: int | None = None) -> list[Order]:
        ids = self.order_ids(customer_id)
        return [self.order(customer_id, i) for i in ids[:limit]]

    def order(self, customer_id: int, order_id: int) -> Order:
        """One order of this customer; :class:`LookupError` for a missing or foreign one."""
        try:
            r = self.orders.loc[int(order_id)]
        except KeyError:
            raise LookupError("no such order") from None
        if int(r[C.CUSTOMER_ID]) != int(customer_id):
            raise LookupError("no such order")
        oid = int(order_id)
        items = []
        for idx in self._items_of.get(oid, []):
            it = self.tables[C.ORDER_ITEMS].loc[idx]
            pid = int(it[C.PRODUCT_ID])
            p = self.products.loc[pid] if pid in self.products.index else None
            items.append(
                Item(
                    int(it[C.LINE_NO]),
                    pid,
                    str(p[C.NAME]) if p is not None else f"#{pid}",
                    str(p[C.CATEGORY]) if p is not None else "",
                    int(it[C.QUANTITY]),
                    float(it[C.UNIT_PRICE]),
                )
            )
        sub = r.get(C.SUBSCRIPTION_ID)
        base = dict(
            order_id=oid,
            customer_id=int(r[C.CUSTOMER_ID]),
            ordered_at=_ts(r[C.ORDERED_AT]),
            order_value=float(r[C.ORDER_VALUE]),
            carrier=str(r[C.CARRIER]),
            service_level=str(r[C.SERVICE_LEVEL]),
            warehouse=str(r[C.WAREHOUSE]),
            origin_region=str(r[C.ORIGIN_REGION]),
            dest_region=str(r[C.DEST_REGION]),
            distance_km=None if pd.isna(r[C.DISTANCE_KM]) else float(r[C.DISTANCE_KM]),
            promised_days=int(r[C.PROMISED_DAYS]),
            promised_date=pd.Timestamp(r[C.PROMISED_DATE]).date(),
            subscription_id=None if sub is None or pd.isna(sub) else int(sub),
            items=items,
            returns=self._rows(self._returns_of, C.RETURNS, oid),
            claims=self._rows(self._claims_of, C.CLAIMS, oid),
        )
        if oid not in self.shipments.index:
            return Order(**base)
        s = self.shipments.loc[oid]
        sid = int(s[C.SHIPMENT_ID])
        scans = []
        if self._events is not None:
            for idx in self._events_of.get(sid, []):
                e = self._events.loc[idx]
                scans.append(
                    Scan(_ts(e[C.EVENT_AT]), str(e[C.EVENT_TYPE]), str(e[C.LOCATION_REGION]))
                )
        status = str(s[C.STATUS])
        return Order(
            **base,
            shipment_id=sid,
            shipped_at=_ts(s[C.SHIPPED_AT]),
            delivered_at=_ts(s[C.DELIVERED_AT]),
            status=status
            if _ts(s[C.SHIPPED_AT]) is not None or status != "in_transit"
            else "processing",
            weight_kg=float(s[C.WEIGHT_KG]),
            signature=bool(s[C.SIGNATURE]),
            scans=scans,
        )

    def _rows(self, groups: dict, table: str, key: int) -> list[dict]:
        idx = groups.get(key)
        if not idx:
            return []
        return self.tables[table].loc[idx].to_dict("records")

    # --- what the rules need ------------------------------------------------------------

    def customer_facts(self, customer_id: int) -> dict:
        """History facts of the customer as of the store's clock (for CustomerContext)."""
        cid = int(customer_id)
        c = self.customer_row(cid)
        since = pd.Timestamp(self.now) - pd.DateOffset(months=12)
        o = self.tables[C.ORDERS].loc[self._orders_of.get(cid, [])]
        recent = o[o[C.ORDERED_AT] >= since]
        ret = self.tables.get(C.RETURNS)
        n_ret = 0
        fraud = 0
        if ret is not None:
            mine = ret[ret[C.CUSTOMER_ID] == cid]
            n_ret = int((mine[C.REQUESTED_AT] >= since).sum())
            fraud = int(mine[C.CONFIRMED_FRAUD].sum())
        sub_id = None
        subs = self.tables.get(C.SUBSCRIPTIONS)
        if subs is not None:
            active = subs[(subs[C.CUSTOMER_ID] == cid) & subs[C.CANCELLED_AT].isna()]
            if len(active):
                sub_id = int(active[C.SUBSCRIPTION_ID].iloc[0])
        birth = c.get(C.BIRTH_DATE)
        return {
            "customer_id": cid,
            "spend_12m": float(recent[C.ORDER_VALUE].sum()),
            "orders_12m": len(recent),
            "returns_12m": n_ret,
            "confirmed_fraud": fraud,
            "signup_at": _ts(c[C.SIGNUP_AT]),
            "birth_date": None if birth is None or pd.isna(birth) else pd.Timestamp(birth).date(),
            "last_order_at": _ts(o[C.ORDERED_AT].max()) if len(o) else None,
            "has_active_subscription": sub_id is not None,
            "subscription_id": sub_id,
            "email_opt_in": bool(c[C.EMAIL_OPT_IN]),
            "sms_opt_in": bool(c[C.SMS_OPT_IN]),
            "push_opt_in": bool(c[C.PUSH_OPT_IN]),
            "email": str(c[C.EMAIL]),
        }

    def late_orders(self) -> pd.DataFrame:
        """Orders delivered after their promised date or lost, latest first (demo, tests)."""
        s = self.tables[C.SHIPMENTS]
        o = self.tables[C.ORDERS][[C.ORDER_ID, C.CUSTOMER_ID, C.PROMISED_DATE, C.ORDERED_AT]]
        m = s.merge(o, on=C.ORDER_ID)
        late = (m[C.STATUS] == "lost") | (
            m[C.DELIVERED_AT].notna() & (m[C.DELIVERED_AT].dt.normalize() > m[C.PROMISED_DATE])
        )
        return m[late].sort_values(C.ORDERED_AT, ascending=False)

    def open_late_orders(self) -> pd.DataFrame:
        """Orders still in transit whose promised date has passed at the store's clock."""
        s = self.tables[C.SHIPMENTS]
        o = self.tables[C.ORDERS][[C.ORDER_ID, C.CUSTOMER_ID, C.PROMISED_DATE, C.ORDERED_AT]]
        m = s.merge(o, on=C.ORDER_ID)
        now = pd.Timestamp(self.now).normalize()
        late = (m[C.STATUS] == "in_transit") & m[C.SHIPPED_AT].notna() & (m[C.PROMISED_DATE] < now)
        return m[late].sort_values(C.ORDERED_AT, ascending=False)


def _groups(df: pd.DataFrame, key: str) -> dict[int, list]:
    """key value -> the frame's index labels of its rows (in the frame's order)."""
    if df is None or not len(df):
        return {}
    keys = df[key].to_numpy(np.int64)
    idx = df.index.to_numpy()
    order = np.argsort(keys, kind="stable")
    keys, idx = keys[order], idx[order]
    cuts = np.flatnonzero(np.diff(keys)) + 1
    return {
        int(k[0]): list(i) for k, i in zip(np.split(keys, cuts), np.split(idx, cuts), strict=True)
    }


_LOCK = threading.Lock()
_CACHE: dict[Path, StoreData] = {}


def load_store(path: str | Path) -> StoreData:
    """The store at ``path``, read once per process."""
    p = Path(path).resolve()
    with _LOCK:
        if p not in _CACHE:
            _CACHE[p] = StoreData(p)
        return _CACHE[p]
