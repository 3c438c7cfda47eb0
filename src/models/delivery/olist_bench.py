"""Olist, like with like: every promise rule's whole trade-off curve on the same orders.

``ppx bench delivery --olist PATH``. The last 3 months with deliveries are the test
window; the 3 months before it are the validation months. Every order may use only what
was known at its purchase (walk-forward network refits, deliveries completed before the
purchase). For every method the benchmark reports:

* its trade-off curve on the test months - mean promise days against on-time rate,
  swept over the method's own knob (a quantile level, a scale factor or a target rate);
* ``promise_days_at_retailer_rate``: the mean promise at Olist's own on-time rate on the
  test months, interpolated on that curve (the like-with-like figure);
* its operating point chosen **in advance**: the knob whose on-time rate on the
  validation months equals the policy's target (default: the retailer's own rate on
  the validation months, scored as known at the test start), applied unchanged to the
  test months (``on_time_rate``, ``promise_days``, ``knob``, ``target_on_time``); and
  the same with a drifting target, each order aiming at the retailer's on-time rate
  over the outcomes known in the 28 days before its purchase (``rolling_*``).

Test orders are every order of the test months that was not canceled: orders still open
at the data end (``shipped``, ``invoiced`` ...) miss every promise that ended before
it, orders marked delivered without a date are left out, both counted
(:class:`~ppx.models.delivery.tradeoff.Outcomes`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.adapters import olist as ol
from ppx.features import delivery as fd
from ppx.models.delivery import equal_density as ed
from ppx.models.delivery import evaluate as ev
from ppx.models.delivery import online as on
from ppx.models.delivery import recent as rc
from ppx.models.delivery import tradeoff as to

VAL_MONTHS = 3
FOLD_MONTHS = 5  # rolling-origin folds: each of the months before the test months
WARMUP_MONTHS = 3  # network refits start this long before the first fold
# The top of the grid (0.999, 1.0: the window's largest value) lets a rule capped by the
# retailer's estimate reach the retailer's own on-time rate.
QUANTILES = (*np.round(np.arange(0.50, 0.9951, 0.005), 3), 0.999, 1.0)
TARGETS = tuple(np.round(np.arange(0.80, 0.9951, 0.005), 3))
SCALES = tuple(np.round(np.arange(0.40, 1.6001, 0.01), 3))


@dataclass(frozen=True)
class PromisePolicy:
    """The decision rule of ppx's promise on a brand's orders, explicit.

    promise = the network's ``anchor_quantile`` day + the ``q``-quantile of
    ``delivered days - anchor`` over the deliveries completed in the ``window_days``
    before purchase (rolling recalibration on completed deliveries only: it follows a
    change of speed within weeks, without waiting for the slow tail of recent orders),
    optionally capped at ``cap`` x the retailer's own estimate (never promise much
    longer than the retailer, whose estimate knows the seller's and customer's places).

    The window and the cap are chosen by **rolling origin** on the months before the
    test months (:func:`fold_score`): each of the ``FOLD_MONTHS`` months is a fold,
    scored as known at the test start, and a candidate's score is its mean promise at
    the retailer's own on-time rate of that month, averaged over the folds - the
    like-with-like figure of the test, measured where the outcomes may be looked at.
    ``q`` is then chosen on the last ``VAL_MONTHS`` months so that the rule's on-time
    rate there is ``target_on_time``.

    A second, drifting target is reported beside it: each order's target is the
    retailer's on-time rate over the outcomes that became known in the
    ``target_window_days`` before its purchase (``recent.recent_on_time_rate``), and its
    ``q`` is read off the same validation curve at that
    rate - what "the retailer's recent rate" means to a live system, which sees the
    retailer's rate move while the fixed target stays where the validation months left
    it.

    Attributes:
        target_on_time: the on-time rate to aim at; None = the retailer's own rate over
            the validation months (what its promise achieved most recently).
        target_window_days: window of the drifting target (days of known outcomes).
        anchor_quantile: the network's quantile the recalibration is added to.
        windows: candidate windows (days) of completed deliveries.
        caps: candidate caps (multiples of the retailer's estimate; None = no cap).
    """

    target_on_time: float | None = None
    target_window_days: int = 28
    anchor_quantile: float = 0.5
    windows: tuple[int, ...] = (14, 21, 28, 42)
    caps: tuple[float | None, ...] = (None, 1.0, 1.1, 1.2)


@dataclass(frozen=True)
class EqualDensityGrid:
    """The candidates of the equal-density rule (``equal_density``), chosen like ppx's
    window and cap by the rolling-origin fold score.

    Attributes:
        residual_windows: windows (days) of the recent-residual distribution.
        shift_window: window of the median residual that moves the network's CDF.
        neighbour_windows: windows of the estimate-neighbour distribution.
        neighbours: how many recently completed deliveries with the nearest retailer
            estimate make an order's distribution.
        caps: multiples of the retailer's estimate as the longest promise (None: none).
        floors: candidate least on-time probabilities of any promise (None: none).
        guard_floor: the product guard - the floor of the guarded row
            (``ppx_equal_density_guarded``), fixed, not chosen.
    """

    residual_windows: tuple[int, ...] = (21, 28, 42)
    shift_window: int = 28
    neighbour_windows: tuple[int, ...] = (28, 42)
    neighbours: int = 200
    caps: tuple[float | None, ...] = (None, 1.0, 1.1)
    floors: tuple[float | None, ...] = (None, 0.5, 0.8)
    guard_floor: float = 0.8


def equal_density_candidates(cdf, anchor, est, lt, ld, grid: EqualDensityGrid, d_max: int):
    """{source name: per-order CDF} of the equal-density rule (all known at purchase)."""
    src = {
        "network": cdf,
        f"network shifted {grid.shift_window}d": ed.shifted_cdf(
            cdf, anchor, lt, ld, grid.shift_window
        ),
    }
    for w in grid.residual_windows:
        src[f"residuals {w}d"] = ed.recent_residual_cdf(anchor, lt, ld, w, d_max)
    for w in grid.neighbour_windows:
        src[f"estimate neighbours {w}d"] = ed.estimate_neighbour_cdf(
            est, lt, ld, w, grid.neighbours, d_max
        )
    return src


@dataclass
class Rule:
    """A promise rule with a knob: ``promises(knobs) -> {knob: days per live order}``."""

    name: str
    knob: str
    grid: tuple[float, ...]
    promises: object
    seconds: float = 0.0


def capped(family: dict, estimate: np.ndarray, cap: float | None) -> dict:
    """{knob: min(promise, floor(cap x the retailer's estimate))}; unchanged for None."""
    if cap is None:
        return family
    top = np.floor(np.asarray(estimate, float) * cap + 1e-9)
    return {k: np.minimum(np.asarray(v, float), top) for k, v in family.items()}


def fold_score(family: dict, outcomes: to.Outcomes, folds: list, rates: list) -> dict:
    """Rolling-origin score of a rule: its mean promise at the retailer's on-time rate
    of each fold (``folds``: boolean masks over the orders, ``rates``: the retailer's
    rate on each), and their mean (``mean``; None if some fold's curve never reaches
    its rate)."""
    per = []
    for m, r in zip(folds, rates, strict=True):
        cv = to.curve({k: v[m] for k, v in family.items()}, outcomes.subset(m))
        per.append(to.days_at_rate(cv, r))
    mean = None if any(p is None for p in per) else float(np.mean(per))
    return {"folds": per, "mean": mean}


def blend(a: dict, b: dict) -> dict:
    """{knob: ceil of the mean of two rules' promises at the same knob}: the model's
    recalibrated promise averaged with the plain recent quantile (their errors differ,
    so the mean is steadier than either)."""
    return {k: np.ceil((np.asarray(a[k], float) + np.asarray(b[k], float)) / 2 - 1e-9) for k in a}


def olist_benchmark(
    folder,
    cfg=None,
    policy: PromisePolicy | None = None,
    progress: bool = True,
    details: dict | None = None,
    density_grid: EqualDensityGrid | None = None,
) -> dict[str, dict]:
    """{METHOD: {METRIC: value}} on the test months; ``details`` (if given) receives the
    curves, the windows tried and the counts for the plot and the docs."""
    cfg = cfg or on.OLIST_CONFIG
    policy = policy or PromisePolicy()
    density_grid = density_grid or EqualDensityGrid()
    base, tables, raw = on.olist_frames(folder)
    history = fd.DeliveryHistory.from_tables(tables[C.ORDERS], tables[C.SHIPMENTS])
    t0, t1 = on.test_period(base)
    v0 = t0 - pd.DateOffset(months=VAL_MONTHS)
    f0 = t0 - pd.DateOffset(months=FOLD_MONTHS)
    start = f0 - pd.DateOffset(months=WARMUP_MONTHS)
    end_of_data = ol.data_end(raw)
    t = base[C.ORDERED_AT].to_numpy()
    live = on.label_at(
        base,
        (t >= np.datetime64(start)) & (t < np.datetime64(t1)),
        np.datetime64("2100-01-01"),
        cfg.d_max,
    )
    lt = live[C.ORDERED_AT].to_numpy()
    ld = live[C.DELIVERED_AT].to_numpy()
    flag = (live[C.STATUS] == "delivered").to_numpy()
    val = (lt >= np.datetime64(v0)) & (lt < np.datetime64(t0))
    test = lt >= np.datetime64(t0)
    # Validation outcomes as known at the test start (strict: only promises that had
    # ended by then); test outcomes as known at the data end.
    o_known = to.Outcomes.at(lt, ld, np.datetime64(t0), flag, strict=True)
    o_val = o_known.subset(val)
    o_test = to.Outcomes.at(lt, ld, np.datetime64(end_of_data), flag).subset(test)
    est = live[C.PROMISED_DAYS].to_numpy(float)
    # The drifting target: the retailer's rate over its outcomes known before each order
    # (the fixed target where the window holds too few).
    rolling_target = rc.recent_on_time_rate(
        base[C.ORDERED_AT].to_numpy(),
        base[C.DELIVERED_AT].to_numpy(),
        base[C.PROMISED_DAYS].to_numpy(float),
        lt,
        policy.target_window_days,
        no_outcome=((base[C.STATUS] == "delivered") & base[C.DELIVERED_AT].isna()).to_numpy(),
    )
    retailer_val = o_val.on_time(est[val])["on_time_rate"]
    retailer_test = o_test.on_time(est[test])["on_time_rate"]
    target = retailer_val if policy.target_on_time is None else policy.target_on_time
    rolling_target = np.where(np.isfinite(rolling_target), rolling_target, target)
    fold_starts = [f0 + pd.DateOffset(months=i) for i in range(FOLD_MONTHS)]
    folds = [
        (lt >= np.datetime64(a)) & (lt < np.datetime64(a + pd.DateOffset(months=1)))
        for a in fold_starts
    ]
    fold_rates = [o_known.subset(m).on_time(est[m])["on_time_rate"] for m in folds]

    tic = time.perf_counter()
    cdf, _models = on.walk_forward_cdf(base, history, live, start, t1, cfg, progress=progress)
    nn_seconds = time.perf_counter() - tic
    anchor = ev.first_reach(cdf, policy.anchor_quantile).astype(float)

    # ppx: window and cap chosen by rolling origin on the months before the test.
    tried = {}
    for w in policy.windows:
        fam = rc.recent_residual_promises(anchor, lt, ld, QUANTILES, w, cfg.d_max)
        for cap in policy.caps:
            tried[(w, cap)] = fold_score(capped(fam, est, cap), o_known, folds, fold_rates)
    window, cap = min(tried, key=lambda k: np.inf if tried[k]["mean"] is None else tried[k]["mean"])

    # Equal density: source, cap and floor chosen by rolling origin; the guarded row keeps
    # the product's floor fixed and chooses the rest.
    sources = equal_density_candidates(cdf, anchor, est, lt, ld, density_grid, cfg.d_max)
    ed_tried = {}
    from tqdm.auto import tqdm

    for name, dist in tqdm(
        sources.items(), desc="olist: equal-density candidates", disable=not progress
    ):
        for c in density_grid.caps:
            upper = None if c is None else np.floor(est * c + 1e-9)
            for fl in dict.fromkeys((*density_grid.floors, density_grid.guard_floor)):
                fam = ed.equal_density_promises(dist, floor=fl, upper=upper)
                ed_tried[(name, c, fl)] = fold_score(fam, o_known, folds, fold_rates)

    def best(keys):
        return min(
            keys, key=lambda k: np.inf if ed_tried[k]["mean"] is None else ed_tried[k]["mean"]
        )

    ed_choice = best([k for k in ed_tried if k[2] in density_grid.floors])
    ed_guarded = best([k for k in ed_tried if k[2] == density_grid.guard_floor])

    def density_rule(choice):
        name, c, fl = choice
        upper = None if c is None else np.floor(est * c + 1e-9)

        def promises(ks):
            lams = [ed.lambda_of(k) for k in ks]
            fam = ed.equal_density_promises(sources[name], lams, floor=fl, upper=upper)
            return dict(zip(ks, fam.values(), strict=True))

        return promises

    all_t, all_d = base[C.ORDERED_AT].to_numpy(), base[C.DELIVERED_AT].to_numpy()
    pos = pd.Series(np.arange(len(base)), index=base[C.ORDER_ID]).loc[live[C.ORDER_ID]].to_numpy()

    def km(ks):
        out, _ = on.scaled_km_promises(est_all, all_t, all_d, ks, d_max=cfg.d_max)
        return {k: v[pos] for k, v in out.items()}

    est_all = base[C.PROMISED_DAYS].to_numpy(float)
    rules = [
        Rule(
            "ppx",
            "quantile of recent residuals",
            QUANTILES,
            lambda ks: capped(
                rc.recent_residual_promises(anchor, lt, ld, ks, window, cfg.d_max), est, cap
            ),
            nn_seconds,
        ),
        Rule(
            "ppx_uncapped",
            "quantile of recent residuals",
            QUANTILES,
            lambda ks: rc.recent_residual_promises(anchor, lt, ld, ks, window, cfg.d_max),
            nn_seconds,
        ),
        Rule(
            "ppx_blend",
            "quantile of both",
            QUANTILES,
            lambda ks: blend(
                rc.recent_residual_promises(anchor, lt, ld, ks, window, cfg.d_max),
                rc.recent_quantile_promises(all_t, all_d, lt, ks, d_max=cfg.d_max),
            ),
            nn_seconds,
        ),
        Rule(
            "ppx_equal_density",
            "-log10 of the density threshold",
            tuple(ed.knob_of(x) for x in ed.LAMBDAS),
            density_rule(ed_choice),
            nn_seconds,
        ),
        Rule(
            "ppx_equal_density_guarded",
            "-log10 of the density threshold",
            tuple(ed.knob_of(x) for x in ed.LAMBDAS),
            density_rule(ed_guarded),
            nn_seconds,
        ),
        Rule(
            "recent_quantile",
            "quantile of recent delivered days",
            QUANTILES,
            lambda ks: rc.recent_quantile_promises(all_t, all_d, lt, ks, d_max=cfg.d_max),
        ),
        Rule(
            "olist_promise",
            "scale of Olist's estimate",
            SCALES,
            lambda ks: {k: np.floor(est * k + 1e-9) for k in ks},
        ),
        Rule("ppx_km_scale", "Kaplan-Meier target", TARGETS[::2], km),
        Rule(
            "ppx_aci",
            "adaptive conformal target",
            TARGETS[::2],
            lambda ks: {k: on.adaptive_promises(cdf, lt, ld, k, 0.0, 0.05)[0] for k in ks},
            nn_seconds,
        ),
    ]

    out: dict[str, dict] = {}
    curves_val, curves_test, pts_val, pts_test, fold_days = {}, {}, {}, {}, {}
    iterator = rules
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(rules, desc="olist: trade-off curves")
    for rule in iterator:
        tic = time.perf_counter()
        fam = rule.promises(rule.grid)
        fs = fold_score(fam, o_known, folds, fold_rates)
        cv = to.curve({k: v[val] for k, v in fam.items()}, o_val)
        ct = to.curve({k: v[test] for k, v in fam.items()}, o_test)
        # The retailer's own estimate is its operating point (scale 1).
        knob = 1.0 if rule.name == "olist_promise" else to.knob_for_rate(cv, target)
        chosen = rule.promises((knob,))[knob]
        at_val = o_val.on_time(chosen[val])
        at_test = o_test.on_time(chosen[test])
        if rule.name == "olist_promise":
            drifting = chosen
        else:
            drifting = to.promises_at_knobs(fam, to.knobs_for_rates(cv, rolling_target))
        dr_val = o_val.on_time(drifting[val])
        dr_test = o_test.on_time(drifting[test])
        m = {
            "on_time_rate": at_test["on_time_rate"],
            "promise_days": at_test["promise_days"],
            "target_on_time": float(target),
            "knob": float(knob),
            "val_on_time_rate": at_val["on_time_rate"],
            "promise_days_at_retailer_rate": to.days_at_rate(ct, retailer_test),
            "val_promise_days_at_target": to.days_at_rate(cv, target),
            "folds_promise_days_at_retailer_rate": fs["mean"],
            "rolling_target_on_time": float(np.mean(rolling_target[test])),
            "rolling_on_time_rate": dr_test["on_time_rate"],
            "rolling_promise_days": dr_test["promise_days"],
            "rolling_val_target_on_time": float(np.mean(rolling_target[val])),
            "rolling_val_on_time_rate": dr_val["on_time_rate"],
            "late_undelivered": at_test["late_undelivered"],
            "excluded_open": at_test["excluded_open"],
            "seconds": rule.seconds + time.perf_counter() - tic,
        }
        if rule.name == "olist_promise":  # the test set's counts, once
            m.update(
                test_orders=float(test.sum()),
                scored=at_test["scored"],
                excluded_no_date=at_test["excluded_no_date"],
            )
        out[rule.name] = m
        curves_val[rule.name], curves_test[rule.name] = cv, ct
        pts_val[rule.name] = (at_val["on_time_rate"], at_val["promise_days"])
        pts_test[rule.name] = (at_test["on_time_rate"], at_test["promise_days"])
        fold_days[rule.name] = fs["folds"]

    # The network's own distribution on the delivered test orders.
    y = o_test.days
    ok = np.isfinite(y)
    cdf_t = cdf[test][ok]
    out["ppx"].update(
        mae_days=float(np.mean(np.abs(y[ok] - ev.first_reach(cdf_t, 0.5)))),
        pinball_0_9=ev.pinball(y[ok], ev.first_reach(cdf_t, 0.9), 0.9),
        window_days=float(window),
        cap=float("nan") if cap is None else float(cap),
    )
    for row, (_, c, fl) in (
        ("ppx_equal_density", ed_choice),
        ("ppx_equal_density_guarded", ed_guarded),
    ):
        out[row].update(
            cap=float("nan") if c is None else float(c),
            floor=float("nan") if fl is None else float(fl),
        )
    out["olist_promise"]["retailer_on_time_rate_val"] = float(retailer_val)
    out["olist_promise"]["joined_customer_state"] = ol.coverage_report(raw)["joined_customer_state"]
    if details is not None:
        details.update(
            curves_val=curves_val,
            curves_test=curves_test,
            points_val=pts_val,
            points_test=pts_test,
            retailer_val=retailer_val,
            retailer_test=retailer_test,
            target=target,
            windows_tried=tried,
            window=window,
            cap=cap,
            equal_density_tried=ed_tried,
            equal_density_choice={"chosen": ed_choice, "guarded": ed_guarded},
            folds={
                "months": [str(a.date()) for a in fold_starts],
                "retailer_rates": fold_rates,
                "by_method": fold_days,
            },
            periods={
                "validation": [str(v0.date()), str(t0.date())],
                "test": [str(t0.date()), str(t1.date())],
                "data_end": str(end_of_data),
            },
            unresolved={k: int(v.sum()) for k, v in ol.unresolved_orders(raw).items()},
        )
    return out


def write_curves(details: dict, png: str | Path) -> Path:
    """The trade-off plot (validation and test panels) and its points beside it
    (``NAME_curves.json``)."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    p = details["periods"]
    to.plot_curves(
        [
            {
                "title": f"validation months {p['validation'][0]} .. {p['validation'][1]}"
                " (as known at the test start)",
                "curves": details["curves_val"],
                "points": details["points_val"],
                "rate": details["retailer_val"],
            },
            {
                "title": f"test months {p['test'][0]} .. {p['test'][1]}"
                " (dots: operating points chosen on validation)",
                "curves": details["curves_test"],
                "points": details["points_test"],
                "rate": details["retailer_test"],
            },
        ],
        png,
        "Olist: mean promise vs on-time rate, each method over its own knob",
    )
    payload = {
        "periods": p,
        "retailer_on_time_rate": {"val": details["retailer_val"], "test": details["retailer_test"]},
        "target_on_time": details["target"],
        "ppx_candidates_folds": {
            f"window {w}, cap {c}": v for (w, c), v in details["windows_tried"].items()
        },
        "ppx_choice": {"window_days": details["window"], "cap": details["cap"]},
        "equal_density_candidates_folds": {
            f"{src}, cap {c}, floor {fl}": v
            for (src, c, fl), v in details["equal_density_tried"].items()
        },
        "equal_density_choice": {
            row: {"source": src, "cap": c, "floor": fl}
            for row, (src, c, fl) in details["equal_density_choice"].items()
        },
        "folds": details["folds"],
        "unresolved_orders": details["unresolved"],
        "curves": {
            split: {m: cv.to_dict(orient="records") for m, cv in details[f"curves_{split}"].items()}
            for split in ("val", "test")
        },
    }
    path = png.with_name(png.stem + "_curves.json")
    path.write_text(json.dumps(payload, indent=1, default=float))
    return path
