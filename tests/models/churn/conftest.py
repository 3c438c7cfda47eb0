"""Churn test helpers: a trained model saved and reloaded the way the service loads it."""

from __future__ import annotations

import pytest

from ppx.features import churn as F
from ppx.models.churn.pyfunc import ChurnPyfunc, save_history


@pytest.fixture(scope="module")
def reload_as_served(tmp_path_factory):
    """``reload(splits, model, name) -> (pyfunc, data end)``: the model with the serving
    snapshot and default ``as_of`` the trainer gives it, saved beside the history and
    loaded through the pyfunc's ``load_context``."""

    def reload(sp, model, name: str):
        end = F.data_end(sp.history)
        model.info["default_as_of"] = str(end)
        model.snapshot = F.serving_snapshot(sp.history)
        root = tmp_path_factory.mktemp(name)
        model.save(root / "model")
        save_history(sp.history, root / "history")

        class Ctx:
            artifacts = {"model": str(root / "model"), "history": str(root / "history")}

        pf = ChurnPyfunc()
        pf.load_context(Ctx())
        return pf, end

    return reload
