"""The fitted recommender: vocabulary, encoders, the transformer and the repeat head.

:class:`Recommender` is what training produces, what the pyfunc wrapper loads and what
the benchmark scores: ``score(seq, now_days)`` returns full-catalogue logits for a batch
of users (column 0 is padding), combining the transformer with the replenishment head;
users with no history get log-popularity (the fallback).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ppx.data import columns as C
from ppx.features.recs import (
    REPEAT_FEATURES,
    TYPE_CODES,
    SequenceArrays,
    gap_bucket,
)
from ppx.models.early_stopping import EarlyStopping
from ppx.models.recs.config import RecsConfig
from ppx.models.recs.network import RepeatHead, SASRec


@dataclass
class Vocab:
    """product_id <-> model index (1..n; 0 is padding)."""

    product_ids: np.ndarray  # sorted, unique

    @classmethod
    def from_ids(cls, ids) -> Vocab:
        return cls(np.unique(np.asarray(ids, dtype=np.int64)))

    def __len__(self) -> int:
        return len(self.product_ids)

    def encode(self, ids: np.ndarray) -> np.ndarray:
        """Known ids -> 1..n, unknown ids -> 0."""
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(self.product_ids, ids)
        pos_c = np.minimum(pos, len(self.product_ids) - 1)
        ok = (pos < len(self.product_ids)) & (self.product_ids[pos_c] == ids)
        return np.where(ok, pos_c + 1, 0)

    def decode(self, idx: np.ndarray) -> np.ndarray:
        return self.product_ids[np.asarray(idx) - 1]


@dataclass
class Encoded:
    """Dense, left-padded model inputs (one row per training window or per user)."""

    items: np.ndarray
    types: np.ndarray
    gaps: np.ndarray
    query_gaps: np.ndarray
    labels: np.ndarray | None = None

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Rows -> tensors trimmed to the longest sequence in the batch."""
        items = self.items[rows]
        used = (items > 0).any(axis=0)
        start = int(np.argmax(used)) if used.any() else items.shape[1] - 1
        sl = slice(start, None)
        out = [
            torch.from_numpy(np.ascontiguousarray(a[rows][:, sl]))
            for a in (self.items, self.types, self.gaps, self.query_gaps)
        ]
        if self.labels is not None:
            out.append(torch.from_numpy(np.ascontiguousarray(self.labels[rows][:, sl])))
        return tuple(out)


def _user_of(seq: SequenceArrays) -> np.ndarray:
    return np.repeat(np.arange(len(seq)), seq.lengths())


def encode_training(seq: SequenceArrays, vocab: Vocab, max_len: int) -> Encoded:
    """Every event predicts the user's next purchase; histories cut into windows.

    Long histories are split into consecutive windows of ``max_len`` from the end so
    every event is used once; the label at each position is the next *purchase* (views
    and renewals are inputs, not targets) and the query gap is the time until it.
    """
    n = len(seq.items)
    user = _user_of(seq)
    local = np.arange(n) - np.repeat(seq.offsets[:-1], seq.lengths())
    from_end = np.repeat(seq.lengths(), seq.lengths()) - 1 - local
    prev_days = np.r_[np.nan, seq.days[:-1]]
    gap = np.where(local == 0, np.nan, seq.days - prev_days)
    purch = np.flatnonzero(seq.types == TYPE_CODES["purchase"])
    k = np.searchsorted(purch, np.arange(n), side="right")
    nxt = np.where(k < len(purch), purch[np.minimum(k, len(purch) - 1)], -1)
    nxt = np.where((nxt >= 0) & (user[np.maximum(nxt, 0)] == user), nxt, -1)
    labels = np.where(nxt >= 0, vocab.encode(seq.items[np.maximum(nxt, 0)]), 0)
    qgap = np.where(nxt >= 0, gap_bucket(seq.days[np.maximum(nxt, 0)] - seq.days), 0)
    window = from_end // max_len
    col = max_len - 1 - (from_end % max_len)
    # Row id per (user, window); keep windows with at least one label.
    key = user.astype(np.int64) * 100_000 + window
    uniq, row = np.unique(key, return_inverse=True)
    has_label = np.bincount(row, weights=(labels > 0), minlength=len(uniq)) > 0
    remap = np.cumsum(has_label) - 1
    keep = has_label[row]
    r = remap[row[keep]]
    R = int(has_label.sum())
    out = [np.zeros((R, max_len), dtype=np.int64) for _ in range(5)]
    for arr, vals in zip(
        out,
        (vocab.encode(seq.items), seq.types, gap_bucket(gap), qgap, labels),
        strict=True,
    ):
        arr[r, col[keep]] = vals[keep]
    # Unknown items become padding: drop their labels too.
    out[4][out[0] == 0] = 0
    return Encoded(*out)


