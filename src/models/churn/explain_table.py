"""``ppx explain churn --model NAME``: the SHAP report of a churn table model.

The rows explained come from the table the model was trained on (recorded in the
model) or from ``--table FILE`` (a newer export of the same table); a blank numeric
cell stands in as the training median, the value the network itself imputes.
"""

from __future__ import annotations

from pathlib import Path


def build_table_report(
    model: str,
    table: str | Path | None = None,
    alias: str | None = None,
    run_id: str | None = None,
    max_rows: int = 150,
    out_dir: Path | None = None,
    log_to_mlflow: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write the HTML report of the registered table model ``model``; return its path."""
    from ppx.config import get_settings
    from ppx.explain.report import ReportInfo, describe_run, write_report
    from ppx.explain.sources import load_explainable
    from ppx.models.churn.hygiene import read_user_table
    from ppx.models.churn.tabular import TableError
    from ppx.models.churn.train import table_model_name

    name = table_model_name(table or "table.csv", model)
    loaded = load_explainable(name, run_id=run_id, alias=alias)
    churn = loaded.model
    if getattr(churn, "mode", None) != "table":
        raise ValueError(f"{name} is not a churn table model")
    path = Path(table) if table is not None else Path(churn.info.get("table", ""))
    if not path.is_file():
        raise TableError(
            f"{name} was trained on {path}, which is not readable here; pass --table FILE"
        )
    raw = read_user_table(path)
    absent = [
        c for c in (*churn.encoder.numeric, *churn.encoder.categorical) if c not in raw.columns
    ]
    if absent:  # the model would explain a filled-in median, not the customer's value
        raise TableError(
            f"{path}: the model's column(s) {absent[:8]} are missing; it was trained on "
            f"{churn.info.get('table')}"
        )
    raw = raw.sample(min(max_rows, len(raw)), random_state=seed).reset_index(drop=True)
    X = churn.features(raw)
    X = X.fillna({c: churn.encoder.medians.get(c, 0.0) for c in churn.encoder.numeric})
    info = ReportInfo(
        model_name="churn",
        registered_model=name,
        version=loaded.version or "",
        run_id=loaded.run_id or "",
        world_path=str(path),
        data_source=f"{len(X)} rows sampled from the customer table {path.name}",
    )
    describe_run(info, "churn", loaded.run_id)
    out_dir = out_dir or get_settings().reports_dir / name
    report = write_report(
        churn, X, info, out_dir=out_dir, max_rows=max_rows, seed=seed, progress=progress
    )
    if log_to_mlflow and loaded.run_id:
        from mlflow import MlflowClient

        client = MlflowClient()
        client.log_artifact(loaded.run_id, str(report.path), artifact_path="explanations")
        client.set_tag(loaded.run_id, "ppx.explain_report", f"explanations/{report.path.name}")
    return report.path
