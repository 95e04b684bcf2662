"""Health of text attributions: saliency on a model that mean-pools token embeddings gives
every token of a text the same value, which the run must say rather than rank ties."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from tiny_text import PAD, VOCAB, corpus, feed, text_explainer

from auditor.health import scan_attributions, uniform_warnings
from auditor.results import ExplainerResult


class MeanPool(nn.Module):
    """Embedding -> masked mean -> Linear -> ReLU -> Linear: one gradient for all tokens."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(len(VOCAB), 8, padding_idx=PAD)
        self.hidden = nn.Linear(8, 8)
        self.relu = nn.ReLU()
        self.head = nn.Linear(8, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embedding(input_ids) * mask).sum(1) / mask.sum(1)
        return self.head(self.relu(self.hidden(pooled)))


def warnings_for(name: str, model: nn.Module, tmp_path: Path) -> list:
    ids, _, _ = corpus(32, seed=11)
    attributions = text_explainer(name, feed(model)).explain(ids, torch.zeros(32, dtype=torch.long))
    path = tmp_path / f"{name}.npy"
    np.save(path, attributions.numpy())
    result = ExplainerResult(id=name, type=name, scope="local", status="ok")
    return uniform_warnings(result, scan_attributions(path, "text"))


def test_saliency_on_a_mean_pool_model_is_flagged(tmp_path: Path) -> None:
    found = warnings_for("saliency", MeanPool().eval(), tmp_path)
    assert [w.code for w in found] == ["attributions_uniform"]
    assert "every token of a text gets the same attribution in 100% of the samples" in (
        found[0].message
    )


def test_integrated_gradients_on_the_same_model_is_not_flagged(tmp_path: Path) -> None:
    assert warnings_for("integrated_gradients", MeanPool().eval(), tmp_path) == []
