"""Fit the fraud network, compare it with baselines, log, register and gate it.

:func:`prepare` builds the point-in-time training frame once (history, requests,
features, time split); :func:`fit_network` trains the two-head network with
imbalance-aware loss, early stopping and per-head Platt calibration;
:func:`train` runs the whole pipeline in one MLflow run of ``ppx-fraud``: our model,
``rules``, ``lightgbm_no_linkage``, ``lightgbm`` and the oracles (``oracle``: the
Bayes posterior given the observable timing; ``oracle_prior``: the generator's
probability before it drew the timing) on the same test split, then registers the pyfunc (history snapshot and linkage identities as
artifacts) and promotes it only if it beats the champion on the same holdout.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ppx.data import columns as C
from ppx.features import fraud as F
from ppx.models.calibration import fit_platt
from ppx.models.early_stopping import EarlyStopping
from ppx.models.fraud.config import FraudConfig
from ppx.models.fraud.evaluate import (
    compare,
    fit_lightgbm,
    lightgbm_scores,
    mean_pr_auc,
    oracle_scores,
    posterior_oracle_scores,
    ring_members,
    rules_score,
    split_masks,
)
from ppx.models.fraud.network import FraudNet
from ppx.models.fraud.trees import TreeBlend

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
    trees: TreeBlend | None = None  # blended in by ``fit_blend`` (cfg.tree_blend_net_weight)


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
    is undone by per-head Platt scaling fitted on the validation split. With
    ``cfg.members`` > 1 each member is a whole run of its own (seed ``cfg.seed + k``:
    initialisation, batch order, early stopping); the members' logits are averaged
    and the average is calibrated.
    """
    torch.set_num_threads(cfg.threads)
    names = list(feature_names or F.FEATURE_NAMES)
    t0 = time.perf_counter()
    Xa = X[names].to_numpy(dtype=np.float32)
    claim = Xa[:, names.index("is_claim")] > 0.5
    va = masks["val"]
    net = FraudNet(
        len(names), names.index("is_claim"), cfg.hidden, cfg.hidden2, cfg.dropout, cfg.members
    )
    net.fit_preprocessing(Xa[masks["train"]])
    xv = torch.as_tensor(Xa[va])
    epochs, curve = 0, []
    for k in range(cfg.members):
        args = (len(names), net.claim_col, cfg.hidden, cfg.hidden2, cfg.dropout)
        one = FraudNet(*args, soft_clip=net.soft_clip)
        # The ensemble's preprocessing buffers (top-level names; layers have dots).
        buffers = {n: v for n, v in net.state_dict().items() if "." not in n}
        one.load_state_dict(buffers, strict=False)
        member_curve = _fit_member(one, Xa, y, claim, masks, cfg, cfg.seed + k, progress)
        net.trunks[k].load_state_dict(one.trunks[0].state_dict())
        net.heads[k].load_state_dict(one.heads[0].state_dict())
        epochs += len(member_curve)
        curve = curve or member_curve
    calibrate(net, xv, y[va], claim[va])
    return FitResult(net, names, time.perf_counter() - t0, epochs, curve)


