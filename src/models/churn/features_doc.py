"""What the churn model's inputs mean, for reports and reason codes (see ppx.explain.dictionary).

Inputs are raw values (the network standardises inside), so only the flags that restate
a count ("any claim in 3 months" beside "claims in 3 months") and the capped copy of
late deliveries are folded onto the field they restate; plan, tier and region are integer
codes (0 = a value unseen in training) decoded with the model's vocabulary.
"""

from __future__ import annotations

from ppx.explain.dictionary import Column, Field, build, decode_vocab

FIELDS = (
    Field("tenure_under_90d", "new subscriber (first 90 days)", kind="flag"),
    Field("plan", "plan", kind="category"),
    Field("tier", "loyalty tier", kind="category"),
    Field("region", "region", kind="category"),
    Field("price_now", "subscription price", kind="money"),
    Field("price_increase_2m", "price rise in the last 2 months", kind="flag"),
    Field("skips_1m", "skipped deliveries in the last month", kind="count"),
    Field("skips_3m", "skipped deliveries in the last 3 months", kind="count"),
    Field("paused_1m", "paused in the last month", kind="flag"),
    Field("paused_now", "paused now", kind="flag"),
    Field("deliveries_2m", "deliveries in the last 2 months", kind="count"),
    Field("late_1m", "late deliveries in the last month", kind="count"),
    Field("late_2m", "late deliveries in the last 2 months", kind="count"),
    Field("late_6m", "late deliveries in the last 6 months", kind="count"),
    Field("late_rate", "share of all deliveries that were late", kind="share"),
    Field("claims_3m", "delivery claims in the last 3 months", kind="count"),
    Field("returns_3m", "returns in the last 3 months", kind="count"),
    Field("mean_rating", "average review rating", unit="stars", decimals=1),
    Field("low_reviews_3m", "low reviews (1-2 stars) in the last 3 months", kind="count"),
    Field("orders_3m", "orders in the last 3 months", kind="count"),
    Field("order_value_3m", "spend in the last 3 months", kind="money"),
    Field("days_since_last_order", "time since the last order", unit="days", decimals=0),
    Field("points_earned_3m", "loyalty points earned in the last 3 months", kind="count"),
    Field("redeems_3m", "loyalty redemptions in the last 3 months", kind="count"),
    Field("open_rate", "share of messages opened", kind="share"),
    Field("open_rate_3m", "share of messages opened in the last 3 months", kind="share"),
    Field("click_rate", "share of messages clicked", kind="share"),
    Field("messages_out_3m", "messages sent in the last 3 months", kind="count"),
    Field("support_contacts_3m", "support contacts in the last 3 months", kind="count"),
    Field("email_opt_in", "accepts e-mail", kind="flag"),
    Field("sms_opt_in", "accepts text messages", kind="flag"),
    Field("push_opt_in", "accepts push notifications", kind="flag"),
    Field("referred", "joined through a referral", kind="flag"),
)

#: inputs that restate another field (their attribution is added to it)
FOLDED = {
    "late_2m_capped": "late_2m",
    "any_claim_3m": "claims_3m",
    "any_low_review_3m": "low_reviews_3m",
    "any_redeem_3m": "redeems_3m",
}

FEATURES = build(
    FIELDS,
    [
        *(Column(f.name, f.name, "code" if f.kind == "category" else "identity") for f in FIELDS),
        *(Column(k, v) for k, v in FOLDED.items()),
    ],
    decode=decode_vocab,
    # the policy's loyalty tiers, and new vs tenured subscribers
    segments={"tier": (), "tenure_under_90d": ()},
)
