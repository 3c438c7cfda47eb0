"""``simulate`` and ``compare``: replay a world through policies, side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.features.identity import ID_KINDS
from ppx.rules.policy import Policy, load_policy
from ppx.rules.simulator.churn import expected_churn
from ppx.rules.simulator.config import SimulationConfig, SimulationResult
from ppx.rules.simulator.inputs import load_events, read_table
from ppx.rules.simulator.replay import RETENTION_TYPES, run_policy
from ppx.rules.simulator.saves import SAVE_NOTE, SaveAssumptions, save_metrics
from ppx.rules.simulator.scores import StandInScores
from ppx.rules.simulator.stream import event_arrays


def simulate(
    world: str | Path,
    policies: dict[str, Policy] | Policy | str | Path,
    config: SimulationConfig | None = None,
    progress: bool = False,
    model_alias: str = "champion",
) -> SimulationResult:
    """Replay ``world`` through each policy and return side-by-side DataFrames.

    Args:
        world: a world (its truth/ stands in for scores) or a store from ``ppx data
            import`` (the registered models at ``model_alias`` score it).
        policies: ``{"name": Policy}`` (one or two, any number works), a Policy, or a path.
        config: replay knobs (seed, sample, noise, churn-effect assumption).
        progress: show a rich progress bar per policy.
    """
    cfg = config or SimulationConfig()
    if isinstance(policies, (str, Path)):
        policies = {Path(policies).stem: load_policy(policies)}
    elif isinstance(policies, Policy):
        policies = {policies.name: policies}
    if not policies:
        raise ValueError("give at least one policy to simulate")
    world = Path(world)
    rng = np.random.default_rng(cfg.seed)
    ev, truth = load_events(world, cfg, rng)
    if truth is None:
        # A store: the registered models' scores replace the generator's truth.
        from ppx.data.io import load_tables
        from ppx.rules.simulator.model_scores import ModelScores

        scores = ModelScores(ev, cfg, load_tables(world, validate=False), alias=model_alias)
        truth = scores.truth_like(ev)
    else:
        scores = StandInScores(ev, truth, cfg, rng)
    plist = list(policies.values())
    # the referral linkage check reads every account: rings link through accounts outside
    # the sample
    everyone = read_table(world, C.CUSTOMERS)
    if not set(ID_KINDS) <= set(everyone.columns):
        everyone = None  # no identifiers to link (the notes say so)
    arrays, stream = event_arrays(ev, truth, scores, plist, cfg, everyone)
    n_events = len(stream[0])
    assume = SaveAssumptions(cfg.save_accept_base, cfg.save_mismatch, cfg.save_horizon_months)
    replays = {}
    for name, pol in policies.items():
        if progress:
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task(f"replaying {name}", total=n_events)
                replays[name] = run_policy(
                    name,
                    pol,
                    ev,
                    scores,
                    stream,
                    arrays,
                    lambda i, t=task: bar.update(t, completed=i),
                    assume,
                )
        else:
            replays[name] = run_policy(name, pol, ev, scores, stream, arrays, None, assume)
    effect = float(ev.params.get("churn_redeem_effect", -0.6))
    n_cust = len(ev.customers)
    weeks = (ev.end - ev.start).days / 7.0
    summary: dict[str, dict[str, float]] = {}
    base_churn = None
    for name, r in replays.items():
        pol = policies[name]
        base, with_policy = expected_churn(ev, truth, r.retention, effect, cfg.uptake)
        base_churn = base
        awarded = sum(v for k, v in r.points_by_type.items() if k != "reversal")
        net = awarded + r.points_by_type.get("reversal", 0)
        sent = sum(r.messages.values())
        summary[name] = {
            "policy version": pol.version,
            "decisions": r.decisions,
            "points awarded": int(awarded),
            "points reversed": int(-r.points_by_type.get("reversal", 0)),
            "cost of points": round(net * pol.point_value, 2),
            "retention points (apology, win-back, tier-up)": int(
                sum(r.points_by_type.get(k, 0) for k in (*RETENTION_TYPES, "tier_up_bonus"))
            ),
            "messages / customer / week": round(sent / n_cust / weeks, 4),
            "marketing messages / customer / week": round(
                r.categories.get("marketing", 0) / n_cust / weeks, 4
            ),
            "messages suppressed: opt-out": r.suppressed.get("opt-out", 0),
            "messages suppressed: cap": r.suppressed.get("cap", 0),
            "messages suppressed: holdout": r.suppressed.get("holdout", 0),
            "surprise tier-ups": r.surprises,
            "win-back offers": r.messages.get("win_back", 0),
            "fraud loss avoided": round(r.fraud_avoided, 2),
            "fraud loss paid": round(r.fraud_loss, 2),
            "honest customers affected": len(r.honest_affected),
            "honest requests delayed": r.honest_delayed,
            "honest returns refunded instantly": round(
                r.honest_fast["return"] / max(r.honest["return"], 1), 4
            ),
            "honest claims paid fast": round(r.honest_fast["claim"] / max(r.honest["claim"], 1), 4),
            "expected cancellations (no gestures)": round(base, 2),
            "expected cancellations (policy)": round(with_policy, 2),
            "expected churn reduction": round(base - with_policy, 2),
            "expected churn reduction %": round(100 * (base - with_policy) / base, 3)
            if base
            else 0.0,
            **save_metrics(r.saves),
            **r.referrals.metrics(),
            "referral points": int(r.points_by_type.get("referral_bonus", 0)),
        }
    summary_df = pd.DataFrame(summary)
    pts = pd.DataFrame({n: pd.Series(dict(r.points_by_type)) for n, r in replays.items()}).fillna(0)
    outs = pd.DataFrame({n: pd.Series(dict(r.outcomes)) for n, r in replays.items()}).fillna(0)
    msgs = pd.DataFrame({n: pd.Series(dict(r.messages)) for n, r in replays.items()}).fillna(0)
    if isinstance(scores, StandInScores):
        score_note = (
            "Scores: no models given, so the world's ground truth stands in for them "
            f"(logit noise sd {cfg.score_noise}, ring recall {cfg.ring_recall}, ring false "
            f"positives {cfg.ring_false_positive}); delivery estimates are the true transit "
            "median/p90; one-off buyers' churn risk is P(no order in 90 days) at their true rate."
        )
        hazard = "true hazards"
    else:
        score_note = (
            "Scores: this store has no ground truth, so every counterfactual comes from the "
            f"registered models' scores ({', '.join(scores.sources)}): delivery median and "
            "90 % promise at checkout, fraud probability and ring flag, subscribers' 90-day "
            "churn risk; one-off buyers' churn risk is the store's observed share of orders "
            "not followed by another within 90 days; a request counts as fraud when the store "
            "confirmed it (confirmed_fraud)."
        )
        hazard = "models' 30-day churn probabilities (the monthly hazard)"
    notes = [
        score_note,
        SAVE_NOTE.format(
            base=cfg.save_accept_base, mismatch=cfg.save_mismatch, months=cfg.save_horizon_months
        )
        if len(arrays["cancels"]["when"])
        else "Save offers: not simulated (a store has no ground truth for churn drivers).",
        "Churn: retention gestures (apology and win-back points, surprise tier-ups) in the "
        "three months before a subscription month act like the world's points redemption "
        f"(churn_redeem_effect {effect:+.2f} on the logit) for {cfg.uptake:.0%} of the "
        f"customers reached, with strength min(1, points / {ev.params.get('redeem_threshold', 500)}) "
        "(a tier-up counts as 1), unless they redeemed anyway; expected cancellations = sum "
        f"of the monthly {hazard}.",
        "Fraud: inspection and investigation are assumed to catch every fraudulent request; "
        "'fraud loss paid' is fraud refunded or paid out without inspection.",
        "Cost of points = net points (awards minus reversals) x point_value, at face value.",
        "Referrals: each referred customer's first delivered order is attributed with the "
        "live checks (self-referral, referral cycle"
        + (
            ", accounts linked in the fraud linkage graph of every customer"
            if everyone is not None
            else "; no identifiers, so no linkage check"
        )
        + "); both sides are paid referral.settle_after_days after that delivery unless "
        "the order was refunded by then.",
        f"Customers replayed: {n_cust:,} over {weeks:.0f} weeks; seed {cfg.seed}.",
    ]
    meta = {
        "world": str(world),
        "scores": "ground truth" if isinstance(scores, StandInScores) else scores.sources,
        "seed": cfg.seed,
        "customers": n_cust,
        "events": n_events,
        "baseline_expected_cancellations": base_churn,
        "config": cfg.__dict__,
    }
    return SimulationResult(
        summary=summary_df,
        points_by_type=pts.sort_index(),
        outcomes=outs.sort_index(),
        messages=msgs.sort_index(),
        notes=notes,
        meta=meta,
    )


def compare(
    policy: str | Path,
    against: str | Path | None,
    world: str | Path,
    seed: int = 7,
    **config,
) -> SimulationResult:
    """Notebook entry point: ``compare("new.yaml", "default.yaml", "data/worlds/demo")``."""
    pols = {_label(policy, "policy"): load_policy(policy)}
    if against is not None:
        label = _label(against, "against")
        if label in pols:
            label += " (against)"
        pols[label] = load_policy(against)
    return simulate(world, pols, SimulationConfig(seed=seed, **config))


def _label(path: str | Path, fallback: str) -> str:
    stem = Path(path).stem
    return stem or fallback
