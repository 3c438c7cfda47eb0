"""The SHAP report of one model: a single self-contained HTML file for product teams.

``build_report(model_name, world_path)`` is what ``make demo`` and ``ppx explain`` call:
it loads the registered champion (or a given run's model), builds the features of a
sample of the world, computes SHAP values, writes ``reports/<model>/<model>_shap.html``
and logs it to the model's MLflow run. :func:`write_report` does the same for any
in-memory ExplainableModel and feature frame (tests, notebooks), without MLflow.

The page opens with sentences computed from the sample (see :mod:`ppx.explain.summary`),
then global importance, a beeswarm, dependence plots for the top features and waterfalls
for a low, a typical and a high score. Images are base64 PNG; no script, font or style is
fetched from anywhere.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd

from ppx.explain import plots
from ppx.explain.labels import article, entity, feature_label, format_value, score_label
from ppx.explain.reason_codes import contributions
from ppx.explain.shapley import (
    DEFAULT_BACKGROUND,
    DEFAULT_PERMUTATIONS,
    DEFAULT_ROWS,
    ShapResult,
    compute_shap,
)
from ppx.explain.summary import importance_table, plain_summary

TEMPLATE = Path(__file__).with_name("report.html")
TOP_DEPENDENCE = 3


@dataclass
class ReportInfo:
    """What the report says about where the model and the data came from."""

    model_name: str
    registered_model: str = ""
    version: str = ""
    run_id: str = ""
    world_path: str = ""
    data_source: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class Report:
    """A written report: where it is, what it found and how long it took."""

    path: Path
    result: ShapResult
    summary: list[str]
    seconds: float
    reason_agreement: tuple[float, float]


def _table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for _, row in df.iterrows():
        cells = []
        for v in row:
            if isinstance(v, float | np.floating):
                cells.append(f'<td class="num">{html.escape(format_value(v))}</td>')
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _facts(info: ReportInfo, result: ShapResult, seconds: float) -> str:
    rows = [
        ("model", info.registered_model or info.model_name),
        ("registry version", info.version or "(not registered)"),
        ("MLflow run", info.run_id or "(none)"),
        ("world", info.world_path or "(none)"),
        ("explained rows", f"{len(result.scores):,} ({info.data_source or 'given frame'})"),
        ("explainer", result.method),
        ("SHAP additivity error (max)", f"{result.additivity_error():.2e}"),
        ("compute time", f"{result.seconds:.1f} s SHAP, {seconds:.1f} s whole report"),
        ("built", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        *((k, str(v)) for k, v in info.extra.items()),
    ]
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


def reason_agreement(model, result: ShapResult) -> tuple[float, float]:
    """How well the fast reason codes match SHAP on the explained rows.

    Returns (share of rows whose top reason is SHAP's top feature, share whose top reason
    is among SHAP's top three).
    """
    if len(result.scores) == 0:
        return float("nan"), float("nan")
    C = contributions(model, result.data)
    fast = np.argmax(np.abs(C), axis=1)
    ranks = np.argsort(-np.abs(result.values), axis=1)
    top1 = float(np.mean(fast == ranks[:, 0]))
    top3 = float(np.mean([f in r[:3] for f, r in zip(fast, ranks, strict=True)]))
    return top1, top3


def render_html(
    model,
    result: ShapResult,
    info: ReportInfo,
    summary: list[str],
    agreement: tuple[float, float],
    started: float,
) -> str:
    """Fill the template: every section from ``result``; returns the HTML text."""
    name = info.model_name
    labels = getattr(model, "feature_labels", None) or {}
    what = score_label(model, name)
    ent = entity(model, name)
    ent_one = ent[:-1] if ent.endswith("s") else ent
    art = article(ent_one).capitalize()
    top = list(result.importance().index[:TOP_DEPENDENCE])
    dep = "\n".join(
        f'<figure><img alt="dependence of {html.escape(f)}" '
        f'src="data:image/png;base64,{plots.dependence(result, f, labels)}">'
        f"<figcaption>{html.escape(labels.get(f) or feature_label(f))}: value (x) against its "
        f"contribution to the {html.escape(what)} (y).</figcaption></figure>"
        for f in top
    )
    examples = []
    for title, row in plots.typical_rows(result.scores):
        contrib = pd.Series(result.values[row], index=result.feature_names)
        lead = contrib.abs().sort_values(ascending=False).index[:3]
        words = "; ".join(
            f"{labels.get(f) or feature_label(f)} = {format_value(result.shown().at[row, f])} "
            f"({'+' if contrib[f] >= 0 else '-'}{format_value(abs(contrib[f]))})"
            for f in lead
        )
        examples.append(
            f'<div class="example"><h3>{art} {html.escape(ent_one)} with {title}: '
            f"{html.escape(format_value(result.scores[row]))}</h3>"
            f"<p>Main reasons: {html.escape(words)}.</p>"
            f'<figure><img alt="waterfall for {title}" '
            f'src="data:image/png;base64,{plots.waterfall(result, row, labels)}"></figure></div>'
        )
    table = importance_table(result, model)
    table = table.rename(
        columns={"mean_abs_shap": "mean |SHAP|", "higher_value": "a higher value"}
    ).drop(columns=["feature"])
    table["share"] = [f"{s:.0%}" for s in table["share"]]
    registered = info.registered_model or f"ppx-{name}"
    subtitle = (
        f"{registered}"
        + (f" v{info.version}" if info.version else "")
        + f" · {len(result.scores):,} {ent} explained"
        + (f" · world {info.world_path}" if info.world_path else "")
    )
    return Template(TEMPLATE.read_text()).substitute(
        title=html.escape(f"Why {registered} scores what it scores"),
        subtitle=html.escape(subtitle),
        summary="\n".join(f"<li>{html.escape(s)}</li>" for s in summary),
        img_importance=plots.importance_bar(result, labels),
        importance_table=_table(table),
        img_beeswarm=plots.beeswarm(result, labels),
        dependence=dep,
        examples="\n".join(examples),
        score_label=html.escape(what),
        entity_one=html.escape(ent_one),
        base_text=html.escape(
            f"the average {what} of decisions of the same kind"
            if result.base_values is not None
            else f"the average {what} ({format_value(result.base_value)})"
        ),
        facts=_facts(info, result, time.perf_counter() - started),
        agreement=(
            f"{agreement[0]:.0%} of rows (its top reason is among SHAP's top three for "
            f"{agreement[1]:.0%})"
            if np.isfinite(agreement[0])
            else "n/a"
        ),
    )


def write_report(
    model,
    X: pd.DataFrame,
    info: ReportInfo,
    out_dir: Path | None = None,
    max_rows: int = DEFAULT_ROWS,
    max_background: int = DEFAULT_BACKGROUND,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    progress: bool = False,
) -> Report:
    """Explain ``X`` with ``model`` and write the HTML (plus a JSON of the numbers).

    Writes ``<out_dir>/<model>_shap.html`` and ``<model>_shap.json`` (importance, summary,
    timings) — ``out_dir`` defaults to ``Settings.reports_dir / <model>``.
    """
    from ppx.config import get_settings

    started = time.perf_counter()
    result = compute_shap(
        model,
        X,
        max_rows=max_rows,
        max_background=max_background,
        permutations=permutations,
        seed=seed,
        progress=progress,
    )
    summary = plain_summary(result, model, info.model_name)
    agreement = reason_agreement(model, result)
    text = render_html(model, result, info, summary, agreement, started)
    out_dir = Path(out_dir) if out_dir is not None else get_settings().reports_dir / info.model_name
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{info.model_name}_shap.html"
    path.write_text(text, encoding="utf-8")
    seconds = time.perf_counter() - started
    numbers = {
        "model": info.model_name,
        "version": info.version,
        "run_id": info.run_id,
        "world_path": info.world_path,
        "rows": int(len(result.scores)),
        "background_rows": result.background_rows,
        "method": result.method,
        "shap_seconds": result.seconds,
        "report_seconds": seconds,
        "additivity_error": result.additivity_error(),
        "reason_code_top1_agreement": agreement[0],
        "reason_code_top1_in_shap_top3": agreement[1],
        "summary": summary,
        "importance": {k: float(v) for k, v in result.importance().items()},
    }
    path.with_suffix(".json").write_text(json.dumps(numbers, indent=2))
    return Report(path, result, summary, seconds, agreement)


def build_report(
    model_name: str,
    world_path: str | Path | None = None,
    run_id: str | None = None,
    alias: str | None = None,
    max_rows: int = DEFAULT_ROWS,
    out_dir: Path | None = None,
    log_to_mlflow: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Report of the registered ``ppx-<model_name>`` champion (or of run ``run_id``).

    Args:
        model_name: ``delivery``, ``churn``, ``fraud`` or ``recs``.
        world_path: world whose sample is explained; defaults to the run's
            ``ppx.world_path`` tag (the world it was trained on).
        run_id: explain the model logged in this run instead of the champion.
        alias: registry alias to load (default ``Settings.model_alias``, i.e. champion).
        max_rows: rows of the world explained.
        out_dir: defaults to ``Settings.reports_dir / model_name``.
        log_to_mlflow: attach the HTML and JSON to the model's run under ``explanations/``.
        seed: fixes the sample and the permutations.
        progress: show progress while computing.

    Returns:
        The path of the HTML report.
    """
    from ppx.explain.sources import load_explainable, world_features

    loaded = load_explainable(model_name, run_id=run_id, alias=alias)
    world = Path(world_path) if world_path is not None else loaded.world_path
    if world is None:
        raise ValueError(
            f"no world to explain ppx-{model_name} on: pass --world (the run has no "
            "ppx.world_path tag)"
        )
    X, source = world_features(model_name, loaded.model, world, n=max_rows, seed=seed)
    info = ReportInfo(
        model_name=model_name,
        registered_model=f"ppx-{model_name}",
        version=loaded.version or "",
        run_id=loaded.run_id or "",
        world_path=str(world),
        data_source=source,
    )
    report = write_report(
        loaded.model, X, info, out_dir=out_dir, max_rows=max_rows, seed=seed, progress=progress
    )
    if log_to_mlflow and loaded.run_id:
        from mlflow import MlflowClient

        client = MlflowClient()
        client.log_artifact(loaded.run_id, str(report.path), artifact_path="explanations")
        client.log_artifact(
            loaded.run_id, str(report.path.with_suffix(".json")), artifact_path="explanations"
        )
        client.log_metric(loaded.run_id, "explain_report_seconds", report.seconds)
        client.set_tag(loaded.run_id, "ppx.explain_report", f"explanations/{report.path.name}")
    return report.path
