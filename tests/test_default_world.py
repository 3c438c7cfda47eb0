"""Commands run without ``--world`` use ``demo`` in the configured worlds folder
(``PPX_WORLDS_DIR``), whatever directory ppx is run from; ``--help`` says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ppx.cli import app
from ppx.config import get_settings

runner = CliRunner()


class Reached(Exception):  # noqa: N818 - a marker, not an error
    """Raised by a stand-in for a command's work, carrying the world it was given."""

    def __init__(self, world) -> None:
        super().__init__(str(world))
        self.world = world


def _stand_in(*args, **kwargs):
    paths = [v for v in (*args, *kwargs.values()) if isinstance(v, Path)]
    raise Reached(paths[0] if paths else None)


#: command line -> the function that receives the world (replaced by the stand-in)
COMMANDS = [
    (["train", "delivery"], "ppx.models.delivery.train.train"),
    (["bench", "delivery", "--trials", "0"], "ppx.models.delivery.bench.run"),
    (["train", "churn"], "ppx.models.churn.train.train_world"),
    (["evaluate", "churn"], "ppx.models.churn.train.evaluate_registered"),
    (["bench", "churn", "--skip-telco"], "ppx.models.churn.bench.run_bench"),
    (["train", "fraud"], "ppx.models.fraud.train.train"),
    (["evaluate", "fraud"], "ppx.models.fraud.evaluate.evaluate_registered"),
    (["bench", "fraud"], "ppx.models.fraud.train.prepare"),
    (["train", "recs"], "ppx.models.recs.train.train_and_register"),
    (["evaluate", "recs"], "ppx.models.recs.train.evaluate_registered"),
    (["bench", "recs"], "ppx.models.recs.train.run_benchmark"),
    (["train", "feedback"], "ppx.models.feedback.train.train"),
    (["tune", "churn", "--trials", "1"], "ppx.tuning.tune"),
    (["demo"], "ppx.demo.run_demo"),
]


@pytest.fixture()
def worlds_dir(tiny_world, tmp_path, monkeypatch):
    """A worlds folder away from the project whose ``demo`` is the tiny world, and a
    working directory with no ``data/`` in it."""
    folder = tmp_path / "my_worlds"
    folder.mkdir()
    (folder / "demo").symlink_to(tiny_world[1], target_is_directory=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("PPX_WORLDS_DIR", str(folder))
    monkeypatch.chdir(elsewhere)
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


@pytest.mark.parametrize(("args", "work"), COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_a_command_without_world_uses_the_configured_worlds_folder(
    worlds_dir, monkeypatch, args, work
):
    monkeypatch.setattr(work, _stand_in)
    res = runner.invoke(app, args)
    assert isinstance(res.exception, Reached), res.output
    assert res.exception.world is not None
    assert res.exception.world.resolve() == (worlds_dir / "demo").resolve()


def test_help_names_the_default_world():
    res = runner.invoke(app, ["train", "fraud", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "demo/ in PPX_WORLDS_DIR" in res.output


def test_settings_are_read_when_the_command_runs(worlds_dir, monkeypatch, tmp_path):
    """A folder set after ``ppx.cli`` was imported still counts (nothing read at import)."""
    other = tmp_path / "later"
    other.mkdir()
    (other / "demo").symlink_to(worlds_dir / "demo", target_is_directory=True)
    monkeypatch.setenv("PPX_WORLDS_DIR", str(other))
    get_settings.cache_clear()
    monkeypatch.setattr("ppx.models.fraud.train.train", _stand_in)
    res = runner.invoke(app, ["train", "fraud"])
    assert isinstance(res.exception, Reached), res.output
    assert res.exception.world == other / "demo"
