"""The world model's logistic member: a survival logistic regression blended into the network.

On the world's monthly snapshots the true churn signal is close to additive in the logit
(docs/benchmarks/churn.md), so a logistic regression on the same features ranks about as
well as the survival network, and the two make different errors: the network's deep part
finds some interactions but is noisier. Their logits blended rank better than either.

The logistic member is a discrete-time survival model too: one L1 logistic regression per
30-day interval on that interval's at-risk rows (:func:`~ppx.models.churn.model.hazard_targets`),
stored as a depth-0 :class:`~ppx.models.churn.network.ChurnNet` whose wide part holds the
coefficients. The blend is then the model's weighted member logits
(:attr:`ChurnModel.weights`), so training, evaluation, SHAP and the served pyfunc all go
through the one ``raw_logits`` code path, and P(churn within 30) <= P(within 60) <= P(within
90) still holds.

Chosen on the validation split only: the L1 strength (:func:`choose_C`), the blend weight (stacking of the two first-interval
logits by validation ROC AUC, :func:`blend_weight`) and then the per-interval Platt
calibration of the blended logits. The test months are never used.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch

from ppx.models.churn.model import (
    ChurnModel,
    fit_calibration,
    hazard_targets,
)

#: Grid of the logistic member's L1 strength (scikit-learn's ``C``, smaller = sparser);
#: the value with the best first-interval validation ROC AUC is used.
LOGISTIC_CS = (0.01, 0.03, 0.1, 0.3, 1.0)


def _design(model: ChurnModel, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logistic design, numeric inputs, codes): the wide part's inputs without bins."""
    xn, xc = model.encoder.net_transform(frame)
    cards = model.encoder.cardinalities
    onehot = [np.eye(c, dtype=np.float32)[xc[:, j]] for j, c in enumerate(cards)]
    return np.hstack([xn, *onehot]), xn, xc


def _l1_logistic(X: np.ndarray, y: np.ndarray, C: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, l1_ratio=1.0, solver="saga", max_iter=5000, tol=1e-4).fit(X, y)


def choose_C(model: ChurnModel, train: pd.DataFrame, val: pd.DataFrame) -> tuple[float, dict]:
    """The L1 strength of :data:`LOGISTIC_CS` with the best validation ROC AUC on the first
    interval (fitted on the training rows at risk in it), and every candidate's AUC."""
    from ppx.metrics import roc_auc

    Yt, Mt = hazard_targets(train, model.horizons)
    Yv, Mv = hazard_targets(val, model.horizons)
    rt, rv = Mt[:, 0] > 0, Mv[:, 0] > 0
    Xt, Xv = _design(model, train)[0][rt], _design(model, val)[0][rv]
    aucs = {
        C: roc_auc(Yv[rv, 0], _l1_logistic(Xt, Yt[rt, 0], C).decision_function(Xv))
        for C in LOGISTIC_CS
    }
    return max(aucs, key=aucs.get), aucs


def survival_logistic_member(
    model: ChurnModel, train: pd.DataFrame, C: float
) -> torch.nn.Module | None:
    """One L1 logistic regression per interval on its at-risk rows, as a depth-0 network.

    Why L1: the world's hazard depends on a handful of the features, and a sparse fit
    spends less of the ~1,100 training churns on estimating coefficients that are zero;
    on the demo world's validation months it ranks better than the L2 fit (the ``logreg``
    baseline), see docs/benchmarks/churn.md.

    The design is the wide part's inputs without quantile bins (standardised numerics,
    missing flags, one-hot categorical codes); its coefficients map one to one onto
    ``wide_num`` (row k) and the ``wide_cat`` embeddings (column k). None when an
    interval's training rows hold a single class (tiny worlds).
    """
    Y, M = hazard_targets(train, model.horizons)
    X, xn, _ = _design(model, train)
    cards = model.encoder.cardinalities
    net = model._build_net(depth=0)
    with torch.no_grad():
        for k in range(len(model.horizons)):
            rows = M[:, k] > 0
            if len(np.unique(Y[rows, k])) < 2:
                return None
            lr = _l1_logistic(X[rows], Y[rows, k], C)
            coef = torch.tensor(lr.coef_[0], dtype=torch.float32)
            net.wide_num.weight[k].copy_(coef[: xn.shape[1]])
            net.wide_num.bias[k] = float(lr.intercept_[0])
            start = xn.shape[1]
            for e, c in zip(net.wide_cat, cards, strict=True):
                e.weight[:, k].copy_(coef[start : start + c])
                start += c
    net.eval()
    return net


