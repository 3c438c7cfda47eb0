"""The churn network: wide (logistic) plus deep (embeddings + MLP) hazard logits.

Why wide and deep: on small tables such as Telco a logistic model over one-hot columns
is hard to beat, so the network contains one exactly (the wide part) and lets the deep
part add interactions (tenure x contract, late deliveries x new customer) only where
the data supports them. Each output is the logit of a discrete-time hazard: the
probability of cancelling in interval k given the subscription survived intervals
before it. With one output the network is a plain classifier.
"""

from __future__ import annotations

import torch
from torch import nn


class ChurnNet(nn.Module):
    """Hazard logits from numeric features and categorical codes.

    Args:
        n_numeric: number of (already standardised) numeric inputs.
        cardinalities: vocabulary size of each categorical column (index 0 = unknown).
        n_out: number of hazard intervals (1 = classifier).
        hidden: width of hidden layers.
        depth: number of hidden layers; 0 disables the deep part.
        dropout: dropout rate in the deep part.
        emb_dim: maximum embedding dimension.
        bin_cardinalities: vocabulary size of each quantile-binned numeric column
            (:meth:`TabularEncoder.bin_codes`); they enter the wide part only, one
            logit offset per bin, so the logistic part can bend (tenure's effect is far
            from linear) while the deep part keeps the continuous value.
    """

    def __init__(
        self,
        n_numeric: int,
        cardinalities: list[int],
        n_out: int = 1,
        hidden: int = 64,
        depth: int = 2,
        dropout: float = 0.2,
        emb_dim: int = 4,
        bin_cardinalities: list[int] | None = None,
    ):
        super().__init__()
        self.n_out = n_out
        self.n_cat = len(cardinalities)
        self.wide_bins = nn.ModuleList(nn.Embedding(c, n_out) for c in bin_cardinalities or [])
        for e in self.wide_bins:
            nn.init.zeros_(e.weight)
        self.wide_num = nn.Linear(n_numeric, n_out)
        self.wide_cat = nn.ModuleList(nn.Embedding(c, n_out) for c in cardinalities)
        for e in self.wide_cat:
            nn.init.zeros_(e.weight)
        dims = [max(1, min(emb_dim, (c + 1) // 2)) for c in cardinalities]
        self.embs = nn.ModuleList(
            nn.Embedding(c, d) for c, d in zip(cardinalities, dims, strict=True)
        )
        self.depth = depth
        if depth > 0:
            layers: list[nn.Module] = []
            width = n_numeric + sum(dims)
            for _ in range(depth):
                layers += [nn.Linear(width, hidden), nn.SiLU(), nn.Dropout(dropout)]
                width = hidden
            out = nn.Linear(width, n_out)
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
            layers.append(out)
            self.deep = nn.Sequential(*layers)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        logits = self.wide_num(x_num)
        for j, e in enumerate(self.wide_cat):
            logits = logits + e(x_cat[:, j])
        for j, e in enumerate(self.wide_bins):
            logits = logits + e(x_cat[:, self.n_cat + j])
        if self.depth > 0:
            parts = [x_num] + [e(x_cat[:, j]) for j, e in enumerate(self.embs)]
            logits = logits + self.deep(torch.cat(parts, dim=1))
        return logits
