"""A re-ranker of item features on top of the fitted recommender.

The transformer learns an embedding per product from purchase sequences and takes no
side features; the repeat head sees only products already in a customer's history. An
item-level fact known at the decision moment (what customers wrote about a product,
``ppx.features.recs.item_theme_rates``) therefore enters as a re-ranker: the final
logit of product ``j`` is the recommender's logit plus ``w · z_j``, where ``z_j`` are
the product's features standardised on the training cutoffs and ``w`` is fitted by
full-softmax cross-entropy on the actual next purchases at cutoffs before validation,
the recommender frozen (the recipe of the repeat head).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ItemReranker:
    """Linear item-feature boost: ``logits + ((F - mean) / scale) @ weights``."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray

    def boost(self, item_features: np.ndarray) -> np.ndarray:
        """Per vocabulary index (row 0 is padding), the added logit."""
        z = (np.asarray(item_features, dtype=np.float64) - self.mean) / self.scale
        out = z @ self.weights
        out[0] = 0.0
        return out.astype(np.float32)

    def apply(self, logits: np.ndarray, item_features: np.ndarray) -> np.ndarray:
        return logits + self.boost(item_features)[None, :]


def fit_item_reranker(
    examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    epochs: int = 200,
    lr: float = 0.05,
    l2: float = 1e-3,
    seed: int = 0,
) -> ItemReranker:
    """Fit the weights on ``(base logits [U, n+1], targets [U], item features [n+1, k])``
    triples, one per training cutoff."""
    feats = np.concatenate([f[1:] for _, _, f in examples])
    mean = feats.mean(axis=0)
    scale = np.maximum(feats.std(axis=0), 1e-6)
    torch.manual_seed(seed)
    k = feats.shape[1]
    w = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    data = []
    for base, y, f in examples:
        z = torch.from_numpy((f - mean) / scale)
        z[0] = 0.0
        b = torch.from_numpy(np.asarray(base, dtype=np.float64)).clone()
        b[:, 0] = -1e9
        data.append((b, torch.from_numpy(np.asarray(y, dtype=np.int64)), z))
    opt = torch.optim.Adam([w], lr=lr)
    for _ in range(epochs):
        loss = (
            sum(
                torch.nn.functional.cross_entropy(b + (z @ w)[None, :], y, reduction="sum")
                for b, y, z in data
            )
            / sum(len(y) for _, y, _ in data)
            + l2 * (w**2).sum()
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return ItemReranker(mean, scale, w.detach().numpy().copy())


def reranked_scorer(
    scorer: Callable, reranker: ItemReranker, item_features: np.ndarray
) -> Callable:
    """A scorer (``seq, now -> logits``) with the re-ranker's boost added."""

    def fn(seq, now):
        return reranker.apply(scorer(seq, now), item_features)

    return fn