#: Candidate weights of the network's logit in the blend.
BLEND_WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))


def blend_weight(z_net: np.ndarray, z_lin: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """The network's weight with the best validation ROC AUC of ``w * z_net + (1 - w) *
    z_lin``, and every candidate's AUC.

    The logits are first standardised (on the same rows) so a weight means a share of the
    ranking, whatever each member's logit scale. Why not stacking (a logistic fit of y on
    both logits, as the table model does): on the world's validation months it gave the
    network a weight of 0.42-0.55 and a blend that ranked worse than the logistic member
    alone; the gate and the rules layer rank by this score, so the weight is chosen on
    the ranking metric itself.
    """
    from ppx.metrics import roc_auc

    a = (z_net - z_net.mean()) / max(z_net.std(), 1e-12)
    b = (z_lin - z_lin.mean()) / max(z_lin.std(), 1e-12)
    aucs = {float(w): roc_auc(y, w * a + (1 - w) * b) for w in BLEND_WEIGHTS}
    best = max(aucs, key=aucs.get)
    return best, {str(k): v for k, v in aucs.items()}


def blend_logistic(model: ChurnModel, train: pd.DataFrame, val: pd.DataFrame) -> ChurnModel:
    """A copy of the fitted survival ``model`` with the logistic member blended in.

    The member's L1 strength and the network's weight are chosen by the validation rows'
    first-interval ROC AUC; calibration is refitted on validation for the blended
    logits. ``info`` records both choices with every candidate's validation ROC AUC and
    the validation ROC AUC (first interval) of the network, the logistic member and the
    blend. With a network weight of 0 the returned model holds the logistic member only. If the member cannot be fitted or validation has
    a single class, the network is returned unchanged.
    """
    from ppx.metrics import roc_auc

    if model.mode != "subscriptions":
        raise ValueError("blend_logistic is for the survival (subscriptions) model")
    Yv, Mv = hazard_targets(val, model.horizons)
    at_risk = Mv[:, 0] > 0
    Yt, Mt = hazard_targets(train, model.horizons)
    one_class = any(len(np.unique(Yt[Mt[:, k] > 0, k])) < 2 for k in range(Yt.shape[1]))
    if one_class or len(np.unique(Yv[at_risk, 0])) < 2:
        return model
    C, c_aucs = choose_C(model, train, val)
    lin = survival_logistic_member(model, train, C)
    if lin is None:
        return model
    xn, xc = model.encoder.net_transform(val)
    z_net = model._logits_arrays(xn, xc)
    with torch.no_grad():
        z_lin = lin(torch.from_numpy(xn), torch.from_numpy(xc)).numpy().astype(float)
    w, w_aucs = blend_weight(z_net[at_risk, 0], z_lin[at_risk, 0], Yv[at_risk, 0])
    # w weighs standardised first-interval logits; as weights of the raw member logits
    # (normalised to sum to one: Platt calibration absorbs any common scale).
    wn = w / max(z_net[at_risk, 0].std(), 1e-12)
    wl = (1 - w) / max(z_lin[at_risk, 0].std(), 1e-12)
    wn, wl = wn / (wn + wl), wl / (wn + wl)
    z = wn * z_net + wl * z_lin
    out = copy.copy(model)
    out.info = dict(model.info)
    nets = model._ensure_nets()
    member_w = model.weights or [1.0 / len(nets)] * len(nets)
    if wn > 0:
        out.state = [*model.states, lin.state_dict()]
        out.nets = [*nets, lin]
        out.weights = [wn * wi for wi in member_w] + [wl]
    else:  # validation gave the network no weight: do not run it for every request
        out.state, out.nets, out.weights = [lin.state_dict()], [lin], None
    out._lookup = None
    out.calibration = [
        fit_calibration(z[Mv[:, k] > 0, k], Yv[Mv[:, k] > 0, k], model.config.calibration)
        for k in range(len(model.horizons))
    ]
    y0 = Yv[at_risk, 0]
    out.info.update(
        blend_weight=w,
        blend_weight_val_roc_auc=w_aucs,
        logistic_C=C,
        logistic_C_val_roc_auc={str(c): a for c, a in c_aucs.items()},
        val_roc_auc={
            "network": roc_auc(y0, z_net[at_risk, 0]),
            "logistic": roc_auc(y0, z_lin[at_risk, 0]),
            "blend": roc_auc(y0, z[at_risk, 0]),
        },
    )
    return out
