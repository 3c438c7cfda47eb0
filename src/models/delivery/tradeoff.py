"""Promise length against on-time rate: like-with-like comparison of promise rules.

A promise rule has its own knob (a quantile, a scale factor, a target rate). Turning
the knob trades a longer promise for a higher on-time rate, so two rules are only
comparable at the same on-time rate. :func:`curve` sweeps the knob, :func:`days_at_rate`
reads the mean promise at a given rate off the curve (linear interpolation between
neighbouring points), and :func:`knob_for_rate` picks the knob *in advance*, on
validation months, for a target rate.

Outcomes are scored as known at a cutoff (:class:`Outcomes`): a parcel delivered by
the cutoff is on time if it arrived on or before its promised day; a parcel not
delivered by the cutoff has missed every promise whose day ended before the cutoff and
is left out (counted in ``excluded``) for promises still open then. Orders marked
delivered without a delivery date (or with one before the purchase) have no outcome
and are always left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DAY_NS = np.int64(86_400 * 10**9)


@dataclass(frozen=True)
class Outcomes:
    """What was known about each order's delivery at a cutoff.

    Attributes:
        days: calendar-day offset of the delivery from the purchase day (0 = same day);
            NaN when no delivery was known at the cutoff.
        open_days: whole days from the purchase day to the cutoff: a promise of ``d``
            days has ended by the cutoff iff ``d < open_days``.
        no_date: orders marked delivered without a (valid) delivery date - none, or
            one before the purchase - never scored.
        strict: score an order only once its promise day has ended by the cutoff, even
            if it was delivered earlier. Without it, a delivery before the cutoff is
            scored at once while a miss must wait for the promise day to end, so
            recent orders would count their kept promises before their missed ones
            (an optimistic bias); use it where many promises are still open at the
            cutoff (validation months scored as known at the test start).
    """

    days: np.ndarray
    open_days: np.ndarray
    no_date: np.ndarray
    strict: bool = False

    @classmethod
    def at(cls, ordered_at, delivered_at, cutoff, delivered_flag=None, strict=False) -> Outcomes:
        """Outcomes of orders as known at ``cutoff`` (a timestamp or one per order).

        ``delivered_flag`` marks orders whose status says delivered; with no delivery
        date they are ``no_date`` rows.
        """
        t = np.asarray(ordered_at, dtype="datetime64[ns]").astype(np.int64)
        dl = np.asarray(delivered_at, dtype="datetime64[ns]")
        cut = np.broadcast_to(np.asarray(cutoff, dtype="datetime64[ns]"), t.shape).astype(np.int64)
        has = ~np.isnat(dl)
        dli = np.where(has, dl.astype(np.int64), 0)
        # A delivery dated before the purchase is a broken record, not an outcome.
        broken = has & (dli < t)
        known = has & (dli < cut) & ~broken
        start = t // DAY_NS
        days = np.where(known, dli // DAY_NS - start, np.nan).astype(float)
        open_days = (cut // DAY_NS - start).astype(float)
        flag = np.zeros(len(t), bool) if delivered_flag is None else np.asarray(delivered_flag)
        no_date = (flag & ~has) | broken
        return cls(days, open_days, no_date, strict)

    def __len__(self) -> int:
        return len(self.days)

    def subset(self, mask: np.ndarray) -> Outcomes:
        return Outcomes(self.days[mask], self.open_days[mask], self.no_date[mask], self.strict)

    def score(self, promise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(kept, scored) per order for integer promises in days."""
        p = np.asarray(promise, float)
        delivered = np.isfinite(self.days)
        kept = delivered & (self.days <= p)
        missed = (delivered & (self.days > p)) | (~delivered & (p < self.open_days))
        scored = (kept | missed) & ~self.no_date
        if self.strict:
            scored &= p < self.open_days
        return kept & scored, scored

    def on_time(self, promise: np.ndarray) -> dict[str, float]:
        """On-time rate over the scored orders, the mean promise over all of them,
        and how many were scored, left out (still open) or undated."""
        kept, scored = self.score(promise)
        n = int(scored.sum())
        return {
            "on_time_rate": float(kept.sum() / n) if n else float("nan"),
            "promise_days": float(np.mean(np.asarray(promise, float)[~self.no_date])),
            "scored": float(n),
            "late_undelivered": float((scored & ~np.isfinite(self.days)).sum()),
            "excluded_open": float((~scored & ~self.no_date).sum()),
            "excluded_no_date": float(self.no_date.sum()),
        }


