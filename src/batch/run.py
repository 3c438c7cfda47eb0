"""Set up a nightly run, run it on an engine, write the ledger and the outbox.

The driver resolves the champions' versions once (alias -> version), finds the night's
moment from the store and picks the bucket count; workers get those in a
:class:`~ppx.batch.nightly.NightlyJob`. After every bucket is written, the awards and
messages go to the ledger and the outbox under their idempotency keys: a re-run (or a
retried Spark task, whose bucket files are simply rewritten) adds nothing.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ppx.batch.nightly import OUTPUTS, STAGES, NightlyJob
from ppx.batch.partition import store_now, table_path
from ppx.data import columns as C

#: Customers per bucket by default: a bucket's tables and models fit comfortably in a
#: worker's memory, and there are enough buckets to keep every core busy.
CUSTOMERS_PER_BUCKET = 25_000
MANIFEST = "_nightly.json"


class NightlyError(ValueError):
    """The nightly run cannot start; the message says why."""


def java_missing() -> str | None:
    """Why Spark cannot start here (no Java), or None when it can."""
    import os

    java = shutil.which("java")
    if java is None and os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        java = str(candidate) if candidate.exists() else None
    if java is None:
        return "no Java runtime on PATH (install default-jre-headless: .ci/system-deps)"
    try:
        subprocess.run([java, "-version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return f"java -version failed: {err}"
    return None


def count_customers(store: str | Path) -> int:
    import pyarrow.dataset as ds

    return ds.dataset(table_path(store, C.CUSTOMERS), format="parquet").count_rows()


def default_buckets(store: str | Path, cores: int = 2) -> int:
    n = count_customers(store)
    return max(2 * cores, math.ceil(n / CUSTOMERS_PER_BUCKET))


def make_job(
    store: str | Path,
    out: str | Path,
    *,
    buckets: int | None = None,
    policy: str | Path | None = None,
    alias: str = "champion",
    as_of: str | None = None,
    cores: int = 2,
    stages: tuple[str, ...] = STAGES,
    voucher_secret: str | None = None,
    ledger_url: str | None = None,
) -> NightlyJob:
    """Resolve everything the workers share: versions, tracking URI, moment, buckets.

    ``voucher_secret`` keys the yearly gifts' voucher codes; default
    ``PPX_VOUCHER_SECRET`` or, without it, a random one for this night (a re-run keeps
    the vouchers the first run stored: they are issued under their idempotency keys).
    ``ledger_url``: the ledger whose loyalty state the decisions read where it knows
    the customer (:mod:`ppx.batch.ledger_state`); None: the store's ``loyalty_events``.
    """
    import os
    import secrets

    import mlflow
    from ppx import tracking
    from ppx.rules.policy import load_policy
    from ppx.scoring import _version_of

    store = Path(store).resolve()
    if not store.is_dir():
        raise NightlyError(f"{store}: no such store folder")
    load_policy(policy)  # a bad policy fails here, before any worker starts
    tracking.configure()
    models = {"churn", "recs"} if "decisions" in stages else set(stages)
    versions = {m: _version_of(m, alias) if m in models else "" for m in ("churn", "recs")}
    uri = mlflow.get_tracking_uri()
    now = pd.Timestamp(as_of) if as_of else store_now(store)
    return NightlyJob(
        store=str(store),
        out=str(Path(out).resolve()),
        now=now,
        n_buckets=buckets or default_buckets(store, cores),
        tracking_uri=uri,
        churn_uri=f"models:/{tracking.registered_name('churn')}/{versions['churn']}",
        recs_uri=f"models:/{tracking.registered_name('recs')}/{versions['recs']}",
        churn_version=versions["churn"],
        recs_version=versions["recs"],
        policy_path=str(Path(policy).resolve()) if policy else None,
        stages=tuple(stages),
        voucher_secret=voucher_secret
        or os.environ.get("PPX_VOUCHER_SECRET")
        or secrets.token_hex(16),
        ledger_url=ledger_url,
    )


def prepare_out(out: str | Path) -> Path:
    """An output folder for a night: empty, or one a previous night wrote (cleared)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise NightlyError(
            f"{out}: folder is not empty and holds no earlier nightly run; choose another --out"
        )
    for name in (*OUTPUTS, "_staging", MANIFEST):
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    # marks the folder as a night's (an interrupted one included) so a re-run may clear it
    (out / MANIFEST).write_text(json.dumps({"status": "running"}))
    return out


def read_output(out: str | Path, name: str) -> pd.DataFrame:
    """One output of a night, every bucket, sorted by customer."""
    import pyarrow.dataset as ds

    table = ds.dataset(Path(out) / name, format="parquet", partitioning="hive").to_table()
    df = table.to_pandas()
    keys = [c for c in (C.CUSTOMER_ID, "idempotency_key", "message_key") if c in df.columns]
    return df.drop(columns=["bucket"], errors="ignore").sort_values(keys).reset_index(drop=True)


@dataclass
class SinkResult:
    awards: int
    awards_created: int
    points_created: int
    messages: int
    messages_created: int
    gifts: int = 0
    gifts_created: int = 0
    tier_changes: int = 0
    tiers_changed: int = 0


