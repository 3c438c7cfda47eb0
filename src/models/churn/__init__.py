"""Churn: who is about to cancel, when, and why — on subscriptions and any customer table.

A discrete-time survival network (PyTorch) over the next months gives P(churn within
30/60/90 days) and an expected remaining lifetime for subscriptions of the canonical
schema; the same network with one output is a calibrated classifier for a user's own
customer table (``ppx train churn --table FILE``).
"""
