"""Optuna studies shared by many worker processes and machines: the one tuning code path
of every model (``ppx tune MODEL``).

A model takes part through its spec's :class:`Tuning` adapter (its validation objective
and search space, the best trial's config, its default config); everything else here is
the same for every model, including the final fit, which is the model's own ``train``.

One study lives in an RDB storage (SQLite for one process, PostgreSQL for many). Each
``ppx tune MODEL`` command opens the study by name (creating it the first time), runs
its share of the trials in ``--workers`` processes, and every trial is a nested MLflow
run under ONE parent run per study, whose id is kept on the study itself so that
commands on other machines nest their trials under the same parent.

The best trial is trained and registered once per study: registration runs under a
PostgreSQL advisory lock keyed by the study, and a version already tagged with the
study's best trial number is reused rather than registered again.

A worker that dies (killed, machine lost) stops sending heartbeats; the next trial any
worker starts marks its trial FAIL and queues one retry of the same parameters, so a
dead worker never leaves a trial RUNNING forever.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ppx import tracking
from ppx.local_postgres import with_driver

log = logging.getLogger(__name__)

#: Seconds between a running trial's heartbeats.
HEARTBEAT_INTERVAL = 20
#: Seconds without a heartbeat after which a running trial counts as dead.
GRACE_PERIOD = 90
#: How often a dead worker's trial is re-queued with the same parameters.
MAX_RETRY = 1
#: Study user attribute holding the parent MLflow run of all the study's trials.
PARENT_RUN_ATTR = "ppx.mlflow_parent_run_id"
#: Model-version tags naming the study and trial a registered version was trained from.
STUDY_TAG = "ppx.optuna_study"
TRIAL_TAG = "ppx.optuna_trial"
#: Run tag and study user attribute naming what a study tunes: ``ppx`` (the model) or a
#: baseline (``lightgbm``); one study never mixes two search spaces.
LEARNER_TAG = "ppx.learner"
LEARNER_ATTR = "ppx.learner"


class TuningError(ValueError):
    """A tuning request that cannot run as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class Tuning:
    """How a model is tuned: the adapter between the model and the one tuning code path
    (a model spec's ``tuning``). Keep it light to import: the objective's data is loaded
    by ``objective`` in each worker process, not here. The final fit and registration are
    the model's own ``train`` (``ModelSpec.run_train``) with ``config_of``'s config.

    Attributes:
        objective: ``(world_path, base_config) -> (trial -> float)``: loads the world once
            and returns the objective on its validation split (never the test split).
        config_of: ``(base_config, best_params) -> config`` for the final fit.
        default_config: ``() -> config`` the search starts from when none is given.
        direction: ``"maximize"`` or ``"minimize"``.
        metric: the objective's name for tables and logs (``validation roc_auc``).
        with_epochs: ``(config, epochs) -> config`` with every fit's epoch budget set
            (``ppx tune --epochs``); None for a baseline (the model's applies).
        metric_key: the objective as a JSON key of ``--out`` (``best_<metric_key>``).
        save_params: ``(config, path, **extra) -> None`` writing ``--out``; default
            :func:`save_best` (``{"config": {...}, **extra}``).
        train_hint: how to train with the ``--out`` file (``{world}``, ``{out}``
            filled in), when the model's train command reads one.
        baselines: baseline learners tuned with the same budget on the same validation
            objective (``ppx tune MODEL --baseline lightgbm``), each a Tuning whose
            ``config_of`` puts its best parameters where the benchmark reads them. A
            baseline study is never registered.
    """

    objective: Callable[[Path, Any], Callable[[Any], float]]
    config_of: Callable[[Any, dict[str, Any]], Any]
    default_config: Callable[[], Any]
    direction: str
    metric: str
    with_epochs: Callable[[Any, int], Any] | None = None
    metric_key: str = "objective"
    save_params: Callable[..., None] | None = None
    train_hint: str = ""
    baselines: Mapping[str, Tuning] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"Tuning.direction must be maximize or minimize: {self.direction}")

    def write_params(self, config: Any, path: Path, **extra: Any) -> None:
        (self.save_params or save_best)(config, path, **extra)


