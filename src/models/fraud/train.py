"""Fit the fraud network, compare it with baselines, log, register and gate it.

:func:`prepare` builds the point-in-time training frame once (history, requests,
features, time split); :func:`fit_network` trains the two-head network with
imbalance-aware loss, early stopping and per-head Platt calibration;
:func:`train` runs the whole pipeline in one MLflow run of ``ppx-fraud``: our model,
``rules``, ``lightgbm_no_linkage``, ``lightgbm`` and the ``oracle`` on the same test
split, then registers the pyfunc (history snapshot and linkage identities as
artifacts) and promotes it only if it beats the champion on the same holdout.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression

from ppx.features import fraud as F
from ppx.models.fraud.config import FraudConfig
from ppx.models.fraud.evaluate import (
    mean_pr_auc,
    split_masks,
)
from ppx.models.fraud.network import FraudNet

log = logging.getLogger(__name__)
MODEL = "fraud"


@dataclass
class Prepared:
    """The point-in-time training frame of one world."""

    tables: dict[str, pd.DataFrame]
    history: F.FraudHistory
    requests: pd.DataFrame
    X: pd.DataFrame
    y: np.ndarray
    masks: dict
    truth: dict[str, pd.DataFrame] | None = None
    seconds: float = 0.0


def prepare(
    world_path: str | Path | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
    truth: dict[str, pd.DataFrame] | None = None,
    cfg: FraudConfig | None = None,
) -> Prepared:
    """Load a world (or take tables), build history, requests, features and the split."""
    from ppx.data.io import DataLoadError, load_tables, load_truth

    cfg = cfg or FraudConfig()
    t0 = time.perf_counter()
    if tables is None:
        if world_path is None:
            raise ValueError("prepare: pass world_path or tables")
        tables = load_tables(world_path)
        if truth is None:
            try:
                truth = load_truth(world_path)
            except DataLoadError:
                truth = None
    history = F.build_history(tables, label_delay_days=cfg.label_delay_days)
    requests = F.all_requests(tables)
    X = F.fraud_features(requests, history)
    y = F.label_of(requests)
    masks = split_masks(requests, cfg)
    return Prepared(tables, history, requests, X, y, masks, truth, time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------
# the network
# ----------------------------------------------------------------------------------------


@dataclass
class FitResult:
    net: FraudNet
    feature_names: list[str]
    seconds: float
    epochs: int
    history: list[float] = field(default_factory=list)


def _pos_weights(y: np.ndarray, claim: np.ndarray, power: float) -> np.ndarray:
    w = np.ones(2)
    for h in (0, 1):
        m = claim == h
        pos = max(float(y[m].sum()), 1.0)
        neg = max(float((~y[m]).sum()), 1.0)
        w[h] = (neg / pos) ** power
    return w


def fit_network(
    X: pd.DataFrame,
    y: np.ndarray,
    masks: dict,
    cfg: FraudConfig,
    feature_names: list[str] | None = None,
    progress: bool = True,
) -> FitResult:
    """Train the two-head network on train rows; early-stop and calibrate on val rows.

    Imbalance: each head's positive class is up-weighted by ``(neg/pos) ** power`` so
    the rare fraud rows shape the trunk; the distortion this causes in probabilities
    is undone by per-head Platt scaling fitted on the validation split.
    """
    from tqdm.auto import tqdm

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    names = list(feature_names or F.FEATURE_NAMES)
    t0 = time.perf_counter()
    Xa = X[names].to_numpy(dtype=np.float32)
    claim = Xa[:, names.index("is_claim")] > 0.5
    tr, va = masks["train"], masks["val"]
    net = FraudNet(len(names), names.index("is_claim"), cfg.hidden, cfg.hidden2, cfg.dropout)
    net.fit_preprocessing(Xa[tr])
    xt = torch.as_tensor(Xa[tr])
    yt = torch.as_tensor(y[tr].astype(np.float32))
    pw = torch.as_tensor(_pos_weights(y[tr], claim[tr], cfg.pos_weight_power), dtype=torch.float32)
    wt = torch.where(yt > 0, pw[torch.as_tensor(claim[tr]).long()], torch.ones_like(yt))
    xv = torch.as_tensor(Xa[va])
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    best, best_state, bad, epochs = -1.0, None, 0, 0
    curve: list[float] = []
    n = len(xt)
    bar = tqdm(range(cfg.max_epochs), desc="fraud net", disable=not progress, leave=False)
    for epoch in bar:
        net.train()
        perm = torch.as_tensor(rng.permutation(n))
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            opt.zero_grad()
            loss = (loss_fn(net.logits(xt[idx]), yt[idx]) * wt[idx]).mean()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            zv = net.logits(xv).numpy()
        score = mean_pr_auc(y[va], zv, claim[va])
        curve.append(score)
        epochs = epoch + 1
        if score > best + 1e-4:
            best, bad = score, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                break
        bar.set_postfix(val_pr_auc=f"{score:.3f}")
    if best_state is not None:
        net.load_state_dict(best_state)
    calibrate(net, xv, y[va], claim[va])
    return FitResult(net, names, time.perf_counter() - t0, epochs, curve)


def calibrate(net: FraudNet, xv: torch.Tensor, yv: np.ndarray, claim_v: np.ndarray) -> None:
    """Per-head Platt scaling on held-out logits (fixes the pos_weight distortion)."""
    net.eval()
    with torch.no_grad():
        z = net.logits(xv).numpy()
    for h in (0, 1):
        m = claim_v == h
        if m.sum() < 10 or yv[m].all() or not yv[m].any():
            continue
        lr = LogisticRegression(C=1e4).fit(z[m, None], yv[m])
        net.cal_a[h] = float(lr.coef_[0, 0])
        net.cal_b[h] = float(lr.intercept_[0])


def predict_network(net: FraudNet, X: pd.DataFrame, names: list[str]) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        return net(torch.as_tensor(X[names].to_numpy(dtype=np.float32))).numpy().astype(float)
