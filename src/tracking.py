"""MLflow and Optuna glue: experiments, standard run tags, the registry and promotion.

Conventions every model follows:

* experiment and registered model are both named ``ppx-<model>``;
* runs carry standard tags: git commit, world manifest hash, dataset digest;
* a new model version becomes ``champion`` only through :func:`promote`: it must beat
  the simple baselines of its own run on every head it serves, and the current champion
  **on the same holdout**; otherwise it is tagged ``challenger`` and the reason is
  recorded on the version and the run;
* Optuna studies live in RDB storage (SQLite by default) and every trial is a nested run.

Nothing happens at import; call :func:`configure` (the CLI and tests do) to point MLflow
at the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ppx.config import Settings, get_settings

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


def registered_name(model: str) -> str:
    """``delivery`` -> ``ppx-delivery`` (the experiment and the registered model)."""
    return model if model.startswith("ppx-") else f"ppx-{model}"


# MLflow 3's set_tracking_uri also writes MLFLOW_TRACKING_URI into the environment (so
# child processes inherit it). Remember the value ppx wrote, so that only a value the user
# set overrides the settings on the next call.
_uri_written_by_ppx: str | None = None


def tracking_uri(settings: Settings | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if the user set it, else ``PPX_TRACKING_URI``, else SQLite."""
    s = settings or get_settings()
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env and env == _uri_written_by_ppx:
        env = None
    return env or s.tracking_uri or s.default_tracking_uri


def configure(settings: Settings | None = None) -> str:
    """Point MLflow at the tracking store (creating the local folders if it is local)."""
    import mlflow

    global _uri_written_by_ppx
    s = settings or get_settings()
    user_env = os.environ.get("MLFLOW_TRACKING_URI")
    user_set = bool(user_env) and user_env != _uri_written_by_ppx
    from ppx.local_postgres import with_driver

    uri = with_driver(tracking_uri(s))  # a bare postgresql:// store gets psycopg2
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        s.artifacts_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # One "Downloading artifacts" bar per model file read back from the store drowns the
    # command's own output; ppx shows its own progress. MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
    # set by the user wins.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if not user_set:
        _uri_written_by_ppx = os.environ.get("MLFLOW_TRACKING_URI")
    return uri


def get_or_create_experiment(model: str, settings: Settings | None = None) -> str:
    """Experiment id of ``ppx-<model>``, with artifacts under mlflow/artifacts locally."""
    import mlflow

    s = settings or get_settings()
    name = registered_name(model)
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if tracking_uri(s).startswith("sqlite:"):
        location = (s.artifacts_dir / name).resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def git_commit(root: Path | None = None) -> str:
    root = root or get_settings().root
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def dataset_digest(df: pd.DataFrame) -> str:
    """A short content digest of a training frame, stable across Parquet versions."""
    h = hashlib.sha256(",".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def world_hash(world_path: str | Path | None) -> str | None:
    if world_path is None:
        return None
    manifest = Path(world_path) / "manifest.json"
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text()).get("content_hash")


@contextlib.contextmanager
def start_run(
    model: str,
    run_name: str | None = None,
    world_path: str | Path | None = None,
    dataset: pd.DataFrame | None = None,
    tags: dict[str, str] | None = None,
    nested: bool = False,
) -> Iterator[Any]:
    """Start an MLflow run in ``ppx-<model>`` with the standard tags."""
    import mlflow

    exp_id = get_or_create_experiment(model)
    std = {"ppx.model": model, "ppx.git_commit": git_commit()}
    if (wh := world_hash(world_path)) is not None:
        std["ppx.world_hash"] = wh
        std["ppx.world_path"] = str(world_path)
    if dataset is not None:
        std["ppx.dataset_digest"] = dataset_digest(dataset)
        std["ppx.dataset_rows"] = str(len(dataset))
    std.update(tags or {})
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, nested=nested, tags=std) as run:
        yield run


