"""A genuine small torch model behind the ExplainableModel protocol, for the explain tests.

It predicts whether a subscription was cancelled from churn-like customer facts computed
with pandas on a tiny world (late deliveries, orders, returns, claims, tenure, discount,
plan). Built here so the report machinery is tested on a real fitted network without
depending on the model packages' training code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from ppx.data import columns as C
from ppx.data.summary import late_mask
from ppx.models.served import ServedModel

FEATURES = [
    "late_deliveries",
    "orders",
    "returns",
    "claims",
    "tenure_days",
    "avg_discount",
    "plan_biweekly",
]


def churn_like_frame(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per subscription: its customer's facts (features) and cancelled (label)."""
    o, s = tables[C.ORDERS], tables[C.SHIPMENTS]
    late = s.assign(late=late_mask(o, s).to_numpy()).merge(o[[C.ORDER_ID, C.CUSTOMER_ID]])
    per = pd.DataFrame(
        index=pd.Index(tables[C.CUSTOMERS][C.CUSTOMER_ID].unique(), name=C.CUSTOMER_ID)
    )
    per["late_deliveries"] = late.groupby(C.CUSTOMER_ID)["late"].sum()
    per["orders"] = o.groupby(C.CUSTOMER_ID).size()
    per["returns"] = tables[C.RETURNS].groupby(C.CUSTOMER_ID).size()
    per["claims"] = tables[C.CLAIMS].groupby(C.CUSTOMER_ID).size()
    per["avg_discount"] = o.groupby(C.CUSTOMER_ID)[C.DISCOUNT].mean()
    per = per.fillna(0.0)
    subs = tables[C.SUBSCRIPTIONS]
    end = o[C.ORDERED_AT].max()
    frame = subs[[C.SUBSCRIPTION_ID, C.CUSTOMER_ID]].merge(
        per, left_on=C.CUSTOMER_ID, right_index=True
    )
    stop = subs[C.CANCELLED_AT].fillna(end)
    frame["tenure_days"] = ((stop - subs[C.STARTED_AT]).dt.days).to_numpy(float)
    frame["plan_biweekly"] = (subs[C.PLAN] == "biweekly").to_numpy(float)
    y = subs[C.CANCELLED_AT].notna().to_numpy(float)
    return frame.reset_index(drop=True), y


class ToyChurnModel:
    """Logistic-MLP on standardised features; scores P(cancelled)."""

    feature_names = FEATURES
    score_name = "churn risk"
    entity = "subscribers"

    def __init__(self, snapshot: pd.DataFrame, net: nn.Module, mu: np.ndarray, sd: np.ndarray):
        self.snapshot = snapshot.set_index(C.CUSTOMER_ID)
        self.net = net.eval()
        self.mu, self.sd = mu.astype(np.float32), sd.astype(np.float32)

    def features(self, raw: pd.DataFrame) -> pd.DataFrame:
        if C.CUSTOMER_ID not in raw.columns:
            raise ValueError(f"request lacks {C.CUSTOMER_ID}")
        snap = self.snapshot[~self.snapshot.index.duplicated()]
        return (
            snap.reindex(raw[C.CUSTOMER_ID].to_numpy())[FEATURES].fillna(0.0).reset_index(drop=True)
        )

    def score_features(self, X: np.ndarray) -> np.ndarray:
        Z = (np.asarray(X, dtype=np.float32) - self.mu) / self.sd
        with torch.no_grad():
            return torch.sigmoid(self.net(torch.from_numpy(Z))).numpy().reshape(-1).astype(float)

    def background(self) -> pd.DataFrame:
        return (
            self.snapshot[FEATURES]
            .sample(min(60, len(self.snapshot)), random_state=0)
            .reset_index(drop=True)
        )

    def explain_requests(self, tables, n, seed):
        subs = tables[C.SUBSCRIPTIONS]
        return (
            subs[[C.CUSTOMER_ID]]
            .sample(min(n, len(subs)), random_state=seed)
            .reset_index(drop=True)
        )


def train_toy(tables: dict[str, pd.DataFrame], seed: int = 0, epochs: int = 300) -> ToyChurnModel:
    """Fit the toy network (full-batch Adam, a few hundred steps: well under a second)."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    frame, y = churn_like_frame(tables)
    X = frame[FEATURES].to_numpy(np.float32)
    mu, sd = X.mean(axis=0), X.std(axis=0) + 1e-6
    Z = torch.from_numpy((X - mu) / sd)
    t = torch.from_numpy(y.astype(np.float32)).reshape(-1, 1)
    net = nn.Sequential(nn.Linear(len(FEATURES), 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(net(Z), t)
        loss.backward()
        opt.step()
    return ToyChurnModel(frame, net, mu, sd)


class ToyPyfunc(ServedModel):
    """The toy wrapped like the real pyfuncs: predict raw rows, hold the explainable object."""

    def __init__(self, model: ToyChurnModel):
        self.model = model

    def load_model(self, artifacts):
        return self.model

    def predict(self, context, model_input, params=None):
        X = self.model.features(model_input)
        return pd.DataFrame({"churn_risk": self.model.score_features(X.to_numpy())})


class LinearModel:
    """score = w . x + b: SHAP values and occlusion contributions are known exactly."""

    def __init__(self, w, b: float = 0.0, background: pd.DataFrame | None = None, seed: int = 0):
        self.w = np.asarray(w, dtype=float)
        self.b = b
        self.feature_names = [f"x{i}" for i in range(len(self.w))]
        rng = np.random.default_rng(seed)
        self._bg = (
            background
            if background is not None
            else pd.DataFrame(rng.normal(size=(50, len(self.w))), columns=self.feature_names)
        )

    def features(self, raw: pd.DataFrame) -> pd.DataFrame:
        return raw[self.feature_names]

    def score_features(self, X):
        return np.asarray(X, dtype=float) @ self.w + self.b

    def background(self) -> pd.DataFrame:
        return self._bg
