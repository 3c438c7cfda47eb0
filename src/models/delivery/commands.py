"""CLI commands of the delivery model and ``demo()`` for ``make demo``.

Registered by :mod:`ppx.cli`: ``ppx train delivery``, ``ppx evaluate delivery``,
``ppx bench delivery`` (``ppx tune delivery`` is :mod:`ppx.tune_commands`). Heavy imports
stay inside.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ppx.config import DEFAULT_WORLD_SHOWN, world_or_default


def _world(path: Path | None) -> Path:
    from ppx.terminal import fail

    path = world_or_default(path)
    if not (path / "manifest.json").exists() and not (path / "tables").exists():
        fail(f"no world at {path}; create one with `ppx data world --out {path}`")
    return path


def _load_registered(world: Path | None, alias: str):
    """The registered model under ``alias`` and the world's data at the model's ``d_max``."""
    import mlflow
    from ppx import tracking
    from ppx.models.delivery.config import DeliveryConfig
    from ppx.models.delivery.train import load_data
    from ppx.terminal import fail

    tracking.configure()
    if tracking.get_alias_version("delivery", alias) is None:
        fail(
            f"ppx-delivery has no version with alias {alias!r} "
            f"({tracking.missing_alias_hint('delivery', alias)}); run `ppx train delivery`"
        )
    model = mlflow.pyfunc.load_model(tracking.model_uri("delivery", alias))
    model = model.unwrap_python_model().model
    _t, _truth, data = load_data(_world(world), DeliveryConfig(**{"d_max": model.cfg.d_max}))
    model.history = data.history
    return model, data


def train_delivery(
    world: Path | None = typer.Option(
        None, "--world", help="World folder.", show_default=DEFAULT_WORLD_SHOWN
    ),
    trials: int = typer.Option(0, "--trials", min=0, help="Optuna trials before the fit."),
    epochs: int = typer.Option(12, "--epochs", min=1),
) -> None:
    """Train the delivery model, log it to ppx-delivery, register it and run the gate."""
    from ppx.models.delivery.config import DeliveryConfig
    from ppx.models.delivery.train import train
    from ppx.terminal import print_train_result

    print_train_result(train(_world(world), DeliveryConfig(epochs=epochs), trials=trials))


def evaluate_delivery(
    world: Path | None = typer.Option(None, "--world", show_default=DEFAULT_WORLD_SHOWN),
    alias: str = typer.Option("champion", "--alias"),
) -> None:
    """Score the registered model (by alias) on the world's test months."""
    from ppx.models.delivery.train import evaluate_model
    from ppx.terminal import print_table

    model, data = _load_registered(world, alias)
    m = evaluate_model(model, data)
    print_table(f"ppx-delivery@{alias}", [{"metric": k, "value": v} for k, v in m.items()])


def bench_delivery(
    world: Path | None = typer.Option(
        None,
        "--world",
        help="World folder (the default one unless --olist is given).",
        show_default=DEFAULT_WORLD_SHOWN,
    ),
    olist: Path | None = typer.Option(None, "--olist", help="Olist folder (CSV files)."),
    trials: int = typer.Option(5, "--trials", min=0, help="Optuna trials for ppx and LightGBM."),
    json_out: Path | None = typer.Option(None, "--json", help="Write figures as JSON."),
    plot: Path | None = typer.Option(
        None, "--plot", help="With --olist: write the trade-off curves to this PNG."
    ),
    target_on_time: float | None = typer.Option(
        None,
        "--target-on-time",
        min=0.5,
        max=0.999,
        help="With --olist: the promise policy's on-time target (default: the retailer's"
        " own rate over the validation months).",
    ),
    shift: bool = typer.Option(
        False,
        "--shift",
        help="The world has a disruption: on-time rate of the 90 % promise week by week,"
        " frozen rule vs online recalibration (no retraining).",
    ),
) -> None:
    """ppx vs carrier SLA, lane quantile, LightGBM and the oracle on a time split; on
    Olist, every promise rule's trade-off curve and its in-advance operating point."""
    from ppx.models.delivery.bench import run
    from ppx.terminal import bench_tables, write_bench_json

    world_path = _world(world) if world is not None or olist is None else None
    if world is None and olist is None:
        world_path = _world(None)
    details: dict = {}
    payload = run(
        world_path,
        olist,
        trials,
        command=" ".join(["ppx", *sys.argv[1:]]),
        plot=plot,
        shift=shift,
        details=details,
        target_on_time=target_on_time,
    )
    bench_tables(payload)
    if "weeks" in details:
        from ppx.terminal import print_table

        weeks = details["weeks"].round(4)
        print_table(
            "shift: on-time rate of the 90 % promise by purchase week", weeks.to_dict("records")
        )
        if json_out is not None:
            weeks.to_csv(json_out.with_name(json_out.stem + "_weeks.csv"), index=False)
    write_bench_json(json_out, payload)


