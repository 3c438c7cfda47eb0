"""Subscriber self-service and save offers: pause, skip, resume, cadence, cancel.

* ``lifecycle``: the state and its legal transitions (pure; 409/422 on illegal ones);
* ``offers``: the save offer chosen from churn risk and reasons, with its cost (pure);
* ``store``: state, events and request keys in the ledger's database;
* ``actions``: the API's operations (calls the churn and recs models before a cancel).
"""

from ppx.rules.subscriptions.lifecycle import Subscription, TransitionError
from ppx.rules.subscriptions.offers import OfferChoice, SaveOffer, choose_save_offer

__all__ = ["OfferChoice", "SaveOffer", "Subscription", "TransitionError", "choose_save_offer"]
