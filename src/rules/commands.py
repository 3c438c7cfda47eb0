"""``ppx simulate`` and ``ppx decide``: the rules layer on the command line.

Wire into the root app with ``ppx.rules.commands.register(app)`` (src/cli.py). Heavy
imports stay inside the commands so ``ppx --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from pydantic import ValidationError

decide_app = typer.Typer(
    help="Decide one event with the policy (offline, or calling the model service)."
)


def _fail(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def simulate_cmd(
    policy: Path = typer.Option(..., "--policy", help="Policy YAML to evaluate."),
    against: Path | None = typer.Option(
        None, "--against", help="A second policy YAML shown side by side (e.g. the current one)."
    ),
    world: Path = typer.Option(..., "--world", help="World folder from `ppx data world`."),
    seed: int = typer.Option(7, "--seed", help="Seed for the sample, score noise, ring flags."),
    sample: float = typer.Option(1.0, "--sample", min=0.001, max=1.0, help="Share of customers."),
    score_noise: float = typer.Option(
        0.5, "--score-noise", min=0.0, help="Logit noise on the stand-in (ground-truth) scores."
    ),
    uptake: float = typer.Option(
        0.5, "--uptake", min=0.0, max=1.0, help="Share of customers a retention gesture reaches."
    ),
    save_accept_base: float = typer.Option(
        0.4,
        "--save-accept-base",
        min=0.0,
        max=1.0,
        help="Save offers: P(accept) of a fitting offer to a subscriber at zero true risk.",
    ),
    save_mismatch: float = typer.Option(
        0.4,
        "--save-mismatch",
        min=0.0,
        max=1.0,
        help="Save offers: acceptance factor of an offer answering none of the true drivers.",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the summary as JSON."),
    alias: str = typer.Option(
        "champion",
        "--alias",
        help="A store (no truth/): registry alias of the models that score it.",
    ),
) -> None:
    """Replay a world's history through one or two policies and compare them."""
    from rich.console import Console

    from ppx.data.io import DataLoadError
    from ppx.rules.policy import PolicyError, load_policy
    from ppx.rules.simulator import SimulationConfig, simulate
    from ppx.rules.simulator.tables import outcomes_table, summary_table

    console = Console()
    try:
        pols = {policy.stem: load_policy(policy)}
        if against is not None:
            name = against.stem if against.stem != policy.stem else f"{against.stem} (against)"
            pols[name] = load_policy(against)
    except PolicyError as err:
        _fail(str(err))
    if not (world / "manifest.json").exists():
        _fail(f"{world}: not a world folder (no manifest.json); create one with `ppx data world`")
    t0 = time.perf_counter()
    try:
        res = simulate(
            world,
            pols,
            SimulationConfig(
                seed=seed,
                sample=sample,
                score_noise=score_noise,
                uptake=uptake,
                save_accept_base=save_accept_base,
                save_mismatch=save_mismatch,
            ),
            progress=True,
            model_alias=alias,
        )
    except (DataLoadError, ValueError) as err:
        _fail(str(err))
    secs = time.perf_counter() - t0
    console.print(summary_table(res.summary, f"policy simulation: {world} (seed {seed})"))
    console.print(outcomes_table(res.outcomes))
    for note in res.notes:
        console.print(f"[dim]- {note}[/]")
    console.print(f"[dim]{res.meta['events']:,} events replayed in {secs:.1f} s[/]")
    if json_out is not None:
        payload = res.to_dict()
        payload["meta"] = {
            **payload["meta"],
            "command": "ppx " + " ".join(sys.argv[1:]),
            "seconds": round(secs, 1),
        }
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2, default=str))
        console.print(f"wrote {json_out}")


def validation_lines(err: ValidationError, limit: int = 8) -> str:
    """Every problem of a request on its own line (field path: message), up to ``limit``."""
    errors = err.errors()
    lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in errors]
    more = len(errors) - limit
    return "\n".join(lines[:limit] + ([f"  ... and {more} more"] if more > 0 else []))


# --- ppx decide ---------------------------------------------------------------------------


def _read_request(path: Path) -> dict:
    text = sys.stdin.read() if str(path) == "-" else None
    if text is None:
        if not path.exists():
            _fail(f"request file {path} does not exist")
        text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        _fail(f"request {path} is not valid JSON: {err}")
    if not isinstance(data, dict):
        _fail("the request must be a JSON object")
    return data


def _run(
    kind: str,
    request: Path,
    policy: Path | None,
    model_service: str | None,
    ledger: bool,
    ledger_url: str | None,
) -> None:
    import asyncio

    from pydantic import ValidationError
    from rich.console import Console

    from ppx.rules import engine as E
    from ppx.rules.ledger import Ledger
    from ppx.rules.model_client import ModelClient
    from ppx.rules.policy import PolicyError, load_policy

    console = Console()
    try:
        pol = load_policy(policy)
    except PolicyError as err:
        _fail(str(err))
    data = _read_request(request)
    model_cls = {
        "order-event": E.OrderEventRequest,
        "return": E.ReturnDecisionRequest,
        "claim": E.ClaimDecisionRequest,
        "daily": E.DailyBatchRequest,
    }[kind]
    try:
        req = model_cls.model_validate(data)
    except ValidationError as err:
        _fail(f"invalid request {request}:\n" + validation_lines(err))

    async def go():
        client = (
            ModelClient(model_service, timeout=pol.fallbacks.model_timeout_seconds)
            if model_service
            else None
        )
        eng = E.DecisionEngine(pol, client, Ledger(ledger_url) if ledger else None)
        try:
            if kind == "order-event":
                return [await eng.order_event(req)]
            if kind == "return":
                return [await eng.return_(req)]
            if kind == "claim":
                return [await eng.claim(req)]
            return await eng.daily_batch(req)
        finally:
            if client is not None:
                await client.aclose()

    try:
        responses = asyncio.run(go())
    except ValueError as err:
        _fail(str(err))
    for r in responses:
        d = r.decision
        console.print(
            f"[bold]{d.decision}[/] customer {d.customer_id}: outcome {d.outcome}, points {d.points:+d}"
        )
        for reason in d.reasons:
            console.print(f"  - {reason}")
        if r.balance is not None:
            console.print(f"  balance now {r.balance}")
    if not sys.stdout.isatty():
        print(json.dumps([r.model_dump(mode="json") for r in responses], indent=2))