def config_dict(config: Any) -> dict[str, Any]:
    """A model config (a dataclass) or a baseline's parameters as a plain dict."""
    import dataclasses

    if isinstance(config, Mapping):
        return dict(config)
    return config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)


def save_best(config: Any, path: Path, **extra: Any) -> None:
    """Write the best configuration as JSON: ``{"config": {...every field...}, **extra}``."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"config": config_dict(config), **extra}, indent=2, default=str))


def how_to_tune(model: str, baseline: str | None = None) -> Tuning:
    """The model's :class:`Tuning` (or its ``baseline``'s); a TuningError naming what can
    be tuned otherwise."""
    from ppx.models import registry

    try:
        spec = registry.get(model)
    except KeyError:
        raise TuningError(
            f"unknown model {model!r}; models with tuning: {', '.join(tunable_models())}"
        ) from None
    if spec.tuning is None:
        raise TuningError(
            f"model {model!r} has no tuning (its spec sets no ModelSpec.tuning); models "
            f"with tuning: {', '.join(tunable_models())}"
        )
    how = spec.load("tuning")
    if not isinstance(how, Tuning):
        raise TuningError(f"model {model!r}: ModelSpec.tuning is {type(how).__name__}, not Tuning")
    if baseline is None:
        return how
    if baseline not in how.baselines:
        known = ", ".join(how.baselines) or "none"
        raise TuningError(f"model {model!r} has no baseline {baseline!r} to tune; it has: {known}")
    return how.baselines[baseline]


def tunable_models() -> list[str]:
    from ppx.models import registry

    return [s.name for s in registry.specs() if s.tuning is not None]


@dataclass
class TuneResult:
    """What one ``ppx tune`` command did to the study."""

    study_name: str
    storage: str
    parent_run_id: str
    trials_run: int
    trials_total: int
    best_number: int
    best_value: float
    best_params: dict[str, Any]
    config: Any
    train: Any = None  # TrainResult of the registered best trial, when registering
    reused_version: str | None = None  # the best trial was already registered as this
    failed_workers: list[str] = field(default_factory=list)


# --- storage ----------------------------------------------------------------------------


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def safe_url(url: str) -> str:
    """The storage URL with any password masked (for logs, tags and tables)."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def check_storage(url: str) -> None:
    """A storage URL SQLAlchemy can read, with a driver installed (before anything runs)."""
    import sqlalchemy as sa

    hint = "use sqlite:///PATH (one worker) or postgresql://USER:PASSWORD@HOST:PORT/DB"
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise TuningError(f"--storage {url!r} is not a database URL; {hint}") from None
    try:
        parsed.get_dialect()
    except (sa.exc.NoSuchModuleError, ImportError) as err:
        raise TuningError(
            f"--storage {safe_url(url)}: no database driver for {parsed.drivername!r} "
            f"({err}); {hint}"
        ) from None
    if is_sqlite(url) and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).parent
        if not folder.is_dir():
            raise TuningError(f"--storage {safe_url(url)}: folder {folder} does not exist")
    elif is_sqlite(url):
        raise TuningError(
            f"--storage {safe_url(url)}: an in-memory SQLite study dies with the command "
            "and worker processes cannot see it; give a file: sqlite:///PATH"
        )


def check_workers(url: str, workers: int) -> None:
    """SQLite takes one writer at a time: more than one worker needs a database server."""
    if workers < 1:
        raise TuningError(f"--workers must be at least 1, got {workers}")
    if workers > 1 and is_sqlite(url):
        raise TuningError(
            f"{workers} workers cannot share the SQLite study storage {safe_url(url)}: SQLite "
            "locks the whole file on every write, so parallel workers fail with 'database is "
            "locked'. Use one worker, or a PostgreSQL storage: --storage "
            "postgresql://USER@HOST/DB (see docs/shared_servers.md)"
        )


def storage(
    url: str,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = GRACE_PERIOD,
    max_retry: int = MAX_RETRY,
) -> Any:
    """An Optuna RDB storage with heartbeats, so a dead worker's trial does not stay RUNNING.

    ``pool_pre_ping`` replaces connections a database server closed while a long trial
    ran (idle timeouts, a restarted server) instead of failing the next write.
    """
    import optuna

    engine_kwargs = {} if is_sqlite(url) else {"pool_pre_ping": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=max_retry
            ),
        )


