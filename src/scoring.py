"""Batch scores for everyone: ``ppx score MODEL --store PATH --out FILE``.

One row per entity a model decides about - churn per active subscriber, delivery per
open order, fraud per return or claim, recs per customer - with the id, the calibrated
probability (delivery: the promise date and the on-time probability; recs: the top-k
products and their ranking scores), the model version and the top three reasons in plain
words (:func:`ppx.explain.reason_codes.reason_codes`).

The registered model is loaded by alias and fed the same raw request rows its endpoint
takes, built from the store's tables, in chunks: the output file grows chunk by chunk
(:func:`write_scores`), so memory holds one chunk of requests and results at a time.
:func:`write_scores` is the writer every score command shares (world models and
table models alike).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C

PROBABILITY = "probability"
MODEL_VERSION = "model_version"
REASONS = ("reason_1", "reason_2", "reason_3")
DEFAULT_CHUNK = 2_000
FORMATS = (".csv", ".parquet")


class ScoreError(ValueError):
    """Scores cannot be written; the message says why (bad --out, nothing to score)."""


def check_out(out: Path) -> None:
    if out.suffix.lower() not in FORMATS:
        raise ScoreError(f"{out}: write scores to a .csv or .parquet file")
    if out.is_dir():
        raise ScoreError(f"{out}: is a folder; give a file name")


def write_scores(
    chunks: Iterable[pd.DataFrame],
    out: str | Path,
    total: int | None = None,
    label: str = "scoring",
) -> tuple[Path, int]:
    """Write scored chunks to CSV or Parquet (by suffix) atomically, with a progress bar.

    Each chunk is appended to a temporary sibling file that is renamed into place at the
    end, so an interrupted run leaves no half-written file. Returns the path and the
    number of rows written.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    out = Path(out)
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    writer = None
    rows = 0
    try:
        with Progress(
            "[bold]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task(label, total=total)
            for chunk in chunks:
                if out.suffix.lower() == ".csv":
                    chunk.to_csv(tmp, mode="a", header=rows == 0, index=False)
                else:
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    table = pa.Table.from_pandas(chunk, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table.cast(writer.schema))
                rows += len(chunk)
                bar.update(task, advance=len(chunk))
        if writer is not None:
            writer.close()
            writer = None
        os.replace(tmp, out)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return out, rows


def iter_chunks(df: pd.DataFrame, size: int = DEFAULT_CHUNK) -> Iterator[pd.DataFrame]:
    for start in range(0, len(df), size):
        yield df.iloc[start : start + size].reset_index(drop=True)


def reason_texts(model, raw: pd.DataFrame, model_name: str, k: int = 3) -> pd.DataFrame:
    """``reason_1..k`` in plain words for each raw request row (blank when unexplained)."""
    from ppx.explain.reason_codes import reason_codes

    codes = reason_codes(model, raw, k=k, model_name=model_name)
    # a feature that does not move this row's score is no reason
    codes = [[r for r in row if r["contribution"] != 0] for row in codes]
    return pd.DataFrame(
        {f"reason_{j + 1}": [r[j]["text"] if len(r) > j else "" for r in codes] for j in range(k)}
    )


# --- what each model scores in a store --------------------------------------------------


@dataclass
class Batch:
    """Who is scored (id columns) and the raw request rows the model takes."""

    ids: pd.DataFrame
    raw: pd.DataFrame
    what: str


def data_end(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The moment a store's data ends: its latest recorded event."""
    stamps = [tables[C.ORDERS][C.ORDERED_AT].max()]
    for table, col in (
        (C.SHIPMENTS, C.SHIPPED_AT),
        (C.SHIPMENTS, C.DELIVERED_AT),
        (C.TRACKING_EVENTS, C.EVENT_AT),
        (C.SUBSCRIPTION_EVENTS, C.EVENT_AT),
    ):
        if table in tables and len(tables[table]):
            stamps.append(tables[table][col].max())
    return pd.Timestamp(max(s for s in stamps if pd.notna(s)))


def delivery_batch(tables: dict[str, pd.DataFrame]) -> Batch:
    """Open orders (a shipment not yet delivered, not lost), re-estimated as of now."""
    from ppx.features import delivery as fd

    s, o = tables[C.SHIPMENTS], tables[C.ORDERS]
    open_ = s[s[C.STATUS] == "in_transit"][[C.SHIPMENT_ID, C.ORDER_ID, C.WEIGHT_KG]]
    rows = open_.merge(o, on=C.ORDER_ID, how="inner")
    now = data_end(tables)
    rows = rows.assign(**{fd.AS_OF: now})
    facts = fd.tracking_facts(rows, tables[C.TRACKING_EVENTS])
    raw = pd.DataFrame(
        {
            C.WAREHOUSE: rows[C.WAREHOUSE].astype(str),
            C.DEST_REGION: rows[C.DEST_REGION].astype(str),
            C.CARRIER: rows[C.CARRIER].astype(str),
            C.SERVICE_LEVEL: rows[C.SERVICE_LEVEL].astype(str),
            C.ORIGIN_REGION: rows[C.ORIGIN_REGION].astype(str),
            C.ORDERED_AT: rows[C.ORDERED_AT],
            C.WEIGHT_KG: rows[C.WEIGHT_KG].astype(float),
            C.DISTANCE_KM: rows[C.DISTANCE_KM].astype(float),
            C.PROMISED_DAYS: rows[C.PROMISED_DAYS].astype(float),
            fd.AS_OF: now,
        }
    )
    for col in facts.columns:
        raw[col] = facts[col].to_numpy()
    ids = pd.DataFrame(
        {
            C.ORDER_ID: rows[C.ORDER_ID].to_numpy(),
            C.SHIPMENT_ID: rows[C.SHIPMENT_ID].to_numpy(),
            C.PROMISED_DATE: rows[C.PROMISED_DATE].to_numpy(),
        }
    )
    return Batch(ids, raw, f"{len(rows):,} open orders as of {now}")


def churn_batch(tables: dict[str, pd.DataFrame]) -> Batch:
    """Every customer with an active subscription, as of the end of the data."""
    subs = tables[C.SUBSCRIPTIONS]
    active = np.sort(subs.loc[subs[C.CANCELLED_AT].isna(), C.CUSTOMER_ID].unique())
    now = data_end(tables)
    raw = pd.DataFrame({C.CUSTOMER_ID: active.astype(np.int64), "as_of": str(now.date())})
    return Batch(raw[[C.CUSTOMER_ID]].copy(), raw, f"{len(raw):,} active subscribers")


def fraud_batch(tables: dict[str, pd.DataFrame]) -> Batch:
    """Every return and claim, in the form the fraud endpoint takes."""
    from ppx.features import fraud as F
    from ppx.models.fraud.train import raw_requests

    req = F.all_requests(tables)
    ids = pd.DataFrame(
        {
            "request_id": req[F.REQUEST_ID].to_numpy(),
            "kind": req[F.KIND].to_numpy(),
            C.CUSTOMER_ID: req[C.CUSTOMER_ID].to_numpy(),
        }
    )
    return Batch(ids, raw_requests(req).reset_index(drop=True), f"{len(req):,} returns and claims")


def recs_batch(tables: dict[str, pd.DataFrame], k: int = 10) -> Batch:
    """Every customer who bought something: top-k products."""
    buyers = np.sort(tables[C.ORDERS][C.CUSTOMER_ID].unique()).astype(np.int64)
    raw = pd.DataFrame({C.CUSTOMER_ID: buyers, "k": k})
    return Batch(raw[[C.CUSTOMER_ID]].copy(), raw, f"{len(raw):,} customers")


BATCHES: dict[str, Callable[[dict[str, pd.DataFrame]], Batch]] = {
    "delivery": delivery_batch,
    "churn": churn_batch,
    "fraud": fraud_batch,
    "recs": recs_batch,
}


def _outputs(model_name: str, pred: pd.DataFrame) -> pd.DataFrame:
    """The model's own output columns reduced to the score file's columns."""
    if model_name == "delivery":
        return pd.DataFrame(
            {
                PROBABILITY: pred["p_on_time"].to_numpy(float),
                "p_late": pred["p_late"].to_numpy(float),
                "p50_date": pred["p50_date"].to_numpy(),
                "model_promise_date": pred["promise_date"].to_numpy(),
                "model_promise_target": pred["promise_target"].to_numpy(float),
            }
        )
    if model_name == "churn":
        col = "p_churn_30" if "p_churn_30" in pred else "p_churn"
        extra = {c: pred[c].to_numpy(float) for c in pred.columns if c.startswith("p_churn_")}
        return pd.DataFrame({PROBABILITY: pred[col].to_numpy(float), **extra})
    if model_name == "fraud":
        return pd.DataFrame(
            {
                PROBABILITY: pred["p_fraud"].to_numpy(float),
                "recommendation": pred["recommendation"].astype(str).to_numpy(),
            }
        )
    if model_name == "recs":
        # ranking scores, not probabilities: the file says so by its column names
        return pd.DataFrame(
            {
                "product_ids": [" ".join(map(str, p)) for p in pred["product_ids"]],
                "scores": [" ".join(f"{float(x):.4g}" for x in sc) for sc in pred["scores"]],
            }
        )
    raise ValueError(f"unknown model {model_name!r}")


def _promise_passed(part: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """An open order whose promised day has ended is late for certain, whatever the model
    says about its remaining transit time."""
    passed = pd.to_datetime(part[C.PROMISED_DATE]) + pd.Timedelta(days=1) <= now
    part.loc[passed, PROBABILITY] = 0.0
    part.loc[passed, "p_late"] = 1.0
    return part


def _version_of(model_name: str, alias: str) -> str:
    from ppx import tracking

    mv = tracking.get_alias_version(model_name, alias)
    if mv is None:
        raise ScoreError(
            f"ppx-{model_name} has no version with alias {alias!r} "
            f"({tracking.missing_alias_hint(model_name, alias)}); "
            f"train it first (`ppx train {model_name} --world STORE`)"
        )
    return str(mv.version)


def score_store(
    model_name: str,
    store: str | Path,
    out: str | Path,
    alias: str = "champion",
    chunk_size: int = DEFAULT_CHUNK,
    reasons: bool = True,
) -> tuple[Path, int, str]:
    """Score every entity of ``store`` with the registered ``ppx-<model_name>``.

    Returns the written file, its row count and a line saying what was scored.
    """
    import mlflow
    from ppx import tracking
    from ppx.data.io import load_tables
    from ppx.explain.sources import as_explainable

    if model_name not in BATCHES:
        raise ScoreError(f"unknown model {model_name!r}; choose one of {', '.join(BATCHES)}")
    out = Path(out)
    check_out(out)
    tracking.configure()
    version = _version_of(model_name, alias)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{tracking.registered_name(model_name)}/{version}")
    python_model = pyfunc.unwrap_python_model()
    explainable = as_explainable(python_model) if reasons else None
    tables = load_tables(store, validate=False)
    batch = BATCHES[model_name](tables)
    if batch.raw.empty:
        raise ScoreError(f"{store}: nothing to score for {model_name} ({batch.what})")

    def chunks() -> Iterator[pd.DataFrame]:
        for ids, raw in zip(
            iter_chunks(batch.ids, chunk_size), iter_chunks(batch.raw, chunk_size), strict=True
        ):
            pred = python_model.predict(None, raw)
            part = pd.concat([ids, _outputs(model_name, pd.DataFrame(pred))], axis=1)
            if model_name == "delivery":
                part = _promise_passed(part, pd.Timestamp(raw["as_of"].iloc[0]))
            part[MODEL_VERSION] = f"ppx-{model_name} v{version}"
            if explainable is not None:
                part = pd.concat([part, reason_texts(explainable, raw, model_name)], axis=1)
            yield part

    path, rows = write_scores(chunks(), out, total=len(batch.raw), label=f"scoring {model_name}")
    return path, rows, batch.what
