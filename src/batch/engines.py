"""The two engines of the nightly run: one process (``local``) and Apache Spark (``spark``).

Both cut the store into the same customer-hash buckets and call
:func:`ppx.batch.nightly.run_bucket` once per bucket; only how a bucket's rows reach it
differs:

* ``local`` streams each table once into per-bucket Arrow files on local disk (the
  folder layout of Spark's staging, :mod:`ppx.batch.stage`) and runs the buckets one
  after another, each reading only its own files;
* ``spark`` reads the tables with Spark, attaches each row's customer (joins for
  shipments, order lines and subscription events), writes every row into its
  ``pmod(customer_id, buckets)`` folder of Parquet part files, then runs
  ``groupBy(bucket).applyInPandas`` so every task reads one bucket and runs the same
  pandas pipeline. Models load once per Python worker process.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ppx.batch.nightly import NightlyJob, run_bucket
from ppx.batch.partition import (
    BUCKET,
    NIGHTLY_TABLES,
    SHARED,
    VIA_PARENT,
    read_table,
    table_path,
)
from ppx.batch.stage import STAGED_FILE, stage_local
from ppx.data import columns as C

ENGINES = ("local", "spark")
#: Free-text and identity columns no nightly stage reads: never loaded.
UNUSED_COLUMNS = frozenset(
    {
        C.NAME,
        C.PHONE,
        C.ADDRESS,
        C.DEVICE_ID,
        C.PAYMENT_FINGERPRINT,
        "comment",
        "title",
        "body",
        C.REASON_LABEL,
    }
)
SUMMARY_SCHEMA = (
    "bucket long, customers long, rows_churn long, rows_recs long, rows_decisions long, "
    "rows_ledger long, rows_outbox long, rows_gifts long, rows_tiers long, seconds_order double, "
    "seconds_load double, seconds_churn double, "
    "seconds_recs double, seconds_decisions double, seconds_read double"
)


def _columns(store: str | Path, name: str) -> list[str]:
    import pyarrow.dataset as ds

    names = ds.dataset(table_path(store, name), format="parquet").schema.names
    return [c for c in names if c not in UNUSED_COLUMNS]


# --- local ---------------------------------------------------------------------------------


def run_local(job: NightlyJob, progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Every bucket in this process, one after another.

    The store is first streamed into per-bucket files on local disk
    (:func:`ppx.batch.stage.stage_local`), then each bucket reads only its own rows, so
    memory holds one bucket whatever the store's size.
    """
    staging = Path(job.out) / "_staging"
    try:
        t = time.perf_counter()
        stage_local(job.store, staging, job.n_buckets, _columns)
        ledger = _stage_ledger(job, staging)
        staged = time.perf_counter() - t
        rows = []
        for b in range(job.n_buckets):
            rows.append(_read_and_run(job, str(staging), b))
            if progress is not None:
                progress(b + 1, job.n_buckets)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary = pd.DataFrame(rows)
    summary.attrs["seconds_staging"] = staged
    summary.attrs["ledger_state"] = ledger
    return summary


def _uses_ledger(job: NightlyJob) -> bool:
    return job.ledger_url is not None and "decisions" in job.stages


def _stage_ledger(job: NightlyJob, staging: Path) -> dict[str, int]:
    """With a ledger, its loyalty state as of the night beside the staged tables (the
    driver reads it once; see :mod:`ppx.batch.ledger_state`)."""
    if not _uses_ledger(job):
        return {}
    from ppx.batch.ledger_state import stage_ledger_state

    return stage_ledger_state(job.ledger_url, staging, job.n_buckets, job.now)


def _read_and_run(job: NightlyJob, staging: str, bucket: int) -> dict:
    """One bucket: its staged tables read, then :func:`run_bucket` (both engines' task)."""
    t = time.perf_counter()
    tables = read_bucket(staging, job.store, bucket)
    state = None
    if _uses_ledger(job):
        from ppx.batch.ledger_state import read_ledger_state

        state = read_ledger_state(staging, bucket)
    read = time.perf_counter() - t
    return {**run_bucket(job, bucket, tables, state), "seconds_read": read}


# --- spark ---------------------------------------------------------------------------------


