"""The nightly batch: the same outputs whatever the engine or bucket count, and a re-run
that awards nothing twice.

The end-to-end tests train tiny churn and recs models on the session's tiny world once
for the module (slow); the Spark comparison also needs a Java runtime and is skipped
with the reason when there is none. Partitioning, the ledger's batch awards and the
output-folder guard are checked without models in the default suite.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ppx.batch.engines import run
from ppx.batch.nightly import OUTPUTS
from ppx.batch.run import java_missing, make_job, prepare_out, read_output, sink
from ppx.cli import app
from ppx.data import columns as C

runner = CliRunner()
SCORE_COLUMNS = ["p_churn_30", "p_churn_60", "p_churn_90", "expected_lifetime_days"]


def _ok(args: list[str]) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, f"ppx {' '.join(args)} failed:\n{res.output}\n{res.exception!r}"


@pytest.fixture(scope="module")
def registry(tiny_world, tmp_path_factory, use_mlflow_dir):
    """Tiny churn and recs champions in a registry of this module's own."""
    from ppx import tracking

    _, world = tiny_world
    folder = tmp_path_factory.mktemp("nightly_mlflow")
    with use_mlflow_dir(folder):
        _ok(["train", "churn", "--world", str(world)])
        _ok(
            [
                "train",
                "recs",
                "--world",
                str(world),
                "--epochs",
                "1",
                "--max-minutes",
                "0.3",
                "--threads",
                "1",
            ]
        )
        tracking.configure()
        for model in ("churn", "recs"):
            # the gate may keep a tiny model a challenger; the batch scores what is named
            tracking.set_alias(model, tracking.CHAMPION, 1)
        yield world, folder


def _night(
    registry, use_mlflow_dir, out, engine="local", buckets=3, ledger_url=None, read_ledger=None
):
    world, folder = registry
    with use_mlflow_dir(folder):
        prepare_out(out)
        # one voucher key for every night here: engines and bucket counts compare equal
        job = make_job(
            world, out, buckets=buckets, voucher_secret="nightly-test", ledger_url=read_ledger
        )
        summary, _ = run(job, engine, cores=2)
        sink_result = sink(out, job.now, ledger_url=ledger_url) if ledger_url else None
    return job, summary, sink_result


def _outputs(out) -> dict[str, pd.DataFrame]:
    return {name: read_output(out, name) for name in OUTPUTS}


def _assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    # scores within float tolerance, everything else (ids, decisions, keys) exactly
    pd.testing.assert_frame_equal(a["churn"], b["churn"], check_exact=False, rtol=1e-9)
    for name in ("decisions", "ledger", "outbox", "gifts", "tiers"):
        pd.testing.assert_frame_equal(a[name], b[name])
    assert (
        a["recs"]["product_ids"].map(list).tolist() == b["recs"]["product_ids"].map(list).tolist()
    )
    np.testing.assert_allclose(
        np.concatenate(a["recs"]["scores"].to_numpy()),
        np.concatenate(b["recs"]["scores"].to_numpy()),
        rtol=1e-6,
    )


@pytest.mark.slow
def test_the_bucket_count_changes_nothing(registry, use_mlflow_dir, tmp_path):
    _night(registry, use_mlflow_dir, tmp_path / "two", buckets=2)
    _night(registry, use_mlflow_dir, tmp_path / "five", buckets=5)
    two, five = _outputs(tmp_path / "two"), _outputs(tmp_path / "five")
    _assert_same(two, five)
    world, _ = registry
    subs = pd.read_parquet(world / "tables" / "subscriptions.parquet")
    assert len(two["churn"]) > 0 and two["churn"][SCORE_COLUMNS[0]].between(0, 1).all()
    assert set(two["churn"][C.CUSTOMER_ID]) <= set(subs[C.CUSTOMER_ID])
    assert len(two["decisions"]) == len(two["recs"]) > len(two["churn"])
    assert (two["recs"]["product_ids"].map(len) == 10).all()
    assert len(two["ledger"]) > 0, "a tiny world's night still awards someone"
    assert two["ledger"]["idempotency_key"].is_unique


