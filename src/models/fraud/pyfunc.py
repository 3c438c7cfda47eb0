"""The served fraud model: raw return / claim requests in, fraud probability out.

Input (one row per request; times are ISO strings or timestamps, UTC):

==================  ========  ===============================================================
column              needed    meaning
==================  ========  ===============================================================
kind                yes       ``return`` or ``claim`` (selects the head)
customer_id         yes       account id; unknown ids need the identity columns below
requested_at        yes       when the return / claim was filed
amount              yes       refund (return) or claimed amount, >= 0
order_id            no        informational
ordered_at          no        when the order was placed (must precede the request)
order_value         no        order total after discount (defaults to ``amount``)
discount            no        order discount
promised_date       no        promised delivery day (lateness)
delivered_at        no        carrier delivered-scan time; empty if none (claims), must
                              precede the request
product_id          returns   the returned product (catalogue snapshot gives category, price)
reason              returns   one of ``changed_mind, damaged, not_as_described, wrong_item,
                              other``
claim_type          claims    ``item_not_received`` or ``damaged_in_transit``
signature           claims    delivery was signed for
gps_distance_m      claims    distance of the delivered scan from the address
exception_scan      claims    the carrier reported an exception (lost) before the claim
signup_at, region,  new       identity of an account the snapshot has not seen; raw values
email, phone,       accounts  are normalised and hashed on arrival and never stored
address, device_id,
payment_fingerprint
==================  ========  ===============================================================

Output columns: ``p_fraud`` (calibrated probability of the row's head), ``head``,
``review_threshold`` (chosen on validation to maximise net savings), ``review``
(bool), ``recommendation`` (``review`` or ``approve``) and ``ring_member`` (the account
shares an identifier with an account whose fraud was confirmed before the request) for
the rules layer.

Artifacts (written at training time, identifiers hashed): the event history snapshot
(``history/``), the linkage graph as an edge list (``linkage_edges.parquet``, checked
against the graph rebuilt at load), the network weights, the per-head LightGBM boosters
blended into the network's score (``trees_return.txt``, ``trees_claim.txt``,
``trees.json``; absent for a network-only model), the metadata (feature names,
thresholds) and a background sample for SHAP. The loaded object behind ``predict`` is a
:class:`FraudScorer`, which implements ``ppx.models.base.ExplainableModel``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.features import fraud as F
from ppx.models.fraud.schemas import CLAIM_EXAMPLE
from ppx.models.served import ServedModel

#: One claim in the pyfunc's frame: the claim endpoint's example plus the head column.
REQUEST_EXAMPLE = {F.KIND: "claim", **CLAIM_EXAMPLE, C.PRODUCT_ID: None, C.REASON: None}

ARTIFACT_DIR = "fraud_model"

TIME_COLUMNS = (C.REQUESTED_AT, C.ORDERED_AT, C.PROMISED_DATE, C.DELIVERED_AT, C.SIGNUP_AT)
_TYPES = {
    F.KIND: "string",
    C.CUSTOMER_ID: "long",
    C.AMOUNT: "double",
    C.ORDER_ID: "long",
    C.ORDER_VALUE: "double",
    C.DISCOUNT: "double",
    C.PRODUCT_ID: "double",
    C.REASON: "string",
    C.CLAIM_TYPE: "string",
    C.SIGNATURE: "boolean",
    C.GPS_DISTANCE_M: "double",
    F.EXCEPTION_SCAN: "boolean",
    C.REGION: "string",
    **{k: "string" for k in TIME_COLUMNS},
    **{k: "string" for k in F.ID_KINDS},
}


def signature():
    """Explicit MLflow signature: times are ISO-8601 strings, optional columns optional."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    cols = [*F.REQUIRED_COLUMNS, *F.OPTIONAL_COLUMNS, *F.IDENTITY_COLUMNS]
    inputs = Schema([ColSpec(_TYPES[c], c, required=c in F.REQUIRED_COLUMNS) for c in cols])
    outputs = Schema(
        [
            ColSpec("double", "p_fraud"),
            ColSpec("string", "head"),
            ColSpec("double", "review_threshold"),
            ColSpec("boolean", "review"),
            ColSpec("string", "recommendation"),
            ColSpec("boolean", "ring_member"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def to_wire(requests: pd.DataFrame) -> pd.DataFrame:
    """Request rows in the served form: times as ISO strings, flags as booleans."""
    out = requests.copy()
    for col in TIME_COLUMNS:
        if col in out.columns:
            t = pd.to_datetime(out[col], errors="coerce")
            iso = t.dt.strftime("%Y-%m-%dT%H:%M:%S")
            out[col] = iso.where(t.notna(), None).astype(object)
    for col in (C.SIGNATURE, F.EXCEPTION_SCAN):
        if col in out.columns:
            out[col] = out[col].fillna(False).astype(bool)
    for col in (C.REASON, C.CLAIM_TYPE, *F.ID_KINDS, C.REGION):
        if col in out.columns:
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


class FraudScorer:
    """Features + network + thresholds: the object serving, SHAP and the rules use."""

    def __init__(
        self,
        net,
        feature_names: list[str],
        history: F.FraudHistory,
        thresholds: dict[str, float],
        background: pd.DataFrame,
        meta: dict | None = None,
        trees=None,
    ):
        self.net = net
        self.trees = trees  # ppx.models.fraud.trees.TreeBlend, or None (network only)
        self.claim_col = list(feature_names).index("is_claim")
        self.feature_names = list(feature_names)
        self.history = history
        self.thresholds = {k: float(v) for k, v in thresholds.items()}
        self._background = background[self.feature_names].reset_index(drop=True)
        self.meta = meta or {}
        self.graph = F.LinkageGraph.build(history.identities)
        # Request-independent indexes of the snapshot, built once; each request then
        # runs the same feature code as training on its own rows only.
        self.index = F.FraudHistoryIndex(history)
        # Where the model's features sit in the feature function's matrix (None: the
        # function's order is the model's), for the frame-free serving path.
        names = list(F.FEATURE_NAMES)
        self._matrix_cols = (
            None
            if self.feature_names == names
            else [names.index(f) for f in self.feature_names]
            if set(self.feature_names) <= set(names)
            else False
        )
        self._ring_col = (
            self.feature_names.index("nb_fraud_accounts")
            if "nb_fraud_accounts" in self.feature_names
            else None
        )

    # --- ExplainableModel ------------------------------------------------------------
    def features(self, raw: pd.DataFrame) -> pd.DataFrame:
        X = F.fraud_features(raw, self.history, graph=self.graph, index=self.index)
        if list(X.columns) == self.feature_names:
            return X
        return X[self.feature_names]

    def score_features(self, X) -> np.ndarray:
        import torch

        # Row-major, as training scores its frames: a column-major block (a DataFrame's
        # to_numpy) takes another matrix kernel whose float32 sums round differently.
        arr = np.ascontiguousarray(X, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None, :]
        if self.net.training:  # eval() walks every module: 0.3 ms a call for the ensemble
            self.net.eval()
        with torch.inference_mode():  # the same kernels as no_grad, less autograd upkeep
            p = self.net(torch.from_numpy(arr)).numpy().astype(float)
        if self.trees is None:
            return p
        return self.trees.blend(np.asarray(X, dtype=np.float64), p, self.claim_col)

    def background(self) -> pd.DataFrame:
        return self._background.copy()

    # --- scoring ---------------------------------------------------------------------
    def predict(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Raw requests -> p_fraud, head, review threshold, review flag, recommendation."""
        return pd.DataFrame(self._outputs(self.features(raw).to_numpy(dtype=float)))

    def predict_columns(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Requests as columns (field -> one value per request) -> output columns.

        The serving path: the same feature function, network and thresholds as
        :meth:`predict`, without a DataFrame on the way in, between the features and
        the network, or on the way out (for one request those frames cost more than
        the features and the network together).
        """
        if self._matrix_cols is False:  # features the function does not name: by frame
            raw = pd.DataFrame({k: list(v) for k, v in columns.items()})
            return self._outputs(self.features(raw).to_numpy(dtype=float))
        X = F.fraud_features(
            columns, self.history, graph=self.graph, index=self.index, as_frame=False
        )
        if self._matrix_cols is not None:
            X = X[:, self._matrix_cols]
        return self._outputs(X)

    def _outputs(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """The model's features (rows in :attr:`feature_names` order) -> output columns."""
        p = self.score_features(X)
        head = np.where(X[:, self.claim_col] > 0.5, F.CLAIM, F.RETURN)
        thr = np.array([self.thresholds[h] for h in head], dtype=float)
        review = p >= thr
        ring = (
            X[:, self._ring_col] > 0 if self._ring_col is not None else np.zeros(len(X), dtype=bool)
        )
        return {
            "p_fraud": p,
            "head": head.astype(str),
            "review_threshold": thr,
            "review": review,
            "recommendation": np.where(review, "review", "approve").astype(str),
            "ring_member": ring,
        }

    # --- persistence -----------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        import torch

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.history.save(folder / "history")
        F.linkage_edges(self.graph).to_parquet(folder / "linkage_edges.parquet", index=False)
        torch.save(self.net.state_dict(), folder / "network.pt")
        if self.trees is not None:
            self.trees.save(folder)
        self._background.to_parquet(folder / "background.parquet", index=False)
        net_args = {
            "n_features": len(self.feature_names),
            "claim_col": self.feature_names.index("is_claim"),
            "hidden": self.net.trunks[0][0].out_features,
            "hidden2": self.net.trunks[0][3].out_features,
            "members": len(self.net.trunks),
            "soft_clip": self.net.soft_clip,
        }
        meta = {
            **self.meta,
            "feature_names": self.feature_names,
            "thresholds": self.thresholds,
            "net_args": net_args,
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> FraudScorer:
        import torch

        from ppx.models.fraud.network import FraudNet
        from ppx.models.fraud.trees import TreeBlend

        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        net = FraudNet(**meta["net_args"])
        net.load_state_dict(torch.load(folder / "network.pt", weights_only=True))
        net.eval()
        history = F.FraudHistory.load(folder / "history")
        background = pd.read_parquet(folder / "background.parquet")
        trees = TreeBlend.load(folder)
        scorer = cls(
            net, meta["feature_names"], history, meta["thresholds"], background, meta, trees
        )
        edges = folder / "linkage_edges.parquet"
        if edges.exists():
            saved = len(pd.read_parquet(edges))
            rebuilt = len(F.linkage_edges(scorer.graph))
            if saved != rebuilt:
                raise ValueError(
                    f"linkage graph rebuilt with {rebuilt} edges but {saved} were logged; "
                    "the identity normalisation changed since training"
                )
        return scorer


class FraudPyfunc(ServedModel):
    """MLflow wrapper: loads the :class:`FraudScorer` (``self.model``) from its folder."""

    columnar = True

    def predict_columns(self, columns):
        """Columns in, columns out (field -> list); the model service's fast path."""
        return self.model.predict_columns(columns)

    def load_model(self, artifacts: dict[str, str]) -> FraudScorer:
        import torch

        torch.set_num_threads(1)
        return FraudScorer.load(artifacts[ARTIFACT_DIR])


def load_scorer(model_uri: str) -> FraudScorer:
    """The :class:`FraudScorer` behind a registered pyfunc (for SHAP and tests)."""
    model = mlflow.pyfunc.load_model(model_uri)
    return model.unwrap_python_model().model
