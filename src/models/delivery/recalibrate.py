"""Online recalibration of the checkout promise from recently completed deliveries.

The promise rule fitted on the validation months keeps its stated rate while the world
looks like those months. When one carrier or region slows down (a strike, a flood),
its parcels miss their promises until the model is retrained. :class:`OnlineRecalibration`
closes that gap without retraining: it keeps each promise's predicted distribution and,
once a day, looks at the orders of each group (carrier by default) purchased in the last
``window_days`` - a delivery that has completed is an outcome, a parcel still in flight
counts as censored at the days it has already taken, so a slow-down shows as soon as
the first parcels are overdue, not when they finally arrive.

Three ways to use those outcomes (``mode``):

* ``track`` (default): one speed factor ``s`` and delay ``a`` per group - the group's
  parcels take ``s`` times as long as the model says, plus ``a`` days - followed day by
  day by a change-point filter (:func:`track_scale`): the pair stays put from one
  purchase day to the next, drifts a little, and now and then jumps. Each purchase day
  of the last ``window_days`` adds the likelihood of its parcels' outcomes as known this
  morning (delivered: the band of its own predicted quantiles the day fell in; in
  flight: "at least this long"), so the first overdue parcels of a strike move the
  estimate within days, and the first early arrivals after it ends drop it as fast -
  a window-wide fit would average the days before and after the change. The promise is
  the model's own validation rule on the time-scaled distribution
  (:func:`time_scaled`): the validation rule was fitted on many parcels of every
  carrier, so its whole-day steps average out and it lands on the stated rate; the
  recent outcomes only have to tell how much slower the group is. With ``by_region``
  the same is done per destination region and over all parcels, so a flood in one
  region is read as well as a carrier's strike.
* ``scale``: the same pair fitted on the whole window at once (:func:`fit_scale`,
  maximum a posteriori, older orders down-weighted by a half-life); after a change it
  keeps part of the old speed until the old orders leave the window.
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
# ``scale`` mode. Chosen on a validation shift world (seed 11, ``swiftpost`` slowed by
# exp(0.5) for four weeks from 2025-10-27), never on the benchmark's own: among the modes,
# windows of 5 / 7 / 10 / 14 days, half-lives of none / 3 / 5 days and adaptive steps of
# 0 / 0.005 / 0.01 / 0.02, the fewest weeks outside [0.88, 0.92] - of the disrupted
# carrier plus of all parcels, from the second week of the disruption on, the first week
# after its end left out - then the smallest worst deviation of the disrupted carrier.
# See docs/benchmarks/delivery.md.
WINDOW_DAYS = 7
HALF_LIFE_DAYS = 5.0
GAMMA = 0.005

MODES = ("track", "scale", "conformal")
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


# ``track`` mode. Chosen on validation shift worlds (seed 11, ``swiftpost`` slowed by
# exp(0.5) for four weeks from 2025-10-27; seed 13, region ``south`` from 2025-10-20),
# never on the benchmark's own: evidence 0.2 / 0.3 / 0.5 / 1, hazard 0.01 / 0.02 /
# 0.05 / 0.1, drift 0.01 / 0.02 / 0.04, gamma 0 / 0.005 / 0.01, with and without the
# quantile bands and the regions - the fewest weeks outside [0.88, 0.92] of the
# disrupted carrier plus of all parcels, leaving out the first week of the disruption
# and the first week after its end, then the smallest worst deviation. See
# docs/benchmarks/delivery.md, "Calibration through a disruption".
#
# The (speed factor, delay) pair is a hidden state that stays put from
# one purchase day to the next, drifts a little, and now and then jumps (a strike
# starts, a backlog clears). A coarse grid keeps the per-parcel likelihoods cheap; the
# estimate is the posterior mean, so it moves in finer steps than the grid.
# Both grids are symmetric around "as the model says" (factor 1, no delay): a vague
# posterior's mean then stays near it instead of leaning to the longer side of the
# grid (and a tenth of a day's delay already moves whole-day promises).
TRACK_SCALES = np.exp(0.04 * np.arange(-52, 53))  # 0.125 .. 8, steps of 4 %
TRACK_DELAYS = np.arange(-2.0, 2.001, 1.0)  # days
TRACK_WINDOW_DAYS = 14
HAZARD = 0.02  # a priori chance per day that the carrier's speed jumps
DRIFT_SD = 0.02  # day-to-day drift of log(speed factor) without a jump
JUMP_SD = 0.4  # sd of log(speed factor) after a jump (and at the window's start)
BINS = (0.5, 0.9, 0.97)  # predicted quantiles a delivered parcel's day is coarsened to
OUTLIER = 0.02  # share of parcels whose outcome the model does not describe
EVIDENCE = 0.5  # weight of one parcel's log-likelihood (< 1: parcels overdispersed)


def _state_grid() -> tuple[np.ndarray, np.ndarray]:
    """(scale, delay) of every state, flattened scale-major."""
    s, a = np.meshgrid(TRACK_SCALES, TRACK_DELAYS, indexing="ij")
    return s.ravel(), a.ravel()


def parcel_loglik(
    cdf: np.ndarray, days: np.ndarray, event: np.ndarray, bins: tuple = ()
) -> np.ndarray:
    """Log-likelihood of each parcel's outcome under every tracking state, (n, states).

    Delivered (``event``) on day ``days``, or still in flight after ``days`` (right-
    censored), under :func:`time_scaled` with each state's (scale, delay)."""
    cdf = np.asarray(cdf, float)
    k = cdf.shape[1]
    y = np.asarray(days, float)
    e = np.asarray(event, bool) & (y < k - 1)
    y = np.minimum(y, k - 1)
    scales, delays = _state_grid()
    hi_day, lo_day = y + 1.0, y.copy()
    if bins:
        # Coarsen a delivered parcel's day to the band of its own predicted quantiles
        # it fell in: the fit then matches the share of parcels beyond each quantile
        # (the promise's business) rather than the whole shape, which a speed factor
        # only approximates - a body a little slower than predicted must not lengthen
        # promises whose tail still holds.
        q = np.stack([(cdf >= b - 1e-12).argmax(axis=1) for b in bins], axis=1).astype(float)
        q = np.concatenate([np.full((len(y), 1), -1.0), q, np.full((len(y), 1), k - 1.0)], 1)
        band = (q[:, 1:] >= y[:, None]).argmax(axis=1)
        r = np.arange(len(y))
        # Beyond the last quantile the day itself stays: how far beyond tells how slow
        # a badly disrupted carrier is (a band would only say "slower than that").
        coarse = e & (band < len(bins))
        lo_day = np.where(coarse, q[r, band] + 1.0, lo_day)
        hi_day = np.where(coarse, q[r, band + 1] + 1.0, hi_day)
    up = _at(cdf, (hi_day[:, None] - delays[None, :]) / scales[None, :])
    lo = _at(cdf, (lo_day[:, None] - delays[None, :]) / scales[None, :])
    lik = np.where(e[:, None], up - lo, 1.0 - lo)
    # A parcel that never arrives (lost, a wrong scan) stays "in flight" and grows ever
    # more overdue; under the model alone it would pull every state towards "much
    # slower". A small share of outliers, uniform over the days, bounds its pull.
    uniform = np.where(e, 1.0 / k, np.maximum(1.0 - y / k, 1.0 / k))
    return np.log((1.0 - OUTLIER) * lik + OUTLIER * uniform[:, None])


