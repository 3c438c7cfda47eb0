"""What the recommender's explained inputs mean (see ppx.explain.dictionary).

The recommendation score of a customer's top product is the sequence model's score of
that product plus the repeat-purchase head's boost; the head sees counts and times as
``log(1 + x)`` (shown as the count and the days), and "how due" a repurchase is both as
a ratio and as a closeness bump around 1 (folded together: one finding).
"""

from __future__ import annotations

from ppx.explain.dictionary import Column, Field, build

FIELDS = (
    Field("seq_logit", "fit with the customer's recent browsing and buying", decimals=2),
    Field("in_history", "the customer has bought or viewed this product before", kind="flag"),
    Field("count", "times the customer bought this product", kind="count"),
    Field("days_since", "time since the customer last bought it", unit="days", decimals=0),
    Field(
        "due_ratio", "time since the last purchase, as a multiple of its usual gap", kind="ratio"
    ),
    Field("subscribed", "subscribed to this product", kind="flag"),
    Field("viewed_recently", "viewed it in the last 3 days", kind="flag"),
    Field("item_repeat_rate", "how often buyers of this product buy it again", kind="share"),
    Field("is_last_purchase", "it was the customer's last purchase", kind="flag"),
)

FEATURES = build(
    FIELDS,
    [
        Column("seq_logit", "seq_logit"),
        Column("in_history", "in_history"),
        Column("log_count", "count", "log1p"),
        Column("log_days_since", "days_since", "log1p"),
        Column("due_ratio", "due_ratio"),
        Column("due_closeness", "due_ratio"),
        Column("subscribed", "subscribed"),
        Column("viewed_recently", "viewed_recently"),
        Column("item_repeat_rate", "item_repeat_rate"),
        Column("is_last_purchase", "is_last_purchase"),
    ],
)
