"""A one-layer transformer encoder text classifier (random weights) called with keywords."""

from __future__ import annotations

import torch
from torch import nn


class TinyTransformer(nn.Module):
    def __init__(self, vocab: int = 147, dim: int = 16, classes: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.tok = nn.Embedding(vocab, dim, padding_idx=0)
        self.enc = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(dim, 2, 32, dropout=0.0, batch_first=True), 1
        )
        self.out = nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.enc(self.tok(ids), src_key_padding_mask=mask == 0)
        m = mask.unsqueeze(-1).to(h.dtype)
        return self.out((h * m).sum(1) / m.sum(1))
