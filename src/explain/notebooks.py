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


def notebook_registry_dir(registry: str | Path | None = None) -> Path | None:
    """The MLflow folder notebooks use (None: whatever the environment already says).

    Notebooks train and register models; writing into the registry ``ppx serve`` reads
    would swap the served champion behind the user's back. So without ``registry`` (and
    without ``MLFLOW_TRACKING_URI`` or ``PPX_MLFLOW_DIR`` set) they use
    ``<mlflow_dir>/notebooks``; ``registry="serve"`` opts into the default one, any other
    value is a folder to use.
    """
    import os

    from ppx.config import get_settings

    if registry is not None:
        return None if str(registry) == "serve" else Path(registry)
    if os.environ.get("MLFLOW_TRACKING_URI") or os.environ.get("PPX_MLFLOW_DIR"):
        return None
    return get_settings().mlflow_dir / "notebooks"


def notebook_tracking(registry: str | Path | None = None) -> str:
    """Configure MLflow for a notebook (see :func:`notebook_registry_dir`); returns the URI."""
    import os

    from ppx import tracking
    from ppx.config import get_settings

    folder = notebook_registry_dir(registry)
    if folder is not None:
        os.environ["PPX_MLFLOW_DIR"] = str(folder)
        get_settings.cache_clear()
    return tracking.configure()


def ensure_world(
    customers: int,
    months: int,
    seed: int,
    folder: Path | None = None,
    store: str | Path | None = None,
) -> Path:
    """A world with these parameters under ``Settings.worlds_dir`` (generated once, reused).

    The folder name carries the parameters (``nb_c<customers>_m<months>_s<seed>``), and a
    world on disk is reused only when its manifest records the same parameters. With
    ``store`` (a folder from ``ppx data import``), that store is used as it is instead.
    """
    if store is not None:
        store = Path(store)
        if not (store / "tables").is_dir():
            raise ValueError(f"{store}: not a store folder (no tables/); see `ppx data import`")
        return store
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
    # the folder is named after its parameters and written by ppx: replace a stale one
    build_world(customers=customers, seed=seed, months=months, out=out, overwrite=True)
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