def _fit_member(
    net: FraudNet,
    Xa: np.ndarray,
    y: np.ndarray,
    claim: np.ndarray,
    masks: dict,
    cfg: FraudConfig,
    seed: int,
    progress: bool,
) -> list[float]:
    """One network's training run; leaves its best validation state in ``net``."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    for module in (*net.trunks, *net.heads):  # fresh weights drawn from this seed
        for layer in module.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.reset_parameters()
    rng = np.random.default_rng(seed)
    tr, va = masks["train"], masks["val"]
    xt = torch.as_tensor(Xa[tr])
    yt = torch.as_tensor(y[tr].astype(np.float32))
    pw = torch.as_tensor(_pos_weights(y[tr], claim[tr], cfg.pos_weight_power), dtype=torch.float32)
    wt = torch.where(yt > 0, pw[torch.as_tensor(claim[tr]).long()], torch.ones_like(yt))
    xv = torch.as_tensor(Xa[va])
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    early = EarlyStopping("maximize", cfg.patience, min_delta=1e-4)
    curve: list[float] = []
    n = len(xt)
    bar = tqdm(range(cfg.max_epochs), desc="fraud net", disable=not progress, leave=False)
    for _ in bar:
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
        if early.step(score, net):
            break
        bar.set_postfix(val_pr_auc=f"{score:.3f}")
    early.restore(net)
    return curve


def calibrate(net: FraudNet, xv: torch.Tensor, yv: np.ndarray, claim_v: np.ndarray) -> None:
    """Per-head Platt scaling on held-out logits (fixes the pos_weight distortion)."""
    net.eval()
    with torch.no_grad():
        z = net.logits(xv).numpy()
    for h in (0, 1):
        m = claim_v == h
        if m.sum() < 10 or yv[m].all() or not yv[m].any():
            continue
        net.cal_a[h], net.cal_b[h] = fit_platt(z[m], yv[m])


def predict_network(net: FraudNet, X: pd.DataFrame, names: list[str]) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        x = torch.as_tensor(np.ascontiguousarray(X[names].to_numpy(dtype=np.float32)))
        return net(x).numpy().astype(float)


def fit_blend(fit: FitResult, X: pd.DataFrame, y: np.ndarray, masks: dict, cfg: FraudConfig):
    """Add the per-head LightGBM blend to a fitted network (no-op when the weight is 1)."""
    if cfg.tree_blend_net_weight >= 1.0:
        return fit
    t0 = time.perf_counter()
    p_net = predict_network(fit.net, X, fit.feature_names)
    fit.trees = TreeBlend.fit(X, y, masks, fit.feature_names, cfg, p_net)
    fit.seconds += time.perf_counter() - t0
    return fit


def predict_fit(fit: FitResult, X: pd.DataFrame) -> np.ndarray:
    """The model's calibrated probability: the network, blended with the trees if any."""
    p = predict_network(fit.net, X, fit.feature_names)
    if fit.trees is None:
        return p
    Xa = X[fit.feature_names].to_numpy(dtype=np.float64)
    return fit.trees.blend(Xa, p, fit.feature_names.index("is_claim"))


# ----------------------------------------------------------------------------------------
# the full pipeline
# ----------------------------------------------------------------------------------------

PROBABILISTIC = {"ppx", "ppx_network", "lightgbm", "lightgbm_no_linkage", "oracle", "oracle_prior"}


@dataclass
class BenchResult:
    """Scores of every method on every row plus the per-head metric tables."""

    tables: dict[str, dict[str, dict[str, float]]]
    scores: dict[str, np.ndarray]
    fit: FitResult
    thresholds: dict[str, float]
    seconds: dict[str, float]
    ring_ceiling: dict[str, float] = field(default_factory=dict)


def raw_requests(requests: pd.DataFrame) -> pd.DataFrame:
    """Offline request rows without the label and ids, in the served (wire) form."""
    from ppx.models.fraud.pyfunc import to_wire

    return to_wire(requests.drop(columns=[F.REQUEST_ID, C.CONFIRMED_FRAUD], errors="ignore"))


