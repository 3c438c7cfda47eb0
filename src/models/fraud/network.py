"""The fraud network: a shared trunk and two heads (return fraud, claim fraud).

Returns and claims share most evidence about the account (history, linkage) but differ
in the transaction evidence, so one trunk learns the account representation from both
and each head reads its own decision. ``members`` networks (each its own trunk and
heads, trained in a run of its own) are averaged on the logit scale: with a few hundred
fraud rows per head one network's ranking moves by about 0.01 PR AUC from seed to seed.
Preprocessing (log of heavy-tailed counts, standardisation, a soft clip) and per-head
Platt calibration are buffers of the module, so a saved state dict is the whole
scoring function.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("return", "claim")
#: Rare counts and flags standardise to 10-30 standard deviations (a known fraudster's
#: third label, a fourth fraud neighbour); a SiLU network extrapolates linearly out
#: there and ranked known fraudsters with long honest histories below honest accounts.
#: Squashing to +-2 keeps the order and bounds the extrapolation (validation return PR
#: AUC 0.908 -> 0.920, mean of seeds 7-9, docs/benchmarks/fraud.md).
SOFT_CLIP = 2.0


class FraudNet(nn.Module):
    """Features -> calibrated fraud probability of the head the row's kind selects.

    Args:
        n_features: width of the feature vector.
        claim_col: index of the ``is_claim`` feature (selects the head).
        hidden, hidden2: trunk widths.
        dropout: dropout after each trunk layer.
        members: networks in the ensemble (each its own trunk and heads).
        soft_clip: standardised inputs are squashed to ``c * tanh(z / c)``.
    """

    def __init__(
        self,
        n_features: int,
        claim_col: int,
        hidden: int = 128,
        hidden2: int = 64,
        dropout=0.15,
        members: int = 1,
        soft_clip: float = SOFT_CLIP,
    ):
        super().__init__()
        self.claim_col = claim_col
        self.soft_clip = float(soft_clip)
        self.register_buffer("log_mask", torch.zeros(n_features, dtype=torch.bool))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        # Platt scaling per head: p = sigmoid(a * logit + b); identity until calibrated.
        self.register_buffer("cal_a", torch.ones(2))
        self.register_buffer("cal_b", torch.zeros(2))
        self.trunks = nn.ModuleList(
            nn.Sequential(
                nn.Linear(n_features, hidden),
                nn.SiLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, hidden2),
                nn.SiLU(),
                nn.Dropout(dropout),
            )
            for _ in range(members)
        )
        self.heads = nn.ModuleList(nn.Linear(hidden2, 2) for _ in range(members))
        self._scoring_cache = None
        self.register_load_state_dict_post_hook(self._drop_scoring_cache)

    def fit_preprocessing(self, X: np.ndarray) -> None:
        """Log-transform heavy-tailed non-negative columns, then standardise (train only)."""
        X = np.asarray(X, dtype=np.float64)
        mask = (X.min(0) >= 0) & (X.max(0) > 5)
        Z = np.where(mask, np.log1p(np.maximum(X, 0)), X)
        self.log_mask.copy_(torch.as_tensor(mask))
        self.mean.copy_(torch.as_tensor(Z.mean(0), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.maximum(Z.std(0), 1e-3), dtype=torch.float32))

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.where(self.log_mask, torch.log1p(torch.clamp(x, min=0)), x)
        z = (x - self.mean) / self.std
        if self.soft_clip > 0:
            z = self.soft_clip * torch.tanh(z / self.soft_clip)
        return z

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Uncalibrated logits (members, rows) of the head each row's ``is_claim`` selects."""
        z = self._prep(x)
        head = (x[:, self.claim_col] > 0.5).long()[:, None]
        if not self.training and not torch.is_grad_enabled():
            return self._scoring_member_logits(z, head)
        return torch.stack(
            [h(t(z)).gather(1, head)[:, 0] for t, h in zip(self.trunks, self.heads, strict=True)]
        )

    def _scoring_member_logits(self, z: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        """:meth:`member_logits` without autograd or dropout, in fewer kernel calls.

        The members' first layers read the same input, so they run as one matrix
        product with their weights stacked row-wise: each output is the same dot
        product over the same inputs (with torch's CPU kernels the logits equalled the
        per-member modules' bit for bit at every batch size tried, where a batched
        ``bmm`` over all layers rounded differently). The rest calls the layers'
        functions directly: for one request the module calls cost more than the
        arithmetic.
        """
        w1, b1, members = self._scoring_weights()
        hidden = len(b1) // len(members)
        a = F.silu(F.linear(z, w1, b1))
        out = [
            F.linear(F.silu(F.linear(a[:, k * hidden : (k + 1) * hidden], w2, b2)), w3, b3)
            for k, (w2, b2, w3, b3) in enumerate(members)
        ]
        logits = torch.stack(out)  # (members, rows, heads)
        return logits.gather(2, head[None].expand(len(out), -1, -1))[..., 0]

    def _scoring_weights(self) -> tuple[torch.Tensor, torch.Tensor, list[tuple]]:
        """The members' first-layer weights and biases stacked, and per member its
        second-layer and head weights and biases.

        Kept between calls while every parameter keeps its storage and version (an
        optimiser step or ``load_state_dict`` writes into a parameter and bumps its
        version, so the stack is rebuilt); ``load_state_dict(assign=True)``, which puts
        new parameters in place, drops it through a hook.
        """
        cached = getattr(self, "_scoring_cache", None)
        if cached is not None and cached[0] == _versions(cached[1]):
            return cached[2]
        firsts, members, params = [], [], []
        for trunk, head in zip(self.trunks, self.heads, strict=True):
            first, _, _, second, _, _ = trunk
            firsts.append(first)
            members.append((second.weight, second.bias, head.weight, head.bias))
            params += [first.weight, first.bias, *members[-1]]
        with torch.no_grad():
            w1 = torch.cat([f.weight for f in firsts]).contiguous()
            b1 = torch.cat([f.bias for f in firsts]).contiguous()
        weights = (w1, b1, members)
        self._scoring_cache = (_versions(params), params, weights)
        return weights

    def _drop_scoring_cache(self, *_) -> None:
        self._scoring_cache = None

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Uncalibrated logit: the members' mean."""
        return self.member_logits(x).mean(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Calibrated probability per row."""
        z = self.logits(x)
        head = (x[:, self.claim_col] > 0.5).long()
        return torch.sigmoid(self.cal_a[head] * z + self.cal_b[head])


def _versions(params: list[torch.Tensor]) -> tuple:
    """Storage and in-place version of each tensor: changes when any is written."""
    return tuple((p.data_ptr(), p._version) for p in params)
