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


class TabMDeep(nn.Module):
    """A parameter-efficient ensemble of ``k`` MLPs sharing their weights (TabM).

    After Gorishniy et al., "TabM: Advancing tabular deep learning with parameter-
    efficient ensembling" (2024): every member runs the same hidden layers, but each
    has its own multiplicative adapters on the input and output of every linear layer
    (``r`` and ``s``, rank-one "BatchEnsemble" factors) plus its own biases and output
    head. Members are trained with one loss each, so they disagree where the data is
    thin, and the prediction is their mean: most of a deep ensemble's gain at the cost
    of one network. The first adapter starts at random signs (the paper's choice) so
    members differ from the first step; the others start at one.
    """

    def __init__(self, width: int, hidden: int, depth: int, dropout: float, k: int, n_out: int):
        super().__init__()
        self.k = k
        gen = torch.Generator().manual_seed(0)
        dims = [width] + [hidden] * depth
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:], strict=False))
        r0 = torch.randint(0, 2, (k, width), generator=gen).float() * 2 - 1
        self.r = nn.ParameterList(
            [nn.Parameter(r0)] + [nn.Parameter(torch.ones(k, d)) for d in dims[1:-1]]
        )
        self.s = nn.ParameterList(nn.Parameter(torch.ones(k, d)) for d in dims[1:])
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(k, d)) for d in dims[1:])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Parameter(torch.zeros(k, dims[-1], n_out))
        self.head_bias = nn.Parameter(torch.zeros(k, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(rows, width) -> member logits (rows, k, n_out)."""
        h = x.unsqueeze(1).expand(-1, self.k, -1)
        for i, layer in enumerate(self.layers):
            h = nn.functional.linear(h * self.r[i], layer.weight) * self.s[i] + self.b[i]
            h = self.drop(nn.functional.relu(h))
        return torch.einsum("nkh,kho->nko", h, self.head) + self.head_bias


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
        arch: ``mlp`` (one MLP) or ``tabm`` (:class:`TabMDeep`, ``members`` MLPs
            sharing weights; the output is their mean logit).
        members: ensemble size ``k`` of the ``tabm`` deep part.
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
        arch: str = "mlp",
        members: int = 1,
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
        self.arch = arch
        if depth > 0 and arch == "tabm":
            self.deep = TabMDeep(n_numeric + sum(dims), hidden, depth, dropout, members, n_out)
        elif depth > 0:
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
        """Logits (rows, n_out): the wide part plus the deep part (members' mean)."""
        return self.member_logits(x_num, x_cat).mean(dim=1)

    def member_logits(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """Logits of each ensemble member, (rows, members, n_out); one member unless
        the deep part is TabM. Training puts one loss on every member."""
        logits = self.wide_num(x_num)
        for j, e in enumerate(self.wide_cat):
            logits = logits + e(x_cat[:, j])
        for j, e in enumerate(self.wide_bins):
            logits = logits + e(x_cat[:, self.n_cat + j])
        if self.depth == 0:
            return logits.unsqueeze(1)
        parts = [x_num] + [e(x_cat[:, j]) for j, e in enumerate(self.embs)]
        deep = self.deep(torch.cat(parts, dim=1))
        if self.arch != "tabm":
            deep = deep.unsqueeze(1)
        return logits.unsqueeze(1) + deep