def monitor_delivery(
    world: Path | None = typer.Option(
        None, "--world", help="World or store folder.", show_default=DEFAULT_WORLD_SHOWN
    ),
    alias: str = typer.Option("champion", "--alias"),
    weeks: int = typer.Option(8, "--weeks", min=1, help="Recent purchase weeks to check."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="HTML report (default delivery_monitor.html in the reports folder, PPX_REPORTS_DIR).",
    ),
) -> None:
    """Realised on-time rate of the registered model's promises by carrier, lane and week
    against the stated rate (alert outside the band), and input drift (PSI) against the
    training data, for the last ``--weeks`` weeks of orders."""
    import numpy as np
    import pandas as pd

    from ppx.data import columns as C
    from ppx.features import delivery as fd
    from ppx.models.delivery import monitor as mon
    from ppx.models.delivery.train import checkout_rows
    from ppx.monitoring import report_path
    from ppx.terminal import fail, print_table

    model, data = _load_registered(world, alias)
    rows = checkout_rows(data.test, delivered=False)
    now = max(rows[C.ORDERED_AT].max(), rows[C.DELIVERED_AT].max())
    rows = rows[rows[C.ORDERED_AT] >= now - pd.Timedelta(weeks=weeks)].reset_index(drop=True)
    if rows.empty:
        fail(f"no orders in the last {weeks} weeks of {world}")
    feats = fd.delivery_features(rows, data.history)
    cdf = model.cdf(feats)
    target = float(model.cfg.target)
    promises = rows.assign(
        promise_days=model.promise(cdf, target, np.zeros(len(rows), dtype=bool)),
        promise_target=target,
        lane=rows[C.WAREHOUSE] + " > " + rows[C.DEST_REGION],
    )
    args = dict(now=now, ordered_col=C.ORDERED_AT, delivered_col=C.DELIVERED_AT)
    by_carrier = mon.on_time_by(promises, [C.CARRIER], **args)
    by_lane = mon.on_time_by(promises, ["lane"], **args)
    # Drift on the network's own inputs (as encoded for it), against the training sample
    # kept for SHAP; checkout rows only on both sides (the sample also holds in-transit
    # snapshots, whose elapsed-time inputs differ by design).
    ref = model.background()
    ref = ref[ref["in_transit"] <= ref["in_transit"].min()]
    cur = model.features_from(feats)
    codes = [c for c in ref.columns if c.endswith("_code")]
    ref[codes] = ref[codes].round().astype(int).astype(str)
    cur[codes] = cur[codes].round().astype(int).astype(str)
    drift = mon.feature_drift(ref, cur)
    alerts = int(by_carrier["alert"].sum() + by_lane["alert"].sum())
    summary = [
        f"{len(rows):,} orders of the last {weeks} weeks, scored as known at {now:%Y-%m-%d %H:%M};"
        f" stated on-time rate {target:.0%}.",
        f"{alerts} carrier/lane-weeks outside their band (stated rate"
        f" +- max({mon.MIN_BAND:.0%}, {mon.Z:g} binomial sd)).",
        f"{int((drift['level'] == 'major').sum())} features with major drift (PSI >"
        f" {mon.PSI_MAJOR}), {int((drift['level'] == 'moderate').sum())} moderate.",
    ]
    path = mon.write_report(
        report_path("delivery", out),
        {"by carrier and week": by_carrier, "by lane and week": by_lane, "input drift": drift},
        f"ppx-delivery@{alias}: promises and inputs",
        summary,
    )
    print_table("on-time by carrier and week", by_carrier.round(4).to_dict("records"))
    print_table("input drift (PSI)", drift.head(10).round(4).to_dict("records"))
    for line in summary:
        print(line)
    print(f"wrote {path}")


def register(groups: dict) -> None:
    groups["train"].command("delivery")(train_delivery)
    groups["evaluate"].command("delivery")(evaluate_delivery)
    groups["bench"].command("delivery")(bench_delivery)
    if "monitor" in groups:
        groups["monitor"].command("delivery")(monitor_delivery)


def demo(world_path: Path):
    """Train on the demo world with defaults, register, gate (a TrainResult)."""
    from ppx.models.delivery.train import train

    return train(world_path)
