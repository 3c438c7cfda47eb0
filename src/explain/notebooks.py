"""Small helpers the notebooks share, so that the notebooks themselves hold no logic.

The numbered notebooks under ``notebooks/`` tell the data-science story (data, baseline,
model, metrics, MLflow run, explanation) by calling ppx; what they need beyond the model
packages — a world of a given size, the champion's run, a report's numbers — lives here
and is tested like the rest of the package.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def ensure_world(customers: int, months: int, seed: int, folder: Path | None = None) -> Path:
    """A world with these parameters under ``Settings.worlds_dir`` (generated once, reused).

    The folder name carries the parameters (``nb_c<customers>_m<months>_s<seed>``), and a
    world on disk is reused only when its manifest records the same parameters.
    """
    from ppx.config import get_settings
    from ppx.data.io import load_manifest
    from ppx.data.world import WorldParams
    from ppx.data.world_cli import build_world

    params = WorldParams(n_customers=customers, months=months, seed=seed)
    out = folder or get_settings().worlds_dir / f"nb_c{customers}_m{months}_s{seed}"
    try:
        if load_manifest(out)["params"] == params.to_dict():
            return out
    except (ValueError, OSError, json.JSONDecodeError, KeyError):
        pass
    build_world(customers=customers, seed=seed, months=months, out=out)
    return out


def champion_run(model_name: str) -> dict:
    """Registry version, run id, metrics and tags of ``ppx-<model_name>@champion``."""
    from mlflow import MlflowClient
    from ppx import tracking

    tracking.configure()
    mv = tracking.get_alias_version(model_name)
    if mv is None:
        raise ValueError(f"ppx-{model_name} has no champion yet; train it first")
    run = MlflowClient().get_run(mv.run_id)
    return {
        "version": mv.version,
        "run_id": mv.run_id,
        "promotion": mv.tags.get("ppx.promotion", ""),
        "metrics": dict(run.data.metrics),
        "tags": {k: v for k, v in run.data.tags.items() if k.startswith("ppx.")},
    }


def report_numbers(report_path: str | Path) -> dict:
    """The JSON written beside a report (summary sentences, importance, timings)."""
    return json.loads(Path(report_path).with_suffix(".json").read_text())


def importance_frame(report_path: str | Path, top: int = 10) -> pd.DataFrame:
    """Top features of a report by mean |SHAP|, as a small table."""
    imp = report_numbers(report_path)["importance"]
    s = pd.Series(imp, name="mean_abs_shap").iloc[:top]
    return s.to_frame().assign(share=lambda d: d["mean_abs_shap"] / sum(imp.values()))


def show_report(report_path: str | Path, height: int = 900):
    """The report inline in Jupyter (an iframe over the self-contained HTML)."""
    import html

    from IPython.display import HTML

    text = Path(report_path).read_text()
    return HTML(
        f'<iframe srcdoc="{html.escape(text)}" style="width:100%;height:{height}px;border:0">'
        "</iframe>"
    )


def explained_version(model_name: str) -> dict | None:
    """The version a notebook explains: the champion, else the newest registered version.

    A version the gate kept out (alias ``challenger``) is still worth explaining while no
    champion exists; ``promotion`` says why it is not champion. None if nothing is
    registered under ``ppx-<model_name>``.
    """
    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient
    from ppx import tracking

    tracking.configure()
    mv = tracking.get_alias_version(model_name)
    if mv is None:
        try:
            versions = MlflowClient().search_model_versions(f"name='ppx-{model_name}'")
        except MlflowException:
            return None
        if not versions:
            return None
        mv = max(versions, key=lambda v: int(v.version))
    return {
        "version": mv.version,
        "run_id": mv.run_id,
        "champion": tracking.CHAMPION in (mv.aliases or []),
        "promotion": (mv.tags or {}).get("ppx.promotion", ""),
    }
