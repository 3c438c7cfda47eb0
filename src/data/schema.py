"""The canonical tables as pandera schemas, plus the checks that span tables.

Every loader goes through :func:`validate_tables`: it validates every table it was given
(types, keys, allowed values), then the cross-table rules (foreign keys, time order,
refunds within the order value), and raises one :class:`SchemaValidationError` that
names table, column and the first offending rows. Nothing is returned unless everything
passed, so a caller never holds a half-loaded world.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from ppx.data import columns as C

MAX_ROWS_SHOWN = 5

_TS = "datetime64[ns]"


def _id(unique: bool = False, nullable: bool = False) -> pa.Column:
    return pa.Column("int64", pa.Check.ge(1), unique=unique, nullable=nullable, coerce=True)


def _ts(nullable: bool = False) -> pa.Column:
    return pa.Column(_TS, nullable=nullable, coerce=True)


def _cat(values: tuple[str, ...], nullable: bool = False) -> pa.Column:
    return pa.Column(str, pa.Check.isin(values), nullable=nullable)


def _open(nullable: bool = False) -> pa.Column:
    """A name from a brand's own vocabulary (carrier, region, warehouse, category).

    Worlds use the fixed lists in :mod:`ppx.data.columns`; a store keeps the brand's
    names (an Olist state, a real carrier), and the models learn whatever values occur.
    """
    return pa.Column(str, pa.Check.str_length(1, 100), nullable=nullable)


def _num(ge: float | None = 0, nullable: bool = False, le: float | None = None) -> pa.Column:
    checks = []
    if ge is not None:
        checks.append(pa.Check.ge(ge))
    if le is not None:
        checks.append(pa.Check.le(le))
    return pa.Column(float, checks, nullable=nullable, coerce=True)


def _free_text() -> pa.Column:
    """What a customer wrote: optional (older exports have none), empty allowed, capped."""
    return pa.Column(str, pa.Check.str_length(0, 5000), nullable=True, required=False, coerce=False)


def _bool() -> pa.Column:
    return pa.Column(bool, coerce=True)


def _text(nullable: bool = False) -> pa.Column:
    return pa.Column(str, pa.Check.str_length(1, 500), nullable=nullable)


SCHEMAS: dict[str, pa.DataFrameSchema] = {
    C.CUSTOMERS: pa.DataFrameSchema(
        {
            C.CUSTOMER_ID: _id(unique=True),
            C.SIGNUP_AT: _ts(),
            C.NAME: _text(),
            C.EMAIL: _text(),
            C.PHONE: _text(nullable=True),
            C.ADDRESS: _text(),
            C.REGION: _open(),
            C.DEVICE_ID: _text(nullable=True),
            C.PAYMENT_FINGERPRINT: _text(nullable=True),
            C.BIRTH_DATE: _ts(nullable=True),
            C.EMAIL_OPT_IN: _bool(),
            C.SMS_OPT_IN: _bool(),
            C.PUSH_OPT_IN: _bool(),
            C.REFERRED_BY: pa.Column("Int64", nullable=True, coerce=True),
        },
        name=C.CUSTOMERS,
    ),
    C.PRODUCTS: pa.DataFrameSchema(
        {
            C.PRODUCT_ID: _id(unique=True),
            C.CATEGORY: _open(),
            C.NAME: _text(),
            C.PRICE: _num(ge=0.01),
            C.WEIGHT_KG: _num(ge=0),
            C.IS_CONSUMABLE: _bool(),
            C.REPLENISH_DAYS: _num(ge=1, nullable=True),
            C.SUBSCRIBABLE: _bool(),
            C.IN_STOCK: _bool(),
        },
        name=C.PRODUCTS,
    ),
    C.ORDERS: pa.DataFrameSchema(
        {
            C.ORDER_ID: _id(unique=True),
            C.CUSTOMER_ID: _id(),
            C.ORDERED_AT: _ts(),
            C.CHANNEL: _cat(C.CHANNELS_ORDER),
            C.WAREHOUSE: _open(),
            C.ORIGIN_REGION: _open(),
            C.DEST_REGION: _open(),
            C.DISTANCE_KM: _num(ge=0, nullable=True),
            C.CARRIER: _open(),
            C.SERVICE_LEVEL: _cat(C.SERVICE_LEVELS),
            C.PROMISED_DAYS: pa.Column("int64", pa.Check.ge(0), coerce=True),
            C.PROMISED_DATE: _ts(),
            C.ORDER_VALUE: _num(ge=0),
            C.DISCOUNT: _num(ge=0),
            C.IS_RENEWAL: _bool(),
            C.SUBSCRIPTION_ID: pa.Column("Int64", nullable=True, coerce=True),
        },
        name=C.ORDERS,
    ),
    C.ORDER_ITEMS: pa.DataFrameSchema(
        {
            C.ORDER_ID: _id(),
            C.LINE_NO: pa.Column("int64", pa.Check.ge(1), coerce=True),
            C.PRODUCT_ID: _id(),
            C.QUANTITY: pa.Column("int64", pa.Check.ge(1), coerce=True),
            C.UNIT_PRICE: _num(ge=0),
        },
        unique=[C.ORDER_ID, C.LINE_NO],
        name=C.ORDER_ITEMS,
    ),
    C.SHIPMENTS: pa.DataFrameSchema(
        {
            C.SHIPMENT_ID: _id(unique=True),
            C.ORDER_ID: _id(),
            C.CARRIER: _open(),
            C.SERVICE_LEVEL: _cat(C.SERVICE_LEVELS),
            C.SHIPPED_AT: _ts(nullable=True),
            C.DELIVERED_AT: _ts(nullable=True),
            C.STATUS: _cat(C.SHIPMENT_STATUSES),
            C.WEIGHT_KG: _num(ge=0),
            C.SIGNATURE: _bool(),
            C.GPS_DISTANCE_M: _num(ge=0, nullable=True),
        },
        name=C.SHIPMENTS,
    ),
    C.TRACKING_EVENTS: pa.DataFrameSchema(
        {
            C.EVENT_ID: _id(unique=True),
            C.SHIPMENT_ID: _id(),
            C.EVENT_AT: _ts(),
            C.EVENT_TYPE: _cat(C.TRACKING_EVENT_TYPES),
            C.LOCATION_REGION: _open(),
        },
        name=C.TRACKING_EVENTS,
    ),
    C.SUBSCRIPTIONS: pa.DataFrameSchema(
        {
            C.SUBSCRIPTION_ID: _id(unique=True),
            C.CUSTOMER_ID: _id(),
            C.PRODUCT_ID: _id(),
            C.PLAN: _cat(C.PLANS),
            C.PRICE: _num(ge=0),
            C.STARTED_AT: _ts(),
            C.CANCELLED_AT: _ts(nullable=True),
        },
        name=C.SUBSCRIPTIONS,
    ),
    C.SUBSCRIPTION_EVENTS: pa.DataFrameSchema(
        {
            C.EVENT_ID: _id(unique=True),
            C.SUBSCRIPTION_ID: _id(),
            C.EVENT_AT: _ts(),
            C.EVENT_TYPE: _cat(C.SUBSCRIPTION_EVENT_TYPES),
            C.OLD_VALUE: _num(ge=None, nullable=True),
            C.NEW_VALUE: _num(ge=None, nullable=True),
        },
        name=C.SUBSCRIPTION_EVENTS,
    ),
    C.RETURNS: pa.DataFrameSchema(
        {
            C.RETURN_ID: _id(unique=True),
            C.ORDER_ID: _id(),
            C.CUSTOMER_ID: _id(),
            C.PRODUCT_ID: _id(),
            C.REQUESTED_AT: _ts(),
            C.REASON: _cat(C.RETURN_REASONS),
            C.REFUND_AMOUNT: _num(ge=0),
            C.CONFIRMED_FRAUD: _bool(),
            C.RETURN_COMMENT: _free_text(),
            # an imported store's own label of the reason ("Too small"); worlds have none
            C.REASON_LABEL: _free_text(),
        },
        name=C.RETURNS,
    ),
    C.CLAIMS: pa.DataFrameSchema(
        {
            C.CLAIM_ID: _id(unique=True),
            C.ORDER_ID: _id(),
            C.SHIPMENT_ID: _id(),
            C.CUSTOMER_ID: _id(),
            C.CLAIMED_AT: _ts(),
            C.CLAIM_TYPE: _cat(C.CLAIM_TYPES),
            C.AMOUNT: _num(ge=0),
            C.CONFIRMED_FRAUD: _bool(),
        },
        name=C.CLAIMS,
    ),
    C.REVIEWS: pa.DataFrameSchema(
        {
            C.REVIEW_ID: _id(unique=True),
            C.CUSTOMER_ID: _id(),
            C.PRODUCT_ID: _id(),
            C.ORDER_ID: _id(nullable=True),
            C.CREATED_AT: _ts(),
            C.RATING: pa.Column("int64", pa.Check.in_range(1, 5), coerce=True),
            C.REVIEW_TITLE: _free_text(),
            C.REVIEW_BODY: _free_text(),
        },
        name=C.REVIEWS,
    ),
    C.INTERACTIONS: pa.DataFrameSchema(
        {
            C.CUSTOMER_ID: _id(),
            C.PRODUCT_ID: _id(),
            C.EVENT_AT: _ts(),
            C.EVENT_TYPE: _cat(C.INTERACTION_TYPES),
        },
        name=C.INTERACTIONS,
    ),
    C.MESSAGES: pa.DataFrameSchema(
        {
            C.MESSAGE_ID: _id(unique=True),
            C.CUSTOMER_ID: _id(),
            C.SENT_AT: _ts(),
            C.CHANNEL: _cat(C.MESSAGE_CHANNELS),
            C.DIRECTION: _cat(C.MESSAGE_DIRECTIONS),
            C.MESSAGE_TYPE: _cat(C.MESSAGE_TYPES),
            C.OPENED: _bool(),
            C.CLICKED: _bool(),
        },
        name=C.MESSAGES,
    ),
    C.LOYALTY_EVENTS: pa.DataFrameSchema(
        {
            C.EVENT_ID: _id(unique=True),
            C.CUSTOMER_ID: _id(),
            C.EVENT_AT: _ts(),
            C.EVENT_TYPE: _cat(C.LOYALTY_EVENT_TYPES),
            C.POINTS: pa.Column("int64", coerce=True),
            C.TIER: _cat(C.TIERS, nullable=True),
        },
        name=C.LOYALTY_EVENTS,
    ),
}

# (child table, child column, parent table, parent column)
FOREIGN_KEYS: tuple[tuple[str, str, str, str], ...] = (
    (C.ORDERS, C.CUSTOMER_ID, C.CUSTOMERS, C.CUSTOMER_ID),
    (C.ORDERS, C.SUBSCRIPTION_ID, C.SUBSCRIPTIONS, C.SUBSCRIPTION_ID),
    (C.ORDER_ITEMS, C.ORDER_ID, C.ORDERS, C.ORDER_ID),
    (C.ORDER_ITEMS, C.PRODUCT_ID, C.PRODUCTS, C.PRODUCT_ID),
    (C.SHIPMENTS, C.ORDER_ID, C.ORDERS, C.ORDER_ID),
    (C.TRACKING_EVENTS, C.SHIPMENT_ID, C.SHIPMENTS, C.SHIPMENT_ID),
    (C.SUBSCRIPTIONS, C.CUSTOMER_ID, C.CUSTOMERS, C.CUSTOMER_ID),
    (C.SUBSCRIPTIONS, C.PRODUCT_ID, C.PRODUCTS, C.PRODUCT_ID),
    (C.SUBSCRIPTION_EVENTS, C.SUBSCRIPTION_ID, C.SUBSCRIPTIONS, C.SUBSCRIPTION_ID),
    (C.RETURNS, C.ORDER_ID, C.ORDERS, C.ORDER_ID),
    (C.RETURNS, C.CUSTOMER_ID, C.CUSTOMERS, C.CUSTOMER_ID),
    (C.RETURNS, C.PRODUCT_ID, C.PRODUCTS, C.PRODUCT_ID),
    (C.CLAIMS, C.ORDER_ID, C.ORDERS, C.ORDER_ID),
    (C.CLAIMS, C.SHIPMENT_ID, C.SHIPMENTS, C.SHIPMENT_ID),
    (C.CLAIMS, C.CUSTOMER_ID, C.CUSTOMERS, C.CUSTOMER_ID),
    (C.REVIEWS, C.CUSTOMER_ID, C.CUSTOMERS, C.CUSTOMER_ID),
    (C.REVIEWS, C.PRODUCT_ID, C.PRODUCTS, C.PRODUCT_ID),
    (C.INTERACTIONS, C.CUSTOMER_ID, C.CUSTOMERS, C.CUSTOMER_ID),
    (C.INTERACTIONS, C.PRODUCT_ID, C.PRODUCTS, C.PRODUCT_ID),
    (C.MESSAGES, C.CUSTOMER_ID, C.CUSTOMERS, C.CUSTOMER_ID),
    (C.LOYALTY_EVENTS, C.CUSTOMER_ID, C.CUSTOMERS, C.CUSTOMER_ID),
)

# Tables a world must have rows in; the others may legitimately be empty in small data.
REQUIRED_NONEMPTY = (C.CUSTOMERS, C.PRODUCTS, C.ORDERS, C.ORDER_ITEMS, C.SHIPMENTS)


class SchemaValidationError(ValueError):
    """Raised when canonical tables break the schema; the message lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid canonical data:\n- " + "\n- ".join(problems))