@pytest.mark.slow
def test_a_second_run_awards_nothing_twice(registry, use_mlflow_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _, _, first = _night(registry, use_mlflow_dir, tmp_path / "night", ledger_url=url)
    _, _, again = _night(registry, use_mlflow_dir, tmp_path / "night", ledger_url=url)
    assert first.awards_created == first.awards > 0
    assert first.messages_created == first.messages > 0
    assert again.awards == first.awards and again.awards_created == 0
    assert again.points_created == 0 and again.messages_created == 0
    assert (again.gifts, again.tier_changes) == (first.gifts, first.tier_changes)
    assert again.gifts_created == 0 and again.tiers_changed == 0
    assert first.gifts_created == first.gifts
    from ppx.rules.ledger import Ledger

    lg = Ledger(url)
    awards = read_output(tmp_path / "night", "ledger")
    for cid, pts in awards.groupby(C.CUSTOMER_ID)["points"].sum().head(20).items():
        assert lg.balance(int(cid)) == pts
    lg.dispose()


def test_the_cli_refuses_a_foreign_output_folder(tiny_world, tmp_path):
    _, world = tiny_world
    (tmp_path / "mine.txt").write_text("not a nightly run")
    res = runner.invoke(
        app, ["decide", "daily-batch", "--store", str(world), "--out", str(tmp_path)]
    )
    assert res.exit_code == 2
    assert "holds no earlier nightly run" in " ".join(res.output.split())
    assert (tmp_path / "mine.txt").exists()


@pytest.mark.slow
@pytest.mark.skipif(java_missing() is not None, reason=f"Spark needs Java: {java_missing()}")
def test_spark_and_local_give_the_same_night(registry, use_mlflow_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'spark_ledger.db'}"
    _, _, local = _night(
        registry, use_mlflow_dir, tmp_path / "local", ledger_url=f"sqlite:///{tmp_path / 'l.db'}"
    )
    _, summary, spark = _night(
        registry, use_mlflow_dir, tmp_path / "spark", "spark", ledger_url=url
    )
    assert sorted(summary["bucket"]) == [0, 1, 2]
    _assert_same(_outputs(tmp_path / "local"), _outputs(tmp_path / "spark"))
    assert (spark.awards, spark.points_created) == (local.awards, local.points_created)
    # the Spark job again, into the same ledger: nothing is awarded twice
    _, _, again = _night(registry, use_mlflow_dir, tmp_path / "spark", "spark", ledger_url=url)
    assert again.awards == spark.awards and again.awards_created == 0
    assert again.messages_created == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "engine",
    [
        "local",
        pytest.param(
            "spark",
            marks=pytest.mark.skipif(
                java_missing() is not None, reason=f"Spark needs Java: {java_missing()}"
            ),
        ),
    ],
)
def test_the_night_decides_on_the_ledger_it_is_given(registry, use_mlflow_dir, tmp_path, engine):
    from ppx.rules.ledger import Ledger
    from ppx.rules.loyalty.expiry import add_months
    from ppx.rules.policy import load_policy

    job, _, _ = _night(registry, use_mlflow_dir, tmp_path / "store")
    store = _outputs(tmp_path / "store")
    world, _ = registry
    cust = pd.read_parquet(world / "tables" / "customers.parquet")
    opted = set(cust.loc[cust[C.EMAIL_OPT_IN], C.CUSTOMER_ID])
    dec = store["decisions"]
    quiet = dec.loc[
        dec[C.CUSTOMER_ID].isin(opted) & ~dec["messages"].str.contains("points_expiring")
    ]
    cid = int(quiet[C.CUSTOMER_ID].iloc[0])
    # after the store's export the ledger holds 120 points for cid, earned so long ago
    # that they lapse in exactly reminder_days: tonight is the reminder's day
    exp = load_policy().points.expiry
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    lg = Ledger(url)
    due = (job.now + pd.Timedelta(days=exp.reminder_days)).to_pydatetime()
    lg.award(cid, 120, "earned-a-year-ago", at=add_months(due, -exp.inactivity_months))
    lg.dispose()
    _night(registry, use_mlflow_dir, tmp_path / "live", engine, read_ledger=url)
    live = _outputs(tmp_path / "live")

    box = live["outbox"].set_index([C.CUSTOMER_ID, "message_type"])
    assert (cid, "points_expiring") in box.index
    assert json.loads(box.loc[(cid, "points_expiring"), "content"])["points"] == 120
    # everyone else is decided on the store's figures, exactly as without the ledger
    others = {
        name: {k: v[v[C.CUSTOMER_ID] != cid].reset_index(drop=True) for k, v in out.items()}
        for name, out in (("store", store), ("live", live))
    }
    for name in ("decisions", "ledger", "outbox", "gifts", "tiers"):
        pd.testing.assert_frame_equal(others["store"][name], others["live"][name])


