"""Online recalibration of the checkout promise from recently completed deliveries.

The promise rule fitted on the validation months keeps its stated rate while the world
looks like those months. When one carrier or region slows down (a strike, a flood),
its parcels miss their promises until the model is retrained. :class:`OnlineRecalibration`
closes that gap without retraining: it keeps each promise's predicted distribution and,
once a day, looks at the orders of each group (carrier by default) purchased in the last
``window_days`` - a delivery that has completed is an outcome, a parcel still in flight
counts as censored at the days it has already taken, so a slow-down shows as soon as
the first parcels are overdue, not when they finally arrive.

Two ways to use those outcomes (``mode``):

* ``scale`` (default): estimate one speed factor ``s`` per group - the group's parcels
  take ``s`` times as long as the model says (:func:`fit_scale`, maximum a posteriori on
  the censored outcomes) - and promise with the model's own validation rule on the
  time-scaled distribution (:func:`time_scaled`). The validation rule was fitted on many
  parcels of every carrier, so its whole-day steps average out and it lands on the stated
  rate; the window only has to tell how much slower the carrier is, one number, which a
  week of outcomes pins down.
* ``conformal``: re-fit the conformal promise rule per group on the window
  (Kaplan-Meier, :class:`~ppx.models.delivery.model.Recalibrator`). On one carrier's
  fairly similar parcels whole-day promises move its rate in steps of several points and
  the rule takes the first step at or above the target, so after a shift the carrier
  sits a few points *over* the band for weeks; kept for comparison.

With ``gamma`` > 0 each group also carries an adaptive conformal offset on its target
level (Gibbs and Candes, 2021): every morning, over the group's promises whose outcome
became known since the last refit (delivered, or its promised day over),
``offset += gamma * (stated rate - realised rate)``: a group kept too often is promised
a little shorter, one kept too rarely a little longer.

The served model uses it through ``DeliveryModel.online``: ``observe`` as promises are
made, ``deliver`` as parcels arrive, ``refit(now)`` on a schedule; checkout promises of
groups with enough recent outcomes then come from the recent rule.
"""

from __future__ import annotations

import numpy as np

from ppx.models.delivery.model import Recalibrator, conformal_scores

DAY_S = 86_400
# Scores live on a stretched scale h(F) = 1 - (1 - F)^TAIL_POWER: a disrupted carrier's
# parcels arrive where the model's CDF is already 0.99+, and on the plain scale those
# scores would crowd into the last steps of the rule's grid (promises could then only
# jump by whole weeks of coverage). The rule is invariant to a monotone map otherwise.
TAIL_POWER = 0.25
# Chosen on a validation shift world (seed 11, ``swiftpost`` slowed by exp(0.5) for four
# weeks from 2025-10-27), never on the benchmark's own shift world: among the modes,
# windows of 5 / 7 / 10 / 14 days, half-lives of none / 3 / 5 days and adaptive steps of
# 0 / 0.005 / 0.01 / 0.02, the fewest weeks outside [0.88, 0.92] - of the disrupted
# carrier plus of all parcels, from the second week of the disruption on, the first week
# after its end left out - then the smallest worst deviation of the disrupted carrier.
# See docs/benchmarks/delivery.md.
WINDOW_DAYS = 7
HALF_LIFE_DAYS = 5.0
GAMMA = 0.005

MODES = ("scale", "conformal")
PRIOR_SD = 0.25  # sd of log(speed factor) a priori: a factor of 1.28 is one sd
PRIOR_DELAY_SD = 2.0  # sd of the extra delay a priori, days
SCALE_GRID = np.exp(np.linspace(np.log(0.25), np.log(8.0), 241))  # steps of 1.5 %
DELAY_GRID = np.arange(-5.0, 15.001, 0.25)  # days
EPS = 1e-9


