"""Score and input drift of any explainable model against its training sample."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx import monitoring as mon


class _Model:
    """The explainable surface the monitor needs: features, score_features, background."""

    feature_names = ["tenure", "region_code"]

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self._bg = pd.DataFrame(
            {"tenure": rng.normal(12, 3, 400), "region_code": rng.integers(0, 3, 400)}
        )

    def features(self, raw: pd.DataFrame) -> pd.DataFrame:
        return raw[self.feature_names].astype(float)

    def score_features(self, X: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(X[:, 0] - 12) / 3))

    def background(self) -> pd.DataFrame:
        return self._bg


def _requests(shift: float, n: int = 600, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"tenure": rng.normal(12 + shift, 3, n), "region_code": rng.integers(0, 3, n)}
    )


def test_a_shifted_input_is_major_drift_and_moves_the_score():
    found = mon.model_drift(_Model(), _requests(shift=4.0))
    drift = found["inputs"].set_index("feature")
    assert drift.loc["tenure", "level"] == "major"
    assert drift.loc["region_code", "level"] == "stable"
    score = found["score"].set_index("statistic")
    assert score["level"].iloc[0] == "major"
    assert score.loc["mean", "recent"] > score.loc["mean", "training"] + 0.2


def test_requests_like_training_show_no_drift(tmp_path):
    found = mon.model_drift(_Model(), _requests(shift=0.0))
    assert set(found["inputs"]["level"]) == {"stable"}
    assert found["score"]["psi"].iloc[0] < mon.PSI_MODERATE
    path = mon.write_report(tmp_path / "m.html", found, "ppx-test: scores and inputs", ["ok"])
    text = path.read_text()
    assert "<h2>score</h2>" in text and "<h2>inputs</h2>" in text and "tenure" in text
