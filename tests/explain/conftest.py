"""Fixtures for the explain tests: a real toy churn network trained on the tiny world."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def tiny_tables(tiny_world):
    from ppx.data.io import load_tables

    _, path = tiny_world
    return load_tables(path, validate=False)


@pytest.fixture(scope="session")
def toy_model(tiny_tables):
    from explain_toy import train_toy

    return train_toy(tiny_tables, seed=0)


@pytest.fixture(scope="session")
def toy_report(toy_model, tiny_tables, tiny_world, tmp_path_factory):
    """One report written once for every test that inspects it."""
    from ppx.explain.report import ReportInfo, write_report

    raw = toy_model.explain_requests(tiny_tables, 120, 0)
    X = toy_model.features(raw)
    info = ReportInfo("churn", world_path=str(tiny_world[1]), data_source="toy requests")
    return write_report(toy_model, X, info, out_dir=tmp_path_factory.mktemp("report"), max_rows=120)