def encode_inference(
    seq: SequenceArrays, vocab: Vocab, max_len: int, now_days: np.ndarray | None = None
) -> Encoded:
    """The last ``max_len`` events of each user; the query gap is ``now - last event``."""
    U = len(seq)
    lens = seq.lengths()
    local = np.arange(len(seq.items)) - np.repeat(seq.offsets[:-1], lens)
    user = _user_of(seq)
    from_end = np.repeat(lens, lens) - 1 - local
    gap = np.where(local == 0, np.nan, seq.days - np.r_[np.nan, seq.days[:-1]])
    keep = from_end < max_len
    col = max_len - 1 - from_end[keep]
    out = [np.zeros((U, max_len), dtype=np.int64) for _ in range(4)]
    for arr, vals in zip(
        out[:3], (vocab.encode(seq.items), seq.types, gap_bucket(gap)), strict=True
    ):
        arr[user[keep], col] = vals[keep]
    last = seq.last_days()
    now = last + 1e-5 if now_days is None else np.asarray(now_days, dtype=float)
    q = gap_bucket(now - last)
    out[3][:, -1] = np.where(lens > 0, q, 0)
    # Padding-only rows must have zero query gap everywhere.
    return Encoded(*out)


@dataclass
class Recommender:
    """A fitted sequential, repeat-aware recommender (the object pyfunc serves)."""

    config: RecsConfig
    vocab: Vocab
    net: SASRec
    popularity: np.ndarray  # [n+1] training purchase counts per index
    intervals: pd.DataFrame | None = None
    head: RepeatHead | None = None
    history: dict = field(default_factory=dict)

    def __post_init__(self):
        self.net.eval()
        if self.head is not None:
            self.head.eval()

    @property
    def n_items(self) -> int:
        return len(self.vocab)

    def log_popularity(self) -> np.ndarray:
        lp = np.log1p(self.popularity.astype(float))
        lp[0] = -np.inf
        return lp

    @torch.no_grad()
    def sequence_logits(
        self, seq: SequenceArrays, now_days: np.ndarray | None = None, batch: int = 1024
    ) -> np.ndarray:
        """Transformer logits ``[U, n+1]``; empty histories get log-popularity."""
        enc = encode_inference(seq, self.vocab, self.config.max_len, now_days)
        out = np.empty((len(seq), self.n_items + 1), dtype=np.float32)
        for lo in range(0, len(seq), batch):
            rows = np.arange(lo, min(lo + batch, len(seq)))
            items, types, gaps, q = enc.batch(rows)
            h = self.net(items, types, gaps, q)[:, -1]
            out[rows] = self.net.logits(h).numpy()
        if self.config.pop_weight:
            lp = np.log1p(self.popularity.astype(np.float32))
            lp[0] = 0.0  # padding stays -inf
            out += np.float32(self.config.pop_weight) * lp
        empty = (enc.items > 0).sum(axis=1) == 0
        if empty.any():
            out[empty] = self.log_popularity()
        return out

    def repeat_rows(self, feats: pd.DataFrame, customer_ids: np.ndarray) -> tuple:
        """Repeat-feature rows -> (user position, item index, feature matrix)."""
        pos = pd.Series(np.arange(len(customer_ids)), index=customer_ids)
        f = feats[feats[C.CUSTOMER_ID].isin(customer_ids)]
        u = pos.reindex(f[C.CUSTOMER_ID].to_numpy()).to_numpy()
        j = self.vocab.encode(f[C.PRODUCT_ID].to_numpy())
        ok = j > 0
        X = f[REPEAT_FEATURES].to_numpy(dtype=np.float32)[ok]
        return u[ok].astype(np.int64), j[ok], X

    @torch.no_grad()
    def score(
        self,
        seq: SequenceArrays,
        now_days: np.ndarray | None = None,
        feats: pd.DataFrame | None = None,
    ) -> np.ndarray:
        """Final logits ``[U, n+1]``: transformer + replenishment boost on history items."""
        logits = self.sequence_logits(seq, now_days)
        if self.head is None or feats is None or feats.empty:
            return logits
        u, j, X = self.repeat_rows(feats, seq.customer_ids)
        has = seq.lengths() > 0
        scale = float(self.head.seq_scale)
        out = logits.copy()
        out[has] *= scale
        if len(u):
            keep = has[u]
            u, j, X = u[keep], j[keep], X[keep]
            boost = self.head(torch.from_numpy(X), torch.from_numpy(logits[u, j]))
            out[u, j] += boost.numpy()
        return out


