"""``ppx monitor MODEL`` writes its page in the configured reports folder
(``PPX_REPORTS_DIR``), never in a ``reports/`` folder of wherever the command runs."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ppx.config import get_settings


@pytest.fixture()
def reports_dir(tmp_path, monkeypatch):
    """PPX_REPORTS_DIR pointed at tmp_path/reports, run from another folder."""
    folder = tmp_path / "configured_reports"
    monkeypatch.setenv("PPX_REPORTS_DIR", str(folder))
    get_settings.cache_clear()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    yield folder
    get_settings.cache_clear()
    assert not (elsewhere / "reports").exists()  # nothing under the working folder


def test_report_path_is_the_setting_unless_out_is_given(reports_dir, tmp_path):
    from ppx.monitoring import report_path

    assert report_path("fraud") == reports_dir / "fraud_monitor.html"
    assert report_path("fraud", tmp_path / "mine.html") == tmp_path / "mine.html"


def test_monitor_writes_its_report_in_the_configured_folder(reports_dir, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from ppx.cli import app
    from ppx.explain import sources
    from tests.test_monitoring import _Model, _requests

    # the command's own code end to end; the registered model and the world are stand-ins
    monkeypatch.setattr(
        sources,
        "load_explainable",
        lambda name, alias: SimpleNamespace(model=_Model(), version="4"),
    )
    monkeypatch.setattr(
        sources, "world_requests", lambda *args, **kwargs: (_requests(shift=0.0), "600 requests")
    )
    monkeypatch.setattr("ppx.data.io.load_tables", lambda *args, **kwargs: {})
    world = tmp_path / "world"
    world.mkdir()
    res = CliRunner().invoke(app, ["monitor", "churn", "--world", str(world)])
    assert res.exit_code == 0, res.output
    page = reports_dir / "churn_monitor.html"
    text = page.read_text()
    assert "ppx-churn@champion" in text and "<h2>input drift</h2>" in text


@pytest.mark.slow
def test_delivery_monitor_writes_its_report_in_the_configured_folder(
    reports_dir, tiny_world, mlflow_tmp
):
    from ppx import tracking
    from ppx.cli import app
    from ppx.models import registry

    spec = registry.get("delivery")
    result = spec.run_train(tiny_world[1], cfg=spec.tiny_config(), progress=False)
    tracking.set_alias("delivery", "monitored", result.version)
    res = CliRunner().invoke(
        app, ["monitor", "delivery", "--world", str(tiny_world[1]), "--alias", "monitored"]
    )
    assert res.exit_code == 0, res.output
    assert (reports_dir / "delivery_monitor.html").is_file()
