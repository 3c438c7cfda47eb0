"""Column and table names of the canonical schema, in one place.

Every module refers to columns through these constants so that a rename is one edit
and a typo is an AttributeError instead of a silent KeyError at run time.
"""

from __future__ import annotations

# --- table names ---------------------------------------------------------------------
CUSTOMERS = "customers"
PRODUCTS = "products"
ORDERS = "orders"
ORDER_ITEMS = "order_items"
SHIPMENTS = "shipments"
TRACKING_EVENTS = "tracking_events"
SUBSCRIPTIONS = "subscriptions"
SUBSCRIPTION_EVENTS = "subscription_events"
RETURNS = "returns"
CLAIMS = "claims"
REVIEWS = "reviews"
INTERACTIONS = "interactions"
MESSAGES = "messages"
LOYALTY_EVENTS = "loyalty_events"

TABLES: tuple[str, ...] = (
    CUSTOMERS,
    PRODUCTS,
    ORDERS,
    ORDER_ITEMS,
    SHIPMENTS,
    TRACKING_EVENTS,
    SUBSCRIPTIONS,
    SUBSCRIPTION_EVENTS,
    RETURNS,
    CLAIMS,
    REVIEWS,
    INTERACTIONS,
    MESSAGES,
    LOYALTY_EVENTS,
)

# Ground-truth tables written beside the observable ones (never mixed into them).
TRUTH_SHIPMENTS = "truth_shipments"
TRUTH_SUBSCRIPTION_MONTHS = "truth_subscription_months"
TRUTH_CUSTOMERS = "truth_customers"
TRUTH_RETURNS = "truth_returns"
TRUTH_CLAIMS = "truth_claims"
TRUTH_FEEDBACK = "truth_feedback"  # the planted theme of every review / return text
TRUTH_FEEDBACK_EMERGING = "truth_feedback_emerging"  # themes that start mid-period
TRUTH_TABLES: tuple[str, ...] = (
    TRUTH_SHIPMENTS,
    TRUTH_SUBSCRIPTION_MONTHS,
    TRUTH_CUSTOMERS,
    TRUTH_RETURNS,
    TRUTH_CLAIMS,
    TRUTH_FEEDBACK,
    TRUTH_FEEDBACK_EMERGING,
)

# --- keys ------------------------------------------------------------------------------
CUSTOMER_ID = "customer_id"
PRODUCT_ID = "product_id"
ORDER_ID = "order_id"
LINE_NO = "line_no"
SHIPMENT_ID = "shipment_id"
EVENT_ID = "event_id"
SUBSCRIPTION_ID = "subscription_id"
RETURN_ID = "return_id"
CLAIM_ID = "claim_id"
REVIEW_ID = "review_id"
MESSAGE_ID = "message_id"

# --- customers (raw contact data is fake; features only see hashed forms) -------------
SIGNUP_AT = "signup_at"
NAME = "name"
EMAIL = "email"
PHONE = "phone"
ADDRESS = "address"
REGION = "region"
DEVICE_ID = "device_id"
PAYMENT_FINGERPRINT = "payment_fingerprint"
BIRTH_DATE = "birth_date"
EMAIL_OPT_IN = "email_opt_in"
SMS_OPT_IN = "sms_opt_in"
PUSH_OPT_IN = "push_opt_in"
REFERRED_BY = "referred_by"

# --- products --------------------------------------------------------------------------
CATEGORY = "category"
PRICE = "price"
WEIGHT_KG = "weight_kg"
IS_CONSUMABLE = "is_consumable"
REPLENISH_DAYS = "replenish_days"
SUBSCRIBABLE = "subscribable"
IN_STOCK = "in_stock"

# --- orders ------------------------------------------------------------------------------
ORDERED_AT = "ordered_at"
CHANNEL = "channel"
WAREHOUSE = "warehouse"
ORIGIN_REGION = "origin_region"
DEST_REGION = "dest_region"
DISTANCE_KM = "distance_km"
CARRIER = "carrier"
SERVICE_LEVEL = "service_level"
PROMISED_DAYS = "promised_days"
PROMISED_DATE = "promised_date"
ORDER_VALUE = "order_value"
DISCOUNT = "discount"
IS_RENEWAL = "is_renewal"

# --- order items -------------------------------------------------------------------------
QUANTITY = "quantity"
UNIT_PRICE = "unit_price"