def _at(cdf: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The CDF of a parcel's continuous delivery time at ``x`` days: ``cdf[d]`` is
    P(delivered by the end of day d), i.e. of time <= d + 1, linear within a day.
    ``cdf`` is (n, k), ``x`` (n, m); returns (n, m)."""
    n, k = cdf.shape
    pad = np.concatenate([np.zeros((n, 1)), cdf, np.ones((n, 1))], axis=1)
    x = np.clip(x, 0.0, k)
    lo = np.floor(x).astype(int)
    r = np.arange(n)[:, None]
    return pad[r, lo] + (x - lo) * (pad[r, np.minimum(lo + 1, k + 1)] - pad[r, lo])


def time_scaled(cdf: np.ndarray, scale, delay=0.0) -> np.ndarray:
    """The day CDF of parcels that take ``scale`` times as long as ``cdf`` says, plus
    ``delay`` days (one pair for all rows); the last day stays "that day or later"."""
    cdf = np.asarray(cdf, float)
    k = cdf.shape[1]
    x = (np.arange(k, dtype=float)[None, :] + 1.0 - float(delay)) / float(scale)
    out = _at(cdf, np.broadcast_to(x, cdf.shape))
    out[:, -1] = 1.0
    return np.maximum.accumulate(out, axis=1)


def _log_posterior(cdf, y, e, w, scales, delays, prior_sd, prior_delay_sd) -> np.ndarray:
    """Log posterior of each (scale, delay) pair given censored outcomes."""
    up = _at(cdf, (y[:, None] + 1.0 - delays[None, :]) / scales[None, :])
    lo = _at(cdf, (y[:, None] - delays[None, :]) / scales[None, :])
    lik = np.where(e[:, None], up - lo, 1.0 - lo)
    prior = (np.log(scales) / prior_sd) ** 2 + (delays / prior_delay_sd) ** 2
    return w @ np.log(np.maximum(lik, EPS)) - 0.5 * prior


def fit_scale(
    cdf: np.ndarray,
    days: np.ndarray,
    event: np.ndarray,
    weights: np.ndarray | None = None,
    prior_sd: float = PRIOR_SD,
    prior_delay_sd: float = PRIOR_DELAY_SD,
) -> tuple[float, float]:
    """The (speed factor, extra delay) that best explain recent outcomes under
    :func:`time_scaled`: maximum a posteriori, priors centred on "as the model says",
    found by coordinate ascent on grids.

    A delivered parcel (``event``) took ``days``; one still in flight has taken at least
    ``days`` (right-censored), so a slow-down shows as soon as parcels are overdue. Two
    parameters, because a carrier that slows down stretches its parcels' times (a
    factor) while a backlog adds days to every parcel (a delay); one of them alone
    misreads the other's tail.
    """
    cdf = np.asarray(cdf, float)
    k = cdf.shape[1]
    y = np.asarray(days, float)
    e = np.asarray(event, bool) & (y < k - 1)  # the last day means "that day or later"
    y = np.minimum(y, k - 1)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    priors = (prior_sd, prior_delay_sd)
    # A coarse joint grid first (the two trade off against each other, so one at a
    # time from (1, 0) can stop on the wrong ridge), then each refined in turn near it.
    cs, ca = np.meshgrid(SCALE_GRID[::12], DELAY_GRID[::4])
    cs, ca = cs.ravel(), ca.ravel()
    best = int(np.argmax(_log_posterior(cdf, y, e, w, cs, ca, *priors)))
    i, j = int(np.searchsorted(SCALE_GRID, cs[best])), int(np.searchsorted(DELAY_GRID, ca[best]))
    for _ in range(3):
        lo_i, lo_j = max(i - 12, 0), max(j - 4, 0)
        sg, dg = SCALE_GRID[lo_i : i + 13], DELAY_GRID[lo_j : j + 5]
        post = _log_posterior(cdf, y, e, w, sg, np.full(len(sg), DELAY_GRID[j]), *priors)
        i = lo_i + int(np.argmax(post))
        post = _log_posterior(cdf, y, e, w, np.full(len(dg), SCALE_GRID[i]), dg, *priors)
        j = lo_j + int(np.argmax(post))
    return float(SCALE_GRID[i]), float(DELAY_GRID[j])


def stretch(cdf: np.ndarray) -> np.ndarray:
    """h(F): monotone in F, 0 -> 0, 1 -> 1, the upper tail spread out."""
    return 1.0 - np.clip(1.0 - np.asarray(cdf, float), 0.0, 1.0) ** TAIL_POWER


class OnlineRecalibration:
    """Per-group promise recalibration (speed factors or conformal rules) re-fitted
    every day on a rolling window of orders.

    Args:
        window_days: orders purchased this many days before ``now`` form the window.
        min_completed: completed deliveries a group needs in its window for its own
            rule; below that the model's validation rule stays in force.
        half_life_days: if set, an order's weight halves every this many days of age
            (recent purchases count more); None: every order of the window counts the same.
        gamma: step of the adaptive conformal offset on each group's target level per
            refit (0: no offset).
        offset_bounds: the offset is kept within these (the level then stays a rate).
        mode: ``scale`` (a speed factor per group on top of the model's validation
            rule) or ``conformal`` (a promise rule per group re-fitted on the window).
        prior_sd: ``scale`` mode: prior sd of log(speed factor) around 1.

    The window must be longer than most parcels take: the rule learns a parcel's
    outcome only once it has arrived or has been in flight past the promise.
    """

    def __init__(
        self,
        window_days: int = WINDOW_DAYS,
        min_completed: int = 200,
        half_life_days: float | None = HALF_LIFE_DAYS,
        gamma: float = GAMMA,
        offset_bounds: tuple[float, float] = (-0.3, 0.09),
        mode: str = "scale",
        prior_sd: float = PRIOR_SD,
    ):
        if mode not in MODES:
            raise ValueError(f"OnlineRecalibration: mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.prior_sd = float(prior_sd)
        self.scales: dict[str, tuple[float, float]] = {}  # group -> (factor, delay)
        self.window_days = int(window_days)
        self.min_completed = int(min_completed)
        self.half_life_days = half_life_days
        self.gamma = float(gamma)
        self.offset_bounds = offset_bounds
        self.offset: dict[str, float] = {}
        self._ids: list[np.ndarray] = []
        self._group: list[np.ndarray] = []
        self._day: list[np.ndarray] = []
        self._cdf: list[np.ndarray] = []
        self._promise: list[np.ndarray] = []  # promised days (-1: not known)
        self._target: list[np.ndarray] = []  # the stated rate of that promise
        self._counted: list[np.ndarray] = []  # outcome already fed to the offset
        self._delivered: dict = {}  # order id -> delivery day (days since epoch)
        self.rules: dict[str, Recalibrator] = {}
        self.fitted_at: int | None = None

    def observe(
        self, order_ids, ordered_at, groups, cdf: np.ndarray, promise=None, target=None
    ) -> None:
        """Record promises as they are made: the order, its group and its calibrated CDF,
        and (for the adaptive offset) the promised days and the stated rate."""
        t = np.asarray(ordered_at, dtype="datetime64[s]").astype(np.int64)
        n = len(t)
        self._ids.append(np.asarray(order_ids))
        self._group.append(np.asarray(groups, dtype=object))
        self._day.append(t // DAY_S)
        self._cdf.append(np.asarray(cdf, float))
        known = promise is not None and target is not None
        p = np.asarray(promise, float) if known else np.full(n, -1.0)
        self._promise.append(np.broadcast_to(p, (n,)).astype(float))
        tg = np.asarray(target, float) if known else np.full(n, np.nan)
        self._target.append(np.broadcast_to(tg, (n,)).astype(float))
        self._counted.append(~np.full(n, known))

    def deliver(self, order_ids, delivered_at) -> None:
        """Record completed deliveries (order id, delivery time)."""
        d = np.asarray(delivered_at, dtype="datetime64[s]").astype(np.int64) // DAY_S
        self._delivered.update(zip(np.asarray(order_ids).tolist(), d.tolist(), strict=True))

    def _compact(self, oldest_day: int) -> None:
        """Drop promises purchased before ``oldest_day``: they never enter a window again."""
        if not self._ids:
            return
        day = np.concatenate(self._day)
        keep = day >= oldest_day
        ids = np.concatenate(self._ids)
        for gone in ids[~keep].tolist():  # a delivery may be reported before its order
            self._delivered.pop(gone, None)
        self._ids = [ids[keep]]
        self._group = [np.concatenate(self._group)[keep]]
        self._day = [day[keep]]
        self._cdf = [np.concatenate(self._cdf)[keep]]
        self._promise = [np.concatenate(self._promise)[keep]]
        self._target = [np.concatenate(self._target)[keep]]
        self._counted = [np.concatenate(self._counted)[keep]]

    def _update_offsets(self, today: int, got: np.ndarray) -> None:
        """Feed the outcomes that became known by ``today`` to each group's offset."""
        day, p = self._day[0], self._promise[0]
        counted, group, tgt = self._counted[0], self._group[0], self._target[0]
        delivered = got < today
        # Known: delivered before today, or its promised day ended before today.
        resolved = ~counted & (delivered | (today - day > p))
        if not resolved.any():
            return
        kept = delivered & (got - day <= p)
        lo, hi = self.offset_bounds
        for g in np.unique(group[resolved]):
            m = resolved & (group == g)
            step = self.gamma * float(np.mean(tgt[m] - kept[m]))
            self.offset[str(g)] = float(np.clip(self.offset.get(str(g), 0.0) + step, lo, hi))
        counted[resolved] = True

    def refit(self, now) -> dict:
        """Re-fit each group's rule on the orders purchased in ``[now - window, now)``
        with what is known at ``now`` (deliveries before the day of ``now``).

        Returns the groups' rules: speed factors (``scale``) or promise rules."""
        today = int(np.asarray(now, dtype="datetime64[s]").astype(np.int64) // DAY_S)
        self._compact(today - self.window_days)
        self.rules, self.scales, self.fitted_at = {}, {}, today
        if not self._ids:
            return self._current()
        ids, group, day = self._ids[0], self._group[0], self._day[0]
        cdf = self._cdf[0]
        win = (day >= today - self.window_days) & (day < today)
        d_max = cdf.shape[1] - 1
        got = np.array([self._delivered.get(i, np.iinfo(np.int64).max) for i in ids.tolist()])
        if self.gamma > 0:
            self._update_offsets(today, got)
        done = win & (got < today)
        # Delivered: its day offset; in flight: arrives on day (today - purchase day) or
        # later, a right-censored score.
        y = np.where(done, got - day, today - day)
        y = np.clip(y, 0, d_max)
        for g in np.unique(group[win]):
            m = win & (group == g)
            if done[m].sum() < self.min_completed:
                continue
            w = None
            if self.half_life_days:
                # Relative to the group's newest order: older orders count less, but the
                # evidence against the prior does not fade while no new orders come in.
                w = 0.5 ** ((day[m].max() - day[m]) / self.half_life_days)
            if self.mode == "scale":
                self.scales[str(g)] = fit_scale(cdf[m], y[m], done[m], w, self.prior_sd)
                continue
            scores = conformal_scores(stretch(cdf[m]), y[m], np.zeros(m.sum(), int))
            self.rules[str(g)] = Recalibrator.fit(scores, done[m].astype(float), w)
        return self._current()

    def _current(self) -> dict:
        return self.scales if self.mode == "scale" else self.rules

    @property
    def active(self) -> bool:
        """Whether some group has a recent rule (else every promise is the fallback)."""
        return bool(self.scales or self.rules)

    def promise(
        self, cdf: np.ndarray, target, groups, fallback: np.ndarray, validation_rule=None
    ) -> np.ndarray:
        """Promises from the recent rules; rows of groups without one (or whose rule
        never reaches the target) keep ``fallback``.

        ``validation_rule(cdf, target) -> days`` is the model's validation promise rule; in
        ``scale`` mode it is applied to the time-scaled CDF (without it: the first day
        the scaled CDF reaches the target).
        """
        tgt = np.broadcast_to(np.asarray(target, float), (len(cdf),))
        out = np.asarray(fallback).copy()
        groups = np.asarray(groups, dtype=object)
        for g, s in self.scales.items():
            m = groups == g
            if not m.any():
                continue
            lvl = np.clip(tgt[m] + self.offset.get(g, 0.0), 0.5, 0.999)
            adj = time_scaled(cdf[m], *s)
            if validation_rule is None:
                reach = adj >= lvl[:, None] - 1e-12
                reach[:, -1] = True
                out[m] = reach.argmax(axis=1)
            else:
                out[m] = validation_rule(adj, lvl)
        for g, rule in self.rules.items():
            m = groups == g
            if not m.any():
                continue
            # Where the window's outcomes do not reach the target yet (the slow tail of
            # a slow-down is still in flight), promise at least the day the observed
            # rate tops out: never shorter than the fallback, longer where it is known
            # to fall short.
            top = rule.values[-1]
            lvl = np.clip(tgt[m] + self.offset.get(g, 0.0), 0.5, 0.999)
            want = np.minimum(lvl, top - 1e-9)
            rate = rule(stretch(cdf[m]))
            rate[:, -1] = 1.0
            day = (rate >= want[:, None] - 1e-12).argmax(axis=1)
            out[m] = np.where(lvl <= top, day, np.maximum(day, out[m]))
        return out
