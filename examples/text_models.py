"""A small example text classifier whose trained weights live in ``models/``.

As in ``examples/models.py``, every activation is its own ``nn.ReLU`` module (never reused,
never in place, never ``F.relu``), so that DeepLIFT's module hooks see each nonlinearity.
Token ids come from ``models/text_tokenizer.json``, whose ``[PAD]`` token has id 0.
"""

from __future__ import annotations

import torch
from torch import nn

PAD_ID = 0


class TextClassifier(nn.Module):
    """Embedding, masked mean over the tokens, then a one-hidden-layer MLP.

    Shape: ``input_ids (N, L)`` int64 and ``attention_mask (N, L)`` (1 = token, 0 = padding;
    ``None`` = every position is a token) -> logits ``(N, num_classes)``. ``embedding`` is the
    layer text attributions are taken at; its ``[PAD]`` row (``padding_idx=0``) is zero and
    receives no gradient, so a pad token is a zero embedding. A sample whose mask is all zero
    pools to the zero vector.
    """

    def __init__(
        self, vocab_size: int, dim: int = 32, hidden: int = 32, num_classes: int = 2
    ) -> None:
        super().__init__()
        if any(int(n) < 1 for n in (vocab_size, dim, hidden, num_classes)):
            raise ValueError(
                f"sizes must be positive, got vocab_size={vocab_size}, dim={dim}, "
                f"hidden={hidden}, num_classes={num_classes}"
            )
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=PAD_ID)
        self.classifier = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        embedded = self.embedding(input_ids)  # (N, L, dim)
        if attention_mask is None:
            pooled = embedded.mean(dim=1)
        else:
            mask = attention_mask.to(embedded.dtype).unsqueeze(-1)  # (N, L, 1)
            pooled = (embedded * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.classifier(pooled)
