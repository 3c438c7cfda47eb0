"""The notebooks' helpers: their own registry by default, a store when given."""

from __future__ import annotations

import pytest

from ppx.config import get_settings
from ppx.explain.notebooks import ensure_world, notebook_registry_dir


def test_notebooks_keep_out_of_the_served_registry(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PPX_MLFLOW_DIR", raising=False)
    get_settings.cache_clear()
    try:
        served = get_settings().mlflow_dir
        assert notebook_registry_dir() == served / "notebooks"
        assert notebook_registry_dir(tmp_path) == tmp_path
        assert notebook_registry_dir("serve") is None  # opted in: the default registry
        monkeypatch.setenv("PPX_MLFLOW_DIR", str(tmp_path / "told"))
        assert notebook_registry_dir() is None  # the environment already says where
    finally:
        get_settings.cache_clear()


def test_a_store_parameter_replaces_the_generated_world(tiny_world, tmp_path):
    _, world_path = tiny_world
    assert ensure_world(50, 3, 1, store=world_path) == world_path
    with pytest.raises(ValueError, match="not a store folder"):
        ensure_world(50, 3, 1, store=tmp_path)