def _jump_prior() -> np.ndarray:
    scales, delays = _state_grid()
    logp = -0.5 * ((np.log(scales) / JUMP_SD) ** 2 + (delays / PRIOR_DELAY_SD) ** 2)
    p = np.exp(logp - logp.max())
    return p / p.sum()


def _drift(p: np.ndarray, drift_sd: float) -> np.ndarray:
    """Spread a state distribution along the log-scale axis by ``drift_sd``."""
    if drift_sd <= 0:
        return p
    grid = p.reshape(len(TRACK_SCALES), len(TRACK_DELAYS))
    step = float(np.log(TRACK_SCALES[1] / TRACK_SCALES[0]))
    half = int(np.ceil(3 * drift_sd / step))
    x = np.arange(-half, half + 1) * step
    ker = np.exp(-0.5 * (x / drift_sd) ** 2)
    ker /= ker.sum()
    padded = np.pad(grid, ((half, half), (0, 0)), mode="edge")
    out = sum(ker[j] * padded[j : j + len(TRACK_SCALES)] for j in range(len(ker)))
    return out.ravel() / out.sum()


def track_scale(
    loglik_by_day: np.ndarray,
    hazard: float = HAZARD,
    drift_sd: float = DRIFT_SD,
    evidence: float = EVIDENCE,
) -> tuple[float, float]:
    """(speed factor, delay) expected for today's parcels, from the summed parcel
    log-likelihoods of each purchase day (rows oldest first, the last row yesterday).

    A forward filter over the days of the window (a change-point model): each day the
    state stays with probability ``1 - hazard`` (drifting by ``drift_sd`` in log scale)
    or jumps to a fresh draw from the prior. Evidence that the speed changed - in
    either direction - therefore resets the estimate within days instead of being
    averaged with the days before the change, and a slow-down that ends is dropped as
    fast as it was picked up. Parcels still in flight count as "at least this long",
    so the first overdue parcels already move the estimate.
    """
    prior = _jump_prior()
    p = prior.copy()
    for row in np.asarray(loglik_by_day, float):
        if not row.any():
            # No parcels that day (a carrier that does not ship on Sundays): time
            # without news does not pull the estimate back to the prior.
            continue
        logp = np.log(np.maximum(p, 1e-300)) + evidence * row
        p = np.exp(logp - logp.max())
        p /= p.sum()
        p = (1.0 - hazard) * _drift(p, drift_sd) + hazard * prior
    scales, delays = _state_grid()
    return float(np.exp(p @ np.log(scales))), float(p @ delays)