def _rows(index_values) -> str:
    vals = list(index_values)
    shown = ", ".join(str(v) for v in vals[:MAX_ROWS_SHOWN])
    more = f" and {len(vals) - MAX_ROWS_SHOWN} more" if len(vals) > MAX_ROWS_SHOWN else ""
    return f"rows [{shown}]{more}"


def _describe_schema_errors(table: str, err: SchemaErrors) -> list[str]:
    fc = err.failure_cases
    problems = []
    for (column, check), grp in fc.groupby(["column", "check"], sort=False, dropna=False):
        column = column if isinstance(column, str) else table
        idx = grp["index"].dropna().tolist()
        examples = grp["failure_case"].head(MAX_ROWS_SHOWN).tolist()
        if check == "column_in_dataframe":
            problems.append(f"table {table}: missing column {examples[0]!r}")
            continue
        where = _rows(idx) if idx else "the column"
        problems.append(
            f"table {table}, column {column}: check {check} failed at {where} (values {examples})"
        )
    return problems


#: Tables a texts-only store holds (a reviews app's export, return comments): no orders.
TEXT_TABLES = (C.REVIEWS, C.RETURNS)
#: What a texts-only export may bring beside its texts: the catalogue, the customer list.
CATALOGUE_TABLES = (C.PRODUCTS, C.CUSTOMERS)
_CATALOGUE_IDS = {C.PRODUCTS: C.PRODUCT_ID, C.CUSTOMERS: C.CUSTOMER_ID}


