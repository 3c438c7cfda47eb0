"""The SHAP report of one model: a single self-contained HTML file for product teams.

``build_report(model_name, world_path)`` is what ``make demo`` and ``ppx explain`` call:
it loads the registered champion (or a given run's model), builds the features of a
sample of the world, computes SHAP values, writes ``reports/<model>/<model>_shap.html``
and logs it to the model's MLflow run. :func:`write_report` does the same for any
in-memory ExplainableModel and feature frame (tests, notebooks), without MLflow.

The page opens with a short "how to read this", the model's version, the data it was
trained on and its holdout quality beside the baselines; then sentences, tables and plots
written by :mod:`ppx.explain.story` from attributions summed onto the original fields of
the model's feature dictionary (labels, units, original values): what drives the score,
how the drivers differ between segments, whose scores moved most since the previous
champion, a beeswarm, dependence plots and waterfalls for a low, a typical and a high
score. Images are base64 PNG; no script, font or style is
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
from ppx.explain.dictionary import is_text
from ppx.explain.labels import article, entity, format_value
from ppx.explain.reason_codes import contributions
from ppx.explain.shapley import (
    DEFAULT_BACKGROUND,
    DEFAULT_PERMUTATIONS,
    DEFAULT_ROWS,
    ShapResult,
    compute_shap,
)
from ppx.explain.story import (
    FieldResult,
    field_direction,
    group,
    importance_rows,
    row_reasons,
    segment_rows,
    summary_sentences,
)

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
    #: what the model was trained on (world or table, rows, digest)
    trained_on: str = ""
    #: holdout figures of the run: the gate metric of the model and of its baselines
    quality: dict = field(default_factory=dict)
    #: the promotion gate's sentence for this version
    verdict: str = ""
    #: why there is no comparison with a previous champion (when there is none)
    previous: str = ""


@dataclass
class Report:
    """A written report: where it is, what it found and how long it took."""

    path: Path
    result: ShapResult
    summary: list[str]
    seconds: float
    reason_agreement: tuple[float, float]
    fields: FieldResult | None = None


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


def direction_records(fr: FieldResult) -> dict:
    """Per field, the direction the sentences and the table state (for the JSON)."""
    out = {}
    for f in fr.fields:
        d = field_direction(fr, f)
        if d is not None:
            out[f] = {
                "sign": d.sign,
                "high": d.high_label,
                "high_effect": d.high_effect,
                "low": d.low_label,
                "low_effect": d.low_effect,
            }
    return out


def reason_agreement(
    model, result: ShapResult, fr: FieldResult | None = None
) -> tuple[float, float]:
    """How well the fast reason codes match SHAP on the explained rows (by field).

    Returns (share of rows whose top reason is SHAP's top feature, share whose top reason
    is among SHAP's top three).
    """
    if len(result.scores) == 0:
        return float("nan"), float("nan")
    C = contributions(model, result.data)
    V = result.values
    if fr is not None:
        _, G = fr.dictionary.grouping(list(result.feature_names))
        C, V = C @ G, V @ G
    fast = np.argmax(np.abs(C), axis=1)
    ranks = np.argsort(-np.abs(V), axis=1)
    top1 = float(np.mean(fast == ranks[:, 0]))
    top3 = float(np.mean([f in r[:3] for f, r in zip(fast, ranks, strict=True)]))
    return top1, top3


def how_to_read(fr: FieldResult, ent_one: str) -> str:
    """The short guide at the top of the report, in this model's units."""
    u = fr.units
    example = u.signed(0.02 if u.scale == 100 else 0.5)
    return (
        f"<p>Every number below is in the model's own units: a change of the "
        f"<b>{html.escape(u.headline())}</b>, in {html.escape(u.unit)}. An effect of "
        f"{html.escape(example)} for a fact means that fact makes the model's answer for this "
        f"{html.escape(ent_one)} {html.escape(u.amount(0.02 if u.scale == 100 else 0.5))} "
        f"{'higher' if u.up.startswith('raises') else 'longer'} than for a typical "
        f"{html.escape(ent_one)}; a minus sign means {html.escape(u.down.split(' ')[0])}. "
        "The effects of all facts add up to the gap between this answer and the average "
        "answer.</p><p>Facts are shown as you know them (kilometres, days, names of carriers "
        "and plans); one fact the model reads in several forms (a one-hot group, a logarithm "
        "and its 'missing' flag) is told once. Directions ('higher raises...') are computed "
        "from the model's own attributions; the sentences, the tables and the API's reason "
        "codes are written from the same numbers. They describe what the model does, not "
        "what causes customers to act.</p>"
    )


def quality_table(info: ReportInfo) -> str:
    """Holdout figures of the run beside its baselines, and the promotion gate's verdict."""
    rows = [(k, v) for k, v in info.quality.items()]
    body = "".join(
        f'<tr><th>{html.escape(k)}</th><td class="num">{v:.4g}</td></tr>' for k, v in rows
    )
    verdict = f"<p>Promotion gate: {html.escape(info.verdict)}</p>" if info.verdict else ""
    if not rows:
        return verdict or "<p>No holdout figures were logged with this model.</p>"
    return f"<table>{body}</table>{verdict}"


def render_html(
    model,
    result: ShapResult,
    info: ReportInfo,
    fr: FieldResult,
    summary: list[str],
    agreement: tuple[float, float],
    started: float,
    changes: pd.DataFrame | None = None,
) -> str:
    """Fill the template: every section from ``fr`` (fields) and ``result``; returns HTML."""
    name = info.model_name
    labels = {f: fr.label(f) for f in fr.fields}
    shown = fr.as_shap(result)
    ent = entity(model, name)
    ent_one = ent[:-1] if ent.endswith("s") else ent
    art = article(ent_one).capitalize()
    u = fr.units
    top = list(fr.importance().index[:TOP_DEPENDENCE])
    dep = "\n".join(
        f'<figure><img alt="dependence of {html.escape(labels[f])}" '
        f'src="data:image/png;base64,{plots.dependence(shown, f, labels)}">'
        f"<figcaption>{html.escape(labels[f])}: value (x) against its effect on the "
        f"{html.escape(u.score)} (y).</figcaption></figure>"
        for f in top
        if not is_text(fr.originals[f])
    )
    examples = []
    for title, row in plots.typical_rows(fr.scores):
        words = "; ".join(row_reasons(fr, row))
        examples.append(
            f'<div class="example"><h3>{art} {html.escape(ent_one)} with {title}: '
            f"{html.escape(u.score_text(fr.scores[row]))}</h3>"
            f"<p>Main reasons: {html.escape(words)}.</p>"
            f'<figure><img alt="waterfall for {title}" '
            f'src="data:image/png;base64,{plots.waterfall(shown, row, labels)}"></figure></div>'
        )
    table = importance_rows(fr).drop(columns=["field"])
    segments = segment_rows(fr, ent)
    registered = info.registered_model or f"ppx-{name}"
    subtitle = (
        f"{registered}"
        + (f" v{info.version}" if info.version else "")
        + f" · {u.headline()} · {len(fr.scores):,} {ent} explained"
    )
    return Template(TEMPLATE.read_text()).substitute(
        title=html.escape(f"Why {registered} scores what it scores"),
        subtitle=html.escape(subtitle),
        how_to_read=how_to_read(fr, ent_one),
        model_facts=_model_facts(info, fr),
        quality=quality_table(info),
        summary="\n".join(f"<li>{html.escape(s)}</li>" for s in summary),
        img_importance=plots.importance_bar(shown, labels, unit=u.unit),
        importance_table=_table(table),
        segments=(
            _table(segments)
            if len(segments)
            else "<p>No segment of this model has enough rows in the sample.</p>"
        ),
        changes=(
            f"<p>{html.escape(info.previous)}</p>{_table(changes)}"
            if changes is not None and len(changes)
            else f"<p>{html.escape(info.previous or 'There is no previous champion to compare with.')}</p>"
        ),
        img_beeswarm=plots.beeswarm(shown, labels),
        dependence=dep,
        examples="\n".join(examples),
        score_label=html.escape(u.headline()),
        unit=html.escape(u.unit),
        entity_one=html.escape(ent_one),
        base_text=html.escape(
            f"the average {u.score} of decisions of the same kind"
            if result.base_values is not None
            else f"the average {u.score} ({u.score_text(result.base_value)})"
        ),
        facts=_facts(info, result, time.perf_counter() - started),
        agreement=(
            f"{agreement[0]:.0%} of rows (its top reason is among SHAP's top three for "
            f"{agreement[1]:.0%})"
            if np.isfinite(agreement[0])
            else "n/a"
        ),
    )


def _model_facts(info: ReportInfo, fr: FieldResult) -> str:
    rows = [
        (
            "model",
            f"{info.registered_model or 'ppx-' + info.model_name}"
            + (f" version {info.version}" if info.version else " (not registered)"),
        ),
        ("score", fr.units.headline()),
        ("trained on", info.trained_on or info.world_path or "(unknown)"),
        ("explained on", info.data_source or "given frame"),
    ]
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


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
    changes: pd.DataFrame | None = None,
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
    fr = group(result, model, info.model_name)
    summary = summary_sentences(fr, entity(model, info.model_name))
    agreement = reason_agreement(model, result, fr)
    text = render_html(model, result, info, fr, summary, agreement, started, changes)
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
        "importance": {k: float(v) for k, v in fr.importance().items()},
        "directions": direction_records(fr),
    }
    path.with_suffix(".json").write_text(json.dumps(numbers, indent=2))
    return Report(path, result, summary, seconds, agreement, fr)


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
    from ppx.explain.sources import load_explainable, world_rows

    loaded = load_explainable(model_name, run_id=run_id, alias=alias)
    world = Path(world_path) if world_path is not None else loaded.world_path
    if world is None:
        raise ValueError(
            f"no world to explain ppx-{model_name} on: pass --world (the run has no "
            "ppx.world_path tag)"
        )
    raw, X, source = world_rows(model_name, loaded.model, world, n=max_rows, seed=seed)
    info = ReportInfo(
        model_name=model_name,
        registered_model=f"ppx-{model_name}",
        version=loaded.version or "",
        run_id=loaded.run_id or "",
        world_path=str(world),
        data_source=source,
    )
    describe_run(info, model_name, loaded.run_id)
    changes = None
    previous = previous_champion(model_name, loaded.version)
    if previous is None:
        info.previous = "This is the first champion: there is no previous one to compare with."
    elif raw is None:
        info.previous = (
            "The explained rows are not requests, so the previous champion cannot score them."
        )
    else:
        changes = score_changes(model_name, loaded.model, previous, raw, X, info)
    report = write_report(
        loaded.model,
        X,
        info,
        out_dir=out_dir,
        max_rows=max_rows,
        seed=seed,
        progress=progress,
        changes=changes,
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


#: request columns that name who or what a row is about (first found wins)
ID_COLUMNS = ("customer_id", "order_id", "return_id", "claim_id", "subscription_id")


def describe_run(info: ReportInfo, model_name: str, run_id: str | None) -> None:
    """Fill what the model was trained on, its holdout figures and the gate's verdict."""
    if not run_id:
        return
    from mlflow import MlflowClient
    from ppx.models import registry

    client = MlflowClient()
    run = client.get_run(run_id)
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    source = tags.get("ppx.world_path") or params.get("table") or params.get("world_path") or ""
    digest = tags.get("ppx.world_hash") or tags.get("ppx.dataset_digest") or ""
    started = datetime.fromtimestamp(run.info.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    info.trained_on = (
        f"{source or 'data not recorded'}"
        + (f" (digest {digest[:12]})" if digest else "")
        + f", run {run_id[:8]} of {started}"
    )
    spec = registry.get(model_name) if model_name in registry.names() else None
    core = spec.gate_metric.removeprefix("holdout_mean_") if spec else ""
    keep = {}
    for key in sorted(metrics):
        last = key.split(".")[-1]
        if (
            core
            and (last == core or key.endswith(f"_{core}") or key == spec.gate_metric)
            and "train_seconds" not in key
        ):
            keep[key.replace(".", " · ").replace("_", " ")] = float(metrics[key])
    info.quality = dict(list(keep.items())[:14])
    if info.version:
        mv = client.get_model_version(info.registered_model or f"ppx-{model_name}", info.version)
        info.verdict = mv.tags.get("ppx.promotion", "")


def previous_champion(model_name: str, version: str | None):
    """The version that was champion before this one: the registered model's
    ``ppx.previous_champion`` tag, else the newest earlier version the gate promoted."""
    if not version:
        return None
    from mlflow import MlflowClient
    from ppx.tracking import PREVIOUS_CHAMPION_TAG

    client = MlflowClient()
    name = f"ppx-{model_name}"
    tagged = client.get_registered_model(name).tags.get(PREVIOUS_CHAMPION_TAG)
    if tagged and tagged != str(version):
        return client.get_model_version(name, tagged)
    found = None
    for mv in client.search_model_versions(f"name='ppx-{model_name}'"):
        reason = mv.tags.get("ppx.promotion", "")
        promoted = reason.startswith("no champion yet") or (" beats champion" in reason)
        earlier = int(mv.version) < int(version)
        if earlier and promoted and (found is None or int(mv.version) > int(found.version)):
            found = mv
    return found


def score_changes(model_name, model, previous, raw, X, info: ReportInfo, top: int = 10):
    """Rows whose score moved most between the previous champion and this model."""
    from ppx.explain.shapley import scorer
    from ppx.explain.sources import load_explainable

    old = load_explainable(model_name, run_id=previous.run_id).model
    try:
        old_scores = scorer(old)(old.features(raw)[list(old.feature_names)].to_numpy())
    except Exception as err:  # noqa: BLE001 - a model of another shape: said, not hidden
        info.previous = f"Version {previous.version} could not score these rows: {err}"
        return None
    new_scores = scorer(model)(X.to_numpy())
    units = group_units(model, model_name, new_scores)
    ids = next((c for c in ID_COLUMNS if c in raw.columns), None)
    delta = new_scores - old_scores
    if float(np.max(np.abs(delta), initial=0.0)) < 1e-9:
        info.previous = (
            f"Version {previous.version} (the previous champion) gives every one of these "
            f"{len(delta):,} rows the same score as version {info.version}."
        )
        return None
    order = np.argsort(-np.abs(delta), kind="stable")[:top]
    rows = [
        {
            "who": f"{ids.replace('_', ' ').removesuffix(' id')} {raw[ids].iloc[i]}"
            if ids
            else f"row {i}",
            f"version {previous.version}": units.score_text(old_scores[i]),
            f"version {info.version}": units.score_text(new_scores[i]),
            "change": units.signed(delta[i]),
        }
        for i in order
    ]
    info.previous = (
        f"Against version {previous.version} (the previous champion) on the same "
        f"{len(delta):,} rows: median absolute change {units.amount(float(np.median(np.abs(delta))))}."
    )
    return pd.DataFrame(rows)


def group_units(model, model_name, scores):
    from ppx.explain.story import units_for

    return units_for(model, model_name, scores)
