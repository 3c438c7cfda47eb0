"""``make demo``: the whole pipeline on embedded defaults (local files, SQLite, no server).

1. simulate (or reuse) the default world and validate it against the schema;
2. print its headline rates and record it in an MLflow run (experiment ``ppx-data``);
3. train every model of the registry, register it and run the promotion gate;
4. build the SHAP report of each trained tabular model (text models log their own).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console

from ppx import tracking
from ppx.data.io import load_manifest, load_tables
from ppx.data.summary import world_summary
from ppx.data.world import WorldParams
from ppx.data.world_cli import build_world

console = Console()


def _reuse(out: Path, params: WorldParams) -> bool:
    """A world already on disk with the same parameters is reused (same seed, same data)."""
    try:
        return load_manifest(out)["params"] == params.to_dict()
    except (ValueError, OSError, json.JSONDecodeError):
        return False


def run_demo(out: Path, customers: int, seed: int) -> dict[str, dict[str, float]]:
    from ppx.terminal import print_table

    started = time.perf_counter()
    params = WorldParams(n_customers=customers, seed=seed)
    if _reuse(out, params):
        console.print(f"reusing the world in {out} (same parameters)")
    else:
        build_world(customers=customers, seed=seed, months=params.months, out=out, overwrite=True)
    with console.status("validating the canonical tables"):
        tables = load_tables(out)
    summary = world_summary(tables)
    print_table(
        "demo world",
        [{"measure": k, "value": v} for k, v in summary.items()],
        ["measure", "value"],
    )
    tracking.configure()
    with tracking.start_run("data", run_name="demo-world", world_path=out):
        import mlflow

        mlflow.log_params({"customers": customers, "seed": seed, "world": str(out)})
        mlflow.log_metrics(summary)
        mlflow.log_artifact(str(out / "manifest.json"))

    from ppx.models import registry

    results: dict[str, dict[str, float]] = {}
    runs: dict[str, str | None] = {}
    for spec in registry.specs():
        console.rule(f"[bold]{spec.name}")
        t = time.perf_counter()
        trained = spec.load("demo")(out)
        console.print(f"ppx-{spec.name} v{trained.version} -> {trained.alias}: {trained.reason}")
        results[spec.name] = {**trained.headline(), "seconds": time.perf_counter() - t}
        runs[spec.name] = trained.run_id
    if results:
        print_table(
            "models trained on the demo world",
            [
                {"model": name, "measure": key, "value": value}
                for name, metrics in results.items()
                for key, value in metrics.items()
            ],
            ["model", "measure", "value"],
        )
    from ppx.explain.report import build_report

    for name, run_id in runs.items():  # the model just trained, champion or not
        spec = registry.get(name)
        if not spec.tabular:  # a text model: its own report is an artifact of its run
            console.print(f"{name}: no SHAP report (run {run_id}). {spec.explain_note}")
            continue
        path = build_report(name, out, run_id=run_id)
        console.print(f"{name}: SHAP report at {path}")
    _portal_link(out)
    console.print(
        f"demo finished in {time.perf_counter() - started:,.0f} s; browse runs with `make mlflow-ui`"
    )
    return results


def _portal_link(out: Path) -> None:
    """Print a magic link to the tracking page of a demo customer with a late order."""
    from ppx.portal.demo import demo_link

    link = demo_link(out)
    console.rule("[bold]the shopper's side")
    console.print(
        f"order {link.order_id} ({link.story}): start the model service (`make serve`) and "
        f"the portal (`PPX_PORTAL_STORE={out} make serve-portal`), then open\n{link.url}",
        soft_wrap=True,
    )
    _account_link(out)


def _account_link(out: Path) -> None:
    """Register the world's subscriptions for the portal and print a link to an account."""
    from rich.progress import Progress

    from ppx.config import get_settings
    from ppx.portal.demo import LOCAL_PORTAL, ensure_secret
    from ppx.portal.demo_account import account_link

    settings = ensure_secret(get_settings())
    if not settings.portal_url:
        settings = settings.model_copy(update={"portal_url": LOCAL_PORTAL})
    with Progress(transient=True) as bar:
        task = bar.add_task("registering subscriptions and points for the portal", total=None)
        link = account_link(out, settings, lambda i, n: bar.update(task, completed=i, total=n))
    console.print(
        f"the account of customer {link.customer_id} (subscriptions, rewards, messages; "
        f"{link.subscriptions:,} running subscriptions registered, {link.seeded:,} points "
        "balances loaded; save offers appear with "
        f"PPX_POLICY=src/rules/policy/save_offers.yaml):\n{link.url}",
        soft_wrap=True,
    )
