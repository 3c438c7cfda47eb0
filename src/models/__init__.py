"""One sub-package per model: delivery, churn, fraud, recs."""
