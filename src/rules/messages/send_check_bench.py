"""What the sender's send-time opt-out check costs: ``python -m
ppx.rules.messages.send_check_bench [--pg]``.

Two figures, each on a ledger built in a temporary folder (and, with ``--pg``, on a
throwaway local PostgreSQL server, :mod:`ppx.local_postgres`):

* the preference read alone: :meth:`PreferenceStore.refusal` per row, against one
  ``customer_id IN (...)`` read per claimed batch, over many customers' preference rows;
* a whole email row (claim, check, render, SMTP to a local aiosmtpd server, settle) with
  and without the check, twice each (the machine's noise shows in the spread).
"""

from __future__ import annotations

import random
import shutil
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

N_CUSTOMERS, N_OPTED_OUT, LOOKUPS, BATCH, EMAILS = 200_000, 40_000, 3000, 50, 400


def _preference_read(url: str) -> tuple[float, float]:
    """(µs per row reading per row, µs per row reading once per BATCH rows)."""
    from sqlalchemy import bindparam, select

    from ppx.rules.messages.db import make_engine
    from ppx.rules.messages.outbox import Claimed
    from ppx.rules.messages.preferences import PreferenceRow, PreferenceStore
    from ppx.rules.policy import load_policy

    engine = make_engine(url)
    store = PreferenceStore(engine, load_policy())
    now = datetime.now(UTC).replace(tzinfo=None)
    rng = random.Random(1)
    rows = [
        dict(customer_id=c, channel=ch, kind=k, allowed=False, source="bench", updated_at=now)
        for c in rng.sample(range(1, N_CUSTOMERS + 1), N_OPTED_OUT)
        for ch, k in (("sms", "*"), ("email", "win_back"), ("push", "shipped"))
    ]
    table = PreferenceRow.__table__
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    with engine.begin() as conn:  # planner statistics, as autovacuum keeps them in service
        conn.exec_driver_sql("ANALYZE message_preferences")
    ids = [rng.randint(1, N_CUSTOMERS) for _ in range(LOOKUPS)]
    claimed = [
        Claimed(i, f"k{i}", f"<{i}@x>", c, "shipped", "push", {}, "en", None, 0, "d", None, 1)
        for i, c in enumerate(ids)
    ]
    for r in claimed[:200]:  # warm the pool and the statement cache
        store.refusal(r)
    t = time.perf_counter()
    for r in claimed:
        store.refusal(r)
    per_row = (time.perf_counter() - t) / LOOKUPS * 1e6
    q = select(table.c.customer_id, table.c.channel, table.c.kind, table.c.allowed).where(
        table.c.customer_id.in_(bindparam("ids", expanding=True))
    )
    t = time.perf_counter()
    with engine.connect() as conn:
        for i in range(0, LOOKUPS, BATCH):
            conn.execute(q, {"ids": ids[i : i + BATCH]}).all()
    per_batch = (time.perf_counter() - t) / LOOKUPS * 1e6
    engine.dispose()
    return per_row, per_batch


class _Relay:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook)
        return "250 2.0.0 Ok: queued as BENCH1"


def _email_rows(folder: Path, check: bool, port: int) -> float:
    """ms per email row through the sender, with or without the send-time check."""
    from ppx.rules.messages.compose import Renderer, SenderIdentity
    from ppx.rules.messages.db import make_engine
    from ppx.rules.messages.outbox import NewMessage, Outbox, new_owner
    from ppx.rules.messages.preferences import PreferenceStore
    from ppx.rules.messages.sender import SmtpConfig, send_until_empty
    from ppx.rules.policy import load_policy

    policy = load_policy()
    engine = make_engine(f"sqlite:///{folder / f'outbox-{time.time_ns()}.db'}")
    outbox = Outbox(engine)
    prefs = PreferenceStore(engine, policy)
    prefs.put(EMAILS + 1, {"kinds": {"shipped": {"email": False}}})  # someone else's opt-out
    outbox.enqueue(
        [
            NewMessage(
                f"shipped:{i}:order:{i}",
                i,
                "shipped",
                "email",
                "transactional",
                {"order_id": i, "estimated_delivery": "2025-03-04"},
                datetime(2025, 1, 1),
                to_address=f"c{i}@example.com",
            )
            for i in range(1, EMAILS + 1)
        ]
    )
    render = Renderer(policy, SenderIdentity("Kaffee", "https://shop.example", "b" * 32))
    t = time.perf_counter()
    rep = send_until_empty(
        outbox, SmtpConfig(port=port), new_owner(), render, preferences=prefs if check else None
    )
    ms = (time.perf_counter() - t) / EMAILS * 1e3
    engine.dispose()
    if rep.sent != EMAILS:
        raise RuntimeError(f"sent {rep.sent} of {EMAILS} rows: {rep.errors[:3]}")
    return ms


def main(argv: list[str]) -> None:
    from aiosmtpd.controller import Controller
    from rich.console import Console
    from rich.table import Table

    folder = Path(tempfile.mkdtemp(prefix="ppx-sendcheck-"))
    reads = Table(title=f"preference read: {N_OPTED_OUT * 3} rows, {LOOKUPS} look-ups")
    for col in ("database", "per row (µs/row)", f"one read per {BATCH} rows (µs/row)"):
        reads.add_column(col, justify="right")
    try:
        per_row, per_batch = _preference_read(f"sqlite:///{folder / 'prefs.db'}")
        reads.add_row("sqlite", f"{per_row:.0f}", f"{per_batch:.0f}")
        if "--pg" in argv:
            from ppx.local_postgres import LocalPostgres, free_port

            pg = LocalPostgres(Path(tempfile.mkdtemp(prefix="ppx-pg-")), port=free_port())
            pg.start(fsync=False)
            try:
                per_row, per_batch = _preference_read(pg.create_database("sendcheck"))
            finally:
                pg.stop()
                shutil.rmtree(pg.folder, ignore_errors=True)
            reads.add_row("postgresql", f"{per_row:.0f}", f"{per_batch:.0f}")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        relay = Controller(_Relay(), hostname="127.0.0.1", port=port, ready_timeout=60)
        relay.start()
        sends = Table(title=f"{EMAILS} email rows to a local SMTP server (sqlite outbox)")
        sends.add_column("send-time check")
        sends.add_column("ms/row", justify="right")
        try:
            for check in (False, True, False, True):
                sends.add_row("yes" if check else "no", f"{_email_rows(folder, check, port):.1f}")
        finally:
            relay.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    console = Console()
    console.print(reads)
    console.print(sends)


if __name__ == "__main__":
    main(sys.argv[1:])