# --- shipments & tracking ----------------------------------------------------------------
SHIPPED_AT = "shipped_at"
DELIVERED_AT = "delivered_at"
STATUS = "status"
SIGNATURE = "signature"
GPS_DISTANCE_M = "gps_distance_m"
EVENT_AT = "event_at"
EVENT_TYPE = "event_type"
LOCATION_REGION = "location_region"

# --- subscriptions -----------------------------------------------------------------------
PLAN = "plan"
STARTED_AT = "started_at"
CANCELLED_AT = "cancelled_at"
OLD_VALUE = "old_value"
NEW_VALUE = "new_value"

# --- returns & claims --------------------------------------------------------------------
REQUESTED_AT = "requested_at"
REASON = "reason"
REFUND_AMOUNT = "refund_amount"
CLAIMED_AT = "claimed_at"
CLAIM_TYPE = "claim_type"
AMOUNT = "amount"
CONFIRMED_FRAUD = "confirmed_fraud"

# --- reviews, interactions, messages, loyalty -------------------------------------------
CREATED_AT = "created_at"
RATING = "rating"
SENT_AT = "sent_at"
DIRECTION = "direction"
MESSAGE_TYPE = "message_type"
OPENED = "opened"
CLICKED = "clicked"
POINTS = "points"
TIER = "tier"

# --- free text: reviews (title, body) and return comments ----------------------------------
REVIEW_TITLE = "title"
REVIEW_BODY = "body"
RETURN_COMMENT = "comment"
#: an imported store's returns: the brand's own reason label, as the export wrote it
REASON_LABEL = "reason_label"
SOURCE = "source"  # "review" or "return": where a text came from
TEXT_ID = "text_id"  # review_id or return_id, by source
LANGUAGE = "language"
THEME = "theme"
TEXT_SOURCES = ("review", "return")

# --- ground truth ------------------------------------------------------------------------
TRUE_MU = "true_mu"
TRUE_SIGMA = "true_sigma"
MONTH = "month"
TRUE_HAZARD = "true_hazard"
CHURNED = "churned"
FRAUD_TYPE = "fraud_type"
RING_ID = "ring_id"
TRUE_FRAUD_PROB = "true_fraud_prob"
IS_FRAUD = "is_fraud"
TASTE = "taste"
ENGAGEMENT = "engagement"
FRAILTY = "frailty"

# --- allowed values ----------------------------------------------------------------------
CARRIERS = ("swiftpost", "parcelgo", "econoship")
SERVICE_LEVELS = ("standard", "express")
REGIONS = ("north", "south", "east", "west", "central", "islands")
WAREHOUSES = ("wh_north", "wh_south")
CHANNELS_ORDER = ("web", "app")
CATEGORIES = ("beans", "ground", "tea", "equipment", "accessories", "merch")
SHIPMENT_STATUSES = ("delivered", "in_transit", "lost")
TRACKING_EVENT_TYPES = (
    "label_created",
    "picked_up",
    "hub_scan",
    "out_for_delivery",
    "delivered",
    "exception",
)
PLANS = ("monthly", "biweekly")
SUBSCRIPTION_EVENT_TYPES = ("start", "renew", "skip", "pause", "resume", "price_change", "cancel")
RETURN_REASONS = ("changed_mind", "damaged", "not_as_described", "wrong_item", "other")
#: Size and fit: the commonest apparel return reason. A texts-only store (return comments
#: without orders) keeps it; the fraud model and the synthetic world do not know it, so a
#: store of orders records it as ``changed_mind`` (ppx.data.stores.reasons.FOLDED).
SIZE_FIT = "size_fit"
TEXT_RETURN_REASONS = (*RETURN_REASONS, SIZE_FIT)
CLAIM_TYPES = ("item_not_received", "damaged_in_transit")
MESSAGE_CHANNELS = ("email", "sms", "push", "support")
MESSAGE_DIRECTIONS = ("outbound", "inbound")
MESSAGE_TYPES = (
    "order_confirmation",
    "shipped",
    "delay_notice",
    "thank_you",
    "review_request",
    "win_back",
    "anniversary",
    "promotion",
    "support_contact",
)
INTERACTION_TYPES = ("view", "purchase", "renewal")
LOYALTY_EVENT_TYPES = (
    "earn",
    "redeem",
    "reversal",
    "referral_bonus",
    "review_bonus",
    "tier_change",
)
TIERS = ("bronze", "silver", "gold", "platinum")
FRAUD_TYPES = ("none", "serial_returner", "wardrober", "ring", "false_claimer")