def spark_session(cores: int = 2, driver_memory: str = "1g", app: str = "ppx-nightly"):
    """A local Spark session: ``local[cores]``, no web UI, quiet logs, Arrow on.

    On a cluster ``spark-submit`` supplies the master and resources; ``getOrCreate``
    then returns that session and these settings only fill what it left unset.
    """
    import os

    from pyspark.sql import SparkSession

    # Executors run the same interpreter (and so the same ppx) as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    master = os.environ.get("PPX_SPARK_MASTER")
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        # under spark-submit (a gateway is already up) the cluster's master stands
        builder = builder.master(master or f"local[{cores}]").config(
            "spark.driver.memory", driver_memory
        )
    builder = (
        builder.config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", str(max(cores * 2, 2)))
        .config("spark.python.worker.reuse", "true")
        # pandas writes nanosecond timestamps, which Spark cannot type: they travel as
        # int64 nanoseconds and are cast back to the store's own types in each task.
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")
        .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=ERROR")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def stage_buckets(spark, job: NightlyJob, staging: Path) -> None:
    """Shuffle every customer-keyed table into bucketed Parquet under ``staging``."""
    from pyspark.sql import functions as F

    frames = {}
    for name in NIGHTLY_TABLES:
        if name in SHARED:
            continue
        frames[name] = spark.read.parquet(str(table_path(job.store, name))).select(
            *_columns(job.store, name)
        )
    for name, (parent, key) in VIA_PARENT.items():
        owner = frames[parent].select(key, C.CUSTOMER_ID).dropDuplicates([key])
        frames[name] = frames[name].join(owner, on=key, how="inner")
    # Each task writes its rows straight into the bucket folders (no shuffle by bucket: a
    # bucket is a folder of part files, read whole by its task), keeping one open file
    # per bucket instead of sorting its rows by bucket first.
    spark.conf.set("spark.sql.maxConcurrentOutputFileWriters", str(min(job.n_buckets, 64)))
    for name, df in frames.items():
        (
            df.withColumn(BUCKET, F.pmod(F.col(C.CUSTOMER_ID), F.lit(job.n_buckets)))
            .write.mode("overwrite")
            .partitionBy(BUCKET)
            .parquet(str(staging / name))
        )


def _store_schema(store: str, name: str):
    import pyarrow.dataset as ds

    return ds.dataset(table_path(store, name), format="parquet").schema


def read_bucket(staging: str, store: str, bucket: int) -> dict[str, pd.DataFrame]:
    """One bucket's staged tables (an absent folder: no rows), every column cast back to
    the store's own type so both engines see the same frames."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = {}
    for name in NIGHTLY_TABLES:
        if name in SHARED:
            tables[name] = read_table(store, name, _columns(store, name))
            continue
        own = _store_schema(store, name)
        cols = _columns(store, name)
        if C.CUSTOMER_ID not in cols:
            cols.append(C.CUSTOMER_ID)
        fields = [
            own.field(c) if c in own.names else pa.field(C.CUSTOMER_ID, pa.int64()) for c in cols
        ]
        target = pa.schema(fields)
        folder = Path(staging) / name / f"{BUCKET}={bucket}"
        if folder.exists():
            if (folder / STAGED_FILE).exists():  # the local engine's Arrow files
                with pa.OSFile(str(folder / STAGED_FILE)) as source:
                    got = pa.ipc.open_file(source).read_all()
            else:  # Spark's Parquet part files
                got = pq.read_table(folder)
            got = pa.table([got.column(f.name).cast(f.type) for f in target], schema=target)
        else:
            got = target.empty_table()
        tables[name] = got.to_pandas()
    return tables


def _bucket_task(job: NightlyJob, staging: str):
    def task(key, pdf: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame([_read_and_run(job, staging, int(key[0]))])

    return task


def run_spark(job: NightlyJob, cores: int = 2, driver_memory: str = "1g") -> pd.DataFrame:
    """Every bucket on Spark (``local[cores]`` unless ``PPX_SPARK_MASTER`` says else)."""
    import warnings

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    from pyspark.sql import SparkSession

    ours = SparkSession.getActiveSession() is None  # spark-submit's session is not ours
    spark = spark_session(cores, driver_memory)
    staging = Path(job.out) / "_staging"
    try:
        t = time.perf_counter()
        stage_buckets(spark, job, staging)
        ledger = _stage_ledger(job, staging)
        staged = time.perf_counter() - t
        buckets = spark.createDataFrame(
            pd.DataFrame({BUCKET: range(job.n_buckets)}), f"{BUCKET} long"
        ).repartition(job.n_buckets, BUCKET)
        summary = (
            buckets.groupBy(BUCKET)
            .applyInPandas(_bucket_task(job, str(staging)), SUMMARY_SCHEMA)
            .toPandas()
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if ours:
            spark.stop()  # the JVM and its Python workers go with it
    summary = summary.sort_values("bucket").reset_index(drop=True)
    summary.attrs["seconds_staging"] = staged
    summary.attrs["ledger_state"] = ledger
    return summary


def run(job: NightlyJob, engine: str, cores: int = 2, driver_memory: str = "1g", progress=None):
    """Run the night on ``engine``; returns the per-bucket summary and the wall seconds."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose local or spark")
    t = time.perf_counter()
    if engine == "local":
        summary = run_local(job, progress)
    else:
        summary = run_spark(job, cores, driver_memory)
    return summary, time.perf_counter() - t
