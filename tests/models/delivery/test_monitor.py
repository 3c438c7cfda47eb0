"""Promise monitoring: the band and its alert, PSI, the HTML report."""

import numpy as np
import pandas as pd
import pytest

from ppx.models.delivery import monitor as mon

T0 = pd.Timestamp("2025-03-03 09:00")  # a Monday


def _promises(kept_a: float, kept_b: float, n: int = 400) -> pd.DataFrame:
    """Two carriers, 5-day promises at a stated 90 %, one purchase week; carrier a keeps
    ``kept_a`` of them, carrier b ``kept_b``."""
    rows = []
    for carrier, share in (("a", kept_a), ("b", kept_b)):
        kept = np.arange(n) < round(share * n)
        took = np.where(kept, 4, 8)
        rows.append(
            pd.DataFrame(
                {
                    "carrier": carrier,
                    "ordered_at": T0 + pd.to_timedelta(np.arange(n) % 5, unit="D"),
                    "promise_days": 5,
                    "promise_target": 0.9,
                    "took": took,
                }
            )
        )
    df = pd.concat(rows, ignore_index=True)
    df["delivered_at"] = df["ordered_at"] + pd.to_timedelta(df["took"], unit="D")
    return df


def test_alert_only_where_the_realised_rate_leaves_its_band():
    df = _promises(kept_a=0.9, kept_b=0.7)
    out = mon.on_time_by(df, ["carrier"], T0 + pd.Timedelta(days=30), "ordered_at", "delivered_at")
    out = out.set_index("carrier")
    assert out.loc["a", "realised"] == pytest.approx(0.9) and not out.loc["a", "alert"]
    assert out.loc["b", "realised"] == pytest.approx(0.7) and out.loc["b", "alert"]
    assert out.loc["a", "low"] < 0.9 < out.loc["a", "high"]


def test_promises_still_open_are_not_scored_yet():
    df = _promises(kept_a=0.9, kept_b=0.9)
    # Two days after the last purchase no 5-day promise of the last orders has ended.
    out = mon.on_time_by(df, ["carrier"], T0 + pd.Timedelta(days=6), "ordered_at", "delivered_at")
    assert out["scored"].sum() < len(df)


def test_psi_is_zero_for_the_same_population_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 5000)
    assert mon.psi(ref, rng.normal(0, 1, 5000)) < 0.02
    assert mon.psi(ref, rng.normal(1.0, 1, 5000)) > mon.PSI_MAJOR
    cats = pd.Series(["x"] * 900 + ["y"] * 100)
    assert mon.psi(cats, pd.Series(["x"] * 500 + ["y"] * 500)) > mon.PSI_MAJOR
    drift = mon.feature_drift(
        pd.DataFrame({"u": ref, "c": cats.repeat(5).to_numpy()}),
        pd.DataFrame({"u": ref + 1.0, "c": cats.repeat(5).to_numpy()}),
    )
    assert drift.iloc[0]["feature"] == "u" and drift.iloc[0]["level"] == "major"
    assert drift.set_index("feature").loc["c", "level"] == "stable"


def test_report_marks_alerts(tmp_path):
    df = _promises(kept_a=0.9, kept_b=0.7)
    out = mon.on_time_by(df, ["carrier"], T0 + pd.Timedelta(days=30), "ordered_at", "delivered_at")
    path = mon.write_report(tmp_path / "r.html", {"by carrier": out}, "t", ["one line"])
    text = path.read_text()
    assert text.count('class="alert"') == 1 and "one line" in text