@contextlib.contextmanager
def study_lock(url: str, study_name: str) -> Iterator[None]:
    """Hold a PostgreSQL session advisory lock keyed by the study for the block.

    Serialises the study's one-time steps (creating the parent run, registering the best
    trial) across processes and machines. SQLite studies have one process: no lock.
    """
    if not is_postgres(url):
        yield
        return
    import sqlalchemy as sa

    key = int.from_bytes(hashlib.sha256(f"ppx-tune:{study_name}".encode()).digest()[:8], "big")
    key -= 1 << 63  # a signed bigint
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()


def fail_stale_trials(study: Any) -> None:
    """Mark trials whose heartbeat stopped longer than the grace period ago FAIL (and queue
    their retry). Workers do this before each trial; a command does it on opening and
    finishing a study too, so a ``--trials 0`` command also clears dead workers' trials."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def new_study_name(model: str, baseline: str | None = None) -> str:
    learner = f"-{baseline}" if baseline else ""
    return f"{tracking.registered_name(model)}{learner}-{uuid.uuid4().hex[:8]}"


def open_study(
    model: str,
    url: str,
    study_name: str,
    direction: str,
    world_path: Path,
    learner: str = "ppx",
) -> Any:
    """Create the study (or load it), and its parent MLflow run the first time."""
    import optuna
    import sqlalchemy as sa

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return _open_study(model, url, study_name, direction, world_path, learner)
    except sa.exc.OperationalError as err:
        reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
        raise TuningError(f"cannot open the study storage {safe_url(url)}: {reason}") from None


def _open_study(
    model: str, url: str, study_name: str, direction: str, world_path: Path, learner: str
) -> Any:
    import optuna

    with study_lock(url, study_name):
        study = optuna.create_study(
            study_name=study_name, storage=storage(url), direction=direction, load_if_exists=True
        )
        learner_here = study.user_attrs.get(LEARNER_ATTR, "ppx")
        if PARENT_RUN_ATTR in study.user_attrs and learner_here != learner:
            raise TuningError(
                f"study {study_name} in {safe_url(url)} tunes {learner_here}, not {learner}: "
                "one study holds one search space; use another --study name"
            )
        if study.direction.name.lower() != direction:
            raise TuningError(
                f"study {study_name} in {safe_url(url)} {study.direction.name.lower()}s its "
                f"objective; {model} tuning must {direction}: use another --study name"
            )
        if PARENT_RUN_ATTR not in study.user_attrs:
            tags = {
                STUDY_TAG: study_name,
                "ppx.optuna_storage": safe_url(url),
                LEARNER_TAG: learner,
            }
            study.set_user_attr(LEARNER_ATTR, learner)
            with tracking.start_run(
                model, run_name=f"tune-{study_name}", world_path=world_path, tags=tags
            ) as run:
                study.set_user_attr(PARENT_RUN_ATTR, run.info.run_id)
    return study


def shares(trials: int, workers: int) -> list[int]:
    """``trials`` split over ``workers`` as evenly as possible (the first take the rest)."""
    base, rest = divmod(trials, workers)
    return [base + (i < rest) for i in range(workers) if base + (i < rest) > 0]


# --- workers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker process needs (picklable: workers start with ``spawn``)."""

    model: str
    world_path: Path
    storage_url: str
    study_name: str
    trials: int
    seed: int
    base_config: Any
    threads: int = 1
    baseline: str | None = None


