"""The served recommender: history snapshot, business filters, fast top-k, explanations.

:class:`ServedRecommender` is the object the pyfunc wrapper loads. It keeps the
customers' interaction history as of training time (the snapshot artifact), the
product catalogue facts needed by the business filters, and the fitted
:class:`~ppx.models.recs.model.Recommender`. One request costs one transformer pass
over at most ``max_len`` events plus numpy for the repeat features and filters.

Business filters (applied after scoring, before top-k):

* out-of-stock products are never recommended;
* products the customer returned are never recommended again;
* repurchase policy by category: consumable categories (beans, ground, tea, consumable
  accessories such as filters) may be recommended again - that is the point of
  replenishment - while equipment, merch and other durable goods already bought are not;
* products the customer has an active subscription to are not recommended (they ship
  anyway).

Explanations (:class:`~ppx.models.base.ExplainableModel`): the explained score is the
final logit of the customer's top recommendation, as an exact function of the numeric
features ``seq_logit`` (the transformer's score of that item), ``in_history`` and the
item's repeat features (count, recency, due ratio, subscription, recent view, item
repeat rate, last purchase). SHAP then says whether the top pick is driven by the
sequence model or by replenishment due-ness.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ppx.data import columns as C
from ppx.data.errors import RequestError
from ppx.features.recs import (
    REPEAT_FEATURES,
    TYPE_CODES,
    SequenceArrays,
    repeat_features_arrays,
    repeat_features_many,
    to_days,
)
from ppx.models.recs.config import RecsConfig
from ppx.models.recs.model import Recommender, Vocab, encode_inference
from ppx.models.recs.network import RepeatHead, SASRec

#: Categories whose products may be recommended again after a purchase. Categories not
#: listed follow the product's ``is_consumable`` flag.
REPURCHASE_POLICY: dict[str, bool] = {
    "beans": True,
    "ground": True,
    "tea": True,
    "equipment": False,
    "merch": False,
}
EXPLAIN_FEATURES: list[str] = ["seq_logit", "in_history", *REPEAT_FEATURES]


@dataclass
class Catalogue:
    """Per-vocabulary-index facts used by the filters (index 0 is padding)."""

    in_stock: np.ndarray
    repurchase_ok: np.ndarray

    @classmethod
    def from_products(cls, products: pd.DataFrame | None, vocab: Vocab) -> Catalogue:
        n = len(vocab) + 1
        in_stock = np.ones(n, dtype=bool)
        rep = np.ones(n, dtype=bool)
        if products is not None and len(products):
            j = vocab.encode(products[C.PRODUCT_ID].to_numpy())
            ok = j > 0
            if C.IN_STOCK in products:
                in_stock[j[ok]] = products[C.IN_STOCK].to_numpy(dtype=bool)[ok]
            cons = (
                products[C.IS_CONSUMABLE].to_numpy(dtype=bool)
                if C.IS_CONSUMABLE in products
                else np.ones(len(products), dtype=bool)
            )
            cat = products[C.CATEGORY].astype(str).to_numpy() if C.CATEGORY in products else None
            allowed = np.array(
                [
                    REPURCHASE_POLICY.get(cat[i], bool(cons[i])) if cat is not None else cons[i]
                    for i in range(len(products))
                ]
            )
            rep[j[ok]] = allowed[ok]
        in_stock[0] = rep[0] = False
        return cls(in_stock, rep)


class ServedRecommender:
    """Top-k recommendations for one customer at a time, from a self-contained folder."""

    def __init__(
        self,
        rec: Recommender,
        history: pd.DataFrame,
        products: pd.DataFrame | None,
        returns: pd.DataFrame | None,
        as_of: pd.Timestamp,
    ):
        self.rec = rec
        self.vocab = rec.vocab
        self.as_of = pd.Timestamp(as_of)
        self.catalogue = Catalogue.from_products(products, self.vocab)
        h = history.sort_values([C.CUSTOMER_ID, C.EVENT_AT], kind="stable")
        self._cust = h[C.CUSTOMER_ID].to_numpy(dtype=np.int64)
        self._items = h[C.PRODUCT_ID].to_numpy(dtype=np.int64)
        self._types = h[C.EVENT_TYPE].map(TYPE_CODES).to_numpy(dtype=np.int64)
        self._days = np.asarray(to_days(h[C.EVENT_AT]), dtype=float)
        self._users, starts = np.unique(self._cust, return_index=True)
        self._offsets = np.r_[starts, len(self._cust)]
        self._returned: dict[int, np.ndarray] = {}
        if returns is not None and len(returns):
            for c, g in returns.groupby(C.CUSTOMER_ID)[C.PRODUCT_ID]:
                self._returned[int(c)] = self.vocab.encode(g.to_numpy())
        n = len(self.vocab) + 1
        self._interval = np.full(n, np.nan)
        self._rate = np.zeros(n)
        self._global_interval = 30.0
        iv = rec.intervals
        if iv is not None and len(iv):
            j = self.vocab.encode(iv.index.to_numpy())
            self._interval[j[j > 0]] = iv["interval_days"].to_numpy()[j > 0]
            self._rate[j[j > 0]] = iv["repeat_rate"].to_numpy()[j > 0]
            self._global_interval = float(iv.attrs.get("global_interval_days", 30.0))
        self.feature_names = list(EXPLAIN_FEATURES)
        self._background: pd.DataFrame | None = None

    # --- history -----------------------------------------------------------------------

    def known_customer(self, customer_id: int) -> bool:
        u = np.searchsorted(self._users, customer_id)
        return bool(u < len(self._users) and self._users[u] == customer_id)

    def _events(
        self, customer_id: int, extra: list | None, now: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The customer's vocabulary-encoded events before ``now`` plus explicit ones."""
        items = np.zeros(0, dtype=np.int64)
        types = np.zeros(0, dtype=np.int64)
        days = np.zeros(0)
        if self.known_customer(customer_id):
            u = np.searchsorted(self._users, customer_id)
            lo, hi = self._offsets[u], self._offsets[u + 1]
            keep = self._days[lo:hi] < now
            items = self.vocab.encode(self._items[lo:hi][keep])
            types, days = self._types[lo:hi][keep], self._days[lo:hi][keep]
        n_unknown = 0
        if extra is not None and len(extra):
            raw = np.asarray([int(x) for x in extra], dtype=np.int64)
            enc = self.vocab.encode(raw)
            n_unknown = int((enc == 0).sum())
            if n_unknown:
                warnings.warn(
                    f"history: ignored {n_unknown} unknown product id(s) "
                    f"{raw[enc == 0][:5].tolist()} for customer {customer_id}",
                    UserWarning,
                    stacklevel=3,
                )
            enc = enc[enc > 0]
            items = np.r_[items, enc]
            types = np.r_[types, np.full(len(enc), TYPE_CODES["purchase"])]
            days = np.r_[days, now - 1e-4 * np.arange(len(enc), 0, -1)]
        ok = items > 0
        return items[ok], types[ok], days[ok], n_unknown

    # --- scoring -----------------------------------------------------------------------

    @torch.no_grad()
    def _score_one(self, items, types, days, now: float):
        """Final logits for one user, with the repeat rows used (for explanations)."""
        if len(items) == 0:
            return self.rec.log_popularity().astype(np.float32), None, None, None
        seq = SequenceArrays(
            np.array([0]), np.array([0, len(items)]), self.vocab.decode(items), types, days
        )
        enc = encode_inference(seq, self.vocab, self.rec.config.max_len, np.array([now]))
        start = self.rec.config.max_len - min(len(items), self.rec.config.max_len)
        t = [
            torch.from_numpy(a[:, start:]) for a in (enc.items, enc.types, enc.gaps, enc.query_gaps)
        ]
        h = self.rec.net(*t)[:, -1]
        logits = self.rec.net.logits(h)[0].numpy()
        return self._with_repeat(logits, items, types, days, now)

    @torch.no_grad()
    def _with_repeat(self, logits, items, types, days, now: float):
        """The transformer's logits plus the replenishment boost on history items."""
        if self.rec.head is None:
            return logits, None, None, None
        uniq, X = repeat_features_arrays(
            items, types, days, now, self._interval, self._rate, self._global_interval
        )
        scale = float(self.rec.head.seq_scale)
        boost = self.rec.head(
            torch.from_numpy(X.astype(np.float32)), torch.from_numpy(logits[uniq])
        ).numpy()
        out = logits * scale
        out[uniq] += boost
        return out, uniq, X, logits

    @torch.no_grad()
    def _batch_logits(self, events: list[tuple], now: float, batch: int) -> list:
        """Transformer logits of many customers' histories, ``batch`` at a time.

        Histories are grouped by length and each group is cut to its longest history,
        so short histories do not pay for the padding of long ones; padding keys are
        masked, so a row's logits equal :meth:`_score_one`'s up to float rounding.
        """
        out: list = [None] * len(events)
        has = sorted(
            (i for i, e in enumerate(events) if len(e[0])), key=lambda i: len(events[i][0])
        )
        max_len = self.rec.config.max_len
        for lo in range(0, len(has), batch):
            idx = has[lo : lo + batch]
            lens = np.array([len(events[i][0]) for i in idx])
            seq = SequenceArrays(
                np.arange(len(idx)),
                np.r_[0, np.cumsum(lens)],
                self.vocab.decode(np.concatenate([events[i][0] for i in idx])),
                np.concatenate([events[i][1] for i in idx]),
                np.concatenate([events[i][2] for i in idx]),
            )
            enc = encode_inference(seq, self.vocab, max_len, np.full(len(idx), now))
            start = max_len - min(int(lens.max()), max_len)
            t = [
                torch.from_numpy(a[:, start:])
                for a in (enc.items, enc.types, enc.gaps, enc.query_gaps)
            ]
            logits = self.rec.net.logits(self.rec.net(*t)[:, -1]).numpy()
            for j, i in enumerate(idx):
                out[i] = logits[j]
        return out

    @torch.no_grad()
    def _batch_repeat(self, events: list[tuple], logits: list, now: float) -> list:
        """:meth:`_with_repeat` for many customers: one pass of the repeat head over
        every customer's history items (the head scores each item row on its own)."""
        if self.rec.head is None:
            return logits
        scored = [i for i, z in enumerate(logits) if z is not None]
        if not scored:
            return logits
        sizes = np.array([len(events[i][0]) for i in scored])
        user, uniq, X = repeat_features_many(
            np.repeat(np.arange(len(scored)), sizes),
            np.concatenate([events[i][0] for i in scored]),
            np.concatenate([events[i][1] for i in scored]),
            np.concatenate([events[i][2] for i in scored]),
            now,
            self._interval,
            self._rate,
            self._global_interval,
        )
        starts = np.searchsorted(user, np.arange(len(scored) + 1))
        base = np.empty(len(uniq), dtype=np.float32)
        for u, i in enumerate(scored):
            lo, hi = starts[u], starts[u + 1]
            base[lo:hi] = logits[i][uniq[lo:hi]]
        boost = self.rec.head(torch.from_numpy(X.astype(np.float32)), torch.from_numpy(base))
        boost = boost.numpy()
        scale = float(self.rec.head.seq_scale)
        out = list(logits)
        for u, i in enumerate(scored):
            lo, hi = starts[u], starts[u + 1]
            z = logits[i] * scale
            z[uniq[lo:hi]] += boost[lo:hi]
            out[i] = z
        return out

    def recommend_many(
        self, customer_ids, k: int = 10, as_of: pd.Timestamp | None = None, batch: int = 256
    ) -> list[dict]:
        """:meth:`recommend` for many customers, the network run on batches of them.

        The same events, repeat boost and business filters per customer; only the
        transformer sees ``batch`` histories at once (a nightly job's many customers).
        """
        if k < 1:
            raise RequestError(f"k: must be >= 1, got {k}")
        now = float(to_days(pd.Timestamp(as_of) if as_of is not None else self.as_of))
        events = [self._events(int(c), None, now) for c in customer_ids]
        logits = self._batch_logits(events, now, batch)
        popular = self.rec.log_popularity().astype(np.float32)
        final = self._batch_repeat(events, logits, now)
        out = []
        for cid, (items, types, days, n_unknown), z in zip(
            customer_ids, events, final, strict=True
        ):
            scores = popular if z is None else z
            s = self._filter_all(scores, int(cid), items, types, days, now)
            kk = min(k, int(np.isfinite(s).sum()))
            top = np.argpartition(-s, kk - 1)[:kk] if kk > 0 else np.zeros(0, dtype=np.int64)
            top = top[np.argsort(-s[top], kind="stable")]
            out.append(
                {
                    C.CUSTOMER_ID: int(cid),
                    "product_ids": self.vocab.decode(top).tolist(),
                    "scores": [float(x) for x in s[top]],
                    "source": "history" if len(items) else "popularity_fallback",
                    "n_unknown_ignored": n_unknown,
                }
            )
        return out

    def recommend(
        self,
        customer_id: int,
        history: list | None = None,
        k: int = 10,
        as_of: pd.Timestamp | None = None,
    ) -> dict:
        """Top-k product ids and scores for one customer (business filters applied).

        Args:
            customer_id: the customer; unknown customers have no snapshot history.
            history: optional product ids just purchased (e.g. the current order),
                appended to the snapshot history; unknown ids are ignored with a warning.
            k: how many recommendations.
            as_of: the decision moment (default: the snapshot's time).
        """
        if k < 1:
            raise RequestError(f"k: must be >= 1, got {k}")
        now = float(to_days(pd.Timestamp(as_of) if as_of is not None else self.as_of))
        items, types, days, n_unknown = self._events(int(customer_id), history, now)
        scores, *_ = self._score_one(items, types, days, now)
        s = self._filter_all(scores, int(customer_id), items, types, days, now)
        k = min(k, int(np.isfinite(s).sum()))
        top = np.argpartition(-s, k - 1)[:k] if k > 0 else np.zeros(0, dtype=np.int64)
        top = top[np.argsort(-s[top], kind="stable")]
        source = "history" if len(items) else "popularity_fallback"
        return {
            C.CUSTOMER_ID: int(customer_id),
            "product_ids": self.vocab.decode(top).tolist(),
            "scores": [float(x) for x in s[top]],
            "source": source,
            "n_unknown_ignored": n_unknown,
        }

    def _filter_all(self, scores, customer_id, items, types, days, now) -> np.ndarray:
        from ppx.features.recs import SUBSCRIBED_WITHIN_DAYS

        s = scores.astype(np.float64, copy=True)
        s[~self.catalogue.in_stock] = -np.inf
        bought = items[types != TYPE_CODES["view"]]
        s[bought[~self.catalogue.repurchase_ok[bought]]] = -np.inf
        ret = self._returned.get(int(customer_id))
        if ret is not None:
            s[ret[ret > 0]] = -np.inf
        ren = (types == TYPE_CODES["renewal"]) & (now - days <= SUBSCRIBED_WITHIN_DAYS)
        s[items[ren]] = -np.inf
        s[0] = -np.inf
        return s

    # --- ExplainableModel --------------------------------------------------------------

    def features(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Request rows -> the top recommendation's numeric features (see module doc)."""
        rows = []
        for r in raw.itertuples(index=False):
            cid = int(getattr(r, C.CUSTOMER_ID))
            hist = getattr(r, "history", None)
            hist = (
                None if hist is None or (isinstance(hist, float) and np.isnan(hist)) else list(hist)
            )
            as_of = getattr(r, "as_of", None)
            now = float(
                to_days(
                    pd.Timestamp(as_of) if as_of is not None and not pd.isna(as_of) else self.as_of
                )
            )
            items, types, days, _ = self._events(cid, hist, now)
            scores, uniq, X, logits = self._score_one(items, types, days, now)
            s = self._filter_all(scores, cid, items, types, days, now)
            top = int(np.argmax(s))
            feat = np.zeros(len(EXPLAIN_FEATURES))
            if logits is not None:
                feat[0] = float(logits[top])
            elif self.rec.head is not None:
                # Popularity fallback: express its score on the head's scale so that
                # score_features(features) reproduces it exactly.
                feat[0] = float(scores[top]) / float(self.rec.head.seq_scale.detach())
            else:
                feat[0] = float(scores[top])
            if uniq is not None and top in set(uniq.tolist()):
                feat[1] = 1.0
                feat[2:] = X[np.searchsorted(uniq, top)]
            rows.append(feat)
        return pd.DataFrame(
            np.asarray(rows).reshape(-1, len(EXPLAIN_FEATURES)), columns=EXPLAIN_FEATURES
        )

    @torch.no_grad()
    def score_features(self, X: np.ndarray) -> np.ndarray:
        """Exact final logit of an item from its features (the explained score)."""
        X = np.asarray(X, dtype=np.float32)
        if self.rec.head is None:
            return X[:, 0].astype(float)
        seq = torch.from_numpy(X[:, 0])
        boost = self.rec.head(torch.from_numpy(X[:, 2:]), seq).numpy()
        return (float(self.rec.head.seq_scale) * X[:, 0] + X[:, 1] * boost).astype(float)

    def background(self) -> pd.DataFrame:
        if self._background is None:
            rng = np.random.default_rng(0)
            ids = rng.choice(self._users, size=min(100, len(self._users)), replace=False)
            self._background = self.features(pd.DataFrame({C.CUSTOMER_ID: ids}))
        return self._background

    # --- persistence -------------------------------------------------------------------

    def save(self, folder: Path, history: pd.DataFrame, products, returns) -> Path:
        return save_served(folder, self.rec, history, products, returns, self.as_of)

    @classmethod
    def load(cls, folder: str | Path) -> ServedRecommender:
        return load_served(folder)


def save_served(
    folder: str | Path,
    rec: Recommender,
    history: pd.DataFrame,
    products: pd.DataFrame | None,
    returns: pd.DataFrame | None,
    as_of: pd.Timestamp,
) -> Path:
    """Write everything serving needs into one folder (the pyfunc artifact)."""
    from ppx.models.recs.network import SASRecEnsemble

    if isinstance(rec.net, SASRecEnsemble):  # the benchmark's refit; serving loads one net
        raise ValueError("an ensemble of networks cannot be saved for serving; save one member")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "config": rec.config.to_dict(),
        "product_ids": rec.vocab.product_ids,
        "popularity": rec.popularity,
        "net": rec.net.state_dict(),
        "head": rec.head.state_dict() if rec.head is not None else None,
    }
    torch.save(state, folder / "model.pt")
    cols = [C.CUSTOMER_ID, C.PRODUCT_ID, C.EVENT_AT, C.EVENT_TYPE]
    history[cols].to_parquet(folder / "history.parquet", index=False)
    if products is not None:
        keep = [c for c in (C.PRODUCT_ID, C.CATEGORY, C.IN_STOCK, C.IS_CONSUMABLE) if c in products]
        products[keep].to_parquet(folder / "products.parquet", index=False)
    if returns is not None:
        returns[[C.CUSTOMER_ID, C.PRODUCT_ID]].to_parquet(folder / "returns.parquet", index=False)
    if rec.intervals is not None:
        iv = rec.intervals.reset_index()
        iv.to_parquet(folder / "intervals.parquet", index=False)
        glob = float(rec.intervals.attrs.get("global_interval_days", 30.0))
    else:
        glob = None
    meta = {"as_of": str(pd.Timestamp(as_of)), "global_interval_days": glob}
    (folder / "snapshot.json").write_text(json.dumps(meta, indent=2))
    return folder


