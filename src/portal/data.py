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
        self._year_ago = pd.Timestamp(self.now) - pd.DateOffset(months=12)
        self._index()

    def _index(self) -> None:
        """Column arrays and row positions per key: a page reads a few array cells.

        Why not ``DataFrame.loc`` per row: a label look-up costs tens of microseconds and
        an orders page makes hundreds of them; array cells cost well under one.
        """
        t = self.tables
        self.customers = t[C.CUSTOMERS].set_index(C.CUSTOMER_ID, drop=False)
        self.products = t[C.PRODUCTS].set_index(C.PRODUCT_ID, drop=False)
        self._product = {
            int(pid): (str(n), str(cat), float(price))
            for pid, n, cat, price in zip(
                t[C.PRODUCTS][C.PRODUCT_ID],
                t[C.PRODUCTS][C.NAME],
                t[C.PRODUCTS][C.CATEGORY],
                t[C.PRODUCTS][C.PRICE],
                strict=True,
            )
        }
        o = t[C.ORDERS].sort_values([C.CUSTOMER_ID, C.ORDERED_AT], kind="stable")
        self._o = _columns(o)
        self._order_pos = {int(v): i for i, v in enumerate(self._o[C.ORDER_ID])}
        self._orders_of = _positions(self._o[C.CUSTOMER_ID])
        it = t[C.ORDER_ITEMS].sort_values([C.ORDER_ID, C.LINE_NO], kind="stable")
        self._it = _columns(it)
        self._items_of = _positions(self._it[C.ORDER_ID])
        sh = t[C.SHIPMENTS].drop_duplicates(C.ORDER_ID, keep="last")
        self._sh = _columns(sh)
        self._ship_pos = {int(v): i for i, v in enumerate(self._sh[C.ORDER_ID])}
        ev = t.get(C.TRACKING_EVENTS)
        if ev is not None:
            ev = ev.sort_values([C.SHIPMENT_ID, C.EVENT_AT], kind="stable")
            self._ev = _columns(ev)
            self._events_of = _positions(self._ev[C.SHIPMENT_ID])
        else:
            self._ev, self._events_of = {}, {}
        self._returns_of = _records_by(t.get(C.RETURNS), C.ORDER_ID)
        self._claims_of = _records_by(t.get(C.CLAIMS), C.ORDER_ID)
        self._returns_by_customer = _records_by(t.get(C.RETURNS), C.CUSTOMER_ID)
        self._subs_by_customer = _records_by(t.get(C.SUBSCRIPTIONS), C.CUSTOMER_ID)
        self._customer = {int(r[C.CUSTOMER_ID]): r for r in t[C.CUSTOMERS].to_dict("records")}
        self._email = {
            str(e).strip().lower(): int(c)
            for c, e in zip(self.customers[C.CUSTOMER_ID], self.customers[C.EMAIL], strict=True)
        }

    # --- customers ----------------------------------------------------------------------

    def has_customer(self, customer_id: int) -> bool:
        return int(customer_id) in self.customers.index

    def customer_by_email(self, email: str) -> int | None:
        return self._email.get(email.strip().lower())

    def customer_row(self, customer_id: int) -> dict:
        """The customer's row of the customers table (personal data: never log it)."""
        try:
            return self._customer[int(customer_id)]
        except KeyError:
            raise LookupError(f"no customer {customer_id}") from None

    def product(self, product_id: int) -> tuple[str, str, float] | None:
        """(name, category, price) of a product, None when the store does not list it."""
        return self._product.get(int(product_id))

    # --- orders -------------------------------------------------------------------------

    def order_ids(self, customer_id: int) -> list[int]:
        """The customer's orders, newest first."""
        pos = self._orders_of.get(int(customer_id), [])
        ids = self._o[C.ORDER_ID]
        return [int(ids[i]) for i in reversed(pos)]

    def orders_of(self, customer_id: int, limit: int | None = None) -> list[Order]:
        ids = self.order_ids(customer_id)
        return [self.order(customer_id, i) for i in ids[:limit]]

    def order(self, customer_id: int, order_id: int) -> Order:
        """One order of this customer; :class:`LookupError` for a missing or foreign one."""
        i = self._order_pos.get(int(order_id))
        if i is None or int(self._o[C.CUSTOMER_ID][i]) != int(customer_id):
            raise LookupError("no such order")
        o = self._o
        oid = int(order_id)
        items = []
        it = self._it
        for j in self._items_of.get(oid, []):
            pid = int(it[C.PRODUCT_ID][j])
            name, cat, _ = self._product.get(pid, (f"#{pid}", "", 0.0))
            items.append(
                Item(
                    int(it[C.LINE_NO][j]),
                    pid,
                    name,
                    cat,
                    int(it[C.QUANTITY][j]),
                    float(it[C.UNIT_PRICE][j]),
                )
            )
        sub = o[C.SUBSCRIPTION_ID][i] if C.SUBSCRIPTION_ID in o else None
        dist = o[C.DISTANCE_KM][i]
        base = dict(
            order_id=oid,
            customer_id=int(o[C.CUSTOMER_ID][i]),
            ordered_at=_ts(o[C.ORDERED_AT][i]),
            order_value=float(o[C.ORDER_VALUE][i]),
            carrier=str(o[C.CARRIER][i]),
            service_level=str(o[C.SERVICE_LEVEL][i]),
            warehouse=str(o[C.WAREHOUSE][i]),
            origin_region=str(o[C.ORIGIN_REGION][i]),
            dest_region=str(o[C.DEST_REGION][i]),
            distance_km=None if pd.isna(dist) else float(dist),
            promised_days=int(o[C.PROMISED_DAYS][i]),
            promised_date=pd.Timestamp(o[C.PROMISED_DATE][i]).date(),
            subscription_id=None if sub is None or pd.isna(sub) else int(sub),
            items=items,
            returns=list(self._returns_of.get(oid, [])),
            claims=list(self._claims_of.get(oid, [])),
        )
        k = self._ship_pos.get(oid)
        if k is None:
            return Order(**base)
        sh = self._sh
        sid = int(sh[C.SHIPMENT_ID][k])
        ev = self._ev
        scans = [
            Scan(_ts(ev[C.EVENT_AT][j]), str(ev[C.EVENT_TYPE][j]), str(ev[C.LOCATION_REGION][j]))
            for j in self._events_of.get(sid, [])
        ]
        shipped = _ts(sh[C.SHIPPED_AT][k])
        status = str(sh[C.STATUS][k])
        return Order(
            **base,
            shipment_id=sid,
            shipped_at=shipped,
            delivered_at=_ts(sh[C.DELIVERED_AT][k]),
            status="processing" if shipped is None and status == "in_transit" else status,
            weight_kg=float(sh[C.WEIGHT_KG][k]),
            signature=bool(sh[C.SIGNATURE][k]),
            scans=scans,
        )

    # --- what the rules need ------------------------------------------------------------

    def customer_facts(self, customer_id: int) -> dict:
        """History facts of the customer as of the store's clock (for CustomerContext)."""
        cid = int(customer_id)
        c = self.customer_row(cid)
        since = self._year_ago
        pos = self._orders_of.get(cid, [])
        at = self._o[C.ORDERED_AT][pos]
        values = self._o[C.ORDER_VALUE][pos]
        recent = at >= np.datetime64(since)
        mine = self._returns_by_customer.get(cid, [])
        n_ret = sum(1 for r in mine if r[C.REQUESTED_AT] >= since)
        fraud = sum(bool(r[C.CONFIRMED_FRAUD]) for r in mine)
        active = [r for r in self._subs_by_customer.get(cid, []) if _ts(r[C.CANCELLED_AT]) is None]
        sub_id = int(active[0][C.SUBSCRIPTION_ID]) if active else None
        birth = c.get(C.BIRTH_DATE)
        return {
            "customer_id": cid,
            "spend_12m": float(values[recent].sum()),
            "orders_12m": int(recent.sum()),
            "returns_12m": n_ret,
            "confirmed_fraud": fraud,
            "signup_at": _ts(c[C.SIGNUP_AT]),
            "birth_date": None if birth is None or pd.isna(birth) else pd.Timestamp(birth).date(),
            "last_order_at": _ts(at.max()) if len(pos) else None,
            "has_active_subscription": sub_id is not None,
            "subscription_id": sub_id,
            "email_opt_in": bool(c[C.EMAIL_OPT_IN]),
            "sms_opt_in": bool(c[C.SMS_OPT_IN]),
            "push_opt_in": bool(c[C.PUSH_OPT_IN]),
            "email": str(c[C.EMAIL]),
            "phone": _text_or_none(c.get(C.PHONE)),
            "device_id": _text_or_none(c.get(C.DEVICE_ID)),
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


def _columns(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The frame as one array per column (row positions are the frame's order)."""
    return {c: df[c].to_numpy() for c in df.columns}


def _positions(keys: np.ndarray) -> dict[int, list[int]]:
    """key value -> row positions, in row order."""
    return _grouped(np.asarray(keys, dtype=np.int64), np.arange(len(keys)))


def _records_by(df: pd.DataFrame | None, key: str) -> dict[int, list[dict]]:
    """key value -> the rows as dicts (small tables: returns, claims, subscriptions)."""
    out: dict[int, list[dict]] = {}
    if df is None:
        return out
    for r in df.to_dict("records"):
        out.setdefault(int(r[key]), []).append(r)
    return out


def _grouped(keys: np.ndarray, idx: np.ndarray) -> dict[int, list]:
    if not len(keys):
        return {}
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


def _text_or_none(v) -> str | None:
    """A contact cell as text, None when the store has none (SMS and push then fail)."""
    return None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