def _options(kind: str):
    def cmd(
        request: Path = typer.Argument(..., help="JSON request file ('-' for stdin)."),
        policy: Path | None = typer.Option(
            None, "--policy", help="Policy YAML (default: shipped)."
        ),
        model_service: str | None = typer.Option(
            None,
            "--model-service",
            envvar="PPX_MODEL_SERVICE_URL",
            help="Model service base URL; without it, missing scores use the policy's fallbacks.",
        ),
        ledger: bool = typer.Option(
            False, "--ledger/--no-ledger", help="Write points to the ledger."
        ),
        ledger_url: str | None = typer.Option(
            None, "--ledger-url", help="Ledger DB URL (default PPX_LEDGER_URL or data/ledger.db)."
        ),
    ) -> None:
        _run(kind, request, policy, model_service, ledger, ledger_url)

    cmd.__doc__ = {
        "order-event": "Decide an order event: {event, customer, scores?, model_inputs?}.",
        "return": "Decide a return: {request, customer, scores?, model_inputs?}.",
        "claim": "Decide a delivery claim: {request, customer, scores?, model_inputs?}.",
        "daily": "Run the daily pass: {items: [{customer, now, scores?}, ...]}.",
    }[kind]
    return cmd


for _kind in ("order-event", "return", "claim", "daily"):
    decide_app.command(_kind)(_options(_kind))


@decide_app.command("daily-batch")
def daily_batch_cmd(
    store: Path = typer.Option(..., "--store", help="Store (or world) folder."),
    out: Path = typer.Option(..., "--out", help="Output folder of partitioned Parquet."),
    engine: str = typer.Option(
        "local", "--engine", help="local: one process (default); spark: Apache Spark."
    ),
    policy: Path | None = typer.Option(None, "--policy", help="Policy YAML (default: shipped)."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="The night's moment (default: midnight after the store's data)."
    ),
    buckets: int | None = typer.Option(
        None, "--buckets", min=1, help="Customer-hash buckets (default: one per 25,000 customers)."
    ),
    cores: int = typer.Option(2, "--cores", min=1, help="Spark: local[N] cores."),
    driver_memory: str = typer.Option("1g", "--driver-memory", help="Spark driver memory."),
    ledger: bool = typer.Option(
        True, "--ledger/--no-ledger", help="Write awards to the ledger and messages to the outbox."
    ),
    ledger_url: str | None = typer.Option(
        None,
        "--ledger-url",
        help="Ledger DB URL (default PPX_LEDGER_URL): the loyalty state the decisions read "
        "where it knows the customer, and where awards go (data/ledger.db without either).",
    ),
    outbox_url: str | None = typer.Option(
        None, "--outbox-url", help="Outbox DB URL (default: the ledger's)."
    ),
) -> None:
    """The daily pass for every active customer of a store: churn scores, top-10
    recommendations and decisions, written per customer bucket, then the ledger awards
    and outbox messages (idempotent: a re-run adds nothing)."""
    from ppx.batch.commands import run_nightly

    run_nightly(
        store,
        out,
        engine,
        ("churn", "recs", "decisions"),
        buckets=buckets,
        cores=cores,
        driver_memory=driver_memory,
        policy=policy,
        as_of=as_of,
        ledger=ledger,
        ledger_url=ledger_url,
        outbox_url=outbox_url,
    )


@decide_app.command("balance")
def balance_cmd(
    customer_id: int = typer.Argument(..., min=1),
    ledger_url: str | None = typer.Option(None, "--ledger-url"),
) -> None:
    """Show a customer's points balance and latest ledger entries."""
    from rich.console import Console

    from ppx.rules.ledger import Ledger

    lg = Ledger(ledger_url)
    Console().print(f"customer {customer_id}: {lg.balance(customer_id)} points")
    for e in lg.history(customer_id, 10):
        Console().print(
            f"  {e['created_at']} {e['entry_type']:>16} {e['points']:+6d}  {e['reason']}"
        )


def register(app: typer.Typer) -> None:
    """Add ``ppx simulate``, ``ppx decide``, ``ppx loyalty``, ``ppx messages``,
    ``ppx experiment`` and ``ppx subscriptions``."""
    from ppx.rules.experiments.commands import experiment_app
    from ppx.rules.loyalty.commands import loyalty_app
    from ppx.rules.messages.commands import messages_app
    from ppx.rules.subscriptions.commands import subscriptions_app

    app.command("simulate")(simulate_cmd)
    app.add_typer(decide_app, name="decide")
    app.add_typer(loyalty_app, name="loyalty")
    app.add_typer(messages_app, name="messages")
    app.add_typer(experiment_app, name="experiment")
    app.add_typer(subscriptions_app, name="subscriptions")