def run_worker(job: WorkerJob, progress: bool = False) -> int:
    """Run ``job.trials`` trials of the study in this process; returns how many ran.

    Each trial is a nested MLflow run of the study's parent run, tagged with the study,
    the trial number and the worker (host:pid).
    """
    import optuna
    import torch

    import mlflow

    threads = torch.get_num_threads()
    torch.set_num_threads(job.threads)  # N workers on N cores: more threads only contend
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tracking.configure()
    objective_of = how_to_tune(job.model, job.baseline).objective(job.world_path, job.base_config)
    study = optuna.load_study(
        study_name=job.study_name,
        storage=storage(job.storage_url),
        sampler=optuna.samplers.TPESampler(seed=job.seed),
    )
    parent = study.user_attrs[PARENT_RUN_ATTR]
    experiment = tracking.get_or_create_experiment(job.model)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    world_hash = tracking.world_hash(job.world_path)

    def objective(trial) -> float:
        tags = {
            "ppx.model": job.model,
            STUDY_TAG: job.study_name,
            TRIAL_TAG: str(trial.number),
            "ppx.worker": worker,
            LEARNER_TAG: job.baseline or "ppx",
            "mlflow.parentRunId": parent,
        }
        if world_hash is not None:  # machines must tune on the same data: this shows it
            tags["ppx.world_hash"] = world_hash
        run = mlflow.MlflowClient().create_run(
            experiment, tags=tags, run_name=f"trial-{trial.number}"
        )
        trial.set_user_attr("mlflow_run_id", run.info.run_id)
        with mlflow.start_run(run_id=run.info.run_id):
            value = float(objective_of(trial))
            mlflow.log_params(trial.params)
            mlflow.log_metric("objective", value)
        return value

    try:
        study.optimize(objective, n_trials=job.trials, show_progress_bar=progress)
    finally:
        torch.set_num_threads(threads)  # a worker run in the command's own process
    return job.trials


def _worker_main(job: WorkerJob) -> None:  # the target of a spawned worker process
    run_worker(job)


def _finished(study: Any, since: int) -> int:
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    return sum(t.number >= since for t in study.get_trials(deepcopy=False, states=done))


