"""``ppx tune MODEL``: one Optuna study for any model with a tuning adapter, shared by
worker processes and machines (:mod:`ppx.tuning`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ppx.config import DEFAULT_WORLD_SHOWN, world_or_default


def tune(
    model: str = typer.Argument(..., help="A model with tuning: delivery, churn, fraud, recs."),
    world: Path | None = typer.Option(
        None, "--world", help="World or store folder.", show_default=DEFAULT_WORLD_SHOWN
    ),
    trials: int = typer.Option(
        10, "--trials", min=0, help="Trials this command adds to the study, over its workers."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Where to write the best configuration as JSON (default <model>_params.json).",
    ),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Optuna RDB storage URL (default PPX_OPTUNA_STORAGE, else SQLite under mlflow/);"
        " postgresql://USER@HOST/DB for several workers or machines.",
    ),
    study: str | None = typer.Option(
        None, "--study", help="Join this study (same name + storage on every machine)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes on this machine."),
    register: bool = typer.Option(
        False,
        "--register/--no-register",
        help="Train the study's best trial, register it and run the promotion gate (once "
        "per study and best trial, whichever machine asks first).",
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Max epochs of every fit (default the config's)."
    ),
    seed: int = typer.Option(0, "--seed", help="Sampler seed of the first worker (i: seed+i)."),
    baseline: str | None = typer.Option(
        None,
        "--baseline",
        help="Tune this baseline learner (delivery, fraud: lightgbm) with the same budget and "
        "validation objective, in a study of its own; never registered.",
    ),
) -> None:
    """Tune a model on the world's validation split with Optuna (never the test split).

    Trials are nested MLflow runs under one parent run per study (ppx-<model>). The best
    configuration is written to --out and tagged on the parent run (best.*); --register
    trains it with the model's own training (test metrics, baselines, promotion gate).
    """
    world = world_or_default(world)
    from ppx import tuning
    from ppx.terminal import console, fail, print_table, print_train_result

    try:
        model_how = tuning.how_to_tune(model)
        how = tuning.how_to_tune(model, baseline)
    except tuning.TuningError as err:
        fail(str(err))
    if not ((world / "tables").exists() or (world / "manifest.json").exists()):
        fail(f"world {world} not found; create it with `ppx data world --out {world}`")
    base = model_how.default_config()
    if epochs is not None:
        base = model_how.with_epochs(base, epochs)
    out = out or Path(f"{model}_{baseline}_params.json" if baseline else f"{model}_params.json")
    try:
        res = tuning.tune(
            model,
            world,
            trials,
            base,
            storage,
            study,
            workers,
            register=register,
            seed=seed,
            baseline=baseline,
        )
    except tuning.TuningError as err:
        fail(str(err))
    how.write_params(
        res.config,
        out,
        **{
            f"best_{how.metric_key}": res.best_value,
            "trials": res.trials_total,
            "study": res.study_name,
            "world": str(world),
            "mlflow_run_id": res.parent_run_id,
        },
    )
    print_table(
        f"study {res.study_name}",
        [
            {
                "storage": res.storage,
                "trials run here": res.trials_run,
                "trials in study": res.trials_total,
                "best trial": res.best_number,
                how.metric: res.best_value,
            }
        ],
    )
    console.print(f"best parameters {res.best_params}")
    register_later = (
        f"ppx tune {model} --world {world} --storage {res.storage} --study {res.study_name} "
        "--trials 0 --register" + (f" --epochs {epochs}" if epochs is not None else "")
    )
    if baseline is not None:
        console.print(f"wrote {out} (the {baseline} baseline's best parameters)")
    else:
        hint = how.train_hint.format(world=world, out=out) if how.train_hint else register_later
        console.print(f"wrote {out}; train with `{hint}`")
    if res.reused_version is not None:
        console.print(
            f"trial {res.best_number} is already registered as ppx-{model} v{res.reused_version}"
        )
    if res.train is not None:
        print_train_result(res.train)
    if res.failed_workers:
        fail(
            "workers failed: " + ", ".join(res.failed_workers) + "; nothing registered. "
            f"Register the study's best with `{register_later}`"
        )


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)
