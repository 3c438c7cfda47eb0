"""Holdouts and A/B arms: assignment, what an arm does, CUPED, the report."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.rules.engine import DecisionEngine, OrderEventRequest
from ppx.rules.experiments.assign import apply_experiments, arm_of
from ppx.rules.experiments.report import (
    ARM,
    ORDERS,
    Window,
    analyse,
    experiment_frame,
)
from ppx.rules.experiments.stats import cuped_effect
from ppx.rules.ledger import Ledger
from ppx.rules.messages.outbox import Outbox
from ppx.rules.policy import Experiment, PolicyError, parse_policy
from ppx.rules.types import OrderEvent, Scores

EXP = {
    "name": "apology_holdout",
    "messages": ["apology"],
    "gestures": ["apology"],
    "arms": [
        {"name": "holdout", "weight": 1, "holdout": True},
        {"name": "treatment", "weight": 3},
    ],
}


@pytest.fixture()
def exp_policy(policy):
    data = policy.model_dump(mode="json")
    data["experiments"] = [
        EXP,
        {
            "name": "double_points",
            "gestures": ["review_bonus"],
            "arms": [
                {"name": "control", "weight": 1},
                {"name": "double", "weight": 1, "points_scale": 2.0},
            ],
        },
    ]
    return parse_policy(data)


def test_assignment_is_stable_balanced_and_salted():
    exp = Experiment.model_validate(EXP)
    arms = [arm_of(exp, c) for c in range(1, 20_001)]
    assert arms == [arm_of(exp, c) for c in range(1, 20_001)]  # same answer every time
    share = arms.count("holdout") / len(arms)
    assert abs(share - 0.25) < 0.01  # 25 % +- 4 standard errors
    other = Experiment.model_validate({**EXP, "salt": "reshuffled"})
    moved = sum(a != arm_of(other, c) for c, a in enumerate(arms, start=1))
    assert 0.3 < moved / len(arms) < 0.45  # independent split: 2 x 0.25 x 0.75 = 0.375


def test_policy_refuses_unknown_kinds_and_ledger_types(policy):
    data = policy.model_dump(mode="json")
    data["experiments"] = [{**EXP, "messages": ["apologee"]}]
    with pytest.raises(PolicyError, match="not in the catalogue"):
        parse_policy(data)
    data["experiments"] = [{**EXP, "gestures": ["free_money"]}]
    with pytest.raises(PolicyError, match="unknown ledger types"):
        parse_policy(data)


def _late(cid: int) -> OrderEvent:
    return OrderEvent(
        event_type="delivered",
        order_id=1000 + cid,
        customer_id=cid,
        occurred_at=datetime(2025, 3, 8, 12),
        ordered_at=datetime(2025, 3, 1),
        order_value=80,
        promised_date="2025-03-02",
        delivered_at=datetime(2025, 3, 8, 12),
    )


def _first(exp_policy, arm: str) -> int:
    return next(c for c in range(1, 1000) if arm_of(exp_policy.experiments[0], c) == arm)


def test_holdout_gets_no_message_or_gesture_and_rows_record_the_arm(exp_policy, customer, tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    outbox = Outbox(ledger.engine)
    eng = DecisionEngine(exp_policy, None, ledger, None, outbox)
    held, treated = _first(exp_policy, "holdout"), _first(exp_policy, "treatment")

    def run(cid):
        c = customer(customer_id=cid, email=f"c{cid}@example.com")
        req = OrderEventRequest(event=_late(cid), customer=c, scores=Scores(churn_risk=0.4))
        return asyncio.run(eng.order_event(req))

    h, t = run(held), run(treated)
    assert h.decision.arms == {"apology_holdout": "holdout"}
    assert "apology" not in h.decision.message_types()
    assert not [a for a in h.decision.actions if a.ledger_type == "apology"]
    assert any("holdout arm apology_holdout:holdout" in r for r in h.decision.reasons)
    assert "earn" in {p["entry_type"] for p in h.ledger}  # earning points is not covered
    assert t.decision.arms == {"apology_holdout": "treatment"}
    (apology,) = [a for a in t.decision.actions if a.ledger_type == "apology"]
    assert apology.arm == "apology_holdout:treatment"
    hist = {e["entry_type"]: e for e in ledger.history(treated)}
    assert hist["apology"]["arm"] == "apology_holdout:treatment" and hist["earn"]["arm"] is None
    rows = {(r["customer_id"], r["message_type"]): r for r in outbox.rows()}
    assert rows[(treated, "apology")]["arm"] == "apology_holdout:treatment"
    assert (held, "apology") not in rows and (held, "delivered") in rows
    ledger.dispose()


def test_points_scale_arm(exp_policy, customer):
    from ppx.rules.decisions import decide_order_event

    exp = exp_policy.experiments[1]
    by_arm = {}
    for cid in range(1, 50):
        ev = OrderEvent(
            event_type="review", order_id=cid, customer_id=cid, occurred_at=datetime(2025, 3, 8)
        )
        d = decide_order_event(ev, customer(customer_id=cid), Scores(), exp_policy)
        d = apply_experiments(d, exp_policy, ev.occurred_at)
        by_arm[arm_of(exp, cid)] = d.actions[0].points
    assert by_arm == {"control": 50, "double": 100}


def test_experiment_outside_its_dates_changes_nothing(exp_policy, customer):
    from ppx.rules.decisions import decide_order_event

    data = exp_policy.model_dump(mode="json")
    data["experiments"][0]["starts"] = "2026-01-01"
    pol = parse_policy(data)
    cid = _first(exp_policy, "holdout")
    d = decide_order_event(_late(cid), customer(customer_id=cid), Scores(churn_risk=0.4), pol)
    assert apply_experiments(d, pol, datetime(2025, 3, 8)).message_types() == d.message_types()


def _synthetic(n: int, effect: float, seed: int) -> tuple[np.ndarray, ...]:
    """Pre-period orders x, post-period orders y = persistent taste + effect + noise."""
    rng = np.random.default_rng(seed)
    taste = rng.gamma(2.0, 1.0, n)
    x = rng.poisson(taste)
    treated = rng.random(n) < 0.5
    y = rng.poisson(taste) + effect * treated
    return y.astype(float), x.astype(float), treated


def test_cuped_reduces_variance_and_keeps_the_estimate_unbiased():
    y, x, t = _synthetic(20_000, 0.0, seed=3)
    raw = cuped_effect(y, None, t)
    adj = cuped_effect(y, x, t)
    corr = np.corrcoef(y, x)[0, 1]
    assert adj.variance_reduction == pytest.approx(corr**2, abs=0.01) and corr**2 > 0.2
    assert adj.se < 0.9 * raw.se and adj.se_raw == pytest.approx(raw.se)
    # Over repeated A/A splits, the CUPED estimates scatter less and centre on zero.
    diffs_raw, diffs_adj = [], []
    for s in range(40):
        y, x, t = _synthetic(4_000, 0.0, seed=100 + s)
        diffs_raw.append(cuped_effect(y, None, t).diff)
        diffs_adj.append(cuped_effect(y, x, t).diff)
    assert np.std(diffs_adj) < 0.9 * np.std(diffs_raw)
    assert abs(np.mean(diffs_adj)) < 3 * np.std(diffs_adj) / np.sqrt(40)


def test_planted_effect_is_recovered_within_its_interval():
    covered = 0
    for s in range(20):
        y, x, t = _synthetic(8_000, 0.15, seed=500 + s)
        e = cuped_effect(y, x, t)
        covered += e.ci_low <= 0.15 <= e.ci_high
    assert covered >= 17  # 95 % intervals: 19 of 20 expected; 17+ with probability 0.98
    y, x, t = _synthetic(8_000, 0.15, seed=7)
    e = cuped_effect(y, x, t)
    assert e.ci_low <= 0.15 <= e.ci_high and e.significant


def test_report_frame_reads_orders_ledger_and_outbox():
    exp = Experiment.model_validate(EXP)
    n = 4_000
    rng = np.random.default_rng(1)
    start = datetime(2025, 6, 1)
    customers = pd.DataFrame(
        {C.CUSTOMER_ID: np.arange(1, n + 1), C.SIGNUP_AT: [start - timedelta(days=400)] * n}
    )
    arms = np.array([arm_of(exp, c) for c in customers[C.CUSTOMER_ID]])
    rate = rng.gamma(2.0, 1.5, n)
    rows = []
    for i, cid in enumerate(customers[C.CUSTOMER_ID]):
        lift = 0.3 if arms[i] == "treatment" else 0.0  # planted: +0.3 orders in the window
        for _k in range(rng.poisson(rate[i])):
            rows.append((cid, start - timedelta(days=1 + 88 * rng.random())))
        for _k in range(rng.poisson(rate[i] + lift)):
            rows.append((cid, start + timedelta(days=88 * rng.random())))
    orders = pd.DataFrame(rows, columns=[C.CUSTOMER_ID, C.ORDERED_AT])
    ledger = pd.DataFrame(
        {
            "customer_id": [_cid for _cid in range(1, 11)],
            "points": 100,
            "arm": "apology_holdout:treatment",
            "created_at": start + timedelta(days=1),
        }
    )
    frame = experiment_frame(
        customers, orders, exp, Window(start, start + timedelta(days=90)), 0.01, ledger=ledger
    )
    assert len(frame) == n and set(frame[ARM]) == {"holdout", "treatment"}
    assert frame["points_cost"].sum() == pytest.approx(10.0)
    res = analyse(frame, exp)
    assert res["control"] == "holdout"
    orders_effect = next(e for e in res["effects"]["treatment"] if e.outcome == ORDERS)
    assert orders_effect.ci_low <= 0.3 <= orders_effect.ci_high
    assert orders_effect.variance_reduction > 0.1 and orders_effect.se < orders_effect.se_raw


def test_report_command_on_a_world(tiny_world, policy, tmp_path):
    """An A/A read on a world generated without the experiment: no effect detected."""
    from typer.testing import CliRunner

    from ppx.cli import app

    world, path = tiny_world
    data = policy.model_dump(mode="json")
    start = pd.Timestamp(world.tables[C.ORDERS][C.ORDERED_AT].quantile(0.6)).date()
    data["experiments"] = [{**EXP, "starts": start.isoformat()}]
    import yaml

    pol = tmp_path / "exp.yaml"
    pol.write_text(yaml.safe_dump(data))
    out = tmp_path / "report.json"
    res = CliRunner().invoke(
        app,
        [
            "experiment",
            "report",
            "apology_holdout",
            "--world",
            str(path),
            "--policy",
            str(pol),
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "customers per arm: holdout" in res.output
    import json

    rows = {r["outcome"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"retained", "orders", "points_cost"}
    assert rows["orders"]["variance_reduction"] > 0
    for outcome in ("orders", "retained"):  # the world knows nothing of the arms
        assert rows[outcome]["ci95_low"] <= 0 <= rows[outcome]["ci95_high"]
    assert rows["points_cost"]["effect"] == 0  # no ledger given: no points counted
    missing = CliRunner().invoke(
        app, ["experiment", "report", "nope", "--world", str(path), "--policy", str(pol)]
    )
    assert missing.exit_code == 2 and "apology_holdout" in missing.output


def test_simulator_applies_a_holdout(tiny_world, policy):
    from ppx.rules.simulator import SimulationConfig, simulate

    _, path = tiny_world
    data = policy.model_dump(mode="json")
    data["name"] = "with_holdout"
    data["experiments"] = [
        {
            **EXP,
            "arms": [
                {"name": "holdout", "weight": 1, "holdout": True},
                {"name": "treatment", "weight": 1},
            ],
        }
    ]
    pols = {"default": policy, "with_holdout": parse_policy(data)}
    res = simulate(path, pols, SimulationConfig(seed=3, sample=0.5))
    apology = res.points_by_type.loc["apology"]
    assert 0.3 * apology["default"] < apology["with_holdout"] < 0.7 * apology["default"]
    assert res.summary.loc["messages suppressed: holdout", "with_holdout"] > 0
    assert res.summary.loc["messages suppressed: holdout", "default"] == 0
    assert res.messages.loc["delivered", "default"] > 0  # every delivery stage is notified
