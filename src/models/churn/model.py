"""The fitted churn model: encoder + network + calibration, and how it predicts.

Two modes share one class:

* ``subscriptions``: rows come from :func:`ppx.features.churn.churn_features`; the
  network has one hazard output per 30-day interval and predictions are
  P(churn within 30/60/90 days) plus an expected remaining lifetime.
* ``table``: rows are a user's own customer table; one output, a calibrated
  P(churn) for whatever period the user's target describes.

The object implements :class:`ppx.models.base.ExplainableModel` so SHAP reports and
reason codes work on it.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ppx.data import columns as C
from ppx.data.errors import RequestError
from ppx.data.times import unreadable, utc_times
from ppx.models.calibration import apply_platt, fit_isotonic, fit_platt, sigmoid
from ppx.models.churn.config import ChurnConfig
from ppx.models.churn.hygiene import table_entity
from ppx.models.churn.network import ChurnNet
from ppx.models.churn.scoring import MemberScorer, member_scorers, weighted_logits
from ppx.models.churn.tabular import TabularEncoder
from ppx.models.early_stopping import EarlyStopping

INTERVAL_DAYS = 30


def hazard_targets(frame: pd.DataFrame, horizons: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-interval targets and at-risk masks of a discrete-time survival model.

    Interval k covers days ``[horizons[k-1], horizons[k])``. A row contributes to
    interval k if it had not churned before it and the interval's outcome is known
    (observed window, or the churn itself was seen in it). Censored rows thus still
    teach the early intervals: that is what survival gains over one classifier per
    horizon.
    """
    n, K = len(frame), len(horizons)
    Y = np.zeros((n, K), dtype=np.float32)
    M = np.zeros((n, K), dtype=np.float32)
    before = np.zeros(n, dtype=bool)
    for k, h in enumerate(horizons):
        c = frame[f"churn_{h}"].to_numpy(dtype=float) > 0
        obs = frame[f"observed_{h}"].to_numpy(dtype=float) > 0
        event_here = c & ~before
        Y[:, k] = event_here
        M[:, k] = (~before) & (obs | event_here)
        before = before | c
    return Y, M


def _bce(logits, y, m, pos_weight):
    loss = nn.functional.binary_cross_entropy_with_logits(
        logits, y, weight=m, pos_weight=pos_weight, reduction="sum"
    )
    return loss / m.sum().clamp(min=1.0)


def _parse_as_of(raw: pd.Series) -> pd.Series:
    """``as_of`` values -> timestamps (``ppx.data.times``); missing ones stay NaT (the
    caller's default); a value that does not parse is an error naming the field, never
    a silent default."""
    parsed = utc_times(raw)
    bad = unreadable(raw, parsed)
    if bad.any():
        raise RequestError(f"as_of: not a timestamp: {raw[bad].tolist()[:3]}")
    return pd.Series(parsed, index=raw.index)


def _request_ids(raw: Sequence) -> np.ndarray:
    """``customer_id`` values -> int64; a value that is no number is an error naming the
    field. Python ints (what the model service sends) skip pandas."""
    if isinstance(raw, list | tuple) and all(type(v) is int for v in raw):
        try:
            return np.array(raw, dtype=np.int64)
        except OverflowError:
            pass
    ids = pd.Series(raw).reset_index(drop=True)
    num = pd.to_numeric(ids, errors="coerce")
    if num.isna().any():
        bad = ids[num.isna()].tolist()[:3]
        raise RequestError(f"{C.CUSTOMER_ID!r} must be an integer id; got {bad}")
    return num.astype(np.int64).to_numpy()


@dataclass(frozen=True)
class _Plan:
    """How a batch of requests is answered (:meth:`ChurnModel._plan`), one entry per
    request: customer, ``as_of`` (ns), kind, snapshot row (-1: none)."""

    cid: np.ndarray
    t: np.ndarray
    kind: np.ndarray
    pos: np.ndarray
    ok: np.ndarray
    compute: np.ndarray


