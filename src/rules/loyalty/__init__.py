"""The loyalty programme: rewards catalogue, redemption, points expiry, tiers, referrals.

Everything writes through the points ledger's database (new tables beside
``loyalty_ledger``) with idempotency keys, under the ledger's per-customer lock where a
decision reads before it writes. Import the submodules you need; nothing runs at import.
"""

from ppx.rules.loyalty.summary import LoyaltySummary, loyalty_summary

__all__ = ["LoyaltySummary", "loyalty_summary"]