def _catalogue_schema(name: str) -> pa.DataFrameSchema:
    """A catalogue beside texts keeps whatever columns the export had: every column but the
    id is optional and may be empty (a flag too, as a nullable boolean), since a product
    reviewed but not listed is a row with its id alone."""
    updates = {}
    for col, spec in SCHEMAS[name].columns.items():
        if col != _CATALOGUE_IDS[name]:
            updates[col] = {"nullable": True, "required": False}
            if str(spec.dtype) == "bool":
                updates[col]["dtype"] = "boolean"
    return SCHEMAS[name].update_columns(updates)


# A reviews or return-comments export has no order behind each text, and may have no
# dates: those columns may be empty in a texts-only store (and only there). Its returns
# may hold size_fit, a reason the fraud model does not know (ppx.data.stores.reasons).
TEXT_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    C.REVIEWS: SCHEMAS[C.REVIEWS].update_columns(
        {C.CREATED_AT: {"nullable": True}, C.ORDER_ID: {"nullable": True, "dtype": "Int64"}}
    ),
    C.RETURNS: SCHEMAS[C.RETURNS].update_columns(
        {
            C.REQUESTED_AT: {"nullable": True},
            C.ORDER_ID: {"nullable": True, "dtype": "Int64"},
            C.REASON: {"nullable": True, "checks": [pa.Check.isin(C.TEXT_RETURN_REASONS)]},
            C.REFUND_AMOUNT: {"nullable": True},
        }
    ),
    **{name: _catalogue_schema(name) for name in CATALOGUE_TABLES},
}


