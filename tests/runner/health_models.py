"""Tiny models whose audits deserve health warnings (for tests/runner/test_health.py)."""

from __future__ import annotations

import torch
from torch import nn


class ConstantModel(nn.Module):
    """Ignores its inputs: every sample gets the logits (1, 0), so class 0 always wins.

    Its input gradient is exactly zero (the weights are zero), so gradient explainers
    return all-zero maps.
    """

    def __init__(self, in_features: int = 30) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 2)
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.copy_(torch.tensor([1.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class IdColumnsModel(nn.Module):
    """A recommender-style model: columns 0 and 1 are ids cast to indices (``.long()``)
    into embeddings, the rest are dense features. No gradient flows back to the ids."""

    def __init__(self, n_users: int = 10, n_items: int = 5, n_dense: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.user = nn.Embedding(n_users, 4)
        self.item = nn.Embedding(n_items, 4)
        self.head = nn.Linear(8 + n_dense, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        user = self.user(x[:, 0].long())
        item = self.item(x[:, 1].long())
        return self.head(torch.cat([user, item, x[:, 2:]], dim=1))


class MeanOfColumnsModel(nn.Module):
    """Class 1 when the mean of all columns is positive: every column counts a little, so
    shuffling any one column alone changes no prediction (a gene-expression table)."""

    def __init__(self, in_features: int = 200) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 2)
        with torch.no_grad():
            self.linear.weight.copy_(
                torch.stack([-torch.ones(in_features), torch.ones(in_features)]) / in_features
            )
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)
