"""Ranking metrics, the baselines (popularity, item-KNN, EASE) and the world's oracle.

Every method is a *scorer*: ``scorer(seq, now_days) -> [U, n+1]`` logits over the
vocabulary (column 0 is padding), so ours and the baselines go through the same
evaluation code.

Metrics (``evaluate_scorer``):

* ``hr_10`` / ``ndcg_10`` - full ranking over every item. With ``exclude_seen`` the
  user's history is removed from the candidates (the Amazon protocol); repeat-aware
  evaluation (the world) keeps it, because coffee runs out.
* ``hr_10_s100`` / ``ndcg_10_s100`` - the SASRec paper's protocol: the target ranked
  against 100 items sampled uniformly from those the user has not interacted with (the
  paper's released evaluation code draws them uniformly, with repeats allowed).
* ``hr_10_s100pop`` / ``ndcg_10_s100pop`` (when item popularity is given) - the same
  with the 100 negatives drawn in proportion to training popularity (the BERT4Rec-style
  variant; harder, because popular items are harder to beat).
* on the world, the same split by whether the target was a repeat or a new item
  (``*_repeat`` / ``*_new``).

Ties are broken at the expected rank (half of the tied items ahead), so constant
scores do not get lucky.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from ppx import metrics as M
from ppx.features.recs import TYPE_CODES, SequenceArrays

Scorer = Callable[[SequenceArrays, "np.ndarray | None"], np.ndarray]
K = 10


def user_item_matrix(seq: SequenceArrays, encode, n_items: int, views: bool = False):
    """Binary users x (n+1) CSR matrix of purchases/renewals (and views if asked)."""
    keep = np.ones(len(seq.items), dtype=bool) if views else seq.types != TYPE_CODES["view"]
    user = np.repeat(np.arange(len(seq)), seq.lengths())[keep]
    j = encode(seq.items[keep])
    ok = j > 0
    X = sp.csr_matrix(
        (np.ones(int(ok.sum()), dtype=np.float32), (user[ok], j[ok])),
        shape=(len(seq), n_items + 1),
    )
    X.data[:] = 1.0
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def ranks(
    scores: np.ndarray,
    targets: np.ndarray,
    exclude: sp.csr_matrix | None,
    n_neg: int | None,
    rng: np.random.Generator,
    neg_p: np.ndarray | None = None,
) -> np.ndarray:
    """0-based rank of each target among candidates (full catalogue or 100 sampled).

    Sampled negatives are uniform over the items the user never interacted with, or, with
    ``neg_p`` (a probability per vocabulary index), drawn in proportion to it.
    """
    s = np.array(scores, dtype=np.float64, copy=True)
    s[:, 0] = -np.inf
    U, n1 = s.shape
    t = s[np.arange(U), targets]
    if n_neg is None:
        if exclude is not None:
            rows, cols = exclude.nonzero()
            s[rows, cols] = -np.inf
            s[np.arange(U), targets] = t
        greater = (s > t[:, None]).sum(1)
        ties = (s == t[:, None]).sum(1) - 1
        return greater + ties / 2.0
    # Sampled protocol: negatives over items the user never interacted with.
    cdf = None
    if neg_p is not None:
        cdf = np.cumsum(np.asarray(neg_p, dtype=np.float64))
        cdf /= cdf[-1]
    out = np.empty(U)
    for u in range(U):
        seen = (
            set(exclude.indices[exclude.indptr[u] : exclude.indptr[u + 1]])
            if exclude is not None
            else set()
        )
        seen.add(int(targets[u]))
        neg = []
        while len(neg) < n_neg:
            if cdf is None:
                cand = rng.integers(1, n1, size=2 * n_neg)
            else:
                cand = np.minimum(np.searchsorted(cdf, rng.random(2 * n_neg), side="right"), n1 - 1)
            neg.extend(int(c) for c in cand if c not in seen)
        neg = np.asarray(neg[:n_neg])
        ns = s[u, neg]
        out[u] = (ns > t[u]).sum() + (ns == t[u]).sum() / 2.0
    return out


def metric_block(r: np.ndarray, suffix: str = "") -> dict[str, float]:
    """HR@10 and NDCG@10 of 0-based ranks, names suffixed (``_repeat``, ``_new``)."""
    return {f"hr_10{suffix}": M.hit_rate(r, K), f"ndcg_10{suffix}": M.ndcg(r, K)}


def evaluate_scorer(
    scorer: Scorer,
    seq: SequenceArrays,
    targets: np.ndarray,
    now_days: np.ndarray | None,
    exclude: sp.csr_matrix | None,
    exclude_seen: bool,
    is_repeat: np.ndarray | None = None,
    n_neg: int = 100,
    batch: int = 1024,
    seed: int = 0,
    desc: str = "",
    progress: bool = True,
    popularity: np.ndarray | None = None,
    neg_exclude: sp.csr_matrix | None = None,
) -> dict[str, float]:
    """Full-ranking and sampled metrics of one scorer over users ``seq`` with ``targets``.

    Args:
        scorer: maps a batch of sequences (and their decision moments) to logits.
        seq: one history per evaluated user, aligned with ``targets`` (vocab indices).
        now_days: decision moment per user (days), or None (sequence-only data).
        exclude: users x items CSR of the items each user interacted with; always used
            to draw the sampled negatives, and removed from the full ranking when
            ``exclude_seen``.
        is_repeat: per target, whether it was bought before (adds ``*_repeat``/``*_new``).
        popularity: training count per vocabulary index; adds ``*_s100pop`` (negatives
            drawn in proportion to popularity).
        neg_exclude: users x items CSR of the items never drawn as sampled negatives,
            when that differs from ``exclude`` (the SASRec code excludes only the
            training items, so on Amazon's test the validation item may be drawn).
    """
    rng = np.random.default_rng(seed)
    rng_pop = np.random.default_rng(seed + 1)
    neg_p = None
    if popularity is not None:
        neg_p = np.asarray(popularity, dtype=np.float64).copy()
        if exclude is not None and neg_p.shape != (exclude.shape[1],):
            raise ValueError(f"popularity: expected {exclude.shape[1]} entries, got {neg_p.shape}")
        neg_p[0] = 0.0
        if not np.isfinite(neg_p).all() or (neg_p < 0).any() or neg_p.sum() <= 0:
            raise ValueError("popularity: counts must be finite, >= 0 and not all zero")
    full, samp = np.empty(len(seq)), np.empty(len(seq))
    samp_pop = np.empty(len(seq))
    bar = tqdm(range(0, len(seq), batch), desc=f"eval {desc}", disable=not progress, leave=False)
    for lo in bar:
        rows = np.arange(lo, min(lo + batch, len(seq)))
        sub = seq.subset(rows)
        now = None if now_days is None else now_days[rows]
        sc = scorer(sub, now)
        ex = exclude[rows] if exclude is not None else None
        nex = neg_exclude[rows] if neg_exclude is not None else ex
        full[rows] = ranks(sc, targets[rows], ex if exclude_seen else None, None, rng)
        samp[rows] = ranks(sc, targets[rows], nex, n_neg, rng)
        if neg_p is not None:
            samp_pop[rows] = ranks(sc, targets[rows], nex, n_neg, rng_pop, neg_p)
    out = metric_block(full)
    sm = metric_block(samp)
    out["hr_10_s100"], out["ndcg_10_s100"] = sm["hr_10"], sm["ndcg_10"]
    if neg_p is not None:
        sp_ = metric_block(samp_pop)
        out["hr_10_s100pop"], out["ndcg_10_s100pop"] = sp_["hr_10"], sp_["ndcg_10"]
    if is_repeat is not None:
        is_repeat = np.asarray(is_repeat, dtype=bool)
        out.update(metric_block(full[is_repeat], "_repeat") if is_repeat.any() else {})
        out.update(metric_block(full[~is_repeat], "_new") if (~is_repeat).any() else {})
        out["repeat_share"] = float(is_repeat.mean())
    out["n_users"] = float(len(seq))
    return out


# --- baselines ----------------------------------------------------------------------------


class Popularity:
    """Most-purchased items first (the peers' best-seller list)."""

    name = "popularity"

    def fit(self, X: sp.csr_matrix) -> Popularity:
        t0 = time.perf_counter()
        self.counts = np.asarray(X.sum(axis=0)).ravel().astype(np.float32)
        self.fit_seconds = time.perf_counter() - t0
        return self

    def score_matrix(self, Xb: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.counts, (Xb.shape[0], 1))


class ItemKNN:
    """Item-item cosine similarity (top ``k`` neighbours per item), summed over history."""

    name = "item_knn"

    def __init__(self, k: int = 200, shrink: float = 10.0):
        self.k, self.shrink = k, shrink

    def fit(self, X: sp.csr_matrix) -> ItemKNN:
        t0 = time.perf_counter()
        Xc = X.tocsc().astype(np.float32)
        norms = np.sqrt(np.asarray(Xc.multiply(Xc).sum(axis=0)).ravel())
        G = (Xc.T @ Xc).tocsr().astype(np.float32)
        G.setdiag(0)
        G.eliminate_zeros()
        G = G.tocoo()
        denom = norms[G.row] * norms[G.col] + self.shrink
        vals = G.data / np.maximum(denom, 1e-9)
        S = sp.csr_matrix((vals, (G.row, G.col)), shape=G.shape)
        self.S = _top_k_rows(S, self.k)  # row i: the k nearest neighbours of item i
        self.fit_seconds = time.perf_counter() - t0
        return self

    def score_matrix(self, Xb: sp.csr_matrix) -> np.ndarray:
        return (Xb @ self.S).toarray()


def _top_k_rows(S: sp.csr_matrix, k: int) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for i in range(S.shape[0]):
        lo, hi = S.indptr[i], S.indptr[i + 1]
        if hi == lo:
            continue
        d, c = S.data[lo:hi], S.indices[lo:hi]
        if len(d) > k:
            top = np.argpartition(-d, k)[:k]
            d, c = d[top], c[top]
        rows.append(np.full(len(c), i))
        cols.append(c)
        vals.append(d)
    if not rows:
        return sp.csr_matrix(S.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=S.shape
    )


class EASE:
    """Embarrassingly Shallow Autoencoder (Steck 2019): closed-form item-item weights."""

    name = "ease"

    def __init__(self, lam: float = 500.0, max_items: int | None = None):
        self.lam = lam
        #: model only the most popular items (the inversion is cubic in their number);
        #: the others get no EASE score and rank last
        self.max_items = max_items

    def fit(self, X: sp.csr_matrix) -> EASE:
        t0 = time.perf_counter()
        counts = np.asarray(X.sum(axis=0)).ravel()
        if self.max_items is not None and self.max_items < X.shape[1]:
            self.cols = np.sort(np.argsort(-counts, kind="stable")[: self.max_items])
        else:
            self.cols = np.arange(X.shape[1])
        self.n_cols = X.shape[1]
        Xs = X[:, self.cols]
        G = torch.from_numpy((Xs.T @ Xs).toarray().astype(np.float32))
        G.diagonal().add_(self.lam)
        L = torch.linalg.cholesky(G)
        del G
        P = torch.cholesky_inverse(L)
        del L
        d = P.diagonal().clone()
        P.div_(-d[None, :])
        P.fill_diagonal_(0.0)
        self.B = P.numpy()
        self.fit_seconds = time.perf_counter() - t0
        return self

    def score_matrix(self, Xb: sp.csr_matrix) -> np.ndarray:
        if len(self.cols) == self.n_cols:
            return np.asarray(Xb @ self.B)
        out = np.full((Xb.shape[0], self.n_cols), -np.inf, dtype=np.float32)
        out[:, self.cols] = np.asarray(Xb[:, self.cols] @ self.B)
        return out


def baseline_scorer(model, encode, n_items: int) -> Scorer:
    """Wrap a baseline so it scores sequences like the recommender does."""

    def scorer(seq: SequenceArrays, now_days=None) -> np.ndarray:
        Xb = user_item_matrix(seq, encode, n_items)
        s = model.score_matrix(Xb).astype(np.float32)
        s[:, 0] = -np.inf
        return s

    return scorer


def world_oracle(
    truth: dict,
    products,
    encode,
    n_items: int,
    sequential_prob: float = 0.35,
    replenish_prob: float = 0.55,
) -> Scorer:
    """The world's own purchase mechanisms as a scorer (an approximate Bayes ranking).

    Mixes the generator's taste choice (softmax of ``0.9 * taste . item + popularity``,
    plus the fraudsters' taste for expensive items), its planted successor of the last
    order's first item (probability ``sequential_prob``) and the replenishment of the
    last consumable when it falls due within the window (``replenish_prob``, unless a
    subscription is active). It ignores the timing race between a due replenishment and
    a one-off order, so it is a strong reference rather than the exact optimum.
    """
    from ppx.data import columns as C

    tc = truth[C.TRUTH_CUSTOMERS].set_index(C.CUSTOMER_ID)
    tp = truth["truth_products"].set_index(C.PRODUCT_ID)
    taste_cols = [c for c in tc.columns if c.startswith(f"{C.TASTE}_")]
    ids = tp.index.to_numpy()
    j = encode(ids)
    emb = np.zeros((n_items + 1, len(taste_cols)))
    emb[j] = tp[taste_cols].to_numpy()
    pop = np.full(n_items + 1, -np.inf)
    pop[j] = tp["popularity"].to_numpy()
    succ = np.zeros(n_items + 1, dtype=np.int64)
    succ[j] = encode(tp["successor_id"].to_numpy())
    pr = products.set_index(C.PRODUCT_ID)
    pricey = np.zeros(n_items + 1)
    pricey[encode(pr.index.to_numpy())] = (pr[C.PRICE].to_numpy() > 60).astype(float)
    cons = np.zeros(n_items + 1, dtype=bool)
    cons[encode(pr.index.to_numpy())] = pr[C.IS_CONSUMABLE].to_numpy(dtype=bool)
    repl = np.full(n_items + 1, np.nan)
    repl[encode(pr.index.to_numpy())] = pr[C.REPLENISH_DAYS].to_numpy(dtype=float)
    fraud = tc[C.FRAUD_TYPE].isin(["ring", "wardrober"])

    def scorer(seq: SequenceArrays, now_days=None) -> np.ndarray:
        taste = tc.reindex(seq.customer_ids)[taste_cols].to_numpy()
        fp = fraud.reindex(seq.customer_ids).fillna(False).to_numpy(dtype=float) * 1.2
        logits = 0.9 * taste @ emb.T + pop[None, :] + np.outer(fp, pricey)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        out = (1 - sequential_prob) * p
        for u in range(len(seq)):
            lo, hi = seq.offsets[u], seq.offsets[u + 1]
            buy = np.flatnonzero(seq.types[lo:hi] != TYPE_CODES["view"]) + lo
            if len(buy) == 0:
                continue
            t_last = seq.days[buy[-1]]
            first = buy[np.searchsorted(seq.days[buy], t_last)]
            last_item = encode(seq.items[first : first + 1])[0]
            if last_item > 0:
                out[u, succ[last_item]] += sequential_prob
            if now_days is None:
                continue
            # Last order whose first item was consumable sets the due date.
            order_t = np.unique(seq.days[buy])
            firsts = buy[np.searchsorted(seq.days[buy], order_t)]
            fi = encode(seq.items[firsts])
            c = np.flatnonzero(cons[fi])
            if len(c) == 0:
                continue
            k = c[-1]
            due_at = order_t[k] + repl[fi[k]]
            renew = (seq.types[lo:hi] == TYPE_CODES["renewal"]) & (
                now_days[u] - seq.days[lo:hi] <= 45
            )
            if not renew.any() and now_days[u] - 7 <= due_at < now_days[u] + 60:
                out[u, fi[k]] += replenish_prob
        out[:, 0] = -np.inf
        return out.astype(np.float32)

    return scorer
