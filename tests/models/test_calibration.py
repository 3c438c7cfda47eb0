"""Calibration shared by the models: Platt scaling and isotonic maps."""

from __future__ import annotations

import numpy as np
import pytest

from ppx.models.calibration import apply_platt, fit_isotonic, fit_platt


def test_platt_recovers_a_known_scaling():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20_000)
    y = rng.random(len(z)) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))
    a, b = fit_platt(z, y)
    assert a == pytest.approx(0.5, abs=0.05) and b == pytest.approx(-1.0, abs=0.05)
    assert apply_platt(np.array([2.0]), a, b)[0] == pytest.approx(0.5, abs=0.03)
    assert fit_platt(z, np.zeros(len(z))) == (1.0, 0.0)  # one class: identity


def test_isotonic_map_is_monotone_and_bounded():
    rng = np.random.default_rng(1)
    x = rng.random(2_000)
    y = (rng.random(2_000) < x**2).astype(float)
    iso = fit_isotonic(x, y, y_min=0.01, y_max=0.99)
    grid = iso.predict(np.linspace(-1, 2, 50))
    assert np.all(np.diff(grid) >= 0)
    assert grid.min() >= 0.01 and grid.max() <= 0.99