@dataclass
class ChurnModel:
    """A trained churn model (see module docstring for the two modes)."""

    encoder: TabularEncoder
    config: ChurnConfig
    horizons: list[int]
    mode: str = "subscriptions"
    state: dict | None = None
    calibration: list[dict] = field(default_factory=list)
    background_frame: pd.DataFrame | None = None
    info: dict = field(default_factory=dict)
    history: dict | None = None
    nets: list[ChurnNet] | None = None
    #: Precomputed feature rows (:func:`ppx.features.churn.serving_snapshot`) of
    #: ``history``; a request at one of its times is a lookup.
    snapshot: pd.DataFrame | None = None
    #: Weight of each member's logit in :meth:`raw_logits` (None = equal weights). A
    #: cross-fitted table model also holds a logistic member (a depth-0 network).
    weights: list[float] | None = None
    _lookup: dict | None = field(default=None, repr=False)
    _scorer_cache: tuple | None = field(default=None, repr=False)

    # --- ExplainableModel ------------------------------------------------------------

    @property
    def feature_names(self) -> list[str]:
        return [*self.encoder.numeric, *self.encoder.categorical]

    @property
    def entity(self) -> str | None:
        """What one explained row is (``ppx.explain.labels.entity``): a table model's rows
        are the table's own entity, named by its id column (accounts, members), else
        customers; None for the subscription model, whose rows are its spec's subscribers."""
        if self.mode != "table":
            return None
        return table_entity(self.info.get("id_column"))

    def feature_dictionary(self):
        """A table model's inputs in words, from its own columns (categories decoded);
        None for the subscription model, whose dictionary is its spec's."""
        if self.mode != "table":
            return None
        from ppx.explain.dictionary import table_dictionary

        return table_dictionary(self.feature_names, categorical=self.encoder.categorical)

    def features(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Request rows -> numeric feature frame (raw values, categorical codes).

        In ``subscriptions`` mode ``raw`` holds ``customer_id`` (and optionally
        ``as_of``) and features are computed from the stored history; in ``table``
        mode ``raw`` already holds the table's columns.
        """
        if self.mode == "subscriptions" and "tenure_days" not in raw.columns:
            raw = self.subscription_rows(raw)
        return self.encoder.numeric_frame(raw)[self.feature_names]

    def score_features(self, X) -> np.ndarray:
        """Feature matrix -> the headline score, P(churn) over the first horizon."""
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=self.feature_names)
        return self.predict_proba_frame(frame)[:, 0]

    def background(self) -> pd.DataFrame:
        # SHAP needs complete rows; a blank numeric cell of a user table stands in as
        # the training median (the value the network itself imputes).
        bg = self.background_frame.copy()
        return bg.fillna({c: self.encoder.medians.get(c, 0.0) for c in self.encoder.numeric})

    # --- prediction --------------------------------------------------------------------

    def _build_net(self, depth: int | None = None) -> ChurnNet:
        c = self.config
        return ChurnNet(
            n_numeric=self.encoder.net_numeric_width,
            cardinalities=self.encoder.cardinalities,
            n_out=len(self.horizons),
            hidden=c.hidden,
            depth=c.depth if depth is None else depth,
            dropout=c.dropout,
            emb_dim=c.emb_dim,
            bin_cardinalities=self.encoder.bin_cardinalities,
            arch=c.arch,
            members=c.members,
        )

    @property
    def states(self) -> list[dict]:
        """One state dict per ensemble member (a single network is a list of one)."""
        return self.state if isinstance(self.state, list) else [self.state]

    def _ensure_nets(self) -> list[ChurnNet]:
        if self.nets is None:
            nets = []
            for st in self.states:
                # A member without deep-part weights is a logistic (wide-only) member.
                deep = any(k.startswith("deep.") for k in st)
                net = self._build_net(None if deep else 0)
                net.load_state_dict(st)
                net.eval()
                nets.append(net)
            self.nets = nets
        return self.nets

    def raw_logits(self, feature_frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated hazard logits, shape (rows, intervals): the members' weighted mean
        logit (equal weights unless :attr:`weights` says otherwise)."""
        xn, xc = self.encoder.net_arrays(feature_frame)
        return self._logits_arrays(xn, xc)

    def _logits_arrays(self, xn: np.ndarray, xc: np.ndarray) -> np.ndarray:
        nets = self._ensure_nets()
        threads = max(1, self.config.threads)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        w = self.weights or [1.0 / len(nets)] * len(nets)
        scorers = self._scorers(nets)
        if scorers is not None:  # the same bits as the modules, without their calls
            return weighted_logits(scorers, w, xn, xc)
        tn, tc = torch.from_numpy(xn), torch.from_numpy(xc)
        with torch.no_grad():
            out = sum(wi * net(tn, tc) for wi, net in zip(w, nets, strict=True))
        return out.numpy().astype(float)

    def _scorers(self, nets: list[ChurnNet]) -> list[MemberScorer] | None:
        """The members' module-free scorers (:mod:`ppx.models.churn.scoring`), built once
        per list of networks; None when a member has none (TabM) or is training."""
        cached = self._scorer_cache
        if cached is None or cached[0] is not nets or len(cached[0]) != len(nets):
            cached = self._scorer_cache = (nets, member_scorers(nets))
        if cached[1] is not None and any(net.training for net in nets):
            return None
        return cached[1]

    def network_only_proba(self, feature_frame: pd.DataFrame) -> np.ndarray:
        """P(churn) from the networks alone, without the blended logistic member, for a
        cross-fitted table model (calibrated on the networks' out-of-fold logits)."""
        cal = self.info.get("network_calibration")
        if cal is None or self.weights is None:
            return self.predict_proba_frame(feature_frame)[:, 0]
        xn, xc = self.encoder.net_arrays(feature_frame)
        nets = self._ensure_nets()[:-1]
        with torch.no_grad():
            tn, tc = torch.from_numpy(xn), torch.from_numpy(xc)
            z = sum(net(tn, tc) for net in nets) / len(nets)
        return apply_calibration(z.numpy()[:, 0].astype(float), cal)

    def hazards(self, feature_frame: pd.DataFrame) -> np.ndarray:
        """Calibrated per-interval hazards."""
        return self._calibrated(self.raw_logits(feature_frame))

    def predict_proba_frame(self, feature_frame: pd.DataFrame) -> np.ndarray:
        """P(churn within each horizon), shape (rows, horizons)."""
        h = self.hazards(feature_frame)
        return 1.0 - np.cumprod(1.0 - h, axis=1)

    def expected_lifetime_days(self, feature_frame: pd.DataFrame) -> np.ndarray:
        """Expected remaining lifetime, extending the last hazard beyond the horizons."""
        h = np.clip(self.hazards(feature_frame), 1e-4, 1.0)
        surv = np.cumprod(1.0 - h, axis=1)
        intervals = surv[:, :-1].sum(axis=1) + surv[:, -1] / h[:, -1]
        return INTERVAL_DAYS * (intervals + 0.5)

    def predict_table(self, df: pd.DataFrame) -> pd.DataFrame:
        """Scores for rows that already carry the model's input columns."""
        frame = self.encoder.numeric_frame(df)
        return pd.DataFrame(self._score_columns(self.hazards(frame)), index=df.index)

    def _calibrated(self, z: np.ndarray) -> np.ndarray:
        """Logits (rows, intervals) -> calibrated hazards, one map per interval.

        Platt maps of every interval run as one broadcast pass: the same elementwise
        float64 operations as :func:`apply_platt` column by column, so the same bits."""
        cals = self.calibration
        if len(cals) == z.shape[1] and all(c.get("method") == "platt" for c in cals):
            a = np.array([c["a"] for c in cals], dtype=float)
            b = np.array([c["b"] for c in cals], dtype=float)
            return sigmoid(a * np.asarray(z, dtype=float) + b)
        return np.column_stack([apply_calibration(z[:, k], cal) for k, cal in enumerate(cals)])

    def _score_columns(self, h: np.ndarray) -> dict[str, np.ndarray]:
        """Calibrated hazards -> the output columns of :meth:`predict_table`."""
        p = 1.0 - np.cumprod(1.0 - h, axis=1)
        if self.mode == "table":
            return {"p_churn": p[:, 0]}
        out = {f"p_churn_{hz}": p[:, k] for k, hz in enumerate(self.horizons)}
        hc = np.clip(h, 1e-4, 1.0)
        surv = np.cumprod(1.0 - hc, axis=1)
        intervals = surv[:, :-1].sum(axis=1) + surv[:, -1] / hc[:, -1]
        out["expected_lifetime_days"] = INTERVAL_DAYS * (intervals + 0.5)
        return out

    def score_requests(self, requests: pd.DataFrame) -> pd.DataFrame:
        """The served output for ``customer_id`` (+ ``as_of``) requests (see the pyfunc).

        When every request is answered by the snapshot (or is unknown / inactive) the
        snapshot's encoded rows, prepared once per history with the same encoder, go
        straight to the network; otherwise features come from :meth:`subscription_rows`.
        Both give the same numbers (tests/models/churn/test_serving_snapshot.py).
        """
        plan = self._plan(requests)
        if plan.compute.any():
            rows = self.subscription_rows(requests)
            scores = self.predict_table(rows)
            scores.loc[(rows["status"] != "ok").to_numpy(), :] = float("nan")
            keys = rows[["customer_id", "as_of", "status"]].reset_index(drop=True)
            return pd.concat([keys, scores.reset_index(drop=True)], axis=1)
        return pd.DataFrame(self._snapshot_scores(plan))

    def score_columns(self, columns: Mapping[str, Sequence]) -> dict[str, np.ndarray]:
        """:meth:`score_requests` for columns (field -> one value per request).

        The serving fast path: when the snapshot answers every request, no DataFrame is
        built on the way in or out; otherwise the requests take the frame path.
        """
        plan = self._plan(columns)
        if plan.compute.any():
            frame = self.score_requests(pd.DataFrame(dict(columns)))
            return {c: frame[c].to_numpy() for c in frame.columns}
        return self._snapshot_scores(plan)

    def served_inputs(
        self, columns: Mapping[str, Sequence]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What the fast path scores, for tests: the requests the snapshot answers (their
        indices), the snapshot rows it reads for them, and those rows' network inputs
        (float32 numerics, int64 codes), in request order."""
        plan = self._plan(columns)
        hits = np.flatnonzero(plan.ok)
        pos = plan.pos[hits]
        arrays = self._snapshot_lookup()["arrays"]
        if arrays is None:  # no snapshot: nothing is answered from it
            return hits, pos, np.zeros((0, 0), np.float32), np.zeros((0, 0), np.int64)
        return hits, pos, arrays[0][pos], arrays[1][pos]

    def _snapshot_scores(self, plan: _Plan) -> dict[str, np.ndarray]:
        """Output columns of requests the snapshot answers (or that get no score)."""
        look = self._snapshot_lookup()
        hits = np.flatnonzero(plan.ok)
        cols = None
        if len(hits):
            pos = plan.pos[hits]
            xn, xc = look["arrays"]
            cols = self._score_columns(self._calibrated(self._logits_arrays(xn[pos], xc[pos])))
        names = [*(f"p_churn_{hz}" for hz in self.horizons), "expected_lifetime_days"]
        n = len(plan.cid)
        out = {
            "customer_id": plan.cid.copy(),
            "as_of": plan.t.astype("datetime64[ns]"),
            "status": plan.kind.copy(),
        }
        for name in names:
            v = np.full(n, np.nan)
            if cols is not None:
                v[hits] = cols[name]
            out[name] = v
        return out

    def _snapshot_lookup(self) -> dict:
        """Sorted arrays built once per history: known customers, snapshot times, and per
        time the customers with a snapshot row and that row (binary searches, not dicts
        of tuples); the snapshot's encoded network inputs; the default ``as_of``."""
        from ppx.features import churn as F

        default = self.info.get("default_as_of")
        if (
            self._lookup is not None
            and self._lookup["history"] is self.history
            and self._lookup["default"] == default
        ):
            return self._lookup
        known = np.unique(self.history["customers"][C.CUSTOMER_ID].to_numpy(dtype=np.int64))
        times = np.zeros(0, dtype=np.int64)
        bounds = np.zeros(1, dtype=np.int64)
        key_cid = key_pos = np.zeros(0, dtype=np.int64)
        arrays = None
        if self.snapshot is not None and len(self.snapshot):
            snap = self.snapshot
            t = snap[F.AS_OF].to_numpy().astype("datetime64[ns]").astype(np.int64)
            cid = snap[C.CUSTOMER_ID].to_numpy(dtype=np.int64)
            # Rows are sorted by subscription within a time; the last one wins, as in
            # the computed path (one active subscription per customer at a time).
            order = np.lexsort((np.arange(len(cid)), cid, t))
            t, cid = t[order], cid[order]
            last = np.ones(len(order), dtype=bool)
            last[:-1] = (t[1:] != t[:-1]) | (cid[1:] != cid[:-1])
            t, key_cid, key_pos = t[last], cid[last], order[last]
            times, starts = np.unique(t, return_index=True)
            bounds = np.append(starts, len(t)).astype(np.int64)
            arrays = self.encoder.net_arrays(self.encoder.numeric_frame(snap))
        self._lookup = {
            "history": self.history,
            "default": default,
            "default_ns": None if default is None else pd.Timestamp(default).value,
            "known": known,
            "times": times,
            "bounds": bounds,
            "key_cid": key_cid,
            "key_pos": key_pos,
            "arrays": arrays,
        }
        return self._lookup

    def _plan(self, requests: pd.DataFrame | Mapping[str, Sequence]) -> _Plan:
        """How each request is answered: a snapshot row (``ok``), ``compute`` (features
        from the history), ``unknown_customer`` or ``no_active_subscription``.

        ``requests`` is a frame or columns (field -> one value per request). Request ids
        and times are looked up by binary search in the arrays of
        :meth:`_snapshot_lookup`, the whole batch at once."""
        from ppx.features import churn as F

        if self.history is None:
            raise ValueError("this churn model has no stored history; load it through the pyfunc")
        if C.CUSTOMER_ID not in requests:
            raise RequestError(f"request rows need a {C.CUSTOMER_ID!r} column")
        raw_ids = requests[C.CUSTOMER_ID]
        look = self._snapshot_lookup()
        raw_as_of = requests.get(F.AS_OF)
        if raw_as_of is None or all(v is None for v in raw_as_of):
            # no as_of at all (the rules engine's requests): nothing to parse
            t = None
        else:
            as_of = _parse_as_of(pd.Series(raw_as_of).reset_index(drop=True))
            as_of = as_of.fillna(pd.Timestamp(self.info["default_as_of"]))
            t = np.array([pd.Timestamp(v).value for v in as_of], dtype=np.int64)
        cid = _request_ids(raw_ids)
        n = len(cid)
        if t is None:
            if look["default_ns"] is None:
                raise KeyError("default_as_of")
            t = np.full(n, look["default_ns"], dtype=np.int64)
        elif len(t) != n:
            raise ValueError(f"{len(t)} as_of values for {n} requests")
        known, times = look["known"], look["times"]
        kind = np.full(n, "unknown_customer", dtype=object)
        pos = np.full(n, -1, dtype=np.int64)
        j = np.searchsorted(known, cid)
        is_known = j < len(known)
        is_known[is_known] = known[j[is_known]] == cid[is_known]
        kind[is_known] = "compute"
        ti = np.searchsorted(times, t)
        at_snap = is_known & (ti < len(times))
        at_snap[at_snap] = times[ti[at_snap]] == t[at_snap]
        bounds, key_cid, key_pos = look["bounds"], look["key_cid"], look["key_pos"]
        for k in np.unique(ti[at_snap]):
            rows = np.flatnonzero(at_snap & (ti == k))
            a, b = bounds[k], bounds[k + 1]
            keys = key_cid[a:b]
            at = np.searchsorted(keys, cid[rows])
            hit = at < len(keys)
            hit[hit] = keys[at[hit]] == cid[rows[hit]]
            pos[rows[hit]] = key_pos[a + at[hit]]
        # The snapshot holds every subscription active at its times.
        ok = pos >= 0
        kind[at_snap] = "no_active_subscription"
        kind[ok] = "ok"
        return _Plan(cid=cid, t=t, kind=kind, pos=pos, ok=ok, compute=kind == "compute")

    def _resolve(self, requests: pd.DataFrame | Mapping[str, Sequence]) -> list[tuple]:
        """:meth:`_plan` as one tuple per request: (customer_id, as_of timestamp, kind,
        snapshot row or None)."""
        p = self._plan(requests)
        return [
            (int(c), pd.Timestamp(int(t)), str(k), int(r) if r >= 0 else None)
            for c, t, k, r in zip(p.cid, p.t, p.kind, p.pos, strict=True)
        ]

    def subscription_rows(self, requests: pd.DataFrame) -> pd.DataFrame:
        """Feature rows for ``customer_id`` (+ optional ``as_of``) requests from history.

        One output row per request, in order; a customer without an active
        subscription at ``as_of`` gets NaN features and a ``status`` saying why.
        """
        from ppx.data import columns as C
        from ppx.features import churn as F

        plan = self._resolve(requests)
        rows, hits = [], []
        for i, (cid, t, kind, pos) in enumerate(plan):
            base = {"_row": i, C.CUSTOMER_ID: cid, F.AS_OF: t}
            if kind == "ok":
                hits.append((i, pos))
            elif kind == "compute":
                hist = F.restrict_history(self.history, [cid])
                f = F.churn_features(hist, t)
                if len(f) == 0:
                    rows.append(pd.DataFrame([{**base, "status": "no_active_subscription"}]))
                    continue
                f = f.iloc[[-1]].copy()  # one active subscription per customer at a time
                f["_row"], f["status"] = i, "ok"
                rows.append(f)
            else:
                rows.append(pd.DataFrame([{**base, "status": kind}]))
        if hits:
            f = self.snapshot.iloc[[pos for _, pos in hits]].reset_index(drop=True)
            f["_row"] = [i for i, _ in hits]
            f["status"] = "ok"
            if not rows:
                out = f.sort_values("_row", kind="stable").drop(columns="_row")
                return out.reset_index(drop=True)
            rows.append(f)
        out = pd.concat(rows, ignore_index=True).sort_values("_row").drop(columns="_row")
        for c in F.FEATURE_COLUMNS:
            if c not in out.columns:
                out[c] = np.nan
        return out.reset_index(drop=True)

    # --- persistence -------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.state, folder / "network.pt")
        meta = {
            "encoder": json.loads(self.encoder.to_json()),
            "config": self.config.to_dict(),
            "horizons": self.horizons,
            "mode": self.mode,
            "calibration": self.calibration,
            "weights": self.weights,
            "info": self.info,
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        if self.background_frame is not None:
            self.background_frame.to_parquet(folder / "background.parquet")
        if self.snapshot is not None:
            self.snapshot.to_parquet(folder / "snapshot.parquet", index=False)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ChurnModel:
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        bg = folder / "background.parquet"
        snap = folder / "snapshot.parquet"
        return cls(
            encoder=TabularEncoder(**meta["encoder"]),
            config=ChurnConfig.from_dict(meta["config"]),
            horizons=list(meta["horizons"]),
            mode=meta["mode"],
            state=torch.load(folder / "network.pt", weights_only=True),
            calibration=meta["calibration"],
            background_frame=pd.read_parquet(bg) if bg.exists() else None,
            info=meta["info"],
            weights=meta.get("weights"),
            snapshot=pd.read_parquet(snap) if snap.exists() else None,
        )


# --- calibration -------------------------------------------------------------------------


def fit_calibration(logits: np.ndarray, y: np.ndarray, method: str) -> dict:
    """Map raw logits to probabilities on held-out rows (Platt, isotonic or identity)."""
    if method == "none" or len(np.unique(y)) < 2:
        return {"method": "none"}
    if method == "platt":
        a, b = fit_platt(logits, y)
        return {"method": "platt", "a": a, "b": b}
    if method == "isotonic":
        iso = fit_isotonic(logits, y, y_min=1e-4, y_max=1 - 1e-4)
        return {
            "method": "isotonic",
            "x": iso.X_thresholds_.tolist(),
            "y": iso.y_thresholds_.tolist(),
        }
    raise ValueError(f"calibration must be 'platt', 'isotonic' or 'none', not {method!r}")


def apply_calibration(logits: np.ndarray, cal: dict) -> np.ndarray:
    m = cal.get("method", "none")
    if m == "platt":
        return apply_platt(logits, cal["a"], cal["b"])
    if m == "isotonic":
        return np.interp(logits, cal["x"], cal["y"])
    return sigmoid(logits)


# --- fitting ---------------------------------------------------------------------------


def _train_net(model, config, seed, T, V, pw, base_logit, fixed_epochs, progress):
    """One network, early-stopped on ``V`` (or trained ``fixed_epochs`` epochs)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = model._build_net()
    # The wide part's bias starts at the base rate so early epochs are not spent on it.
    with torch.no_grad():
        net.wide_num.bias.copy_(torch.tensor(base_logit, dtype=torch.float32))
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    pw_t = torch.tensor(pw, dtype=torch.float32)
    early = EarlyStopping("minimize", config.patience, min_delta=1e-5)
    n = len(T["y"])
    epochs = range(fixed_epochs if fixed_epochs is not None else config.max_epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc=f"churn epochs (seed {seed})", leave=False)
    for epoch in epochs:
        net.train()
        order = torch.from_numpy(rng.permutation(n))
        for i in range(0, n, config.batch_size):
            idx = order[i : i + config.batch_size]
            opt.zero_grad()
            # One loss per ensemble member (TabM): members must each fit the data.
            z = net.member_logits(T["xn"][idx], T["xc"][idx])
            k = z.shape[1]
            y = T["y"][idx].unsqueeze(1).expand(-1, k, -1)
            m = T["m"][idx].unsqueeze(1).expand(-1, k, -1)
            loss = _bce(z, y, m, pw_t)
            loss.backward()
            opt.step()
        net.eval()
        if fixed_epochs is not None:
            continue
        with torch.no_grad():
            vl = float(_bce(net(V["xn"], V["xc"]), V["y"], V["m"], pw_t))
        if early.step(vl, net, epoch):
            break
    if fixed_epochs is not None:  # a fixed budget keeps its last epoch
        state = copy.deepcopy(net.state_dict())
        return net, state, fixed_epochs, np.nan
    early.restore(net)
    net.eval()
    return net, early.best_state, early.best_epoch + 1, early.best


def fit_churn_model(
    train: pd.DataFrame,
    val: pd.DataFrame,
    encoder: TabularEncoder,
    config: ChurnConfig,
    horizons: list[int],
    mode: str,
    y_train: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    progress: bool = False,
    fixed_epochs: int | list[int] | None = None,
    calibration: list[dict] | None = None,
) -> ChurnModel:
    """Train the network(s) with early stopping on ``val`` and calibrate on ``val``.

    With ``config.ensemble = k > 1`` k networks are trained from seeds ``seed, seed+1,
    ...`` (each early-stopped on ``val``); the model averages their logits and the
    calibration is fitted on that average.

    Args:
        train, val: rows with the encoder's input columns; in ``subscriptions`` mode
            also the ``churn_{h}`` / ``observed_{h}`` labels.
        encoder: an encoder already fitted on ``train``.
        config: hyper-parameters.
        horizons: label horizons (``[30, 60, 90]``) or ``[0]`` for a plain classifier.
        mode: ``subscriptions`` or ``table``.
        y_train, y_val: 0/1 targets in ``table`` mode.
        progress: show a progress bar over epochs.
        fixed_epochs: train exactly this many epochs without validation (the refit
            on train + validation after early stopping chose the epoch count); one
            count per ensemble member or one for all.
        calibration: calibration maps to reuse (fitted on validation by the first fit);
            required with ``fixed_epochs``.
    """
    t0 = time.perf_counter()
    torch.set_num_threads(max(1, config.threads))
    if fixed_epochs is not None:
        val, y_val = train.iloc[:1], None if y_train is None else y_train[:1]
    if mode == "table":
        Yt, Mt = y_train.reshape(-1, 1).astype(np.float32), np.ones((len(train), 1), np.float32)
        Yv, Mv = y_val.reshape(-1, 1).astype(np.float32), np.ones((len(val), 1), np.float32)
    else:
        Yt, Mt = hazard_targets(train, horizons)
        Yv, Mv = hazard_targets(val, horizons)
    xn_t, xc_t = encoder.net_transform(train)
    xn_v, xc_v = encoder.net_transform(val)
    pos = (Yt * Mt).sum(0)
    neg = Mt.sum(0) - pos
    pw = np.power(np.maximum(neg, 1) / np.maximum(pos, 1), config.pos_weight_power)
    base = np.clip(pos * pw / np.maximum(pos * pw + neg, 1), 1e-4, 1 - 1e-4)
    base_logit = np.log(base / (1 - base))
    model = ChurnModel(encoder=encoder, config=config, horizons=list(horizons), mode=mode)
    T = {k: torch.from_numpy(v) for k, v in dict(xn=xn_t, xc=xc_t, y=Yt, m=Mt).items()}
    V = {k: torch.from_numpy(v) for k, v in dict(xn=xn_v, xc=xc_v, y=Yv, m=Mv).items()}
    k = max(1, int(config.ensemble))
    if fixed_epochs is None or isinstance(fixed_epochs, int):
        fixed_epochs = [fixed_epochs] * k
    nets, states, epochs, losses = [], [], [], []
    for i in range(k):
        net, st, ep, vl = _train_net(
            model, config, config.seed + i, T, V, pw, base_logit, fixed_epochs[i], progress
        )
        nets.append(net)
        states.append(st)
        epochs.append(ep)
        losses.append(vl)
    model.nets = nets
    model.state = states if k > 1 else states[0]
    if fixed_epochs[0] is not None:
        model.calibration = list(calibration)
    else:
        zv = model._logits_arrays(xn_v, xc_v)
        model.calibration = [
            fit_calibration(zv[Mv[:, j] > 0, j], Yv[Mv[:, j] > 0, j], config.calibration)
            for j in range(len(horizons))
        ]
    frame = encoder.numeric_frame(train)
    model.background_frame = frame.sample(min(200, len(frame)), random_state=config.seed)[
        model.feature_names
    ].reset_index(drop=True)
    model.info.update(
        best_epoch=max(epochs),
        best_epochs=epochs,
        val_loss=float(np.mean(losses)),
        train_seconds=time.perf_counter() - t0,
        pos_weight=pw.tolist(),
    )
    return model


def _logistic_member(model: ChurnModel, xn: np.ndarray, xc: np.ndarray, y: np.ndarray, C: float):
    """An L2 logistic regression on the wide part's inputs, as a depth-0 network state.

    The design is the wide part without the quantile bins: standardised numerics (and
    missing flags) plus one-hot categorical codes, fitted by scikit-learn to
    convergence, i.e. the ``logreg`` baseline with ``C`` fixed. Its coefficients map
    one to one onto :class:`ChurnNet`'s ``wide_num`` and ``wide_cat`` weights.
    """
    from sklearn.linear_model import LogisticRegression

    cards = model.encoder.cardinalities
    # xc may carry the bin codes after the categorical ones; the design leaves them out.
    onehot = [np.eye(c, dtype=np.float32)[xc[:, j]] for j, c in enumerate(cards)]
    lr = LogisticRegression(C=C, max_iter=3000).fit(np.hstack([xn, *onehot]), y)
    net = model._build_net(depth=0)
    coef = torch.tensor(lr.coef_[0], dtype=torch.float32)
    with torch.no_grad():
        net.wide_num.weight.copy_(coef[: xn.shape[1]].reshape(1, -1))
        net.wide_num.bias.fill_(float(lr.intercept_[0]))
        start = xn.shape[1]
        for e, c in zip(net.wide_cat, cards, strict=True):
            e.weight.copy_(coef[start : start + c].reshape(-1, 1))
            start += c
    net.eval()
    return net


def _blend_weight(z_net: np.ndarray, z_lin: np.ndarray, y: np.ndarray) -> float:
    """Weight of the network's logit in a blend with the logistic one, from out-of-fold
    logits: an unpenalised two-input logistic regression (stacking), its coefficients
    normalised to sum to one and clipped to [0, 1]."""
    from scipy.optimize import minimize

    def nll(p):
        z = p[0] * z_net + p[1] * z_lin + p[2]
        return np.mean(np.logaddexp(0, z) - y * z)

    a = minimize(nll, x0=np.array([0.5, 0.5, 0.0]), method="L-BFGS-B").x
    if a[0] + a[1] <= 0:
        return 1.0
    return float(np.clip(a[0] / (a[0] + a[1]), 0.0, 1.0))


def fit_crossfit_table(
    frame: pd.DataFrame,
    y: np.ndarray,
    encoder: TabularEncoder,
    config: ChurnConfig,
    folds: int = 5,
    seed: int = 0,
    linear_C: float | None = 1.0,
    groups: np.ndarray | None = None,
) -> ChurnModel:
    """A table-mode ensemble by cross-fitting: every row trains, every row calibrates.

    ``frame`` (all labelled training rows) is split into ``folds`` stratified parts;
    member i trains on the other parts and early-stops on part i. The model averages
    the members' logits; Platt calibration is fitted on the out-of-fold logits (each
    row scored by the member that did not train on it). Compared with one network on
    a fixed 80/20 train/validation split, no row is held out of training and the
    calibration sees all rows, at ``folds`` times the training cost.

    With ``linear_C`` a logistic member (:func:`_logistic_member`, L2 strength
    ``1 / linear_C``) is cross-fitted on the same parts and blended with the
    networks' mean logit; the blend weight is fitted on the out-of-fold logits of the
    training rows (:func:`_blend_weight`), so it is chosen without any held-out test
    row and can be 1 (networks only). ``info`` records the out-of-fold ROC AUC of the
    networks, the logistic member and the blend.

    Only for exchangeable rows (a random split): a table with a time column, or the
    world's monthly snapshots, must keep the time-ordered fit.
    """
    from sklearn.model_selection import StratifiedKFold

    from ppx.metrics import roc_auc

    t0 = time.perf_counter()
    y = np.asarray(y, dtype=float)
    # Stratified parts need every class in each of them.
    folds = int(max(2, min(folds, np.bincount(y.astype(int)).min())))
    model = ChurnModel(encoder=encoder, config=config, horizons=[0], mode="table")
    nf = encoder.numeric_frame(frame)
    xn, xc = encoder.net_arrays(nf)
    oof = np.full(len(frame), np.nan)
    oof_lin = np.full(len(frame), np.nan)
    states, epochs = [], []
    if groups is None:
        parts = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    else:  # rows of one customer never train the member that calibrates them
        from sklearn.model_selection import StratifiedGroupKFold

        parts = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(
            np.zeros(len(y)), y, groups
        )
    for i, (tr, va) in enumerate(parts):
        m = fit_churn_model(
            frame.iloc[tr],
            frame.iloc[va],
            encoder,
            config.replace(seed=config.seed + i, ensemble=1),
            [0],
            "table",
            y[tr],
            y[va],
        )
        oof[va] = m.raw_logits(encoder.numeric_frame(frame.iloc[va]))[:, 0]
        states.append(m.state)
        epochs.append(m.info["best_epoch"])
        if linear_C is not None:
            lin = _logistic_member(model, xn[tr], xc[tr], y[tr], linear_C)
            with torch.no_grad():
                oof_lin[va] = lin(torch.from_numpy(xn[va]), torch.from_numpy(xc[va]))[:, 0].numpy()
    model.state = states
    auc = {"network": roc_auc(y, oof)}
    z = oof
    if linear_C is not None:
        w = _blend_weight(oof, oof_lin, y)
        z = w * oof + (1 - w) * oof_lin
        lin = _logistic_member(model, xn, xc, y, linear_C)
        model.state = [*states, lin.state_dict()]
        model.weights = [w / len(states)] * len(states) + [1.0 - w]
        auc.update(linear=roc_auc(y, oof_lin), blend=roc_auc(y, z))
    model.calibration = [fit_calibration(z, y, config.calibration)]
    # The networks alone, calibrated on their own out-of-fold logits: what the
    # benchmark reports beside the blend.
    model.info["network_calibration"] = fit_calibration(oof, y, config.calibration)
    model.background_frame = nf.sample(min(200, len(nf)), random_state=config.seed)[
        model.feature_names
    ].reset_index(drop=True)
    model.info.update(
        best_epoch=max(epochs),
        best_epochs=epochs,
        crossfit_folds=folds,
        oof_roc_auc=auc,
        blend_weight=None if model.weights is None else model.weights[0] * len(states),
        train_seconds=time.perf_counter() - t0,
    )
    return model
