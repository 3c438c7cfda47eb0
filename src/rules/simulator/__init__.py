"""Policy simulator: replay a world's history through the decision functions, offline.

Product teams ask "what would this policy have cost, and what would it have bought?"
before shipping it. The simulator answers by replaying a synthetic world's orders,
shipments, deliveries, reviews, referrals, returns, claims and daily triggers (birthdays,
anniversaries, lapsed customers, consumables running out) in time order through the very
same ``decide_*`` functions the decision service runs, for one or two policies on the
identical event stream, and reports side by side:

* cost of points (net points awarded x ``point_value``), by ledger type;
* messages per customer per week (all outbound, and marketing), and how many were
  suppressed by opt-outs or caps;
* fraud loss avoided (fraudulent returns/claims routed to inspection or investigation,
  assuming inspection catches them) and fraud loss still paid;
* honest customers affected (honest requests delayed by inspection or investigation);
* expected churn reduction under the world's true hazard.

Scores. When no models are given, the world's ground truth stands in for them, made
imperfect with seeded noise so the result is not an oracle (``StandInScores``): delivery
estimates are the true transit distribution's median and 90th percentile; a
subscriber's churn risk is the true 90-day cancellation probability from
``truth_subscription_months``, a one-off buyer's is P(no order in 90 days) under the
world's true order rate; fraud risk is each request's true fraud probability; ring
membership is the true ring id, found with ``ring_recall`` and with a small false-positive
rate. Probabilities get N(0, ``score_noise``) noise on the logit. The output says so.

Churn assumption. The world's hazard lowers the logit by ``churn_redeem_effect`` for a
subscriber who redeemed points in the three calendar months before the hazard month.
The simulator assumes retention gestures (apology points, win-back points, a surprise
tier-up) in those three months act the same way, with a strength
``s = min(1, gesture points / redeem_threshold)`` (a gift worth one redemption acts like
one; a tier-up counts as 1), on a share ``uptake`` of the customers reached (default
0.5), unless they redeemed anyway:
``h' = uptake * s * sigmoid(logit(h) + effect) + (1 - uptake * s) * h``. Expected
cancellations are the sum of monthly hazards over the world's subscription months (a
first-order estimate that ignores the extra months a retained subscriber would add).

Deterministic by seed: the customer sample, the score noise and the ring flags all come
from ``numpy.random.default_rng(seed)``; the event order is a stable sort.

Modules: ``inputs`` (the world's tables for the sampled customers), ``scores`` (stand-in
scores), ``daily`` (candidate customer-days), ``stream`` (the time-ordered events),
``replay`` (one policy's replay), ``churn`` (the expected-churn estimate), ``config``
and ``run`` (``simulate``, ``compare``).
"""

from ppx.rules.simulator.config import SimulationConfig, SimulationResult
from ppx.rules.simulator.run import compare, simulate
from ppx.rules.simulator.scores import StandInScores

__all__ = ["SimulationConfig", "SimulationResult", "StandInScores", "compare", "simulate"]