def log_json(obj: Any, name: str) -> None:
    """Log a JSON artifact from the active run."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(json.dumps(obj, indent=2, default=str))
        mlflow.log_artifact(str(path))


def log_pyfunc_model(
    model: str,
    python_model: Any,
    artifacts: dict[str, str] | None = None,
    input_example: Any = None,
    signature: Any = None,
    register: bool = True,
) -> Any:
    """Log a pyfunc model in the active run and (optionally) register a new version.

    Returns the MLflow ``ModelVersion`` (or the ``ModelInfo`` when not registering).
    """
    import mlflow

    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts=artifacts,
        input_example=input_example,
        signature=signature,
        registered_model_name=registered_name(model) if register else None,
        code_paths=None,
        pip_requirements=_pip_requirements(),
    )
    if not register:
        return info
    from mlflow import MlflowClient

    client = MlflowClient()
    return client.get_model_version(registered_name(model), str(info.registered_model_version))


def _pip_requirements() -> list[str]:
    """The model's environment is ppx's own; pin the packages the pyfunc imports."""
    from importlib.metadata import version

    pkgs = ("torch", "pandas", "numpy", "scikit-learn", "mlflow")
    return [f"{p}=={version(p).split('+')[0]}" for p in pkgs]


def model_uri(model: str, alias: str = CHAMPION) -> str:
    return f"models:/{registered_name(model)}@{alias}"


def get_alias_version(model: str, alias: str = CHAMPION) -> Any | None:
    """The ModelVersion behind an alias, or None if the alias (or model) does not exist."""
    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient

    try:
        return MlflowClient().get_model_version_by_alias(registered_name(model), alias)
    except MlflowException:
        return None


def missing_alias_hint(model: str, alias: str = CHAMPION) -> str:
    """Why ``model`` has no version under ``alias`` and what to pass instead: the aliases
    it has (a version the promotion gate kept out is ``challenger``), or, when the model is
    not registered at all, the registered models of the same family."""
    from mlflow.exceptions import MlflowException

    from mlflow import MlflowClient

    name = registered_name(model)
    client = MlflowClient()
    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        family = name.split("-")[1] if name.count("-") >= 1 else name
        try:
            names = sorted(m.name for m in client.search_registered_models())
        except MlflowException:
            names = []
        near = [n for n in names if n.startswith(f"ppx-{family}")] or names
        where = tracking_uri()
        if not near:
            return f"no model is registered in {where}"
        return f"{name} is not registered in {where}; registered: {', '.join(near)}"
    aliases = dict(getattr(registered, "aliases", None) or {})
    if not aliases:
        return f"{name} has versions but no alias"
    held = ", ".join(f"{a} -> v{v}" for a, v in sorted(aliases.items()))
    hint = f"its aliases: {held}"
    if CHALLENGER in aliases:
        hint += (
            f"; v{aliases[CHALLENGER]} did not pass the promotion gate (see the train "
            f"output or tag ppx.promotion): pass --alias {CHALLENGER} to use it anyway"
        )
    return hint


#: registered-model tag holding the version that was champion before the current one
PREVIOUS_CHAMPION_TAG = "ppx.previous_champion"


def set_alias(model: str, alias: str, version: str | int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    if alias == CHAMPION:
        remember_champion(client, registered_name(model), str(version))
    client.set_registered_model_alias(registered_name(model), alias, str(version))


def remember_champion(client: Any, name: str, version: str) -> None:
    """Before ``champion`` moves to ``version``, tag the model with the outgoing champion
    (explanation reports compare the two on the same rows)."""
    from mlflow.exceptions import MlflowException

    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:  # no champion yet
        return
    if str(current.version) != version:
        client.set_registered_model_tag(name, PREVIOUS_CHAMPION_TAG, str(current.version))


@dataclass(frozen=True)
class BaselineCheck:
    """One comparison of the candidate with a simple baseline of its own run, on one head.

    ``candidate`` and ``baseline`` are the same metric on the same holdout rows.
    """

    head: str
    metric: str
    candidate: float
    baseline_name: str
    baseline: float
    greater_is_better: bool = True

    @property
    def passed(self) -> bool:
        """Strictly better than the baseline (a NaN on either side fails)."""
        if self.greater_is_better:
            return bool(self.candidate > self.baseline)
        return bool(self.candidate < self.baseline)

    def describe(self) -> str:
        cmp = "beats" if self.passed else "does not beat"
        return (
            f"{self.head} {self.metric} {self.candidate:.4f} {cmp} "
            f"{self.baseline_name} {self.baseline:.4f}"
        )


@dataclass
class PromotionResult:
    promoted: bool
    alias: str
    reason: str
    candidate_score: float
    champion_score: float | None
    baselines: list[BaselineCheck] = field(default_factory=list)


def promote(
    model: str,
    version: Any,
    metric: str,
    candidate_score: float,
    score_champion: Callable[[str], float] | None,
    baselines: list[BaselineCheck],
    heads: tuple[str, ...] | None = None,
    greater_is_better: bool = True,
    min_delta: float = 0.0,
) -> PromotionResult:
    """The promotion gate: ``champion`` only for a candidate that beats both bars.

    1. every simple baseline of its own run, on every head it serves (``baselines``; a
       head of ``heads`` without any comparison fails the gate);
    2. the current champion, on the same holdout (``score_champion`` scores the
       champion's URI on it); with no champion yet, the first bar alone decides.

    Otherwise the version is registered with alias ``challenger`` and no ``champion``.
    Either way the reason is written on the version (tag ``ppx.promotion``) and the run.

    Args:
        model: short model name (``delivery``...).
        version: the candidate's ModelVersion.
        metric: the gate metric's name (for the reason text).
        candidate_score: the candidate's gate metric on the holdout.
        score_champion: scores a model URI on **the same holdout**. None means "no way to
            compare": never promote over an existing champion.
        baselines: the candidate against its run's simple baselines, per head.
        heads: the heads the model serves; each needs at least one baseline check.
        greater_is_better: direction of the gate metric.
        min_delta: how much better than the champion the candidate must be.
    """
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    name = registered_name(model)
    checked = {b.head for b in baselines}
    unchecked = [h for h in heads or () if h not in checked]
    failed = [b for b in baselines if not b.passed]
    current = get_alias_version(model, CHAMPION)
    champion_score = None
    if not baselines or unchecked:
        missing = ", ".join(unchecked) or "any head"
        promoted, reason = False, f"no baseline comparison for {missing} in this run"
    elif failed:
        promoted = False
        reason = "does not beat the baselines of its run: " + "; ".join(
            b.describe() for b in failed
        )
    elif current is None:
        promoted = True
        reason = f"no champion yet; {metric}={candidate_score:.4f} and " + "; ".join(
            b.describe() for b in baselines
        )
    elif score_champion is None:
        promoted, reason = False, "a champion exists and no holdout scorer was given"
    else:
        try:
            champion_score = float(score_champion(model_uri(model, CHAMPION)))
        except (ValueError, KeyError, TypeError) as err:
            # The champion cannot read this holdout: it was trained on other data (the
            # demo world, another brand's store). No comparison, so no promotion.
            champion_score = None
            promoted = False
            reason = (
                f"champion v{current.version} cannot score this holdout "
                f"({type(err).__name__}: {str(err)[:200]}); it was trained on other data. "
                "Keep one tracking store per store (PPX_MLFLOW_DIR) or use alias challenger"
            )
    if champion_score is not None:
        delta = candidate_score - champion_score
        promoted = bool(delta > min_delta if greater_is_better else -delta > min_delta)
        verb = "beats" if promoted else "does not beat"
        reason = (
            f"candidate {metric}={candidate_score:.4f} {verb} champion v{current.version} "
            f"{metric}={champion_score:.4f} on the same holdout"
        )
        if promoted:
            reason += "; " + "; ".join(b.describe() for b in baselines)
    alias = CHAMPION if promoted else CHALLENGER
    if promoted:
        remember_champion(client, name, str(version.version))
    client.set_registered_model_alias(name, alias, str(version.version))
    client.set_model_version_tag(name, str(version.version), "ppx.promotion", reason)
    if mlflow.active_run() is not None:
        mlflow.set_tag("ppx.promotion", f"{alias}: {reason}")
    log.info("ppx-%s v%s -> %s (%s)", model, version.version, alias, reason)
    return PromotionResult(
        promoted, alias, reason, candidate_score, champion_score, list(baselines)
    )


def train_result(
    model_name: str,
    run_id: str | None,
    metrics: dict[str, Any],
    version: Any = None,
    gate: PromotionResult | None = None,
    **details: Any,
) -> Any:
    """The :class:`~ppx.models.spec.TrainResult` of a training run (registered or not)."""
    from ppx.models.spec import TrainResult

    flat = {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and v is not None
    }
    return TrainResult(
        model=model_name,
        run_id=run_id,
        version=None if version is None else str(version.version),
        alias=None if gate is None else gate.alias,
        promoted=bool(gate and gate.promoted),
        reason="not registered" if gate is None else gate.reason,
        metrics=flat,
        details={**details, **({"promotion": gate} if gate is not None else {})},
    )


# --- Optuna --------------------------------------------------------------------------


def optuna_storage(settings: Settings | None = None) -> str:
    """``PPX_OPTUNA_STORAGE`` (any SQLAlchemy URL) or a SQLite file under mlflow/."""
    s = settings or get_settings()
    url = s.optuna_storage or s.default_optuna_storage
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return url


def run_study(
    model: str,
    objective: Callable[[Any], float],
    n_trials: int,
    direction: str = "maximize",
    study_name: str | None = None,
    storage: str | None = None,
    seed: int = 0,
    show_progress_bar: bool = True,
) -> Any:
    """Run an Optuna study whose trials are nested MLflow runs of the active run.

    The best parameters and value are logged on the parent run (params ``best.*`` and
    ``best_params.json``). Call inside :func:`start_run`.
    """
    import optuna

    import mlflow

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name or f"{registered_name(model)}-{mlflow.active_run().info.run_id[:8]}",
        storage=storage or optuna_storage(),
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        load_if_exists=True,
    )

    def wrapped(trial):
        with start_run(model, run_name=f"trial-{trial.number}", nested=True):
            value = objective(trial)
            mlflow.log_params(trial.params)
            mlflow.log_metric("objective", value)
        return value

    study.optimize(wrapped, n_trials=n_trials, show_progress_bar=show_progress_bar)
    mlflow.log_params({f"best.{k}": v for k, v in study.best_params.items()})
    mlflow.log_metric("best_objective", study.best_value)
    log_json({"best_params": study.best_params, "best_value": study.best_value}, "best_params.json")
    return study
