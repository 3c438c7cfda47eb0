"""The fraud network: a shared trunk and two heads (return fraud, claim fraud).

Returns and claims share most evidence about the account (history, linkage) but differ
in the transaction evidence, so one trunk learns the account representation from both
and each head reads its own decision. Preprocessing (log of heavy-tailed counts,
standardisation) and per-head Platt calibration are buffers of the module, so a saved
state dict is the whole scoring function.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

HEADS = ("return", "claim")


class FraudNet(nn.Module):
    """Features -> calibrated fraud probability of the head the row's kind selects.

    Args:
        n_features: width of the feature vector.
        claim_col: index of the ``is_claim`` feature (selects the head).
        hidden, hidden2: trunk widths.
        dropout: dropout after each trunk layer.
    """

    def __init__(
        self, n_features: int, claim_col: int, hidden: int = 128, hidden2: int = 64, dropout=0.15
    ):
        super().__init__()
        self.claim_col = claim_col
        self.register_buffer("log_mask", torch.zeros(n_features, dtype=torch.bool))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        # Platt scaling per head: p = sigmoid(a * logit + b); identity until calibrated.
        self.register_buffer("cal_a", torch.ones(2))
        self.register_buffer("cal_b", torch.zeros(2))
        self.trunk = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden2),
            nn.SiLU(),
            nn.Dropout(dropout),
        )
        self.heads = nn.Linear(hidden2, 2)

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
        return (x - self.mean) / self.std

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Uncalibrated logit of the head selected by each row's ``is_claim``."""
        both = self.heads(self.trunk(self._prep(x)))
        head = (x[:, self.claim_col] > 0.5).long()
        return both.gather(1, head[:, None])[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Calibrated probability per row."""
        z = self.logits(x)
        head = (x[:, self.claim_col] > 0.5).long()
        return torch.sigmoid(self.cal_a[head] * z + self.cal_b[head])
