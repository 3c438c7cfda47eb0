"""The recommender's networks: a SASRec-style causal transformer and a repeat head.

``SASRec`` embeds each event as item + event type + time gap since the previous event +
position, runs causal self-attention blocks, and scores every catalogue item against the
hidden state with the (tied) item embeddings, so one matrix product gives full-softmax
logits. A "query gap" embedding (time from the last event to the decision moment) is
added to the hidden state before scoring, which lets the sequence model know how long
ago the user last shopped.

``RepeatHead`` is the replenishment component: a small MLP over per-(user, item)
repeat features (count, recency, due ratio from learned inter-purchase intervals,
subscription, recent views) whose output is added to the transformer logit of items
already in the history.
"""

from __future__ import annotations

import torch
from torch import nn

from ppx.features.recs import N_GAP_BUCKETS, TYPE_CODES


class SASRec(nn.Module):
    """Causal self-attention over the last ``max_len`` events (left-padded with 0)."""

    def __init__(
        self,
        n_items: int,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        max_len: int = 50,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.n_items = n_items
        self.max_len = max_len
        self.n_heads = n_heads
        self.item_emb = nn.Embedding(n_items + 1, d_model, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, d_model)
        self.type_emb = nn.Embedding(len(TYPE_CODES) + 1, d_model, padding_idx=0)
        self.gap_emb = nn.Embedding(N_GAP_BUCKETS, d_model, padding_idx=0)
        self.query_gap_emb = nn.Embedding(N_GAP_BUCKETS, d_model, padding_idx=0)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_feedforward=d_model * 2,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        # Small initial embeddings everywhere: with PyTorch's default N(0, 1) the
        # position/type/gap embeddings would drown the (sqrt(d)-scaled) item embedding.
        for emb in (self.item_emb, self.pos_emb, self.type_emb, self.gap_emb, self.query_gap_emb):
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            for emb in (self.item_emb, self.type_emb, self.gap_emb, self.query_gap_emb):
                emb.weight[0].zero_()

    def _mask(self, items: torch.Tensor) -> torch.Tensor:
        """Causal mask that also hides padding keys (a position always sees itself)."""
        B, L = items.shape
        causal = torch.ones(L, L, dtype=torch.bool, device=items.device).tril()
        valid = items > 0
        if bool(valid.all()):
            # No padding (e.g. one user at serving time): the plain causal mask will do.
            return torch.zeros(L, L).masked_fill_(~causal, float("-inf"))
        allowed = causal[None] & (valid[:, None, :] | torch.eye(L, dtype=torch.bool)[None])
        mask = torch.zeros(B, L, L)
        mask.masked_fill_(~allowed, float("-inf"))
        return mask.repeat_interleave(self.n_heads, dim=0)

    def forward(
        self,
        items: torch.Tensor,
        types: torch.Tensor,
        gaps: torch.Tensor,
        query_gaps: torch.Tensor,
    ) -> torch.Tensor:
        """Hidden state at every position, ``[B, L, d]`` (zeros at padding)."""
        L = items.shape[1]
        pos = torch.arange(self.max_len - L, self.max_len, device=items.device)
        x = self.item_emb(items) * (self.item_emb.embedding_dim**0.5)
        x = x + self.pos_emb(pos)[None] + self.type_emb(types) + self.gap_emb(gaps)
        valid = (items > 0).unsqueeze(-1)
        x = self.drop(x) * valid
        h = self.encoder(x, mask=self._mask(items))
        h = self.norm(h) + self.query_gap_emb(query_gaps)
        return h * valid

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Full-catalogue scores; column 0 (padding) is never a candidate."""
        out = h @ self.item_emb.weight.T
        out[..., 0] = float("-inf")
        return out


class SASRecEnsemble(nn.Module):
    """Several :class:`SASRec` networks scored as one: the average of their logits.

    ``forward`` concatenates the members' hidden states (each divided by the number of
    members) and ``logits`` sums each member's scores of its own slice, so the result is
    exactly the mean of the members' logits and code written for one network works.
    """

    def __init__(self, nets: list[SASRec]):
        super().__init__()
        if not nets:
            raise ValueError("nets: need at least one network")
        self.nets = nn.ModuleList(nets)
        self.max_len = nets[0].max_len
        self.n_items = nets[0].n_items

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat([net(*inputs) for net in self.nets], dim=-1) / len(self.nets)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        parts = torch.split(h, [net.item_emb.embedding_dim for net in self.nets], dim=-1)
        return sum(net.logits(p) for net, p in zip(self.nets, parts, strict=True))


class RepeatHead(nn.Module):
    """Replenishment component: repeat features -> additive logit for history items."""

    def __init__(self, n_features: int, hidden: int = 32):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(n_features + 1, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, 1),
        )
        #: weight of the transformer logit in the final score (learned with the head)
        self.seq_scale = nn.Parameter(torch.ones(()))

    def forward(self, feats: torch.Tensor, seq_logit: torch.Tensor) -> torch.Tensor:
        """Additive boost for each (user, history item) row."""
        return self.mlp(torch.cat([feats, seq_logit.unsqueeze(-1)], dim=-1)).squeeze(-1)