class OnlineRecalibration:
    """Per-group promise recalibration (speed factors or conformal rules) re-fitted
    every day on a rolling window of orders.

    Args:
        window_days: orders purchased this many days before ``now`` form the window.
        min_completed: completed deliveries a group needs in its window for its own
            rule; below that the model's validation rule stays in force.
        half_life_days: ``scale`` mode: if set, an order's weight halves every this many
            days of age (recent purchases count more); None: every order counts the same.
        gamma: step of the adaptive conformal offset on each group's target level per
            refit (0: no offset).
        offset_bounds: the offset is kept within these (the level then stays a rate).
        mode: ``track`` (a speed factor and delay per group followed day by day by a
            change-point filter), ``scale`` (the same pair fitted on the window at once)
            or ``conformal`` (a promise rule per group re-fitted on the window).
        prior_sd: ``scale`` mode: prior sd of log(speed factor) around 1.
        hazard, drift_sd, evidence: ``track`` mode: see :func:`track_scale`.
        bins: ``track`` mode: predicted quantiles a delivered parcel's day is coarsened to.
        by_region: also read destination regions (``observe(..., regions=...)``).

    With ``by_region`` each order also carries its region: the speed
    factors are then fitted per carrier, per region and over all parcels, and a parcel
    of carrier ``c`` to region ``r`` is scaled by ``s_c * s_r / s_all`` (and delayed by
    ``a_c + a_r - a_all``) - main effects that read a carrier's strike and a region's
    flood alike, with carriers spread over regions as they are. A region or carrier
    without enough outcomes takes the overall factor (its term cancels). Off by
    default: while one carrier is disrupted, a region's parcels are a mixture of slow
    and normal ones that no single factor describes, and the ratio of two such
    compromises adds noise (see docs/benchmarks/delivery.md).

    The window must be longer than most parcels take: the rule learns a parcel's
    outcome only once it has arrived or has been in flight past the promise.

    Memory: besides its CDF, ``track`` mode keeps each delivered order's likelihood
    under every state (about 2 KB an order) until it leaves the window - some 3 GB for
    100,000 orders a day over 14 days; a larger shop would sum them per group and
    purchase day as they complete.
    """

    def __init__(
        self,
        window_days: int | None = None,
        min_completed: int = 200,
        half_life_days: float | None = HALF_LIFE_DAYS,
        gamma: float = GAMMA,
        offset_bounds: tuple[float, float] = (-0.3, 0.09),
        mode: str = "track",
        prior_sd: float = PRIOR_SD,
        hazard: float = HAZARD,
        drift_sd: float = DRIFT_SD,
        evidence: float = EVIDENCE,
        bins: tuple = BINS,
        by_region: bool = False,
    ):
        if mode not in MODES:
            raise ValueError(f"OnlineRecalibration: mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        if window_days is None:
            window_days = TRACK_WINDOW_DAYS if mode == "track" else WINDOW_DAYS
        self.prior_sd = float(prior_sd)
        self.hazard, self.drift_sd, self.evidence = float(hazard), float(drift_sd), evidence
        self.bins = tuple(bins)
        self.by_region = bool(by_region)
        self.scales: dict[str, tuple[float, float]] = {}  # carrier group -> (factor, delay)
        self.region_scales: dict[str, tuple[float, float]] = {}
        self.overall: tuple[float, float] | None = None
        self.window_days = int(window_days)
        self.min_completed = int(min_completed)
        self.half_life_days = half_life_days
        self.gamma = float(gamma)
        self.offset_bounds = offset_bounds
        self.offset: dict[str, float] = {}
        self._cols: dict[str, list[np.ndarray]] = {k: [] for k in self._COLS}
        self._delivered: dict = {}  # order id -> delivery day (days since epoch)
        self.rules: dict[str, Recalibrator] = {}
        self.fitted_at: int | None = None

    def settings(self) -> dict:
        """The constructor arguments this rule was made with (to make a fresh one)."""
        return {
            "window_days": self.window_days,
            "min_completed": self.min_completed,
            "half_life_days": self.half_life_days,
            "gamma": self.gamma,
            "offset_bounds": self.offset_bounds,
            "mode": self.mode,
            "prior_sd": self.prior_sd,
            "hazard": self.hazard,
            "drift_sd": self.drift_sd,
            "evidence": self.evidence,
            "bins": self.bins,
            "by_region": self.by_region,
        }

    # ids, carrier group, region (None: not given), purchase day, calibrated CDF, promised
    # days (-1: not known), the stated rate of that promise, outcome already fed to the
    # offset, the outcome's log-likelihood per tracking state once delivered (NaN: not yet).
    _COLS = ("ids", "group", "region", "day", "cdf", "promise", "target", "counted", "lik")

    def observe(
        self,
        order_ids,
        ordered_at,
        groups,
        cdf: np.ndarray,
        promise=None,
        target=None,
        regions=None,
    ) -> None:
        """Record promises as they are made: the order, its group (carrier), optionally
        its destination region, its calibrated CDF and (for the adaptive offset) the
        promised days and the stated rate."""
        t = np.asarray(ordered_at, dtype="datetime64[s]").astype(np.int64)
        n = len(t)
        known = promise is not None and target is not None
        p = np.asarray(promise, float) if known else np.full(n, -1.0)
        tg = np.asarray(target, float) if known else np.full(n, np.nan)
        reg = np.full(n, None, dtype=object)
        if self.by_region and regions is not None:
            reg = np.asarray(regions, object)
        n_states = len(TRACK_SCALES) * len(TRACK_DELAYS) if self.mode == "track" else 0
        new = {
            "ids": np.asarray(order_ids),
            "group": np.asarray(groups, dtype=object),
            "region": reg,
            "day": t // DAY_S,
            "cdf": np.asarray(cdf, float),
            "promise": np.broadcast_to(p, (n,)).astype(float),
            "target": np.broadcast_to(tg, (n,)).astype(float),
            "counted": ~np.full(n, known),
            "lik": np.full((n, n_states), np.nan, dtype=np.float32),
        }
        for k, v in new.items():
            self._cols[k].append(v)

    def deliver(self, order_ids, delivered_at) -> None:
        """Record completed deliveries (order id, delivery time)."""
        d = np.asarray(delivered_at, dtype="datetime64[s]").astype(np.int64) // DAY_S
        self._delivered.update(zip(np.asarray(order_ids).tolist(), d.tolist(), strict=True))

    def _compact(self, oldest_day: int) -> dict[str, np.ndarray]:
        """One array per column, without promises purchased before ``oldest_day`` (they
        never enter a window again)."""
        if not self._cols["ids"]:
            return {}
        cols = {k: np.concatenate(v) for k, v in self._cols.items()}
        keep = cols["day"] >= oldest_day
        for gone in cols["ids"][~keep].tolist():  # a delivery may be reported before its order
            self._delivered.pop(gone, None)
        cols = {k: v[keep] for k, v in cols.items()}
        self._cols = {k: [v] for k, v in cols.items()}
        return cols

    def _update_offsets(self, today: int, got: np.ndarray, cols: dict) -> None:
        """Feed the outcomes that became known by ``today`` to each group's offset."""
        day, p = cols["day"], cols["promise"]
        counted, group, tgt = cols["counted"], cols["group"], cols["target"]
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

    def _loglik(self, today: int, win, done, y, cols) -> np.ndarray:
        """Per-parcel log-likelihood per tracking state: cached once delivered (final),
        recomputed each day for parcels in flight (their censoring day moves)."""
        lik = cols["lik"]
        fresh = win & done & np.isnan(lik[:, 0])
        if fresh.any():
            lik[fresh] = parcel_loglik(
                cols["cdf"][fresh], y[fresh], np.ones(fresh.sum(), bool), self.bins
            )
        out = lik.astype(float)
        flying = win & ~done
        if flying.any():
            out[flying] = parcel_loglik(
                cols["cdf"][flying], y[flying], np.zeros(flying.sum(), bool)
            )
        return out

    def _fit_group(self, m, today, cols, y, done, lik) -> tuple[float, float]:
        day = cols["day"]
        if self.mode == "track":
            # Summed evidence per purchase day of the window, oldest first.
            idx = (day[m] - (today - self.window_days)).astype(int)
            by_day = (np.arange(self.window_days)[:, None] == idx[None, :]) @ lik[m]
            return track_scale(by_day, self.hazard, self.drift_sd, self.evidence)
        w = None
        if self.half_life_days:
            # Relative to the group's newest order: older orders count less, but the
            # evidence against the prior does not fade while no new orders come in.
            w = 0.5 ** ((day[m].max() - day[m]) / self.half_life_days)
        return fit_scale(cols["cdf"][m], y[m], done[m], w, self.prior_sd)

    def refit(self, now) -> dict:
        """Re-fit each group's rule on the orders purchased in ``[now - window, now)``
        with what is known at ``now`` (deliveries before the day of ``now``).

        Returns the carrier groups' rules: speed factors (``track``, ``scale``) or
        promise rules (``conformal``)."""
        today = int(np.asarray(now, dtype="datetime64[s]").astype(np.int64) // DAY_S)
        cols = self._compact(today - self.window_days)
        self.rules, self.scales, self.fitted_at = {}, {}, today
        self.region_scales, self.overall = {}, None
        if not cols:
            return self._current()
        ids, group, day, cdf = cols["ids"], cols["group"], cols["day"], cols["cdf"]
        win = (day >= today - self.window_days) & (day < today)
        d_max = cdf.shape[1] - 1
        got = np.array([self._delivered.get(i, np.iinfo(np.int64).max) for i in ids.tolist()])
        if self.gamma > 0:
            self._update_offsets(today, got, cols)
        done = win & (got < today)
        # Delivered: its day offset; in flight: arrives on day (today - purchase day) or
        # later, a right-censored score.
        y = np.clip(np.where(done, got - day, today - day), 0, d_max)
        lik = self._loglik(today, win, done, y, cols) if self.mode == "track" else None
        enough = lambda m: done[m].sum() >= self.min_completed  # noqa: E731
        if self.mode == "conformal":
            w = None
            for g in np.unique(group[win]):
                m = win & (group == g)
                if not enough(m):
                    continue
                if self.half_life_days:
                    w = 0.5 ** ((day[m].max() - day[m]) / self.half_life_days)
                scores = conformal_scores(stretch(cdf[m]), y[m], np.zeros(m.sum(), int))
                self.rules[str(g)] = Recalibrator.fit(scores, done[m].astype(float), w)
            return self._current()
        for g in np.unique(group[win]):
            m = win & (group == g)
            if enough(m):
                self.scales[str(g)] = self._fit_group(m, today, cols, y, done, lik)
        region = cols["region"]
        if any(r is not None for r in region[win]):
            if enough(win):
                self.overall = self._fit_group(win, today, cols, y, done, lik)
            for r in np.unique(region[win & (region != None)].astype(str)):  # noqa: E711
                m = win & (region == r)
                if enough(m):
                    self.region_scales[r] = self._fit_group(m, today, cols, y, done, lik)
        return self._current()

    def _current(self) -> dict:
        return self.rules if self.mode == "conformal" else self.scales

    @property
    def active(self) -> bool:
        """Whether some group has a recent rule (else every promise is the fallback)."""
        return bool(self.scales or self.rules or self.region_scales)

    def factor(self, group, region=None) -> tuple[float, float] | None:
        """(speed factor, delay) for parcels of ``group`` (carrier) to ``region``; None
        where nothing recent is known (the validation rule stays in force)."""
        carrier = self.scales.get(str(group))
        reg = None if region is None else self.region_scales.get(str(region))
        if self.overall is None or (reg is None and region is None):
            return carrier
        s_all, a_all = self.overall
        s_c, a_c = carrier if carrier is not None else self.overall
        s_r, a_r = reg if reg is not None else self.overall
        return s_c * s_r / s_all, a_c + a_r - a_all

    def promise(
        self,
        cdf: np.ndarray,
        target,
        groups,
        fallback: np.ndarray,
        validation_rule=None,
        regions=None,
    ) -> np.ndarray:
        """Promises from the recent rules; rows of groups without one (or whose rule
        never reaches the target) keep ``fallback``.

        ``validation_rule(cdf, target) -> days`` is the model's validation promise rule; in
        ``track`` and ``scale`` mode it is applied to the time-scaled CDF (without it: the
        first day the scaled CDF reaches the target).
        """
        tgt = np.broadcast_to(np.asarray(target, float), (len(cdf),))
        out = np.asarray(fallback).copy()
        groups = np.asarray(groups, dtype=object)
        if self.mode != "conformal":
            reg = np.full(len(cdf), None, object)
            if self.by_region and regions is not None:
                reg = np.asarray(regions, object)
            keys = np.array([f"{g}\x1f{r}" for g, r in zip(groups, reg, strict=True)], dtype=object)
            for key in np.unique(keys):
                m = keys == key
                g, r = groups[m][0], reg[m][0]
                s = self.factor(g, r)
                if s is None:
                    continue
                lvl = np.clip(tgt[m] + self.offset.get(str(g), 0.0), 0.5, 0.999)
                adj = time_scaled(cdf[m], *s)
                if validation_rule is None:
                    reach = adj >= lvl[:, None] - 1e-12
                    reach[:, -1] = True
                    out[m] = reach.argmax(axis=1)
                else:
                    out[m] = validation_rule(adj, lvl)
            return out
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