def _records(df: pd.DataFrame) -> list[dict]:
    return df.astype(object).where(df.notna(), None).to_dict("records")


def sink(
    out: str | Path,
    now: pd.Timestamp,
    ledger_url: str | None = None,
    outbox_url: str | None = None,
    batch: int = 5_000,
    policy: str | Path | None = None,
) -> SinkResult:
    """Write the night's awards to the ledger, messages to the outbox, the yearly gifts'
    vouchers and the tier changes to the loyalty tables, all idempotently."""
    from ppx.rules.ledger import Ledger
    from ppx.rules.messages.db import make_engine
    from ppx.rules.messages.outbox import NewMessage, Outbox

    awards = read_output(out, "ledger")
    ledger = Ledger(ledger_url)
    created = points = 0
    at = pd.Timestamp(now).to_pydatetime()
    try:
        for lo in range(0, len(awards), batch):
            for p in ledger.award_many(_records(awards.iloc[lo : lo + batch]), at=at):
                created += int(p.created)
                points += p.points if p.created else 0
        loyalty = _sink_loyalty(out, ledger, policy, at)
    finally:
        ledger.dispose()
    msgs = read_output(out, "outbox")
    box = Outbox(make_engine(outbox_url or ledger_url))
    made = 0
    fields = NewMessage.__dataclass_fields__
    for lo in range(0, len(msgs), batch):
        rows = []
        for r in _records(msgs.iloc[lo : lo + batch]):
            r = {k: v for k, v in r.items() if k in fields}
            r["content"] = json.loads(r["content"])
            r["send_after"] = pd.Timestamp(r["send_after"]).to_pydatetime()
            rows.append(NewMessage(**r))
        made += sum(box.enqueue(rows))
    box.engine.dispose()
    return SinkResult(len(awards), created, points, len(msgs), made, **loyalty)


def _sink_loyalty(out, ledger, policy_path, at) -> dict:
    """The gifts' vouchers (under their yearly keys, with the codes the messages carry)
    and the tier changes (surprise tier-ups, spend upgrades), through the functions the
    decision service stores them with; a repeat issues and changes nothing."""
    from ppx.rules.loyalty.redemption import issue_gift
    from ppx.rules.loyalty.tiers import persist_tier
    from ppx.rules.policy import load_policy

    policy = load_policy(policy_path)
    gifts = read_output(out, "gifts") if (Path(out) / "gifts").exists() else pd.DataFrame()
    issued = 0
    for g in _records(gifts):
        v = issue_gift(
            ledger,
            policy,
            int(g[C.CUSTOMER_ID]),
            g["reward_id"],
            g["idempotency_key"],
            g["kind"],
            at=at,
            voucher_code=g["voucher_code"],
        )
        issued += int(v.created)
    tiers = read_output(out, "tiers") if (Path(out) / "tiers").exists() else pd.DataFrame()
    changed = 0
    for t in _records(tiers):
        until = pd.Timestamp(t["until"]).to_pydatetime() if t["until"] is not None else None
        res = persist_tier(
            ledger,
            policy,
            int(t[C.CUSTOMER_ID]),
            t[C.TIER],
            until,
            float(t["spend_12m"]),
            t["reason"],
            at,
        )
        changed += int(res.change != "unchanged")
    return {
        "gifts": len(gifts),
        "gifts_created": issued,
        "tier_changes": len(tiers),
        "tiers_changed": changed,
    }


def update_manifest(out: str | Path, **fields) -> dict:
    """Add ``fields`` to a finished night's manifest (e.g. what the sink wrote)."""
    path = Path(out) / MANIFEST
    info = {**json.loads(path.read_text()), **fields}
    path.write_text(json.dumps(info, indent=2))
    return info


def write_manifest(out: str | Path, job: NightlyJob, engine: str, summary, seconds: float):
    info = {
        "status": "done",
        "engine": engine,
        "as_of": str(job.now),
        "buckets": job.n_buckets,
        "churn": job.churn_uri,
        "recs": job.recs_uri,
        "seconds": round(seconds, 2),
        "stages": list(job.stages),
        "rows": {k: int(summary[f"rows_{k}"].sum()) for k in OUTPUTS},
        "customers": int(summary["customers"].sum()),
        # a stage's seconds summed over buckets (over cores too, on Spark); "staging" is
        # the shuffle of the store into bucket files before any bucket runs, "read" and
        # "order" a bucket's reading of its files and putting its rows in canonical order
        "stage_seconds": {
            "staging": round(float(summary.attrs.get("seconds_staging", 0.0)), 2),
            **{
                k: round(float(summary[f"seconds_{k}"].sum()), 2)
                for k in ("read", "order", "load", "churn", "recs", "decisions")
            },
        },
    }
    ledger = summary.attrs.get("ledger_state")
    if ledger:
        # customers whose balance / tier came from the ledger rather than the store
        info["ledger_state"] = {
            "customers_with_points": ledger.get("ledger_points", 0),
            "customers_with_tier": ledger.get("ledger_tiers", 0),
        }
    (Path(out) / MANIFEST).write_text(json.dumps(info, indent=2))
    return info
