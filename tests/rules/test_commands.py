"""``ppx decide``: offline decisions with fallbacks, ledger writes, clear errors."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from ppx.rules.commands import register


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root():
        """root"""

    register(app)
    return app


def test_decide_order_event_offline_writes_ledger(tmp_path, monkeypatch, late_delivery):
    monkeypatch.delenv("PPX_MODEL_SERVICE_URL", raising=False)
    req = {
        "event": late_delivery,
        "customer": {"customer_id": 42, "tier": "silver", "email_opt_in": True},
        "scores": {"churn_risk": 0.42},
    }
    path = tmp_path / "req.json"
    path.write_text(json.dumps(req))
    url = f"sqlite:///{tmp_path / 'l.db'}"
    app = _app()
    res = CliRunner().invoke(
        app, ["decide", "order-event", str(path), "--ledger", "--ledger-url", url]
    )
    assert res.exit_code == 0, res.output
    assert "150 apology points" in res.output and "balance now 250" in res.output
    bal = CliRunner().invoke(app, ["decide", "balance", "42", "--ledger-url", url])
    assert "250 points" in bal.output


def test_decide_reports_bad_requests(tmp_path):
    app = _app()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"event": {"event_type": "placed"}, "customer": {"customer_id": 1}}))
    res = CliRunner().invoke(app, ["decide", "order-event", str(path)])
    assert res.exit_code == 2 and "event.order_id" in res.output
    # every problem is listed, not only the first
    assert "event.customer_id: Field required" in res.output
    assert "event.occurred_at: Field required" in res.output
    assert "bad.json" in res.output
    res = CliRunner().invoke(app, ["decide", "order-event", str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_loyalty_commands_expire_and_summarise(tmp_path):
    from datetime import datetime

    from ppx.rules.ledger import Ledger

    url = f"sqlite:///{tmp_path / 'l.db'}"
    lg = Ledger(url)
    lg.award(5, 420, "earn:5:1", order_id=1, at=datetime(2025, 1, 2))
    lg.dispose()
    app = _app()
    res = CliRunner().invoke(
        app, ["loyalty", "summary", "5", "--ledger-url", url, "--now", "2025-12-20"]
    )
    assert res.exit_code == 0, res.output
    assert "points_to_next_reward" in res.output and "2026-01-02" in res.output
    res = CliRunner().invoke(app, ["loyalty", "expire", "--ledger-url", url, "--now", "2026-01-03"])
    assert res.exit_code == 0 and "expired 420 points of 1 customers" in res.output
    res = CliRunner().invoke(app, ["loyalty", "expire", "--ledger-url", url, "--now", "2026-01-04"])
    assert "expired 0 points of 0 customers" in res.output
    res = CliRunner().invoke(app, ["loyalty", "settle-referrals", "--ledger-url", url])
    assert res.exit_code == 0 and "0 paid, 0 settled" in res.output
