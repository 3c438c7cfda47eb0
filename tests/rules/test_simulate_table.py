"""``ppx simulate``'s summary in an 80-column terminal: one line per metric, no number
wrapped or cut, thousands separators, one number of decimals per row. The figures are
the demo world's (docs/bench/rules.json); the simulation itself is tested elsewhere."""

from __future__ import annotations

import re

import pandas as pd
import typer
from typer.testing import CliRunner

from ppx.rules.policy import default_policy_path
from ppx.rules.simulator.config import SimulationResult

#: two policies of the demo world's run (20,000 customers, 932,655 events)
DEMO = {
    "policy version": ("2026.11.1-retention", "2026.11.1"),
    "decisions": (933864, 934415),
    "points awarded": (23127883, 21884462),
    "points reversed": (1448573, 1442177),
    "cost of points": (216793.1, 204422.85),
    "retention points (apology, win-back, tier-up)": (8340664, 6349875),
    "messages / customer / week": (0.4849, 0.4879),
    "marketing messages / customer / week": (0.1566, 0.1606),
    "messages suppressed: opt-out": (64902, 68084),
    "fraud loss avoided": (184930.35, 184322.75),
    "honest returns refunded instantly": (0.7209, 0.6839),
    "expected cancellations (no gestures)": (3262.11, 3262.11),
    "expected churn reduction %": (5.626, 3.643),
    "save offers accepted (expected)": (0.0, 0.0),
    "referrals cancelled (first order refunded)": (140, 140),
    "referral points": (331500, 331500),
}

#: metric -> the three cells expected on its one line (policy, against, difference)
EXPECTED = {
    "points awarded": ("23,127,883", "21,884,462", "1,243,421"),
    "cost of points": ("216,793.10", "204,422.85", "12,370.25"),
    "messages / customer / week": ("0.4849", "0.4879", "-0.0030"),
    "fraud loss avoided": ("184,930.35", "184,322.75", "607.60"),
    "expected cancellations (no gestures)": ("3,262.11", "3,262.11", "0.00"),
    "expected churn reduction %": ("5.63", "3.64", "1.98"),
    "save offers accepted (expected)": ("0", "0", "0"),
    "referrals cancelled (first order refunded)": ("140", "140", "0"),
}

SECTIONS = {
    "decisions",
    "points",
    "messages",
    "fraud",
    "churn (expected)",
    "save offers",
    "referrals",
}

NUMBER = re.compile(r"^-?\d{1,3}(,\d{3})*(\.\d+)?$")


def _render(tmp_path, monkeypatch, width: int = 80) -> list[str]:
    from ppx.rules import simulator
    from ppx.rules.commands import register

    summary = pd.DataFrame(
        {
            name: {metric: values[i] for metric, values in DEMO.items()}
            for i, name in enumerate(("retention_push", "default"))
        }
    )
    outcomes = pd.DataFrame(
        {"retention_push": [12345, 3], "default": [11345, 4]},
        index=pd.MultiIndex.from_tuples(
            [("return", "instant_refund"), ("claim", "standard_claim_review")]
        ),
    )
    result = SimulationResult(
        summary=summary,
        points_by_type=pd.DataFrame(),
        outcomes=outcomes,
        messages=pd.DataFrame(),
        notes=[],
        meta={"events": 932655},
    )
    monkeypatch.setattr(simulator, "simulate", lambda *args, **kwargs: result)
    (tmp_path / "world").mkdir()
    (tmp_path / "world" / "manifest.json").write_text("{}")
    policies = tmp_path / "retention_push.yaml"
    policies.write_text(default_policy_path().read_text())

    app = typer.Typer()

    @app.callback()
    def _root():
        """root"""

    register(app)
    args = ["simulate", "--policy", str(policies), "--against", str(default_policy_path())]
    res = CliRunner().invoke(
        app, [*args, "--world", str(tmp_path / "world")], env={"COLUMNS": str(width)}
    )
    assert res.exit_code == 0, res.output
    return res.output.splitlines()


def _body_rows(lines: list[str]) -> list[list[str]]:
    """The cells of every body line of the first table (between its header and end)."""
    start = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    end = next(i for i, line in enumerate(lines) if i > start and line.startswith("└"))
    return [
        [c.strip() for c in line.strip("│").split("│")]
        for line in lines[start + 1 : end]
        if line.startswith("│")
    ]


def test_summary_fits_80_columns_one_line_per_metric(tmp_path, monkeypatch):
    lines = _render(tmp_path, monkeypatch)
    assert max(len(line) for line in lines) <= 80
    assert not any("…" in line for line in lines)  # nothing cut short
    rows = _body_rows(lines)
    for cells in rows:
        numbers = [c for c in cells[1:] if c]
        # a row is a section title (no numbers) or a metric with all three numbers
        assert len(numbers) in (0, 3), cells
        assert all(NUMBER.match(c) for c in numbers), cells
    # no label went on to a second line: the lines without numbers are section titles
    titles = {cells[0] for cells in rows if not any(cells[1:])}
    assert titles <= SECTIONS, titles - SECTIONS
    assert sum(1 for cells in rows if any(cells[1:])) == len(DEMO) - 1  # all but the version
    for metric, cells in EXPECTED.items():
        assert any(row[1:] == list(cells) for row in rows), (metric, cells)


def test_versions_and_the_difference_are_said_once(tmp_path, monkeypatch):
    text = "\n".join(_render(tmp_path, monkeypatch))
    assert "2026.11.1-retention" in text and "difference = retention_push - default" in text
    assert "0.0000" not in text  # a row of zeros is "0", not four decimals of nothing