def curve(family: dict[float, np.ndarray], outcomes: Outcomes) -> pd.DataFrame:
    """One row per knob value: ``knob``, ``on_time_rate``, ``promise_days``."""
    rows = []
    for knob, promise in sorted(family.items()):
        r = outcomes.on_time(promise)
        rows.append({"knob": float(knob), **r})
    return pd.DataFrame(rows)


def _monotone(cv: pd.DataFrame) -> pd.DataFrame:
    """The curve's points sorted by on-time rate, keeping for each rate the shortest
    promise and dropping points dominated by a shorter promise at a higher rate."""
    c = cv.dropna(subset=["on_time_rate"]).sort_values(["on_time_rate", "promise_days"])
    c = c.drop_duplicates("on_time_rate", keep="first")
    # A point is dominated if some point at a higher rate has a shorter promise.
    best_after = c["promise_days"][::-1].cummin()[::-1]
    return c[c["promise_days"] <= best_after + 1e-12]


def days_at_rate(cv: pd.DataFrame, rate: float) -> float | None:
    """Mean promise days at on-time ``rate``, linearly interpolated between the two
    curve points around it; None when the curve does not reach that rate."""
    c = _monotone(cv)
    x, y = c["on_time_rate"].to_numpy(), c["promise_days"].to_numpy()
    if len(x) == 0 or rate < x[0] - 1e-12 or rate > x[-1] + 1e-12:
        return None
    return float(np.interp(rate, x, y))


def knob_for_rate(cv: pd.DataFrame, rate: float) -> float:
    """The knob whose on-time rate is ``rate`` (interpolated between the curve's
    points), clipped to the swept range: how a rule picks its operating point in
    advance on validation months."""
    c = _monotone(cv)
    x, k = c["on_time_rate"].to_numpy(), c["knob"].to_numpy()
    if len(x) == 0:
        raise ValueError("knob_for_rate: the curve has no scored point")
    return float(np.interp(rate, x, k))


def knobs_for_rates(cv: pd.DataFrame, rates: np.ndarray) -> np.ndarray:
    """:func:`knob_for_rate` for one target rate per order (a target that moves over
    time), vectorised."""
    c = _monotone(cv)
    x, k = c["on_time_rate"].to_numpy(), c["knob"].to_numpy()
    if len(x) == 0:
        raise ValueError("knobs_for_rates: the curve has no scored point")
    return np.interp(np.asarray(rates, float), x, k)


def promises_at_knobs(family: dict[float, np.ndarray], knobs: np.ndarray) -> np.ndarray:
    """Each order's promise at its own knob: the family's value at the swept knob
    nearest to it (the family holds one promise array per swept knob)."""
    grid = np.array(sorted(family))
    table = np.stack([np.asarray(family[g], float) for g in grid], axis=1)
    nearest = np.abs(np.asarray(knobs, float)[:, None] - grid[None, :]).argmin(axis=1)
    return table[np.arange(len(table)), nearest]


def plot_curves(panels: list[dict], path, title: str) -> None:
    """Write trade-off curves (mean promise days against on-time rate) to a PNG.

    Each panel is ``{"title", "curves": {method: curve frame}, "points": {method:
    (rate, days)}, "rate": reference on-time rate}``: one line per method, its
    operating point chosen in advance as a dot, the reference rate as a dashed line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5.2), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for i, (name, cv) in enumerate(panel["curves"].items()):
            c = cv.dropna(subset=["on_time_rate"]).sort_values("on_time_rate")
            color = f"C{i}"
            ax.plot(c["on_time_rate"], c["promise_days"], "-", color=color, label=name, lw=1.5)
            if name in panel.get("points", {}):
                x, y = panel["points"][name]
                ax.plot([x], [y], "o", color=color, ms=7, mec="black")
        rate = panel["rate"]
        ax.axvline(rate, color="grey", ls="--", lw=1)
        ax.set_xlim(0.75, 1.0)
        ax.set_ylim(0, 45)
        ax.text(rate, 44, f" retailer {rate:.3f}", va="top", fontsize=8)
        ax.set_xlabel("on-time rate (share delivered by the promised day)")
        ax.set_ylabel("mean promise (days)")
        ax.set_title(panel["title"], fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
