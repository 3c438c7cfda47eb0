"""Churn logits for inference without module calls, bit for bit the modules' own.

A serving batch holds one to eight rows, and scoring them through the
:class:`~ppx.models.churn.network.ChurnNet` modules spends most of its time in Python:
about twenty module calls per member (one per embedding, each with its add) and
autograd bookkeeping. :class:`MemberScorer` runs one member as a few array operations:

* the operations whose floating-point result depends on the kernel - the matrix
  products and SiLU - stay torch's own functions (``F.linear``, ``F.silu``) on the same
  shapes, dtypes and memory layout as in the modules, so they return the same bits;
* the rest is exact in any implementation: embedding look-ups and the concatenation
  are copies (numpy indexing into the tables, which share the parameters' memory), and
  the adds are single float32 additions in the modules' order, which IEEE 754 rounds
  the same way in numpy as in torch.

Only the ``mlp`` deep part and wide-only (logistic) members have such a shortcut;
:func:`member_scorers` returns None for anything else (TabM), and the caller keeps the
modules. ``tests/models/churn/test_serving_path.py`` checks the shortcut against the
modules on every row of a world, in batches of one to eight and all at once.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ppx.models.churn.network import ChurnNet


class MemberScorer:
    """One member's logits, ``(rows, outputs)`` float32, from the encoder's arrays.

    The tables are views of the member's parameters (no copies), so an in-place update
    of the weights (an optimiser step, ``load_state_dict``) reaches the scorer; a
    parameter replaced by another object (``load_state_dict(assign=True)``) does not:
    build a new scorer then.
    """

    def __init__(self, net: ChurnNet):
        self.wide_weight = net.wide_num.weight
        self.wide_bias = net.wide_num.bias
        # Categorical columns first, then the bin codes: the order of x_cat's columns
        # and of the modules' adds.
        self.wide_tables = [_table(e) for e in (*net.wide_cat, *net.wide_bins)]
        self.deep_tables = [_table(e) for e in net.embs] if net.depth > 0 else []
        self.deep_layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        if net.depth > 0:
            self.deep_layers = [(m.weight, m.bias) for m in net.deep if isinstance(m, nn.Linear)]

    def logits(self, xn: np.ndarray, xc: np.ndarray) -> np.ndarray:
        """``ChurnNet.forward`` of an ``mlp`` or wide-only member, in eval mode."""
        with torch.no_grad():
            z = F.linear(torch.from_numpy(xn), self.wide_weight, self.wide_bias).numpy()
            for j, table in enumerate(self.wide_tables):
                z = z + table[xc[:, j]]
            if not self.deep_layers:
                return z
            parts = [xn, *(table[xc[:, j]] for j, table in enumerate(self.deep_tables))]
            h = torch.from_numpy(np.concatenate(parts, axis=1))
            last = len(self.deep_layers) - 1
            for i, (w, b) in enumerate(self.deep_layers):
                h = F.linear(h, w, b)
                if i < last:  # SiLU after each hidden layer; dropout is off in eval
                    h = F.silu(h)
            # the wide logits plus the deep ones (the mean over one member is the value)
            return z + h.numpy()


def _table(e: nn.Embedding) -> np.ndarray:
    return e.weight.detach().numpy()


def member_scorers(nets: list[ChurnNet]) -> list[MemberScorer] | None:
    """A scorer per member, or None when any member has no shortcut (the TabM deep part)."""
    if any(net.depth > 0 and net.arch != "mlp" for net in nets):
        return None
    if any(net.training for net in nets):  # dropout on: only the modules do that
        return None
    return [MemberScorer(net) for net in nets]


def weighted_logits(
    scorers: list[MemberScorer], weights: list[float], xn: np.ndarray, xc: np.ndarray
) -> np.ndarray:
    """The members' weighted logit sum, float64, as ``ChurnModel`` defines it.

    The weighting itself stays in torch (``sum(w * logits)`` as the module path does
    it), so a Python float times a float32 tensor rounds exactly as it did there.
    """
    with torch.no_grad():
        out = sum(
            wi * torch.from_numpy(s.logits(xn, xc)) for wi, s in zip(weights, scorers, strict=True)
        )
    return out.numpy().astype(float)