def run_benchmark(P: Prepared, cfg: FraudConfig, progress: bool = True) -> BenchResult:
    """Fit ours and the baselines on the same split; metrics on the test split."""
    from ppx.models.fraud.evaluate import best_threshold

    secs: dict[str, float] = {}
    fit = fit_network(P.X, P.y, P.masks, cfg, progress=progress)
    network_seconds = fit.seconds  # before the trees are added to it
    fit = fit_blend(fit, P.X, P.y, P.masks, cfg)
    secs["ppx"] = fit.seconds
    scores = {"ppx": predict_fit(fit, P.X)}
    if fit.trees is not None:
        # the PyTorch network alone, from the same fit: what the tree blend adds is visible,
        # and "ppx" (which contains a LightGBM) is not mistaken for the network's figure
        scores["ppx_network"] = predict_network(fit.net, P.X, fit.feature_names)
        secs["ppx_network"] = network_seconds
    t0 = time.perf_counter()
    scores["rules"] = rules_score(P.X)
    secs["rules"] = time.perf_counter() - t0
    for name, cols in (("lightgbm_no_linkage", F.BASE_FEATURES), ("lightgbm", F.FEATURE_NAMES)):
        t0 = time.perf_counter()
        models = fit_lightgbm(P.X, P.y, P.masks, cols, cfg)
        secs[name] = time.perf_counter() - t0
        scores[name] = lightgbm_scores(models, P.X)
    if P.truth is not None:
        scores["oracle"] = posterior_oracle_scores(P.requests, P.truth, P.tables)
        scores["oracle_prior"] = oracle_scores(P.requests, P.truth)
        secs["oracle"] = secs["oracle_prior"] = 0.0
        is_ring = ring_members(P.requests, P.truth)
    else:
        is_ring = np.zeros(len(P.requests), dtype=bool)
    extra = {m: {"train_seconds": s} for m, s in secs.items()}
    tables = compare(scores, P.requests, P.masks, cfg, is_ring, PROBABILISTIC, extra)
    claim = (P.requests[F.KIND] == F.CLAIM).to_numpy()
    amount = P.requests[C.AMOUNT].to_numpy(dtype=float)
    thresholds = {}
    for head, is_claim in ((F.RETURN, False), (F.CLAIM, True)):
        va = P.masks["val"] & (claim == is_claim)
        thr = best_threshold(P.y[va], scores["ppx"][va], amount[va], cfg.friction_cost_ratio)
        thresholds[head] = min(thr, 1.0)
    from ppx.models.fraud.evaluate import ring_recall_ceiling

    cust = P.requests[C.CUSTOMER_ID].to_numpy()
    ceiling = {
        head: ring_recall_ceiling(cust[m], is_ring[m])
        for head, m in (
            (F.RETURN, P.masks["test"] & ~claim),
            (F.CLAIM, P.masks["test"] & claim),
        )
    }
    return BenchResult(tables, scores, fit, thresholds, secs, ceiling)


def build_scorer(P: Prepared, bench: BenchResult, cfg: FraudConfig):
    """The servable scorer: network, snapshot of the history, thresholds, background."""
    from ppx.models.fraud.pyfunc import FraudScorer

    rng = np.random.default_rng(cfg.seed)
    tr = np.flatnonzero(P.masks["train"])
    bg = P.X.iloc[rng.choice(tr, size=min(200, len(tr)), replace=False)]
    meta = {"config": cfg.to_dict(), "test_start": str(P.masks["test_start"])}
    return FraudScorer(
        bench.fit.net,
        bench.fit.feature_names,
        P.history,
        bench.thresholds,
        bg,
        meta,
        trees=bench.fit.trees,
    )


def holdout_scorer(P: Prepared):
    """Scores a registered model URI on this world's test requests (the gate)."""
    te = P.masks["test"]
    raw = raw_requests(P.requests.loc[te])
    y = P.y[te]
    claim = (P.requests.loc[te, F.KIND] == F.CLAIM).to_numpy()

    def score(uri: str) -> float:
        import mlflow

        try:
            out = mlflow.pyfunc.load_model(uri).predict(raw)
        except Exception as err:  # a champion from another world cannot score this one
            log.warning("champion %s cannot score this holdout: %s", uri, err)
            return float("-inf")
        return mean_pr_auc(y, out["p_fraud"].to_numpy(dtype=float), claim)

    return score


def flat_metrics(tables: dict) -> dict[str, float]:
    out = {}
    for head, methods in tables.items():
        for method, vals in methods.items():
            for k, v in vals.items():
                if v is not None and np.isfinite(v):
                    out[f"{head}.{method}.{k}"] = float(v)
    return out