def load_served(folder: str | Path) -> ServedRecommender:
    folder = Path(folder)
    state = torch.load(folder / "model.pt", weights_only=False)
    cfg = RecsConfig(**state["config"])
    vocab = Vocab(np.asarray(state["product_ids"], dtype=np.int64))
    net = SASRec(len(vocab), cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.max_len, cfg.dropout)
    net.load_state_dict(state["net"])
    from ppx.features.recs import REPEAT_FEATURES as RF

    head = None
    if state["head"] is not None:
        head = RepeatHead(len(RF), cfg.repeat_hidden)
        head.load_state_dict(state["head"])
    meta = json.loads((folder / "snapshot.json").read_text())
    intervals = None
    if (folder / "intervals.parquet").exists():
        intervals = pd.read_parquet(folder / "intervals.parquet").set_index(C.PRODUCT_ID)
        intervals.attrs["global_interval_days"] = meta["global_interval_days"]
    rec = Recommender(cfg, vocab, net, np.asarray(state["popularity"]), intervals, head)
    history = pd.read_parquet(folder / "history.parquet")
    products = (
        pd.read_parquet(folder / "products.parquet")
        if (folder / "products.parquet").exists()
        else None
    )
    returns = (
        pd.read_parquet(folder / "returns.parquet")
        if (folder / "returns.parquet").exists()
        else None
    )
    return ServedRecommender(rec, history, products, returns, pd.Timestamp(meta["as_of"]))
