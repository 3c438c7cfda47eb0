"""``ppx experiment report``: what an experiment's arms did to retention, orders and cost.

Unit: every customer of the world or store who signed up before the experiment started,
in the arm the policy's hash puts them (intent to treat: a held-out customer who would
never have been messaged still counts, which dilutes the effect but cannot bias it; the
arm is recomputed, so no assignment table is needed).

Outcomes over the experiment window ``[start, end)``:

* ``retained``: placed at least one order in the window (0/1);
* ``orders``: orders placed in the window;
* ``points_cost``: points the experiment's gestures awarded in the window x
  ``point_value``, from the ledger rows tagged with the experiment (0 without a ledger);
* ``messages``: outbox rows of the experiment sent or queued in the window (exposure).

Pre-period covariates (the same length before ``start``), for CUPED: orders for
``orders``, any order for ``retained``; ``points_cost`` has no pre-period of its own (the
gestures did not exist), so it uses the pre-period orders as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from ppx.data import columns as C
from ppx.rules.experiments.assign import arm_of
from ppx.rules.experiments.stats import Effect, cuped_effect
from ppx.rules.policy import Experiment, Policy

ARM = "arm"
RETAINED = "retained"
ORDERS = "orders"
POINTS_COST = "points_cost"
MESSAGES = "messages"
PRE_ORDERS = "pre_orders"
PRE_ACTIVE = "pre_active"

#: outcome -> its CUPED covariate
OUTCOMES = {RETAINED: PRE_ACTIVE, ORDERS: PRE_ORDERS, POINTS_COST: PRE_ORDERS}


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def pre_start(self) -> datetime:
        return self.start - (self.end - self.start)


@dataclass
class Report:
    experiment: str
    window: Window
    control: str
    arm_sizes: dict[str, int]
    effects: dict[str, list[Effect]]  # treatment arm -> one Effect per outcome
    exposure: dict[str, int]  # arm -> outbox rows


def experiment_frame(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    experiment: Experiment,
    window: Window,
    point_value: float,
    ledger: pd.DataFrame | None = None,
    outbox: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per customer: arm, outcomes in the window, pre-period covariates.

    ``ledger`` columns: customer_id, points, arm, created_at; ``outbox``: customer_id, arm,
    created_at. Rows are counted only when tagged with this experiment.
    """
    for name, df, cols in (
        ("customers", customers, [C.CUSTOMER_ID, C.SIGNUP_AT]),
        ("orders", orders, [C.CUSTOMER_ID, C.ORDERED_AT]),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"table {name}: missing columns {missing}")
    cust = customers.loc[customers[C.SIGNUP_AT] < window.start, [C.CUSTOMER_ID]].copy()
    if cust.empty:
        raise ValueError(f"no customer signed up before the experiment start {window.start}")
    cust[ARM] = [arm_of(experiment, int(c)) for c in cust[C.CUSTOMER_ID]]
    t = orders[C.ORDERED_AT]
    post = orders[(t >= window.start) & (t < window.end)].groupby(C.CUSTOMER_ID).size()
    pre = orders[(t >= window.pre_start) & (t < window.start)].groupby(C.CUSTOMER_ID).size()
    cid = cust[C.CUSTOMER_ID]
    cust[ORDERS] = cid.map(post).fillna(0).to_numpy(float)
    cust[RETAINED] = (cust[ORDERS] > 0).astype(float)
    cust[PRE_ORDERS] = cid.map(pre).fillna(0).to_numpy(float)
    cust[PRE_ACTIVE] = (cust[PRE_ORDERS] > 0).astype(float)
    prefix = f"{experiment.name}:"
    cust[POINTS_COST] = 0.0
    if ledger is not None and not ledger.empty:
        lg = ledger[ledger[ARM].fillna("").str.startswith(prefix)]
        lg = lg[(lg["created_at"] >= window.start) & (lg["created_at"] < window.end)]
        pts = lg.groupby(C.CUSTOMER_ID)["points"].sum()
        cust[POINTS_COST] = cid.map(pts).fillna(0).to_numpy(float) * point_value
    cust[MESSAGES] = 0.0
    if outbox is not None and not outbox.empty:
        ob = outbox[outbox[ARM].fillna("").str.startswith(prefix)]
        ob = ob[(ob["created_at"] >= window.start) & (ob["created_at"] < window.end)]
        cust[MESSAGES] = cid.map(ob.groupby(C.CUSTOMER_ID).size()).fillna(0).to_numpy(float)
    return cust.reset_index(drop=True)


