"""A planted-token text corpus and a small text classifier trained on it, for tests.

Every text is 4-12 distractor words with exactly one planted word at a random position;
the planted word alone decides the label (``GOOD`` words: class 1, ``BAD`` words: class 0).
The model embeds each token, passes it through its own ``Linear -> ReLU`` (so a token's
gradient depends on the token), mean-pools over the attention mask and classifies.
Trained here, deterministically, in about a second.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
from torch import nn

from auditor.explainers.base import ExplainContext, Explainer
from auditor.modalities.text import EmbeddingSpace, Feed, TextFeed, removed

SPECIALS = ["[PAD]", "[UNK]", "[MASK]"]
PAD, UNK, MASK = 0, 1, 2
DISTRACTORS = [f"w{i}" for i in range(40)]
GOOD = ["excellent", "superb", "wonderful"]
BAD = ["awful", "terrible", "dreadful"]
VOCAB = SPECIALS + DISTRACTORS + GOOD + BAD
ID = {token: i for i, token in enumerate(VOCAB)}
MAX_LENGTH = 14


class TokenMLP(nn.Module):
    """Embedding -> per-token Linear+ReLU -> masked mean -> Linear."""

    def __init__(self, vocab_size: int = len(VOCAB), dim: int = 16, classes: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        self.token = nn.Linear(dim, dim)
        self.relu = nn.ReLU()
        self.head = nn.Linear(dim, classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.token(self.embedding(input_ids)))
        mask = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.head((h * mask).sum(1) / mask.sum(1).clamp_min(1.0))


def corpus(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids ``(n, MAX_LENGTH)`` right-padded, labels, position of the planted token)."""
    rng = np.random.default_rng(seed)
    ids = np.full((n, MAX_LENGTH), PAD, dtype=np.int64)
    labels = rng.integers(0, 2, n)
    planted = np.zeros(n, dtype=np.int64)
    for i in range(n):
        length = int(rng.integers(5, 13))
        words = list(rng.choice(DISTRACTORS, size=length - 1))
        where = int(rng.integers(0, length))
        words.insert(where, str(rng.choice(GOOD if labels[i] == 1 else BAD)))
        ids[i, :length] = [ID[w] for w in words]
        planted[i] = where
    return torch.as_tensor(ids), torch.as_tensor(labels), torch.as_tensor(planted)


@cache
def trained() -> TokenMLP:
    torch.manual_seed(0)
    model = TokenMLP()
    ids, labels, _ = corpus(800, seed=1)
    mask = (ids != PAD).long()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    with torch.enable_grad():
        for _ in range(150):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(ids, mask), labels)
            loss.backward()
            optimizer.step()
    model.zero_grad(set_to_none=True)
    return model.eval()


def feed(model: nn.Module | None = None) -> TextFeed:
    """The trained model as the run calls it: ids in, ``(ids, ids != pad)`` to the model."""
    return TextFeed(model or trained(), Feed(("input_ids", "attention_mask")), PAD)


def text_context(seed: int = 0, remove_id: int = MASK) -> ExplainContext:
    return ExplainContext(
        modality="text",
        input_shape=(MAX_LENGTH,),
        seed=seed,
        feature_names=list(VOCAB),
        embedding=EmbeddingSpace("embedding", PAD, remove_id),
        removed=lambda x: removed(x, PAD, remove_id),
    )


def text_explainer(
    name: str, model: nn.Module, params: dict | None = None, seed: int = 0
) -> Explainer:
    from auditor import registries

    cls = registries.explainers.get(name)
    return cls(model, cls.Params.model_validate(params or {}), text_context(seed))
