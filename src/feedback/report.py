"""The product team's feedback report: one self-contained HTML page.

Plain language first (what is rising, where, in the customers' words), tables and
trend lines after. Trend lines are inline SVG, so the page has no scripts, no images to
fetch and opens offline anywhere.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.feedback.corpus import TEXT
from ppx.feedback.discover import NOISE_LABEL, ThemeModel
from ppx.feedback.trends import COUNT, TOTAL, WEEK

if TYPE_CHECKING:
    from ppx.feedback.tagger import ThemeIndex

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.92em}
th,td{border-bottom:1px solid #eee;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.alert{background:#fff4f2;border-left:4px solid #d9534f;padding:.6em 1em;margin:.8em 0}
.quote{color:#444;font-style:italic;margin:.2em 0}.muted{color:#777;font-size:.9em}
.summary{background:#f3f7fb;padding:.8em 1.2em;border-radius:6px}
svg.spark{vertical-align:middle}
"""


@dataclass
class ReportData:
    """Everything the report shows; built by :func:`report_data`."""

    corpus: pd.DataFrame  # with a ``theme_id`` column
    themes: ThemeModel | ThemeIndex  # names, words, quotes and sizes per theme id
    weekly: pd.DataFrame
    alerts: pd.DataFrame  # the latest scan's alerts
    impact: pd.DataFrame
    product_names: dict[int, str]
    fdr: float = 0.01  # the alerts' per-scan false-discovery rate
    without_text: int = 0  # reviews / returns with a blank text (not in the corpus)
    product_categories: dict[int, str] = field(default_factory=dict)  # when the data has them


#: The summary names "the theme that costs the most stars" only when its reviews average
#: at least this many stars below the other reviews ...
MIN_STAR_GAP = 0.3
#: ... on at least this many reviews ...
MIN_THEME_REVIEWS = 30
#: ... and the Welch interval of the gap at this confidence, Bonferroni-adjusted over the
#: themes compared, lies below zero (a tenth of a star on a thousand reviews is noise).
GAP_CONFIDENCE = 0.95


def welch_interval(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float]:
    """Welch's interval for mean(a) - mean(b): unequal variances, Satterthwaite's df."""
    from scipy import stats

    diff = float(np.mean(a) - np.mean(b))
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = float(np.sqrt(va + vb))
    if se == 0:  # every rating equal on both sides: the gap is exact
        return diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(1 - (1 - confidence) / 2, df)) * se
    return diff - half, diff + half


def _top_labels(texts: pd.DataFrame, top: int = 3) -> str:
    """The commonest return-reason labels of an imported store, in the brand's words
    ("Too small (12), Too big (4)"); empty when the texts carry none (a world)."""
    if C.REASON_LABEL not in texts:
        return ""
    counts = texts[C.REASON_LABEL].dropna().astype(str).value_counts()
    return ", ".join(f"{k} ({v})" for k, v in counts.head(top).items())


def theme_impact(corpus: pd.DataFrame, labels: np.ndarray, n_themes: int) -> pd.DataFrame:
    """Per theme: texts, share from returns, refunds, the commonest return-reason labels
    (``return_labels``, the brand's own words), mean rating with the theme vs without,
    and the interval of that gap (``gap_low``, ``gap_high``) for themes with enough
    reviews (:data:`MIN_THEME_REVIEWS`), Bonferroni-adjusted over those themes."""
    df = corpus.assign(_t=np.asarray(labels))
    reviews = df[df[C.SOURCE] == "review"]
    overall = reviews[C.RATING].mean()
    rated = reviews.groupby("_t")[C.RATING].count()
    tested = int(sum(rated.get(k, 0) >= MIN_THEME_REVIEWS for k in range(n_themes)))
    level = 1 - (1 - GAP_CONFIDENCE) / max(tested, 1)
    rows = []
    for k in range(n_themes):
        d = df[df["_t"] == k]
        rv = d[d[C.SOURCE] == "review"]
        others = reviews[reviews["_t"] != k]
        low = high = np.nan
        if len(rv) >= MIN_THEME_REVIEWS and len(others) >= 2:
            low, high = welch_interval(
                rv[C.RATING].to_numpy(float), others[C.RATING].to_numpy(float), level
            )
        rows.append(
            {
                C.THEME: k,
                "texts": len(d),
                "returns": int((d[C.SOURCE] == "return").sum()),
                "return_share": float((d[C.SOURCE] == "return").mean()) if len(d) else 0.0,
                "refunds": float(d[C.REFUND_AMOUNT].fillna(0).sum()),
                "return_labels": _top_labels(d),
                "reviews": len(rv),
                "mean_rating": float(rv[C.RATING].mean()) if len(rv) else np.nan,
                "rating_others": float(others[C.RATING].mean()) if len(others) else overall,
                "gap_low": low,
                "gap_high": high,
            }
        )
    out = pd.DataFrame(rows)
    if len(out):
        out["rating_impact"] = out["mean_rating"] - out["rating_others"]
    return out


