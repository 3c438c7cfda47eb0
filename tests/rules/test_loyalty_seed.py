"""Opening entries from a store's loyalty export: after the seeding, the ledger's bulk
reads (the nightly batch) and the per-customer summary (portal, decision service) show
the export's balance, last activity and tier; re-runs change nothing; customers with
live entries and bad balances are refused with nothing written."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ppx.data import columns as C
from ppx.rules.commands import register
from ppx.rules.ledger import Ledger
from ppx.rules.loyalty import loyalty_summary
from ppx.rules.loyalty.expiry import add_months, expire_due
from ppx.rules.loyalty.seed import (
    OPENING,
    SeedConflict,
    SeedError,
    export_state,
    seed_ledger,
)
from ppx.rules.loyalty.states import points_states, tier_states
from ppx.rules.loyalty.tables import TierChange
from ppx.rules.loyalty.tiers import current_tier, tier_history

T0 = datetime(2025, 3, 3, 10, 0)
AS_OF = datetime(2025, 6, 1)


def _events() -> pd.DataFrame:
    rows = [
        # customer 1: earns, changes tier, redeems
        (1, T0, "earn", 500, None),
        (1, T0 + timedelta(days=5), "tier_change", 0, "silver"),
        (1, T0 + timedelta(days=10), "redeem", -200, None),
        # customer 2: the refund's reversal is not activity
        (2, T0 + timedelta(days=1), "earn", 100, None),
        (2, T0 + timedelta(days=20), "reversal", -40, None),
        # customer 3: an earning after the moment is not in the opening balance
        (3, T0, "review_bonus", 70, None),
        (3, AS_OF + timedelta(days=1), "earn", 50, None),
        # customer 4: a tier, no points
        (4, T0 + timedelta(days=2), "tier_change", 0, "gold"),
    ]
    df = pd.DataFrame(rows, columns=[C.CUSTOMER_ID, C.EVENT_AT, C.EVENT_TYPE, C.POINTS, C.TIER])
    df.insert(0, C.EVENT_ID, np.arange(1, len(df) + 1, dtype=np.int64))
    return df


BALANCES = {1: 300, 2: 60, 3: 70, 4: 0}
LAST = {1: T0 + timedelta(days=10), 2: T0 + timedelta(days=1), 3: T0, 4: None}


def _seed(ledger, policy, events=None, **kw):
    state = export_state(_events() if events is None else events, AS_OF)
    return seed_ledger(ledger, policy, state, AS_OF, chunk_rows=2, **kw)


def _all(chunks) -> pd.DataFrame:
    return pd.concat(list(chunks), ignore_index=True).set_index(C.CUSTOMER_ID)


def _history_rows(ledger) -> int:
    with Session(ledger.engine) as s:
        return int(s.scalar(select(func.count()).select_from(TierChange)))


def test_after_seeding_the_ledger_shows_the_exports_figures(ledger, policy):
    res = _seed(ledger, policy)
    assert (res.customers, res.written, res.already_seeded) == (4, 4, 0)
    assert res.points_written == sum(BALANCES.values())
    assert res.tiers_written == 2

    # the nightly batch's bulk reads
    points = _all(points_states(ledger, AS_OF))
    assert points["balance"].to_dict() == BALANCES
    for cid in (1, 2, 3):
        assert points.loc[cid, "last_activity_at"] == pd.Timestamp(LAST[cid])
    tiers = _all(tier_states(ledger, AS_OF))[C.TIER].to_dict()
    assert tiers == {1: "silver", 4: "gold"}

    # the portal's and the decision service's per-customer summary
    for cid, bal in BALANCES.items():
        s = loyalty_summary(ledger, policy, cid, now=AS_OF)
        assert s.balance == bal
        assert s.tier == tiers.get(cid, policy.tiers[0].name)
    assert current_tier(ledger, 1)["since"] == (T0 + timedelta(days=5)).isoformat()
    assert all(h["entry_type"] == OPENING for h in ledger.history(1))


def test_the_expiry_deadline_is_the_exports_not_the_seeding_days(ledger, policy):
    _seed(ledger, policy)
    months = policy.points.expiry.inactivity_months
    due = add_months(LAST[2], months)  # the reversal after the earning renews nothing
    assert loyalty_summary(ledger, policy, 2, now=AS_OF).expires_on == due.date()
    assert expire_due(ledger, policy, due - timedelta(seconds=1), customer_ids=[2]) == []
    (lapsed,) = expire_due(ledger, policy, due + timedelta(days=1), customer_ids=[2])
    assert lapsed.points == -BALANCES[2]


def test_a_second_run_writes_nothing(ledger, policy):
    _seed(ledger, policy)
    entries, history = ledger.count(), _history_rows(ledger)
    again = _seed(ledger, policy)
    assert (again.written, again.already_seeded, again.differing) == (0, 4, 0)
    assert again.tiers_written == 0
    assert (ledger.count(), _history_rows(ledger)) == (entries, history)
    assert _all(points_states(ledger, AS_OF))["balance"].to_dict() == BALANCES
    # a later export does not add a second opening entry; the summary says it differs
    later = _events()
    later.loc[later[C.CUSTOMER_ID] == 1, C.POINTS] += 1
    res = _seed(ledger, policy, later)
    assert (res.written, res.differing) == (0, 1)
    assert ledger.balance(1) == BALANCES[1]


def test_a_seeded_customers_later_earnings_do_not_stop_a_re_run(ledger, policy):
    _seed(ledger, policy)
    ledger.award(1, 25, "earn:1:order-12")
    again = _seed(ledger, policy)
    assert (again.written, again.already_seeded, again.skipped_live) == (0, 4, 0)
    assert ledger.balance(1) == BALANCES[1] + 25


def test_customers_with_live_entries_are_refused_and_nothing_is_written(ledger, policy):
    ledger.award(2, 10, "earn:2:order-9")
    with pytest.raises(SeedConflict, match="1 of the export's 4 customers") as err:
        _seed(ledger, policy)
    assert err.value.customers == [2]
    assert ledger.count() == 1 and ledger.balance(2) == 10
    assert _history_rows(ledger) == 0


def test_only_new_seeds_the_customers_the_ledger_does_not_know(ledger, policy):
    ledger.award(2, 10, "earn:2:order-9")
    res = _seed(ledger, policy, only_new=True)
    assert (res.written, res.skipped_live) == (3, 1)
    assert ledger.balance(2) == 10  # the live balance is left alone
    assert {c: ledger.balance(c) for c in (1, 3, 4)} == {1: 300, 3: 70, 4: 0}


def test_bad_balances_are_refused_naming_the_customers(ledger, policy):
    ev = _events()
    ev.loc[len(ev)] = [99, 3, T0 + timedelta(days=30), "reversal", -500, None]
    with pytest.raises(SeedError, match=r"1 customers have a negative balance.*customers 3;"):
        _seed(ledger, policy, ev)
    assert ledger.count() == 0
    res = _seed(ledger, policy, ev, allow_negative=True)
    assert res.written == 4 and ledger.balance(3) == -430

    ev = _events()
    ev[C.POINTS] = ev[C.POINTS].astype(float)
    ev.loc[ev[C.CUSTOMER_ID] == 4, C.POINTS] = np.nan
    ev.loc[(ev[C.CUSTOMER_ID] == 1) & (ev[C.EVENT_TYPE] == "earn"), C.POINTS] = np.inf
    with pytest.raises(SeedError, match=r"2 customers do not add up.*customers 1, 4;"):
        seed_ledger(ledger, policy, export_state(ev, AS_OF), AS_OF)


def test_a_tier_the_policy_does_not_know_is_refused(ledger, policy):
    ev = _events()
    ev.loc[ev[C.TIER] == "gold", C.TIER] = "diamond"
    with pytest.raises(SeedError, match=r"'diamond'.*customers 4;"):
        _seed(ledger, policy, ev)
    assert ledger.count() == 0


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root():
        """root"""

    register(app)
    return app


def test_the_command_seeds_once_and_refuses_clearly(tmp_path):
    store = tmp_path / "store"
    (store / "tables").mkdir(parents=True)
    _events().to_parquet(store / "tables" / f"{C.LOYALTY_EVENTS}.parquet")
    orders = pd.DataFrame(
        {
            C.CUSTOMER_ID: [1, 1, 1, 3],
            C.ORDERED_AT: [
                T0 - timedelta(days=400),
                T0 - timedelta(days=30),
                T0 + timedelta(days=6),
                T0,
            ],
            C.ORDER_VALUE: [999.0, 80.0, 50.0, 20.0],
        }
    )
    orders.to_parquet(store / "tables" / f"{C.ORDERS}.parquet")
    url = f"sqlite:///{tmp_path / 'l.db'}"
    app = _app()
    args = ["loyalty", "seed", str(store), "--ledger-url", url, "--as-of", AS_OF.isoformat()]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "entries written" in first.output and "430" in first.output
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    lg = Ledger(url)
    assert lg.count() == 4 and lg.balance(1) == 300
    (opening,) = tier_history(lg, 1)  # the 12 months of orders before the tier change
    assert (opening["to_tier"], opening["change"], opening["spend_12m"]) == (
        "silver",
        "opening",
        80.0,
    )
    lg.dispose()

    other = tmp_path / "l2.db"
    lg = Ledger(f"sqlite:///{other}")
    lg.award(3, 5, "earn:3:new")
    lg.dispose()
    refused = CliRunner().invoke(
        app, [*args[:3], "--ledger-url", f"sqlite:///{other}", "--as-of", AS_OF.isoformat()]
    )
    assert refused.exit_code == 2
    assert "1 of the export's" in refused.output and "--only-new" in refused.output

    (tmp_path / "bare" / "tables").mkdir(parents=True)
    missing = CliRunner().invoke(
        app,
        ["loyalty", "seed", str(tmp_path / "bare"), "--ledger-url", url, "--as-of", "2025-06-01"],
    )
    assert missing.exit_code == 2 and "'loyalty_events' is missing" in missing.output

    _events().drop(columns=[C.TIER]).to_parquet(
        tmp_path / "bare" / "tables" / "loyalty_events.parquet"
    )
    lacking = CliRunner().invoke(app, [*args[:2], str(tmp_path / "bare"), *args[3:]])
    assert lacking.exit_code == 2 and "lacks columns ['tier']" in lacking.output


def test_the_nightly_state_of_every_seeded_customer_is_the_stores(tiny_world, tmp_path, policy):
    """The nightly batch on the seeded ledger decides what it decided on the store alone."""
    from ppx.batch.ledger_state import apply_ledger_state, read_ledger_state, stage_ledger_state
    from ppx.batch.nightly import decisions, last_activity
    from ppx.features.context import daily_contexts

    world, _ = tiny_world
    ev = world.tables[C.LOYALTY_EVENTS]
    night = pd.Timestamp(ev[C.EVENT_AT].max()).normalize() - pd.Timedelta(days=40)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    lg = Ledger(url)
    res = seed_ledger(
        lg, policy, export_state(ev, night), night.to_pydatetime(), allow_negative=True
    )
    lg.dispose()
    assert res.written == ev.loc[ev[C.EVENT_AT] < night, C.CUSTOMER_ID].nunique() > 100
    stage_ledger_state(url, tmp_path / "staging", 1, night)
    state = read_ledger_state(tmp_path / "staging", 0)

    cust = world.tables[C.CUSTOMERS]
    ids = cust.loc[cust[C.SIGNUP_AT] < night, C.CUSTOMER_ID].to_numpy(dtype=np.int64)
    ctx = daily_contexts(world.tables, night, customer_ids=ids)
    last = last_activity(ev, night)
    seeded, seeded_last, _ = apply_ledger_state(ctx, last, state, policy.tier_names)
    assert seeded["points_balance"].tolist() == ctx["points_balance"].tolist()
    assert seeded[C.TIER].tolist() == ctx[C.TIER].tolist()
    holding = ctx.loc[ctx["points_balance"] > 0, C.CUSTOMER_ID].tolist()
    assert holding and all(seeded_last[c] == last[c] for c in holding)

    empty = pd.DataFrame({C.CUSTOMER_ID: pd.Series([], dtype="int64"), "p_churn_90": []})
    no_recs = pd.DataFrame({C.CUSTOMER_ID: pd.Series([], dtype="int64"), "product_ids": []})
    cols = [C.CUSTOMER_ID, "outcome", "points", "messages", "actions"]
    alone = decisions(policy, world.tables, ids, empty, no_recs, night, "k")["decisions"]
    on_ledger = decisions(policy, world.tables, ids, empty, no_recs, night, "k", state)
    pd.testing.assert_frame_equal(on_ledger["decisions"][cols], alone[cols])