def run_workers(jobs: list[WorkerJob], study: Any, progress: bool = True) -> list[str]:
    """Run the jobs in spawned processes, showing the study's progress; returns failures."""
    import multiprocessing as mp

    from rich.progress import Progress

    from ppx.terminal import console

    since = len(study.get_trials(deepcopy=False))
    total = sum(j.trials for j in jobs)
    ctx = mp.get_context("spawn")  # no forked torch / SQLAlchemy state in the workers
    procs = [
        ctx.Process(target=_worker_main, args=(j,), name=f"ppx-tune-{i}")
        for i, j in enumerate(jobs)
    ]
    for p in procs:
        p.start()
    with Progress(console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task(f"{len(procs)} workers on {study.study_name}", total=total)
        while any(p.is_alive() for p in procs):
            bar.update(task, completed=min(total, _finished(study, since)))
            time.sleep(1.0)
    for p in procs:
        p.join()
    return [f"{p.name} (exit code {p.exitcode})" for p in procs if p.exitcode != 0]


# --- the command ------------------------------------------------------------------------


def tune(
    model: str,
    world_path: Path,
    trials: int,
    base_config: Any = None,
    storage_url: str | None = None,
    study_name: str | None = None,
    workers: int = 1,
    register: bool = False,
    seed: int = 0,
    progress: bool = True,
    baseline: str | None = None,
) -> TuneResult:
    """Run ``trials`` more trials of a study in ``workers`` processes, then (optionally)
    train and register the study's best trial once.

    Args:
        model: a registered model whose spec has ``tuning``.
        world_path: the world or store the objective reads (the same data on every machine).
        trials: trials this command adds to the study, split over its workers; 0 runs none
            (use it with ``register`` to register the best of a study others filled).
        base_config: the model config the search starts from (fields not searched).
        storage_url: the study's RDB storage; default ``PPX_OPTUNA_STORAGE`` or SQLite.
        study_name: join this study; default a new one named ``ppx-<model>-<8 hex>``.
        workers: worker processes on this machine (more than one needs a server database).
        register: train the best trial's config, register it and run the promotion gate,
            unless that trial is already registered.
        seed: sampler seed of the first worker (worker i uses seed + i).
        baseline: tune this baseline learner of the model (its ``Tuning.baselines``)
            instead of the model; its study is never registered.
    """
    how = how_to_tune(model, baseline)
    if register and baseline is not None:
        raise TuningError(
            f"--register trains and registers ppx-{model}; a --baseline {baseline} study only "
            "finds the baseline's parameters (written to --out)"
        )
    base_config = base_config if base_config is not None else how.default_config()
    url = with_driver(storage_url or tracking.optuna_storage())
    check_storage(url)
    check_workers(url, workers)
    if trials < 0:
        raise TuningError(f"--trials must be 0 or more, got {trials}")
    tracking.configure()
    name = study_name or new_study_name(model, baseline)
    study = open_study(model, url, name, how.direction, world_path, baseline or "ppx")
    fail_stale_trials(study)
    jobs = [
        WorkerJob(model, Path(world_path), url, name, n, seed + i, base_config, baseline=baseline)
        for i, n in enumerate(shares(trials, workers))
    ]
    failed: list[str] = []
    if len(jobs) == 1:
        run_worker(jobs[0], progress=progress)
    elif jobs:
        failed = run_workers(jobs, study, progress=progress)
    return finish(
        model, study, url, world_path, base_config, trials, register, failed, progress, baseline
    )


def finish(
    model: str,
    study: Any,
    url: str,
    world_path: Path,
    base_config: Any,
    trials_run: int,
    register: bool,
    failed: list[str],
    progress: bool,
    baseline: str | None = None,
) -> TuneResult:
    """Record the study's best trial on the parent run; register it once when asked."""
    from optuna.trial import TrialState

    import mlflow

    fail_stale_trials(study)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise TuningError(
            f"study {study.study_name} has no completed trial"
            + (f"; failed workers: {', '.join(failed)}" if failed else "")
        )
    best = study.best_trial
    config = how_to_tune(model, baseline).config_of(base_config, best.params)
    parent = study.user_attrs[PARENT_RUN_ATTR]
    client = mlflow.MlflowClient()
    if parent_run_here(client, parent):
        for k, v in best.params.items():
            client.set_tag(parent, f"best.{k}", str(v))
        client.set_tag(parent, "best.trial", str(best.number))
        client.log_metric(parent, "best_objective", float(best.value), step=len(study.trials))
    result = TuneResult(
        study_name=study.study_name,
        storage=safe_url(url),
        parent_run_id=parent,
        trials_run=trials_run,
        trials_total=len(study.trials),
        best_number=best.number,
        best_value=float(best.value),
        best_params=dict(best.params),
        config=config,
        failed_workers=failed,
    )
    if register and not failed:
        with study_lock(url, study.study_name):
            existing = registered_trial(model, study.study_name, best.number)
            if existing is not None:
                result.reused_version = existing
            else:
                result.train = register_best(model, world_path, config, study, best, progress)
    return result


def parent_run_here(client: Any, run_id: str) -> bool:
    """Whether the study's parent run is in this tracking store. It is not when machines
    log to stores of their own (no shared tracking server): the first machine's store
    has it, and the others' trial runs only name it."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException:
        log.warning(
            "the study's parent run %s is not in this tracking store (%s); share one "
            "tracking server between tuning machines to see all trials under it",
            run_id,
            tracking.tracking_uri(),
        )
        return False
    return True


def registered_trial(model: str, study_name: str, number: int) -> str | None:
    """The version already registered from this study's trial ``number``, if any."""
    import mlflow

    name = tracking.registered_name(model)
    for mv in mlflow.MlflowClient().search_model_versions(f"name='{name}'"):
        if mv.tags.get(STUDY_TAG) == study_name and mv.tags.get(TRIAL_TAG) == str(number):
            return str(mv.version)
    return None


def register_best(model: str, world_path: Path, config: Any, study: Any, best: Any, progress: bool):
    """Train the best trial's config on the world, register it and run the promotion gate."""
    import mlflow
    from ppx.models import registry

    result = registry.get(model).run_train(world_path, cfg=config, register=True, progress=progress)
    client = mlflow.MlflowClient()
    parent = study.user_attrs[PARENT_RUN_ATTR]
    if result.version is not None:
        name = tracking.registered_name(model)
        client.set_model_version_tag(name, result.version, STUDY_TAG, study.study_name)
        client.set_model_version_tag(name, result.version, TRIAL_TAG, str(best.number))
        if parent_run_here(client, parent):
            client.set_tag(parent, "ppx.registered_version", result.version)
    if result.run_id is not None:
        client.set_tag(result.run_id, STUDY_TAG, study.study_name)
        client.set_tag(result.run_id, TRIAL_TAG, str(best.number))
        client.set_tag(result.run_id, "ppx.tune_parent_run_id", parent)
    return result
