"""The hazard network: embeddings + MLP -> one hazard logit per day 0..d_max.

A discrete-time hazard ``h_d = P(delivered on day d | not before d)`` models the whole
distribution of the delivery day, handles parcels still in flight at training time as
right-censored and in-transit snapshots as left-truncated (they are known to arrive on
or after their current day), all in one likelihood.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class HazardNet(nn.Module):
    """Categorical embeddings and standardised numerics -> ``d_max + 1`` hazard logits."""

    def __init__(
        self,
        cardinalities: list[int],
        n_numeric: int,
        d_max: int,
        emb_dim: int = 6,
        hidden: tuple[int, ...] = (128, 64),
        dropout: float = 0.05,
    ):
        super().__init__()
        self.embeddings = nn.ModuleList([nn.Embedding(c, emb_dim) for c in cardinalities])
        width = emb_dim * len(cardinalities) + n_numeric
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.SiLU(), nn.Dropout(dropout)]
            width = h
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(width, d_max + 1)
        # Start near a plausible hazard (about 1/4 per day) so early epochs are stable.
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, -1.0)

    def forward(self, cats: torch.Tensor, nums: torch.Tensor) -> torch.Tensor:
        parts = [emb(cats[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.head(self.mlp(torch.cat([*parts, nums], dim=1)))


def hazard_nll(
    logits: torch.Tensor, y: torch.Tensor, event: torch.Tensor, start: torch.Tensor
) -> torch.Tensor:
    """Mean negative log-likelihood of discrete delivery days.

    Args:
        logits: (B, K) hazard logits for days 0..K-1; day K-1 absorbs the tail.
        y: (B,) delivery day (event) or first day not yet observed (censored), < K.
        event: (B,) 1.0 when delivered on day ``y``, 0.0 when only ``D >= y`` is known.
        start: (B,) first possible day (0 at checkout; the current day in transit).
    """
    k = logits.shape[1]
    days = torch.arange(k, device=logits.device)[None, :]
    log_h = F.logsigmoid(logits)
    log_s = F.logsigmoid(-logits)
    survive = (days >= start[:, None]) & (days < y[:, None])
    ll = (log_s * survive).sum(1)
    hit = log_h.gather(1, y[:, None]).squeeze(1) * (y < k - 1)
    return -(ll + event * hit).mean()


def cdf_from_logits(logits: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
    """(B, K) CDF ``P(D <= d | D >= start)``; the last day closes the distribution."""
    h = torch.sigmoid(logits)
    h = torch.cat([h[:, :-1], torch.ones_like(h[:, -1:])], dim=1)
    if start is not None:
        days = torch.arange(h.shape[1], device=h.device)[None, :]
        h = torch.where(days < start[:, None], torch.zeros_like(h), h)
    log_surv = torch.cumsum(torch.log1p(-h.clamp(max=1 - 1e-7)), dim=1)
    cdf = 1.0 - torch.exp(log_surv)
    cdf[:, -1] = 1.0
    return cdf