@pytest.mark.slow
def test_the_cli_reads_the_ledger_it_is_given(registry, use_mlflow_dir, tmp_path):
    from ppx.rules.ledger import Ledger

    world, folder = registry
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    lg = Ledger(url)
    lg.award(1, 10, "known-to-the-ledger", at=pd.Timestamp("2000-01-01").to_pydatetime())
    lg.dispose()
    out = tmp_path / "night"
    args = ["decide", "daily-batch", "--store", str(world), "--out", str(out), "--buckets", "2"]
    with use_mlflow_dir(folder):
        res = runner.invoke(app, [*args, "--ledger-url", url], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "ledger customers with points / stored tier" in res.output
    manifest = json.loads((out / "_nightly.json").read_text())
    assert manifest["ledger_state"] == {"customers_with_points": 1, "customers_with_tier": 0}


def test_every_row_lands_in_its_customers_bucket(tiny_world, tmp_path, monkeypatch):
    from ppx.batch import stage
    from ppx.batch.engines import _columns, read_bucket
    from ppx.batch.nightly import canonical_order
    from ppx.batch.partition import NIGHTLY_TABLES, SHARED, bucket_of, read_table

    _, folder = tiny_world
    # small batches and flushes: several record batches and row groups per bucket file
    monkeypatch.setattr(stage, "BATCH_ROWS", 500)
    monkeypatch.setattr(stage, "FLUSH_BYTES", 20_000)
    staged = stage.stage_local(folder, tmp_path / "staging", 4, _columns)
    parts = {b: read_bucket(str(tmp_path / "staging"), str(folder), b) for b in range(4)}
    tables = {t: read_table(folder, t) for t in NIGHTLY_TABLES}
    for name in NIGHTLY_TABLES:
        sizes = [len(parts[b][name]) for b in range(4)]
        if name in SHARED:
            assert sizes == [len(tables[name])] * 4
            continue
        assert sum(sizes) == staged[name] == len(tables[name]), f"{name}: each row once"
        for b in range(4):
            assert (bucket_of(parts[b][name][C.CUSTOMER_ID], 4) == b).all()
        # the same rows and values as the store's (nullable ints come back as floats, as
        # Spark's staging gives them: both engines read buckets through read_bucket)
        got = pd.concat([parts[b][name] for b in range(4)], ignore_index=True)
        cols = list(got.columns.intersection(tables[name].columns))
        pd.testing.assert_frame_equal(
            canonical_order(got[cols]), canonical_order(tables[name][cols]), check_dtype=False
        )
    # a subscription's events and an order's shipments travel with their owner
    subs = tables[C.SUBSCRIPTIONS].set_index(C.SUBSCRIPTION_ID)[C.CUSTOMER_ID]
    ev = parts[1][C.SUBSCRIPTION_EVENTS]
    assert (subs.reindex(ev[C.SUBSCRIPTION_ID]).to_numpy() == ev[C.CUSTOMER_ID].to_numpy()).all()
    orders = tables[C.ORDERS].set_index(C.ORDER_ID)[C.CUSTOMER_ID]
    sh = parts[2][C.SHIPMENTS]
    assert (orders.reindex(sh[C.ORDER_ID]).to_numpy() == sh[C.CUSTOMER_ID].to_numpy()).all()


def test_batch_awards_are_written_once(tmp_path):
    from ppx.rules.ledger import Ledger, LedgerError

    lg = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    rows = [
        {
            "customer_id": 7,
            "points": 100,
            "entry_type": "birthday_bonus",
            "idempotency_key": "birthday:7:2025",
            "order_id": None,
            "reason": "birthday",
        },
        {
            "customer_id": 8,
            "points": 150,
            "entry_type": "win_back_bonus",
            "idempotency_key": "win_back:8:2025-02-14",
            "order_id": float("nan"),
        },
    ]
    first = lg.award_many(rows)
    again = lg.award_many(rows)
    assert [p.created for p in first] == [True, True]
    assert [p.created for p in again] == [False, False]
    assert [p.entry_id for p in again] == [p.entry_id for p in first]
    assert (lg.balance(7), lg.balance(8)) == (100, 150)
    with pytest.raises(LedgerError, match="positive"):
        lg.award_many([{**rows[0], "points": 0, "idempotency_key": "x"}])
    lg.dispose()


def _bucket_night(world, policy, now, customers, secret="s3cret"):
    """The batch's daily pass over a few customers of the world (no models: no churn
    scores, no recommendations)."""
    from ppx.batch.nightly import decisions

    churn = pd.DataFrame({C.CUSTOMER_ID: pd.Series([], dtype="int64"), "p_churn_90": []})
    recs = pd.DataFrame({C.CUSTOMER_ID: pd.Series([], dtype="int64"), "product_ids": []})
    return decisions(policy, world.tables, np.asarray(customers), churn, recs, now, secret)


def test_the_batch_sends_the_points_expiring_reminder_on_its_day(tiny_world):
    from ppx.batch.nightly import last_activity
    from ppx.rules.loyalty.expiry import add_months
    from ppx.rules.policy import load_policy

    world, _ = tiny_world
    policy = load_policy()
    ev = world.tables[C.LOYALTY_EVENTS]
    last = last_activity(ev, ev[C.EVENT_AT].max() + pd.Timedelta(days=1))
    exp = policy.points.expiry
    for cid, at in sorted(last.items()):
        remind = pd.Timestamp(add_months(at, exp.inactivity_months).date()) - pd.Timedelta(
            days=exp.reminder_days
        )
        balance = int(
            ev.loc[(ev[C.CUSTOMER_ID] == cid) & (ev[C.EVENT_AT] < remind), C.POINTS].sum()
        )
        if balance > 0:
            break
    else:
        pytest.skip("no customer of the tiny world holds points at a reminder day")
    out = _bucket_night(world, policy, remind, [cid])
    box = out["outbox"].set_index("message_type")
    assert "points_expiring" in box.index, out["decisions"]["reasons"].tolist()
    import json

    content = json.loads(box.loc["points_expiring", "content"])
    assert content["points"] == balance and content["days_left"] == exp.reminder_days
    # a day later the reminder is not sent again
    later = _bucket_night(world, policy, remind + pd.Timedelta(days=1), [cid])
    assert "points_expiring" not in set(later["outbox"]["message_type"])


def test_the_batch_issues_the_birthday_gift_in_its_message(tiny_world):
    import json

    from ppx.rules.policy import load_policy

    world, _ = tiny_world
    policy = load_policy()
    # every tier gets the gift here, so any customer with a birth date will do
    entry = policy.tiers[0].name
    daily = policy.daily.model_copy(
        update={"birthday": policy.daily.birthday.model_copy(update={"min_tier": entry})}
    )
    policy = policy.model_copy(
        update={"birthday": policy.birthday.model_copy(update={"min_tier": None}), "daily": daily}
    )
    cust = world.tables[C.CUSTOMERS].dropna(subset=[C.BIRTH_DATE])
    row = cust.iloc[len(cust) // 2]
    cid, born = int(row[C.CUSTOMER_ID]), pd.Timestamp(row[C.BIRTH_DATE])
    end = world.tables[C.ORDERS][C.ORDERED_AT].max()
    now = pd.Timestamp(year=end.year, month=born.month, day=min(born.day, 28))
    if (born.month, born.day) == (2, 29) or now < pd.Timestamp(row[C.SIGNUP_AT]):
        pytest.skip("the chosen customer has no birthday after signing up in the world")
    out = _bucket_night(world, policy, now, [cid])
    gifts = out["gifts"]
    assert gifts["idempotency_key"].tolist() == [f"birthday_gift:{cid}:{now.year}"]
    code = gifts["voucher_code"].iloc[0]
    msg = out["outbox"].set_index("message_type").loc["birthday"]
    assert json.loads(msg["content"])["gift"]["voucher_code"] == code
    # the same code on any worker with the same secret; another secret, another code
    assert _bucket_night(world, policy, now, [cid])["gifts"]["voucher_code"].iloc[0] == code
    other = _bucket_night(world, policy, now, [cid], secret="other")["gifts"]
    assert other["voucher_code"].iloc[0] != code


def test_the_night_is_midnight_after_the_latest_event(tiny_world):
    from ppx.batch.partition import read_table, store_now

    _, folder = tiny_world
    latest = max(
        read_table(folder, table)[col].max()
        for table, col in (
            (C.ORDERS, C.ORDERED_AT),
            (C.SHIPMENTS, C.SHIPPED_AT),
            (C.SHIPMENTS, C.DELIVERED_AT),
            (C.TRACKING_EVENTS, C.EVENT_AT),
            (C.SUBSCRIPTION_EVENTS, C.EVENT_AT),
        )
    )
    assert store_now(folder) == latest.normalize() + pd.Timedelta(days=1)