def train(
    world_path: str | Path,
    cfg: FraudConfig | None = None,
    register: bool = True,
    progress: bool = True,
    prepared: Prepared | None = None,
):
    """Train, benchmark, log and register ``ppx-fraud``; run the promotion gate.

    Returns a :class:`~ppx.models.spec.TrainResult`: flat metrics (``head.method.metric``,
    ``holdout_mean_pr_auc``, timings) and in ``details`` the per-head tables and the
    review thresholds.
    """
    import mlflow
    from ppx import tracking
    from ppx.models.fraud.pyfunc import ARTIFACT_DIR, FraudPyfunc, signature

    cfg = cfg or FraudConfig()
    t0 = time.perf_counter()
    P = prepared or prepare(world_path, cfg=cfg)
    tracking.configure()
    with tracking.start_run(MODEL, run_name="train", world_path=world_path, dataset=P.X) as run:
        mlflow.log_params(cfg.to_dict())
        bench = run_benchmark(P, cfg, progress=progress)
        mlflow.log_metrics(flat_metrics(bench.tables))
        mlflow.log_metric("feature_seconds", P.seconds)
        te = P.masks["test"]
        claim = (P.requests[F.KIND] == F.CLAIM).to_numpy()
        holdout = mean_pr_auc(P.y[te], bench.scores["ppx"][te], claim[te])
        mlflow.log_metric("holdout_mean_pr_auc", holdout)
        tracking.log_json(bench.tables, "bench.json")
        tracking.log_json(bench.thresholds, "review_thresholds.json")
        metrics = {
            **flat_metrics(bench.tables),
            "holdout_mean_pr_auc": holdout,
            "train_seconds": bench.fit.seconds,
            "feature_seconds": P.seconds,
        }
        version = gate = None
        if register:
            scorer = build_scorer(P, bench, cfg)
            with tempfile.TemporaryDirectory() as tmp:
                folder = scorer.save(Path(tmp) / ARTIFACT_DIR)
                example = raw_requests(
                    pd.concat(
                        [
                            P.requests.loc[te & ~claim].head(1),
                            P.requests.loc[te & claim].head(1),
                        ]
                    )
                )
                version = tracking.log_pyfunc_model(
                    MODEL,
                    FraudPyfunc(),
                    artifacts={ARTIFACT_DIR: str(folder)},
                    input_example=example,
                    signature=signature(),
                )
            gate = tracking.promote(
                MODEL,
                version,
                "holdout_mean_pr_auc",
                holdout,
                holdout_scorer(P),
                baseline_checks(bench.tables),
                heads=F.KINDS,
            )
    metrics["seconds"] = time.perf_counter() - t0
    return tracking.train_result(
        MODEL,
        run.info.run_id,
        metrics,
        version,
        gate,
        tables=bench.tables,
        thresholds=bench.thresholds,
    )


#: the simple baselines every head must beat to be promoted: the hand-written rules
SIMPLE_BASELINES = ("rules",)


def baseline_checks(tables: dict) -> list:
    """PR AUC of ours against each simple baseline, on each head's test requests."""
    from ppx import tracking

    return [
        tracking.BaselineCheck(
            head,
            "pr_auc",
            float(tables[head]["ppx"]["pr_auc"]),
            name,
            float(tables[head][name]["pr_auc"]),
        )
        for head in F.KINDS
        for name in SIMPLE_BASELINES
        if head in tables and name in tables[head]
    ]


def suggest_network(trial, cfg: FraudConfig) -> FraudConfig:
    """The network's search space (its best on the demo world are the defaults)."""
    return cfg.replace(
        hidden=trial.suggest_categorical("hidden", [64, 128, 256]),
        hidden2=trial.suggest_categorical("hidden2", [32, 64]),
        dropout=trial.suggest_float("dropout", 0.0, 0.4),
        lr=trial.suggest_float("lr", 5e-4, 1e-2, log=True),
        weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        pos_weight_power=trial.suggest_float("pos_weight_power", 0.0, 1.0),
    )


def network_objective(P: Prepared, cfg: FraudConfig):
    """``trial -> validation mean PR AUC`` of the two heads for one network fit with the
    trial's hyper-parameters; the test months are never read."""
    claim = (P.requests[F.KIND] == F.CLAIM).to_numpy()
    va = P.masks["val"]

    def objective(trial) -> float:
        fit = fit_network(P.X, P.y, P.masks, suggest_network(trial, cfg), progress=False)
        s = predict_network(fit.net, P.X, fit.feature_names)
        return mean_pr_auc(P.y[va], s[va], claim[va])

    return objective


def suggest_lightgbm(trial) -> dict:
    """LightGBM's search space, the same budget as the network's (``lgb_*`` in the config)."""
    return {
        "num_leaves": trial.suggest_int("num_leaves", 7, 63),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 60),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
    }


def lightgbm_objective(P: Prepared, cfg: FraudConfig):
    """``trial -> validation mean PR AUC`` of the LightGBM baseline."""
    claim = (P.requests[F.KIND] == F.CLAIM).to_numpy()
    va = P.masks["val"]

    def objective(trial) -> float:
        models = fit_lightgbm(P.X, P.y, P.masks, F.FEATURE_NAMES, cfg, suggest_lightgbm(trial))
        s = lightgbm_scores(models, P.X)
        return mean_pr_auc(P.y[va], s[va], claim[va])

    return objective
