"""The simulation's summary as rich tables that read in an 80-column terminal.

The summary's metric names are sentences ("referrals cancelled (first order refunded)"),
right for JSON and notebooks, too long for a terminal: beside two policies and their
difference they wrapped over two or three lines each. Here the metrics are grouped
under short section rows (points, messages, fraud ...) with short labels, every row's
numbers share one number of decimals chosen from the row's size (counts whole with
thousands separators, amounts with cents, rates with four decimals), the policy
versions move to the caption, and the number columns never shrink below their widest
number, so a narrow terminal wraps a label, never a number.
"""

from __future__ import annotations

import math
from numbers import Real

import pandas as pd
from rich.table import Table

#: The string row of the summary, said in the caption rather than as a column of text.
VERSION = "policy version"

#: (section, [(metric, short label)]): the summary's metrics in display order.
SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("decisions", (("decisions", "decisions made"),)),
    (
        "points",
        (
            ("points awarded", "awarded"),
            ("points reversed", "reversed"),
            ("cost of points", "cost of points"),
            ("retention points (apology, win-back, tier-up)", "apology, win-back, tier-up"),
            ("referral points", "referral"),
        ),
    ),
    (
        "messages",
        (
            ("messages / customer / week", "per customer / week"),
            ("marketing messages / customer / week", "marketing / customer / week"),
            ("messages suppressed: opt-out", "suppressed: opt-out"),
            ("messages suppressed: cap", "suppressed: cap"),
            ("messages suppressed: holdout", "suppressed: holdout"),
            ("surprise tier-ups", "surprise tier-ups"),
            ("win-back offers", "win-back offers"),
        ),
    ),
    (
        "fraud",
        (
            ("fraud loss avoided", "loss avoided"),
            ("fraud loss paid", "loss paid"),
            ("honest customers affected", "honest customers affected"),
            ("honest requests delayed", "honest requests delayed"),
            ("honest returns refunded instantly", "honest returns: instant"),
            ("honest claims paid fast", "honest claims: paid fast"),
        ),
    ),
    (
        "churn (expected)",
        (
            ("expected cancellations (no gestures)", "cancellations, no gestures"),
            ("expected cancellations (policy)", "cancellations, policy"),
            ("expected churn reduction", "reduction"),
            ("expected churn reduction %", "reduction %"),
        ),
    ),
    (
        "save offers",
        (
            ("cancellation requests", "cancellation requests"),
            ("save offers made", "offers made"),
            ("save offers accepted (expected)", "accepted (expected)"),
            ("save offer acceptance rate", "acceptance rate"),
            ("saved revenue (expected)", "saved revenue (expected)"),
            ("save offer cost (accepted, expected)", "cost (accepted, expected)"),
        ),
    ),
    (
        "referrals",
        (
            ("referrals attributed", "attributed"),
            ("referrals refused: linked accounts (ring)", "refused: linked (ring)"),
            ("referrals refused: self-referral or cycle", "refused: self or cycle"),
            ("referrals paid after the return window", "paid after return window"),
            ("referrals cancelled (first order refunded)", "cancelled (order refunded)"),
            ("referrals pending at the end", "pending at the end"),
        ),
    ),
)

#: Column header of the difference of two policies (the caption says which minus which).
DIFFERENCE = "difference"


def _number(v: object) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v))


def decimals(values: list[float]) -> int:
    """Decimals for one row: none for whole counts, cents for amounts, four for rates."""
    if all(float(v).is_integer() for v in values):
        return 0
    return 2 if max(abs(float(v)) for v in values) >= 1 else 4


def row_cells(values: list[object]) -> list[str]:
    """One row's values as cells: its numbers with one number of decimals and thousands
    separators (zero never written ``-0``), anything else as text, None blank."""
    numbers = [float(v) for v in values if _number(v)]
    places = decimals(numbers) if numbers else 0
    cells = []
    for v in values:
        if _number(v):
            x = round(float(v), places)
            cells.append(f"{0.0 if x == 0 else x:,.{places}f}")  # never "-0.00"
        else:
            cells.append("" if v is None or (isinstance(v, float) and v != v) else str(v))
    return cells


def _sections(metrics: list[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The known sections holding the summary's metrics, then any metric not listed
    (under its own name, so a new metric is shown before anyone shortens it)."""
    known = {m for _, rows in SECTIONS for m, _ in rows}
    out = [(title, [(m, label) for m, label in rows if m in metrics]) for title, rows in SECTIONS]
    other = [(m, m) for m in metrics if m not in known and m != VERSION]
    if other:
        out.append(("other", other))
    return [(title, rows) for title, rows in out if rows]


def summary_table(summary: pd.DataFrame, title: str) -> Table:
    """The metric x policy summary (one or two policies; two add their difference)."""
    names = [str(n) for n in summary.columns]
    two = len(names) == 2
    captions = []
    if VERSION in summary.index:
        versions = ", ".join(f"{n} {summary.at[VERSION, n]}" for n in summary.columns)
        captions.append(f"policy versions: {versions}")
    if two:
        captions.append(f"{DIFFERENCE} = {names[0]} - {names[1]}")
    rows: list[tuple[str, list[str]] | str] = []
    for section, metrics in _sections(list(summary.index)):
        rows.append(section)
        for metric, label in metrics:
            values = [summary.at[metric, n] for n in summary.columns]
            if two:
                a, b = values
                values.append(a - b if _number(a) and _number(b) else None)
            rows.append((f"  {label}", row_cells(values)))
    table = Table(title=title, caption="\n".join(captions) or None, caption_justify="left")
    table.add_column("metric", overflow="fold")
    numbers = [cells for row in rows if not isinstance(row, str) for cells in [row[1]]]
    for i, header in enumerate([*names, *([DIFFERENCE] if two else [])]):
        # never narrower than its widest number: a narrow terminal wraps labels instead
        widest = max((len(cells[i]) for cells in numbers), default=0)
        table.add_column(header, justify="right", min_width=widest)
    first = True
    for row in rows:
        if isinstance(row, str):
            if not first:
                table.add_section()
            table.add_row(f"[bold]{row}[/]")
            first = False
        else:
            table.add_row(row[0], *row[1])
    return table


def outcomes_table(outcomes: pd.DataFrame) -> Table:
    """(request, outcome) x policy counts."""
    out = outcomes.reset_index()
    names = [str(n) for n in outcomes.columns]
    table = Table(title="return, claim and cancellation outcomes")
    table.add_column("request")
    table.add_column("outcome", overflow="fold")
    cells = [row_cells([int(r[n]) for n in outcomes.columns]) for _, r in out.iterrows()]
    for i, n in enumerate(names):
        table.add_column(n, justify="right", min_width=max((len(c[i]) for c in cells), default=0))
    for (_, r), row in zip(out.iterrows(), cells, strict=True):
        table.add_row(str(r.iloc[0]), str(r.iloc[1]), *row)
    return table
