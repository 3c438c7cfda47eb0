"""The trained delivery model: encoders, hazard network, calibration and history.

:class:`DeliveryModel` is what the pyfunc wrapper loads and what SHAP explains: it
turns raw request facts into features (as of each request's cutoff, using the history
snapshot it carries), features into a distribution over delivery days, and the
distribution into promises and probabilities whose stated rates hold on held-out data
(conformal recalibration, see :class:`Recalibrator`).
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ppx.data import columns as C
from ppx.features import delivery as fd
from ppx.models.calibration import fit_isotonic
from ppx.models.delivery.config import DeliveryConfig, check_target
from ppx.models.delivery.network import HazardNet, cdf_from_logits, hazard_nll
from ppx.models.early_stopping import EarlyStopping

CATS = (*fd.CATEGORICAL, fd.LAST_SCAN_TYPE, "weekday_cat")
STRICT = (C.WAREHOUSE, C.DEST_REGION, C.CARRIER, C.SERVICE_LEVEL)  # unknown -> error
UNK = "<unk>"
REF_Q = 0.9  # Mondrian groups: the day the calibrated CDF reaches this probability
MIN_GROUP = 1000  # held-out parcels a group needs for its own promise rule
NUMPY_BATCH = 64  # up to this many rows the network runs in numpy (serving batch sizes)


class Recalibrator:
    """Conformal promise rule on a predicted CDF (marginal, censoring-aware).

    For a parcel delivered on day ``D`` with (calibrated) CDF ``F``, the score
    ``s = F(D - 1)`` satisfies ``D <= d  <=>  s < F(d)`` whenever ``d`` is the first
    day whose CDF reaches a threshold; so ``G(p) = P(s < p)`` estimated on held-out
    parcels is the on-time rate of the rule "promise the first day with ``F >= p``",
    and a promise at target ``q`` is the first day with ``G(F(d)) >= q``. With whole
    days a distribution's own 0.9-quantile is kept more than 90 % of the time; this
    rule gives the shortest promise that is kept ``q`` of the time. Parcels still in
    flight at the calibration cutoff only give ``s >= F(c - 1)``; ``G`` is then a
    Kaplan-Meier estimate, so they count as censored, not missing.
    """

    GRID = np.linspace(0.0, 1.0, 2001)

    def __init__(self, values: np.ndarray | None = None):
        self.values = self.GRID.copy() if values is None else np.asarray(values, float)

    @classmethod
    def fit(
        cls, scores: np.ndarray, event: np.ndarray, weights: np.ndarray | None = None
    ) -> Recalibrator:
        s = np.asarray(scores, float)
        e = np.asarray(event, float)
        w = np.ones_like(s) if weights is None else np.asarray(weights, float)
        if len(s) == 0:
            return cls()
        order = np.lexsort((-e, s))  # ties: events before censorings
        s, e, w = s[order], e[order], w[order]
        at_risk = w.sum() - np.concatenate([[0.0], np.cumsum(w)[:-1]])
        factor = np.where(e > 0, 1.0 - w / np.maximum(at_risk, 1e-12), 1.0)
        surv = np.cumprod(factor)  # P(score > s_i) after each step
        cdf_at = 1.0 - surv  # P(score <= s_i)
        # G(p) = P(score < p): the KM CDF just below p.
        idx = np.searchsorted(s, cls.GRID, side="left") - 1
        g = np.where(idx >= 0, cdf_at[np.maximum(idx, 0)], 0.0)
        g[-1] = max(g[-1], cdf_at[-1])
        return cls(np.maximum.accumulate(g))

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return np.interp(p, self.GRID, self.values)


class IsoMap:
    """Isotonic map raw ``F(d)`` -> observed ``P(D <= d)`` (probability calibration)."""

    GRID = Recalibrator.GRID

    def __init__(self, values: np.ndarray | None = None):
        self.values = self.GRID.copy() if values is None else np.asarray(values, float)

    @classmethod
    def fit(
        cls, raw_cdf: np.ndarray, y: np.ndarray, event: np.ndarray, start: np.ndarray, seed=0
    ) -> IsoMap:
        n, k = raw_cdf.shape
        d = np.arange(k)[None, :]
        known = (event[:, None] > 0) | (d < y[:, None])  # censored: only D > d is known
        known &= d >= start[:, None]
        p = raw_cdf[known]
        hit = (y[:, None] <= d).astype(float)[known]
        if len(p) == 0:
            return cls()
        if len(p) > 400_000:
            idx = np.random.default_rng(seed).choice(len(p), 400_000, replace=False)
            p, hit = p[idx], hit[idx]
        iso = fit_isotonic(p, hit, y_min=0.0, y_max=1.0)
        return cls(np.maximum.accumulate(iso.predict(cls.GRID)))

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return np.interp(p, self.GRID, self.values)


def _promise(cal_cdf: np.ndarray, target: np.ndarray) -> np.ndarray:
    """First day whose (calibrated) probability reaches the target."""
    reach = cal_cdf >= np.asarray(target, float)[:, None] - 1e-12
    reach[:, -1] = True
    return reach.argmax(axis=1)


@dataclass
class DeliveryModel:
    """A fitted delivery model (see module docstring); implements ExplainableModel."""

    cfg: DeliveryConfig
    vocab: dict[str, list[str]]
    num_mean: np.ndarray
    num_std: np.ndarray
    net: HazardNet
    history: fd.DeliveryHistory
    calib: dict[str, IsoMap] = field(default_factory=dict)
    rules: dict[str, Recalibrator] = field(default_factory=dict)
    rule_edges: dict[str, np.ndarray] = field(default_factory=dict)
    background_frame: pd.DataFrame | None = None
    feature_names: list[str] = field(default_factory=list)
    train_seconds: float = 0.0
    # Online recalibration (recalibrate.OnlineRecalibration) fed by the service with
    # completed deliveries; None: the validation rules only. Not part of the state.
    online: Any = None

    # --- encoding ---------------------------------------------------------------------
    def features(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Raw request rows -> numeric feature frame (categoricals as integer codes)."""
        return self.features_from(fd.delivery_features(raw, self.history))

    def features_from(self, feats: pd.DataFrame) -> pd.DataFrame:
        """Feature frame (from :func:`delivery_features`) -> numeric model inputs."""
        cats, nums = self.encode(feats)
        return pd.DataFrame(np.hstack([cats.astype(float), nums]), columns=self.feature_names)

    def encode(self, feats: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        n = len(np.asarray(feats["weekday"]))
        cats = np.empty((n, len(CATS)), dtype=np.int64)
        lookups = self._lookups()
        for i, c in enumerate(CATS):
            vals = (
                np.asarray(feats["weekday"]).astype(int).astype(str)
                if c == "weekday_cat"
                else np.asarray(feats[c])
            )
            lookup = lookups[c]
            codes = np.fromiter((lookup.get(v, -1) for v in vals), np.int64, len(vals))
            if (codes < 0).any():
                bad = sorted({str(v) for v in np.asarray(vals)[codes < 0]})[:5]
                if c in getattr(self.cfg, "strict_fields", STRICT):
                    known = ", ".join(v for v in self.vocab[c] if v != UNK)
                    raise fd.DeliveryInputError(
                        f"{c}: unknown value(s) {bad}; the model knows: {known}"
                    )
                codes = np.where(codes < 0, 0, codes)  # documented fallback: <unk>
            cats[:, i] = codes
        # One (features, rows) array, transposed: the same values as stacking columns,
        # in one call instead of one per feature; C order again for the network.
        nums = np.array([feats[c] for c in fd.NUMERIC], dtype=np.float64).T
        nums = ((nums - self.num_mean) / self.num_std).astype(np.float32, order="C")
        return cats, nums

    def _lookups(self) -> dict[str, dict[str, int]]:
        lk = self.__dict__.get("_lookup_cache")
        if lk is None:
            lk = {c: {v: j for j, v in enumerate(self.vocab[c])} for c in CATS}
            self.__dict__["_lookup_cache"] = lk
        return lk

    # --- distribution -----------------------------------------------------------------
    def logits(self, cats: np.ndarray, nums: np.ndarray, batch: int = 65536) -> np.ndarray:
        if self.net.training:
            self.net.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(cats), batch):
                out.append(
                    self.net(
                        torch.from_numpy(cats[i : i + batch]), torch.from_numpy(nums[i : i + batch])
                    )
                )
        return torch.cat(out).numpy() if out else np.zeros((0, self.cfg.d_max + 1), np.float32)

    def _numpy_weights(self) -> dict:
        """The network's weights as numpy arrays (cached; for small batches)."""
        w = self.__dict__.get("_np_weights")
        if w is None:
            sd = {
                k: v.detach().cpu().numpy().astype(np.float64)
                for k, v in self.net.state_dict().items()
            }
            n_emb = len(self.net.embeddings)
            linears = [m for m in self.net.mlp if isinstance(m, torch.nn.Linear)]
            names = [n for n, m in self.net.mlp.named_children() if isinstance(m, torch.nn.Linear)]
            w = {
                "emb": [sd[f"embeddings.{i}.weight"] for i in range(n_emb)],
                "layers": [(sd[f"mlp.{n}.weight"].T, sd[f"mlp.{n}.bias"]) for n in names],
                "head": (sd["head.weight"].T, sd["head.bias"]),
            }
            assert len(linears) == len(names)
            self.__dict__["_np_weights"] = w
        return w

    def _raw_cdf_numpy(self, cats: np.ndarray, nums: np.ndarray, start: np.ndarray) -> np.ndarray:
        """:meth:`raw_cdf` of a few requests in numpy: the same network and the same CDF
        arithmetic as :func:`cdf_from_logits`, without torch's per-call overhead, which
        is most of the cost at serving batch sizes (dropout is off in evaluation, so the
        MLP is Linear -> SiLU per layer)."""
        w = self._numpy_weights()
        x = np.concatenate(
            [e[cats[:, i]] for i, e in enumerate(w["emb"])] + [nums.astype(np.float64)], axis=1
        )
        for wt, b in w["layers"]:
            x = x @ wt + b
            x = x / (1.0 + np.exp(-x))  # SiLU
        logit = x @ w["head"][0] + w["head"][1]
        h = 1.0 / (1.0 + np.exp(-logit))
        h[:, -1] = 1.0
        h[np.arange(h.shape[1])[None, :] < start[:, None]] = 0.0
        cdf = 1.0 - np.exp(np.cumsum(np.log1p(-np.minimum(h, 1 - 1e-7)), axis=1))
        cdf[:, -1] = 1.0
        return cdf

    def raw_cdf(self, feats: pd.DataFrame) -> np.ndarray:
        """Uncalibrated CDF P(D <= d | D >= current day), (n, d_max + 1)."""
        cats, nums = self.encode(feats)
        start = self._start(feats)
        if len(cats) <= NUMPY_BATCH and not self.net.training:
            return self._raw_cdf_numpy(cats, nums, start)
        return self._raw_cdf_torch(cats, nums, start)

    def _raw_cdf_torch(self, cats: np.ndarray, nums: np.ndarray, start: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            cdf = cdf_from_logits(
                torch.from_numpy(self.logits(cats, nums)), torch.from_numpy(start)
            )
        return cdf.numpy().astype(np.float64)

    def _start(self, feats: pd.DataFrame) -> np.ndarray:
        day = np.asarray(feats["elapsed_day_index"])
        return np.minimum(day, self.cfg.d_max).astype(np.int64)

    def cdf(self, feats: pd.DataFrame) -> np.ndarray:
        """Calibrated CDF: entry d is P(delivered by day d), isotonic on held-out data."""
        raw = self.raw_cdf(feats)
        return self._calibrate(raw, np.asarray(feats["in_transit"]) > 0)

    def promise(self, cdf: np.ndarray, target, transit: np.ndarray) -> np.ndarray:
        """Shortest promise kept ``target`` of the time (conformal rule per stage)."""
        tgt = np.broadcast_to(np.asarray(target, float), (len(cdf),))
        rate = cdf.copy()
        for stage, mask in (("checkout", ~transit), ("transit", transit)):
            if not (mask.any() and stage in self.rules):
                continue
            # Mondrian: one rule per group of similar predicted distributions (by the
            # day the CDF reaches REF_Q), so a change in the mix of parcels (a holiday
            # peak) does not move the on-time rate; groups without their own rule use
            # the stage's marginal rule.
            group = np.zeros(len(cdf), dtype=int)
            if stage in self.rule_edges:
                group = np.digitize(_promise(cdf, np.full(len(cdf), REF_Q)), self.rule_edges[stage])
            for g in np.unique(group[mask]):
                rule = self.rules.get(f"{stage}#{g}", self.rules[stage])
                # Where the held-out rule never reaches the target (censoring left its
                # tail unobserved) fall back to the calibrated probabilities themselves.
                use = mask & (group == g) & (tgt <= rule.values[-1])
                rate[use] = rule(cdf[use])
        rate[:, -1] = 1.0
        return _promise(rate, tgt)

    def checkout_promise(self, cdf: np.ndarray, target) -> np.ndarray:
        """:meth:`promise` of checkout rows (what the online recalibration builds on)."""
        return self.promise(cdf, target, np.zeros(len(cdf), dtype=bool))

    def _calibrate(self, raw: np.ndarray, transit: np.ndarray) -> np.ndarray:
        out = raw.copy()
        for stage, mask in (("checkout", ~transit), ("transit", transit)):
            if mask.any() and stage in self.calib:
                out[mask] = self.calib[stage](raw[mask])
        out[:, -1] = 1.0
        return np.maximum.accumulate(out, axis=1)

    # --- outputs ----------------------------------------------------------------------
    def predict(
        self,
        raw: pd.DataFrame | dict,
        target: float | None = None,
        feats: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Estimates per request (see ``pyfunc`` for the column contract)."""
        return pd.DataFrame(self._outputs(raw, target, feats))

    def predict_columns(
        self, columns: Mapping[str, Any], target: float | None = None
    ) -> dict[str, np.ndarray]:
        """Requests as columns (field -> equal-length list or array) -> output columns.

        The serving fast path: the same features and outputs as :meth:`predict`, without
        building a DataFrame on the way in or out (that cost more than the network).
        """
        return self._outputs(columns, target, None)

    def estimate(self, request: dict, target: float | None = None) -> dict:
        """One request (a dict of scalars) -> one dict of outputs, without pandas frames.

        The in-process fast path (what the latency benchmark times); same numbers as
        :meth:`predict`.
        """
        out = self._outputs(request, target, None)
        return {k: v[0] for k, v in out.items()}

    def _targets(self, cols: dict, n: int, target: float | None) -> np.ndarray:
        tgt = np.full(n, self.cfg.target if target is None else check_target(target))
        if "promise_target" not in cols:
            return tgt
        raw_t = np.asarray(cols["promise_target"], dtype=object)
        given = np.full(n, np.nan)
        for i, v in enumerate(raw_t):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            given[i] = check_target(v)
        return np.where(np.isnan(given), tgt, given)

    def _outputs(self, raw, target, feats) -> dict[str, np.ndarray]:
        cols, n = fd._as_columns(raw)
        cols = fd.parse_times(cols, n)
        if feats is None:
            feats = fd.delivery_features(cols, self.history, as_frame=False)
        tgt = self._targets(cols, n, target)
        transit = np.asarray(feats["in_transit"]) > 0
        cdf = self.cdf(feats)
        p50 = _promise(cdf, np.full(n, 0.5))
        promise = self.promise(cdf, tgt, transit)
        if self.online is not None and self.online.active and (~transit).any():
            chk = ~transit
            carriers = np.asarray(cols[C.CARRIER], dtype=object)[chk]
            promise[chk] = self.online.promise(
                cdf[chk], tgt[chk], carriers, promise[chk], self.checkout_promise
            )
        pmf = np.diff(cdf, axis=1, prepend=0.0)
        expected = pmf @ np.arange(cdf.shape[1])
        order_day = fd._time_col(cols, C.ORDERED_AT, n, True) // fd.SECONDS_PER_DAY
        order_day = order_day.astype("datetime64[D]")
        rows = np.arange(n)
        out = {
            "stage": np.where(transit, "transit", "checkout"),
            "p50_days": p50,
            "p50_date": (order_day + p50).astype("datetime64[ns]"),
            "promise_target": tgt,
            "promise_days": promise,
            "promise_date": (order_day + promise).astype("datetime64[ns]"),
            "p_on_time_at_promise": cdf[rows, promise],
            "expected_days": expected,
        }
        # P(on time | a given promise) - a date the caller proposes, or the carrier SLA.
        if "promise_date" in cols:
            pdate = fd._time_col(cols, "promise_date", n, False)
            pd_days = np.where(
                pdate == fd.NAT,
                np.nan,
                (pdate // fd.SECONDS_PER_DAY - order_day.astype(np.int64)).astype(float),
            )
        else:
            pd_days = np.asarray(feats["sla_days"], dtype=float)
        idx = np.clip(np.nan_to_num(pd_days, nan=0), 0, cdf.shape[1] - 1).astype(int)
        p_on = np.where(pd_days < 0, 0.0, cdf[rows, idx])
        out["asked_promise_days"] = pd_days
        out["p_on_time"] = np.where(np.isnan(pd_days), np.nan, p_on)
        out["p_late"] = 1.0 - out["p_on_time"]
        return out

    # --- ExplainableModel -------------------------------------------------------------
    def score_features(self, X: np.ndarray) -> np.ndarray:
        """Expected delivery days (calibrated) from the numeric feature matrix."""
        X = np.asarray(X, dtype=float)
        k = len(CATS)
        cats = np.clip(np.rint(X[:, :k]), 0, None).astype(np.int64)
        for i, c in enumerate(CATS):
            cats[:, i] = np.minimum(cats[:, i], len(self.vocab[c]) - 1)
        nums = X[:, k:].astype(np.float32)
        with torch.inference_mode():
            start = torch.zeros(len(X), dtype=torch.int64)
            raw = cdf_from_logits(torch.from_numpy(self.logits(cats, nums)), start).numpy()
        transit = nums[:, list(fd.NUMERIC).index("in_transit")] > (
            -self.num_mean[list(fd.NUMERIC).index("in_transit")]
            / self.num_std[list(fd.NUMERIC).index("in_transit")]
            + 1e-6
        )
        cdf = self._calibrate(raw.astype(np.float64), transit)
        pmf = np.diff(np.concatenate([np.zeros((len(X), 1)), cdf], axis=1), axis=1)
        return pmf @ np.arange(cdf.shape[1])

    def background(self) -> pd.DataFrame:
        return self.background_frame.copy()

    # --- persistence ------------------------------------------------------------------
    def state(self) -> dict:
        buf = io.BytesIO()
        torch.save(self.net.state_dict(), buf)
        records, meta = self.history.to_frame()
        return {
            "cfg": self.cfg,
            "vocab": self.vocab,
            "num_mean": self.num_mean,
            "num_std": self.num_std,
            "net": buf.getvalue(),
            "calib": {k: v.values for k, v in self.calib.items()},
            "rules": {k: v.values for k, v in self.rules.items()},
            "rule_edges": self.rule_edges,
            "background": self.background_frame,
            "feature_names": self.feature_names,
            "history_records": records,
            "history_meta": meta,
            "train_seconds": self.train_seconds,
        }

    @classmethod
    def from_state(cls, st: dict, history: fd.DeliveryHistory | None = None) -> DeliveryModel:
        cfg = st["cfg"]
        net = _make_net(cfg, st["vocab"])
        net.load_state_dict(torch.load(io.BytesIO(st["net"]), weights_only=True))
        net.eval()
        if history is None:
            history = fd.DeliveryHistory.from_frame(st["history_records"], st["history_meta"])
        return cls(
            cfg=cfg,
            vocab=st["vocab"],
            num_mean=st["num_mean"],
            num_std=st["num_std"],
            net=net,
            history=history,
            calib={k: IsoMap(v) for k, v in st["calib"].items()},
            rules={k: Recalibrator(v) for k, v in st["rules"].items()},
            rule_edges=st.get("rule_edges", {}),
            background_frame=st["background"],
            feature_names=st["feature_names"],
            train_seconds=st.get("train_seconds", 0.0),
        )


def _make_net(cfg: DeliveryConfig, vocab: dict[str, list[str]]) -> HazardNet:
    return HazardNet(
        [len(vocab[c]) for c in CATS],
        len(fd.NUMERIC),
        cfg.d_max,
        emb_dim=cfg.emb_dim,
        hidden=tuple(cfg.hidden),
        dropout=cfg.dropout,
    )


def _vocab(feats: pd.DataFrame) -> dict[str, list[str]]:
    v = {}
    for c in CATS:
        col = feats["weekday"].astype(int).astype(str) if c == "weekday_cat" else feats[c]
        v[c] = [UNK, *sorted(set(col.astype(str)) - {UNK})]
    return v


def fit(
    train: pd.DataFrame,
    val: pd.DataFrame,
    history: fd.DeliveryHistory,
    cfg: DeliveryConfig | None = None,
    progress: bool = True,
    snapshot_history: fd.DeliveryHistory | None = None,
) -> DeliveryModel:
    """Fit the hazard network on ``train`` (early stopping on ``val``), then calibrate.

    ``train``/``val`` are labelled frames from :mod:`ppx.models.delivery.dataset`; the
    validation period is the held-out calibration period. ``snapshot_history`` is the
    history the returned model carries for serving (default: ``history``).
    """
    cfg = cfg or DeliveryConfig()
    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    f_tr = fd.delivery_features(train, history)
    f_va = fd.delivery_features(val, history)
    vocab = _vocab(f_tr)
    nums = f_tr[list(fd.NUMERIC)].to_numpy(np.float64)
    mean, std = nums.mean(0), nums.std(0)
    std = np.where(std < 1e-9, 1.0, std)
    model = DeliveryModel(
        cfg=cfg,
        vocab=vocab,
        num_mean=mean,
        num_std=std,
        net=_make_net(cfg, vocab),
        history=snapshot_history or history,
        feature_names=[f"{c}_code" for c in CATS] + list(fd.NUMERIC),
    )
    c_tr, n_tr = model.encode(f_tr)
    c_va, n_va = model.encode(f_va)
    lab = lambda df, col: torch.from_numpy(df[col].to_numpy(np.int64).copy())  # noqa: E731
    y_tr, s_tr = lab(train, "y_day"), lab(train, "start_day")
    e_tr = torch.from_numpy(train["event"].to_numpy(np.float32))
    y_va, s_va = lab(val, "y_day"), lab(val, "start_day")
    e_va = torch.from_numpy(val["event"].to_numpy(np.float32))
    ct, nt = torch.from_numpy(c_tr), torch.from_numpy(n_tr)

    opt = torch.optim.AdamW(model.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(train)
    steps = max(1, cfg.epochs * ((n + cfg.batch_size - 1) // cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    early = EarlyStopping("minimize", cfg.patience, min_delta=1e-5)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, desc="delivery: epochs", leave=False)
    for _epoch in range(cfg.epochs):
        model.net.train()
        perm = torch.from_numpy(rng.permutation(n))
        for i in range(0, n, cfg.batch_size):
            b = perm[i : i + cfg.batch_size]
            loss = hazard_nll(model.net(ct[b], nt[b]), y_tr[b], e_tr[b], s_tr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.net.eval()
        with torch.inference_mode():
            v = float(hazard_nll(torch.from_numpy(model.logits(c_va, n_va)), y_va, e_va, s_va))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(val_nll=f"{v:.4f}")
        if early.step(v, model.net):
            break
    if bar is not None:
        bar.close()
    early.restore(model.net)
    model.net.eval()
    model.__dict__.pop("_np_weights", None)
    model.calib, model.rules, model.rule_edges = calibrate(model, val, f_va)
    model.cfg.extra["val_nll"] = early.best
    bg = model.features_from(f_tr.sample(min(200, len(f_tr)), random_state=cfg.seed))
    model.background_frame = bg.reset_index(drop=True)
    model.train_seconds = time.perf_counter() - t_start
    return model


def conformal_scores(raw_cdf: np.ndarray, y: np.ndarray, start: np.ndarray) -> np.ndarray:
    """``s = F(y - 1)`` (0 when y is the first possible day)."""
    idx = np.asarray(y, int) - 1
    s = raw_cdf[np.arange(len(y)), np.clip(idx, 0, None)]
    return np.where(idx < np.asarray(start, int), 0.0, s)


def calibrate(
    model: DeliveryModel, labelled: pd.DataFrame, feats: pd.DataFrame | None = None
) -> tuple[dict[str, IsoMap], dict[str, Recalibrator], dict[str, np.ndarray]]:
    """Fit, per stage (checkout / transit), the isotonic probability map and then the
    conformal promise rule on the mapped CDF, on a held-out labelled period.

    The rule is Mondrian: besides the stage's marginal rule, one rule per group of
    parcels whose calibrated CDF reaches ``REF_Q`` on similar days (group edges at the
    sextiles of that day on the held-out period; a group needs ``MIN_GROUP`` parcels).
    Returns (isotonic maps, rules, group edges)."""
    feats = fd.delivery_features(labelled, model.history) if feats is None else feats
    raw = model.raw_cdf(feats)
    y = labelled["y_day"].to_numpy()
    start = labelled["start_day"].to_numpy()
    ev = labelled["event"].to_numpy()
    transit = feats["in_transit"].to_numpy() > 0
    calib, rules, edges_all = {}, {}, {}
    for stage, m in (("checkout", ~transit), ("transit", transit)):
        if not m.any():
            continue
        calib[stage] = IsoMap.fit(raw[m], y[m], ev[m], start[m])
        cal = calib[stage](raw[m])
        cal[:, -1] = 1.0
        cal = np.maximum.accumulate(cal, axis=1)
        r, edges = fit_promise_rules(cal, y[m], start[m], ev[m], stage)
        rules.update(r)
        if edges is not None:
            edges_all[stage] = edges
    return calib, rules, edges_all


def fit_promise_rules(
    cal: np.ndarray, y: np.ndarray, start: np.ndarray, event: np.ndarray, stage: str
) -> tuple[dict[str, Recalibrator], np.ndarray | None]:
    """The stage's marginal conformal rule plus one per Mondrian group (see
    :func:`calibrate`), from calibrated CDFs of held-out parcels."""
    scores = conformal_scores(cal, y, start)
    rules = {stage: Recalibrator.fit(scores, event)}
    ref = _promise(cal, np.full(len(cal), REF_Q))
    edges = np.unique(np.quantile(ref, np.arange(1, 6) / 6.0, method="higher"))
    edges = edges[edges > ref.min()]
    if not len(edges):
        return rules, None
    group = np.digitize(ref, edges)
    for g in np.unique(group):
        sel = group == g
        if sel.sum() >= MIN_GROUP:
            rules[f"{stage}#{g}"] = Recalibrator.fit(scores[sel], event[sel])
    return rules, edges