def fit_sasrec(
    train: SequenceArrays,
    vocab: Vocab,
    cfg: RecsConfig,
    valid_fn: Callable[[SASRec], float | dict] | None = None,
    progress: bool = True,
    log: Callable[[dict], None] | None = None,
    lr_schedule: list[float] | None = None,
) -> tuple[SASRec, dict]:
    """Train the transformer with full-softmax cross-entropy; early-stop on validation.

    Args:
        train: training sequences (events strictly before the validation moment).
        vocab: item vocabulary.
        cfg: hyper-parameters (epochs, patience, wall-clock cap...).
        valid_fn: scores a network on validation (higher is better), as a float or as a
            dict of metrics of which ``cfg.select_metric`` is used; the best state is
            kept. None trains for ``cfg.epochs``.
        progress: show a tqdm bar per epoch.
        log: called with a metrics dict after each evaluation (MLflow logging).
        lr_schedule: replay a learning rate per epoch (e.g. the ``lr`` column of an
            earlier run's curve up to its best epoch): trains exactly
            ``len(lr_schedule)`` epochs (still under the wall-clock cap) and keeps the
            last state; ``valid_fn`` must then be None.

    Returns:
        The best network (eval mode) and a history dict (epochs, best score, seconds).
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    enc = encode_training(train, vocab, cfg.max_len)
    net = SASRec(len(vocab), cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.max_len, cfg.dropout)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    early, t0 = EarlyStopping("maximize", cfg.patience), time.perf_counter()
    curve: list[dict] = []
    epoch = 0
    if lr_schedule is not None and valid_fn is not None:
        raise ValueError("lr_schedule: replays a fixed schedule, so valid_fn must be None")
    n_epochs = cfg.epochs if lr_schedule is None else len(lr_schedule)
    for epoch in range(1, n_epochs + 1):
        if lr_schedule is not None:
            for g in opt.param_groups:
                g["lr"] = float(lr_schedule[epoch - 1])
        lr_now = float(opt.param_groups[0]["lr"])
        net.train()
        batches = _length_batches(enc, cfg.batch_size, rng)
        total, n_batches = 0.0, 0
        bar = tqdm(
            batches,
            desc=f"recs epoch {epoch}",
            disable=not progress,
            leave=False,
            mininterval=2.0,
        )
        for rows in bar:
            items, types, gaps, q, labels = enc.batch(rows)
            h = net(items, types, gaps, q)
            m = labels > 0
            if cfg.loss == "full":
                loss = loss_fn(net.logits(h[m]), labels[m])
            else:
                loss = _sampled_ce(net, h[m], labels[m], cfg.n_negatives)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            n_batches += 1
            if time.perf_counter() - t0 > cfg.max_minutes * 60:
                break  # the wall-clock cap holds inside an epoch too
        row = {"epoch": epoch, "lr": lr_now, "train_loss": total / max(n_batches, 1)}
        row["seconds"] = time.perf_counter() - t0
        out_of_time = row["seconds"] > cfg.max_minutes * 60
        if valid_fn is not None and (epoch % cfg.eval_every == 0 or out_of_time):
            net.eval()
            res = valid_fn(net)
            if isinstance(res, dict):  # several validation metrics: select on one
                row.update({f"valid_{k}": float(v) for k, v in res.items() if k in VALID_LOG})
                score = float(res[cfg.select_metric])
            else:
                score = float(res)
                row["valid_ndcg_10"] = score
            early.step(score, net, epoch)
            if not early.improved:
                # A validation plateau: smaller steps often find a little more.
                for g in opt.param_groups:
                    g["lr"] *= cfg.lr_plateau_factor
        curve.append(row)
        if progress:
            tqdm.write(" ".join(_fmt(k, v) for k, v in row.items()))
        if log is not None:
            log(row)
        if early.stop or out_of_time:
            break
    early.restore(net)
    net.eval()
    found = early.best_state is not None
    return net, {
        "epochs_run": epoch,
        "best_epoch": early.best_epoch if found else epoch,
        "best_valid": float(early.best) if found else float("nan"),
        "train_seconds": time.perf_counter() - t0,
        "curve": curve,
    }


#: validation metrics recorded in the training curve
VALID_LOG = ("ndcg_10", "hr_10", "ndcg_10_s100", "hr_10_s100")


def _fmt(k, v) -> str:
    return f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"


def _length_batches(enc: Encoded, batch_size: int, rng: np.random.Generator) -> list:
    """Batches of windows with similar lengths (in random order), so short histories are
    not padded to the longest one: most of the transformer's work is then real events."""
    lengths = (enc.items > 0).sum(axis=1) + rng.random(len(enc.items))
    order = np.argsort(lengths, kind="stable")
    batches = [order[lo : lo + batch_size] for lo in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _sampled_ce(net: SASRec, h: torch.Tensor, y: torch.Tensor, n_neg: int) -> torch.Tensor:
    """Cross-entropy over the positive and ``n_neg`` uniform negatives shared by the batch.

    The cheaper variant of the full-softmax loss for large catalogues on few CPU cores
    (gSASRec-style: many negatives keep it close to the full softmax).
    """
    W = net.item_emb.weight
    neg = torch.randint(1, W.shape[0], (n_neg,))
    pos = (h * W[y]).sum(-1, keepdim=True)
    ng = (h @ W[neg].T).masked_fill(neg[None, :] == y[:, None], float("-inf"))
    logits = torch.cat([pos, ng], dim=1)
    return nn.functional.cross_entropy(logits, torch.zeros(len(y), dtype=torch.long))