def analyse(frame: pd.DataFrame, experiment: Experiment, control: str | None = None) -> dict:
    """Each non-control arm against the control (the holdout arm unless named)."""
    names = [a.name for a in experiment.arms]
    if control is None:
        holdouts = [a.name for a in experiment.arms if a.holdout]
        control = holdouts[0] if holdouts else names[0]
    if control not in names:
        raise ValueError(f"control arm {control!r} is not one of {names}")
    effects: dict[str, list[Effect]] = {}
    for arm in names:
        if arm == control:
            continue
        sub = frame[frame[ARM].isin([arm, control])]
        treated = (sub[ARM] == arm).to_numpy()
        effects[arm] = [
            cuped_effect(sub[y].to_numpy(), sub[x].to_numpy(), treated, outcome=y)
            for y, x in OUTCOMES.items()
        ]
    return {"control": control, "effects": effects}


def _read_sql(url: str, table: str, cols: list[str]) -> pd.DataFrame | None:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        if not inspect(engine).has_table(table):
            return None
        have = {c["name"] for c in inspect(engine).get_columns(table)}
        if not set(cols) <= have:
            return None
        q = f"SELECT {', '.join(cols)} FROM {table} WHERE arm IS NOT NULL"
        df = pd.read_sql_query(q, engine)
    finally:
        engine.dispose()
    df["created_at"] = pd.to_datetime(df["created_at"])
    return df


def report(
    world: str | Path,
    policy: Policy,
    experiment_name: str,
    *,
    ledger_url: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    control: str | None = None,
) -> tuple[Report, pd.DataFrame]:
    """Read the world (or store), the ledger and the outbox; compare the arms."""
    from ppx.data.io import load_tables

    exps = {e.name: e for e in policy.experiments}
    if experiment_name not in exps:
        raise ValueError(
            f"experiment {experiment_name!r} is not in policy {policy.name} "
            f"(its experiments: {sorted(exps) or 'none'})"
        )
    exp = exps[experiment_name]
    tables = load_tables(world, validate=False)
    orders = tables[C.ORDERS]
    start = start or (
        datetime.combine(exp.starts, datetime.min.time()) if exp.starts is not None else None
    )
    end = end or (
        datetime.combine(exp.ends, datetime.min.time()) + timedelta(days=1)
        if exp.ends is not None
        else None
    )
    if start is None:
        raise ValueError(f"experiment {experiment_name} has no starts date: pass --start")
    if end is None:
        end = pd.Timestamp(orders[C.ORDERED_AT].max()).to_pydatetime() + timedelta(seconds=1)
    if end <= start:
        raise ValueError(f"the window is empty: end {end} <= start {start}")
    window = Window(start, end)
    ledger = outbox = None
    if ledger_url:
        ledger = _read_sql(
            ledger_url, "loyalty_ledger", ["customer_id", "points", "arm", "created_at"]
        )
        outbox = _read_sql(ledger_url, "message_outbox", ["customer_id", "arm", "created_at"])
    frame = experiment_frame(
        tables[C.CUSTOMERS], orders, exp, window, policy.point_value, ledger, outbox
    )
    res = analyse(frame, exp, control)
    sizes = frame[ARM].value_counts().to_dict()
    exposure = frame.groupby(ARM)[MESSAGES].sum().astype(int).to_dict()
    return (
        Report(exp.name, window, res["control"], sizes, res["effects"], exposure),
        frame,
    )


def effects_table(rep: Report) -> pd.DataFrame:
    """The read-out as rows: arm x outcome with means, diff, CI, variance reduction."""
    rows = []
    for arm, effs in rep.effects.items():
        for e in effs:
            rows.append(
                {
                    "arm": arm,
                    "outcome": e.outcome,
                    "n_arm": e.n_treatment,
                    "n_control": e.n_control,
                    "mean_arm": e.mean_treatment,
                    "mean_control": e.mean_control,
                    "effect": e.diff,
                    "ci95_low": e.ci_low,
                    "ci95_high": e.ci_high,
                    "se_cuped": e.se,
                    "se_raw": e.se_raw,
                    "variance_reduction": e.variance_reduction,
                }
            )
    return pd.DataFrame(rows)


__all__ = ["Report", "Window", "analyse", "effects_table", "experiment_frame", "report"]
