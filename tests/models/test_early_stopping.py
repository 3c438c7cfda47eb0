"""Early stopping shared by the models: best weights kept, patience honoured."""

from __future__ import annotations

import pytest
import torch

from ppx.models.early_stopping import EarlyStopping


def test_early_stopping_keeps_the_best_weights_and_stops_after_patience():
    net = torch.nn.Linear(1, 1)
    early = EarlyStopping("minimize", patience=2, min_delta=0.01)
    stops = []
    for epoch, loss in enumerate([1.0, 0.5, 0.495, 0.6]):
        with torch.no_grad():
            net.weight.fill_(float(epoch))
        stops.append(early.step(loss, net, epoch))
    # 0.495 is not better than 0.5 by more than min_delta; the second miss stops.
    assert stops == [False, False, False, True]
    assert early.best == 0.5 and early.best_epoch == 1
    early.restore(net)
    assert float(net.weight) == 1.0


def test_early_stopping_maximises_and_ignores_nan():
    net = torch.nn.Linear(1, 1)
    early = EarlyStopping("maximize", patience=1)
    assert not early.step(0.3, net) and early.improved
    assert early.step(float("nan"), net) and not early.improved
    assert early.best == 0.3


def test_early_stopping_rejects_bad_settings():
    with pytest.raises(ValueError, match="direction"):
        EarlyStopping("upwards", patience=1)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping("minimize", patience=0)