def standout_theme(impact: pd.DataFrame) -> pd.Series | None:
    """The theme whose reviews cost the most stars, if one stands out: at least
    :data:`MIN_THEME_REVIEWS` reviews, a mean at least :data:`MIN_STAR_GAP` stars below
    the other reviews, and an interval of that gap below zero; else None."""
    if not len(impact) or "gap_high" not in impact:
        return None
    clear = impact[
        (impact["reviews"] >= MIN_THEME_REVIEWS)
        & (impact["rating_impact"] <= -MIN_STAR_GAP)
        & (impact["gap_high"] < 0)
    ]
    return None if clear.empty else clear.sort_values("rating_impact").iloc[0]


def gap_rule() -> str:
    """The rule of :func:`standout_theme` in words, for the report."""
    return (
        f"a theme is named as costing stars only when at least {MIN_THEME_REVIEWS} of its "
        f"texts are reviews, they average at least {MIN_STAR_GAP:.1f} stars below the other "
        f"reviews, and the {GAP_CONFIDENCE:.0%} Welch interval of that gap (Bonferroni-"
        "adjusted over the themes compared) lies below zero"
    )


def sparkline(values: np.ndarray, width: int = 160, height: int = 28, color="#2a6fb0") -> str:
    """An inline SVG trend line (0 at the bottom, the series max at the top)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return ""
    top = max(v.max(), 1e-9)
    xs = np.linspace(1, width - 1, len(v))
    ys = height - 1 - (v / top) * (height - 2)
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img"><polyline fill="none" stroke="{color}" stroke-width="1.5" '
        f'points="{pts}"/></svg>'
    )


def _share_series(weekly: pd.DataFrame, theme: int, product: int | None = None) -> np.ndarray:
    w = weekly if product is None else weekly[weekly[C.PRODUCT_ID] == product]
    g = w[w[C.THEME] == theme].groupby(WEEK)[[COUNT, TOTAL]].sum()
    # Four-week sums: a weekly share of a product with five texts is mostly noise.
    r = g.rolling(4, min_periods=1).sum()
    return (r[COUNT] / r[TOTAL].clip(lower=1)).to_numpy()


def _quotes(texts: pd.Series, n: int = 2) -> str:
    seen: list[str] = []
    for t in texts:
        t = str(t).strip()
        if t and t.lower() not in {s.lower() for s in seen}:
            seen.append(t)
        if len(seen) == n:
            break
    return "".join(f'<div class="quote">“{html.escape(q)}”</div>' for q in seen)


def _e(x) -> str:
    return html.escape(str(x))


def render_html(data: ReportData, title: str = "What customers say") -> str:
    """The page. Sections follow what the texts hold: return comments bring the returns and
    refunds columns, reviews the ratings, dates the trend lines and alerts; a store made
    from a reviews export alone shows no empty returns column and no misleading zero."""
    names = data.themes.names()
    corpus, weekly, alerts = data.corpus, data.weekly, data.alerts
    pname = lambda p: data.product_names.get(int(p), f"product {int(p)}")  # noqa: E731
    n_rev = int((corpus[C.SOURCE] == "review").sum())
    n_ret = len(corpus) - n_rev
    dated = bool(corpus[C.CREATED_AT].notna().any())
    assigned = corpus["theme_id"] != NOISE_LABEL
    what = " and ".join(
        x
        for x in (
            f"{n_rev:,} reviews" if n_rev else "",
            f"{n_ret:,} return comments" if n_ret else "",
        )
        if x
    )
    if dated:
        t0, t1 = corpus[C.CREATED_AT].min(), corpus[C.CREATED_AT].max()
        span = f", {t0:%Y-%m-%d} to {t1:%Y-%m-%d}"
    else:
        span = " (undated: the export has no dates, so there are no weekly trends or alerts)"
    skipped = (
        f" {data.without_text:,} more had no text and are not read." if data.without_text else ""
    )
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='muted'>{what}{span}.{skipped} Themes are found by grouping texts that say "
        "the same thing (in any wording), named by their most distinctive words.</p>",
    ]
    # --- plain-language summary -----------------------------------------------------------
    summary = [
        f"{data.themes.n_themes} themes cover {assigned.mean():.0%} of what customers wrote."
    ]
    rated = bool(len(data.impact) and n_rev and data.impact["mean_rating"].notna().any())
    worst = standout_theme(data.impact) if rated else None
    if worst is not None:
        summary.append(
            f"The theme that costs the most stars is <b>{_e(names[int(worst[C.THEME])])}</b>: "
            f"its {int(worst['reviews']):,} reviews average {worst['mean_rating']:.1f} against "
            f"{worst['rating_others']:.1f} for the rest, a gap of "
            f"{-worst['rating_impact']:.1f} stars ({GAP_CONFIDENCE:.0%} interval "
            f"{-worst['gap_high']:.1f} to {-worst['gap_low']:.1f})."
        )
    elif rated:
        summary.append(
            f"No theme stands out in the ratings: no theme's reviews average "
            f"{MIN_STAR_GAP:.1f} stars or more below the rest with a clear gap (rule below)."
        )
    if len(data.impact) and n_ret:
        ret = data.impact.sort_values(["returns", "refunds"], ascending=False).iloc[0]
        refunded = (
            f", {ret['refunds']:,.0f} refunded" if corpus[C.REFUND_AMOUNT].notna().any() else ""
        )
        summary.append(
            f"Return comments are most often about <b>{_e(names[int(ret[C.THEME])])}</b> "
            f"({int(ret['returns']):,} returns{refunded})."
        )
    if dated and len(alerts):
        summary.append(
            f"<b>{len(alerts)} rising theme{'s' if len(alerts) > 1 else ''}</b> need attention "
            "this week (below)."
        )
    elif dated:
        summary.append("No theme is rising significantly for any product this week.")
    parts.append("<div class='summary'><p>" + " ".join(summary) + "</p></div>")
    # --- alerts ---------------------------------------------------------------------------
    if dated:
        parts.append("<h2>Rising themes (alerts)</h2>")
        if len(alerts) == 0:
            parts.append("<p>None this week.</p>")
    for _, a in alerts.sort_values("q_value").iterrows():
        k, p = int(a[C.THEME]), int(a[C.PRODUCT_ID])
        recent = corpus[(corpus[C.PRODUCT_ID] == p) & (corpus["theme_id"] == k)].sort_values(
            C.CREATED_AT, ascending=False
        )
        parts.append(
            f"<div class='alert'><b>{_e(pname(p))}: {_e(names[k])}</b> — "
            f"{a['recent_share']:.0%} of this product's texts in the last weeks "
            f"({int(a['recent_count'])} of {int(a['recent_total'])}) against "
            f"{a['baseline_share']:.0%} before ({int(a['baseline_count'])} of "
            f"{int(a['baseline_total'])}); Fisher exact p = {a['p_value']:.2g}, "
            f"false-discovery-adjusted q = {a['q_value']:.2g}. "
            f"{sparkline(_share_series(weekly, k, p), color='#d9534f')}"
            f"{_quotes(recent[TEXT])}</div>"
        )
    # --- themes overview ------------------------------------------------------------------
    langs = (
        data.themes.languages()
        if hasattr(data.themes, "languages")
        else ["all"] * data.themes.n_themes
    )
    groups = list(dict.fromkeys(langs))
    note = (
        f"<p class='muted'>Texts are grouped with texts of their language group "
        f"({_e(', '.join(groups))}), read by the sentence model that reads it best; a "
        "theme of several languages gathers one complaint written in any of them.</p>"
        if len(groups) > 1
        else ""
    )
    # returns: only beside reviews (else it repeats "texts"); refunds: only when known
    show_returns = bool(n_ret and n_rev)
    show_refunds = bool(n_ret and corpus[C.REFUND_AMOUNT].notna().any())
    # an imported store's reason labels, as the brand wrote them ("Too small")
    show_labels = bool(n_ret and C.REASON_LABEL in corpus and corpus[C.REASON_LABEL].notna().any())
    head = "<th>theme</th><th>language</th><th>distinctive words</th><th>texts</th>"
    if show_returns:
        head += "<th>returns</th>"
    if show_refunds:
        head += "<th>refunds</th>"
    if show_labels:
        head += "<th>return reasons</th>"
    if n_rev:
        head += "<th>mean rating (others)</th>"
    if dated:
        head += "<th>trend (share)</th>"
    parts.append(f"<h2>Themes</h2>{note}<table><tr>{head}<th>in their words</th></tr>")
    imp = data.impact.set_index(C.THEME) if len(data.impact) else None
    order = np.argsort([-s for s in data.themes.sizes]) if data.themes.sizes else []
    for k in order:
        r = imp.loc[k]
        rating = "–" if np.isnan(r["mean_rating"]) else f"{r['mean_rating']:.2f}"
        row = (
            f"<tr><td><b>{_e(names[k])}</b></td><td>{_e(langs[k])}</td>"
            f"<td>{_e(', '.join(data.themes.words[k]))}</td>"
            f"<td class='num'>{int(r['texts']):,}</td>"
        )
        if show_returns:
            row += f"<td class='num'>{int(r['returns']):,}</td>"
        if show_refunds:
            row += f"<td class='num'>{r['refunds']:,.0f}</td>"
        if show_labels:
            row += f"<td>{_e(r['return_labels'])}</td>"
        if n_rev:
            row += f"<td class='num'>{rating} ({r['rating_others']:.2f})</td>"
        if dated:
            row += f"<td>{sparkline(_share_series(weekly, k))}</td>"
        quotes = "".join(f"<div class=quote>“{_e(q)}”</div>" for q in data.themes.quotes[k])
        parts.append(f"{row}<td>{quotes}</td></tr>")
    parts.append("</table>")
    # --- per product ----------------------------------------------------------------------
    products = corpus[C.PRODUCT_ID].nunique()
    if products > 1:
        parts.append("<h2>Top themes per product</h2>")
    alerted = list(dict.fromkeys(alerts[C.PRODUCT_ID].astype(int))) if len(alerts) else []
    busiest = corpus[C.PRODUCT_ID].value_counts().index.astype(int).tolist()
    for p in list(dict.fromkeys(alerted + busiest))[:12] if products > 1 else []:
        d = corpus[(corpus[C.PRODUCT_ID] == p) & (corpus["theme_id"] != NOISE_LABEL)]
        top = d["theme_id"].value_counts().head(3)
        n_p = int((corpus[C.PRODUCT_ID] == p).sum())
        cols = "<th>trend</th><th>latest words</th>" if dated else "<th>in their words</th>"
        category = data.product_categories.get(int(p))
        in_category = f"{_e(category)}, " if category else ""
        parts.append(
            f"<h3>{_e(pname(p))} <span class='muted'>({in_category}{n_p:,} texts)</span></h3>"
            f"<table><tr><th>theme</th><th>share</th>{cols}</tr>"
        )
        for k, n in top.items():
            latest = d[d["theme_id"] == k].sort_values(C.CREATED_AT, ascending=False)
            trend = f"<td>{sparkline(_share_series(weekly, int(k), p))}</td>" if dated else ""
            parts.append(
                f"<tr><td>{_e(names[int(k)])}</td><td class='num'>{n / n_p:.0%}</td>"
                f"{trend}<td>{_quotes(latest[TEXT])}</td></tr>"
            )
        parts.append("</table>")
    if rated:
        parts.append(f"<p class='muted'>Ratings: {gap_rule()}.</p>")
    if dated:
        parts.append(
            "<p class='muted'>Alerts: each week, for every product and theme, the last weeks "
            "are compared with the weeks before by a one-sided Fisher exact test; p-values of "
            f"a week's scan are adjusted by Benjamini-Hochberg at {data.fdr:.0%}: when nothing "
            f"is rising, at most {data.fdr:.0%} of weekly scans raise a false alert. Trend "
            "lines are four-week rolling shares.</p>"
        )
    parts.append("</body></html>")
    return "".join(parts)


def write_report(data: ReportData, path: str | Path, title: str = "What customers say") -> Path:
    """Write the page atomically (a half-written report never replaces a good one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(render_html(data, title), encoding="utf-8")
    tmp.replace(path)
    return path