def validate_table(
    name: str, df: pd.DataFrame, texts_only: bool = False
) -> tuple[pd.DataFrame | None, list[str]]:
    """Validate one table; returns the coerced frame (or None) and its problems.

    ``texts_only``: the table belongs to a texts-only store, which holds only
    :data:`TEXT_TABLES` with their order, date and refund columns allowed to be empty, and
    optionally the :data:`CATALOGUE_TABLES` with whatever columns the export had.
    """
    if name not in SCHEMAS:
        return None, [f"unknown table {name!r}; expected one of {', '.join(C.TABLES)}"]
    if texts_only and name not in TEXT_SCHEMAS:
        return None, [f"table {name}: a texts-only store holds only {', '.join(TEXT_SCHEMAS)}"]
    if name in REQUIRED_NONEMPTY and len(df) == 0:
        return None, [f"table {name} is empty; it needs at least one row"]
    schema = TEXT_SCHEMAS[name] if texts_only else SCHEMAS[name]
    try:
        return schema.validate(df, lazy=True), []
    except SchemaErrors as err:
        return None, _describe_schema_errors(name, err)


def _cross_table_problems(t: Mapping[str, pd.DataFrame]) -> list[str]:
    problems: list[str] = []
    for child, col, parent, pcol in FOREIGN_KEYS:
        if child not in t or parent not in t or col not in t[child]:
            continue
        vals = t[child][col]
        bad = vals.notna() & ~vals.isin(t[parent][pcol])
        if bad.any():
            problems.append(
                f"table {child}, column {col}: {int(bad.sum())} values have no match in "
                f"{parent}.{pcol} at {_rows(t[child].index[bad])} "
                f"(values {vals[bad].head(MAX_ROWS_SHOWN).tolist()})"
            )
    if C.SHIPMENTS in t and C.ORDERS in t:
        s = t[C.SHIPMENTS].merge(t[C.ORDERS][[C.ORDER_ID, C.ORDERED_AT]], on=C.ORDER_ID, how="left")
        s.index = t[C.SHIPMENTS].index
        for col, before, what in (
            (C.SHIPPED_AT, C.ORDERED_AT, "shipped before it was ordered"),
            (C.DELIVERED_AT, C.SHIPPED_AT, "delivered before it was shipped"),
            (C.DELIVERED_AT, C.ORDERED_AT, "delivered before it was ordered"),
        ):
            bad = s[col].notna() & s[before].notna() & (s[col] < s[before])
            if bad.any():
                problems.append(
                    f"table {C.SHIPMENTS}, column {col}: time travel, {what} at "
                    f"{_rows(s.index[bad])}"
                )
        bad = (s[C.STATUS] == "delivered") & s[C.DELIVERED_AT].isna()
        if bad.any():
            problems.append(
                f"table {C.SHIPMENTS}, column {C.DELIVERED_AT}: status delivered but no "
                f"delivery time at {_rows(s.index[bad])}"
            )
    if C.RETURNS in t and C.ORDERS in t:
        r = t[C.RETURNS]
        per_order = r.groupby(C.ORDER_ID)[C.REFUND_AMOUNT].sum()
        value = t[C.ORDERS].set_index(C.ORDER_ID)[C.ORDER_VALUE]
        # Refunds are at list price while the order value is after discount; allow the
        # order's discount on top.
        disc = t[C.ORDERS].set_index(C.ORDER_ID)[C.DISCOUNT]
        limit = (value + disc).reindex(per_order.index)
        over = per_order[per_order > limit + 0.01]
        if len(over):
            rows = r.index[r[C.ORDER_ID].isin(over.index)]
            problems.append(
                f"table {C.RETURNS}, column {C.REFUND_AMOUNT}: refunds exceed the order value "
                f"for orders {over.index[:MAX_ROWS_SHOWN].tolist()} at {_rows(rows)}"
            )
        ro = r.merge(t[C.ORDERS][[C.ORDER_ID, C.ORDERED_AT]], on=C.ORDER_ID, how="left")
        ro.index = r.index
        bad = ro[C.REQUESTED_AT] < ro[C.ORDERED_AT]
        if bad.any():
            problems.append(
                f"table {C.RETURNS}, column {C.REQUESTED_AT}: time travel, return requested "
                f"before the order at {_rows(ro.index[bad])}"
            )
    if C.CLAIMS in t and C.ORDERS in t:
        cl = t[C.CLAIMS].merge(t[C.ORDERS][[C.ORDER_ID, C.ORDERED_AT]], on=C.ORDER_ID, how="left")
        cl.index = t[C.CLAIMS].index
        bad = cl[C.CLAIMED_AT] < cl[C.ORDERED_AT]
        if bad.any():
            problems.append(
                f"table {C.CLAIMS}, column {C.CLAIMED_AT}: time travel, claim made before the "
                f"order at {_rows(cl.index[bad])}"
            )
    return problems


def validate_tables(
    tables: Mapping[str, pd.DataFrame], texts_only: bool = False
) -> dict[str, pd.DataFrame]:
    """Validate a set of canonical tables together; all pass or nothing is returned.

    ``texts_only`` validates a texts-only store (see :func:`validate_table`).

    Raises:
        SchemaValidationError: listing every problem found, each naming table, column
            and the first offending rows.
    """
    clean: dict[str, pd.DataFrame] = {}
    problems: list[str] = []
    for name, df in tables.items():
        out, errs = validate_table(name, df, texts_only)
        problems.extend(errs)
        if out is not None:
            clean[name] = out
    if problems:
        raise SchemaValidationError(problems)
    problems = _cross_table_problems(clean)
    if problems:
        raise SchemaValidationError(problems)
    return clean
