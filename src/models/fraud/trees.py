"""Gradient-boosted trees blended into the network's score.

The network ensemble and a LightGBM per head, fitted on the same features and the same
training rows, make different mistakes: on the demo world's validation returns the
network ranked a ring member with three confirmed frauds near zero where the trees
scored it 0.85, and the trees missed early ring returns the network caught. Their
blend ranks better than either (docs/benchmarks/fraud.md, "Known fraud kinds and the
LightGBM blend").

Per head: ``z = w * logit(p_network) + (1 - w) * tree_margin`` with ``w`` =
``FraudConfig.tree_blend_net_weight`` (fixed, chosen on validation), then Platt scaling
of ``z`` fitted on the validation split, like the network's own calibration. A head
with too few validation rows to calibrate the blend (tiny worlds) drops its trees and
keeps the network's probability.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HEADS = ("return", "claim")
_EPS = 1e-7


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


@dataclass
class TreeBlend:
    """LightGBM boosters per head, the blend weight and the blend's Platt scaling."""

    boosters: dict = field(default_factory=dict)  # head -> lightgbm.Booster
    net_weight: float = 0.7
    cal: dict = field(default_factory=dict)  # head -> (a, b)

    def blend(self, X: np.ndarray, p_net: np.ndarray, claim_col: int) -> np.ndarray:
        """Blended, calibrated probability per row (rows of a head without trees: p_net)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        p = np.asarray(p_net, dtype=float).copy()
        claim = X[:, claim_col] > 0.5
        for i, head in enumerate(HEADS):
            booster = self.boosters.get(head)
            m = claim if i == 1 else ~claim
            if booster is None or not m.any():
                continue
            margin = booster.predict(X[m], raw_score=True, num_threads=1)
            z = self.net_weight * _logit(p[m]) + (1 - self.net_weight) * margin
            a, b = self.cal.get(head, (1.0, 0.0))
            p[m] = 1.0 / (1.0 + np.exp(-(a * z + b)))
        return p

    @classmethod
    def fit(cls, X, y, masks, names, cfg, p_net: np.ndarray) -> TreeBlend:
        """Trees on the training rows (early-stopped on validation), blend calibrated on
        validation. ``p_net``: the calibrated network probability of every row of ``X``."""
        from ppx.models.calibration import fit_platt
        from ppx.models.fraud.evaluate import fit_lightgbm

        models = fit_lightgbm(X, y, masks, names, cfg)
        out = cls(net_weight=float(cfg.tree_blend_net_weight))
        for head in HEADS:
            if hasattr(models[head], "booster_"):
                out.boosters[head] = models[head].booster_
        Xa = X[names].to_numpy(dtype=np.float64)
        claim_col = names.index("is_claim")
        claim = Xa[:, claim_col] > 0.5
        va = masks["val"]
        uncal = cls(out.boosters, out.net_weight, {h: (1.0, 0.0) for h in HEADS})
        z = _logit(uncal.blend(Xa[va], p_net[va], claim_col))
        for i, head in enumerate(HEADS):
            m = claim[va] == bool(i)
            yv = y[va][m]
            if head not in out.boosters:
                continue
            if m.sum() < 10:  # an uncalibrated blend would be worse than the network alone
                del out.boosters[head]
                continue
            out.cal[head] = fit_platt(z[m], yv)
        return out

    # --- persistence -----------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for head, booster in self.boosters.items():
            (folder / f"trees_{head}.txt").write_text(booster.model_to_string())
        meta = {
            "net_weight": self.net_weight,
            "heads": sorted(self.boosters),
            "cal": {h: list(v) for h, v in self.cal.items()},
        }
        (folder / "trees.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> TreeBlend | None:
        """The blend saved in ``folder``; None for a network-only model."""
        folder = Path(folder)
        if not (folder / "trees.json").exists():
            return None
        import lightgbm as lgb  # only blends need it

        meta = json.loads((folder / "trees.json").read_text())
        boosters = {
            h: lgb.Booster(model_str=(folder / f"trees_{h}.txt").read_text()) for h in meta["heads"]
        }
        cal = {h: (float(v[0]), float(v[1])) for h, v in meta["cal"].items()}
        return cls(boosters, float(meta["net_weight"]), cal)
