"""A tiny recommender with a planted preference, and interactions to audit it on.

``Rec(user, item, dense)``: ``user`` (N,) ids, ``item`` (N, 2) ids (item_id, item_category),
``dense`` (N, 3) floats. Its weights are set by hand, not trained: the click logit is
``3 * sign(item_id even) + 0.5 * price`` plus small terms of the user and the category
(through ReLUs), so item_id matters most, price second, and a faithful explanation ranks
item_id first. ``interactions`` writes a CSV whose labels follow the model's preference.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch import nn

N_USERS, N_ITEMS, DIM = 8, 10, 4
CATEGORIES = ["books", "games", "music"]


class Rec(nn.Module):
    """user/item/category embeddings + dense features -> a hidden ReLU layer -> 2 logits."""

    def __init__(self, n_items: int = N_ITEMS) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.user_emb = nn.Embedding(N_USERS, DIM)
        self.item_emb = nn.Embedding(n_items, DIM)
        self.cat_emb = nn.Embedding(len(CATEGORIES), DIM)
        self.hidden = nn.Linear(3 * DIM + 3, 8)
        self.out = nn.Linear(8, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            self.item_emb.weight[:, 0] = torch.tensor(
                [3.0 if i % 2 == 0 else -3.0 for i in range(n_items)]
            )
            self.hidden.weight[0, DIM] = 1.0  # item dim 0
            self.hidden.weight[1, DIM] = -1.0
            self.hidden.weight[0, 3 * DIM] = 0.5  # price
            self.hidden.weight[1, 3 * DIM] = -0.5
            self.hidden.bias[:2] = 0.0
            self.out.weight[1, :2] = torch.tensor([1.0, -1.0])
            self.out.weight[0, :2] = torch.tensor([-1.0, 1.0])
        self.eval()

    def forward(self, user: torch.Tensor, item: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        parts = [self.user_emb(user), self.item_emb(item[:, 0]), self.cat_emb(item[:, 1]), dense]
        return self.out(torch.relu(self.hidden(torch.cat(parts, dim=1))))


def interactions(path: Path, n: int = 120, seed: int = 0, **replace: object) -> Path:
    """``n`` rows: user_id (u0..u7), item_id (0..9), item_category (text), price, age_days,
    hour, clicked (1 for even items). ``replace``: ``{"row": r, "column": c, "value": v}``."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        item = int(rng.integers(N_ITEMS))
        rows.append(
            {
                "user_id": f"u{int(rng.integers(N_USERS))}",
                "item_id": str(item),
                "item_category": CATEGORIES[item % 3],
                "price": f"{rng.normal():.4f}",
                "age_days": f"{rng.uniform(0, 30):.2f}",
                "hour": str(int(rng.integers(24))),
                "clicked": str(int(item % 2 == 0)),
            }
        )
    if replace:
        rows[int(replace["row"])][str(replace["column"])] = str(replace["value"])  # type: ignore[call-overload]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


INPUTS = """\
  inputs:
    user: {columns: [user_id], categorical: true}
    item: {columns: [item_id, item_category], categorical: true%s}
    dense: {columns: [price, age_days, hour]}
"""


def spec(folder: Path, explainers: str, *, item_extra: str = "", data_extra: str = "") -> str:
    """A spec body for ``Rec`` on ``folder/interactions.csv``."""
    here = Path(__file__).parent
    return (
        f"model:\n  source: python\n  class: tiny_rec:Rec\n  pythonpath: [{here}]\n"
        f"data:\n  source: csv\n  path: {folder / 'interactions.csv'}\n  label: clicked\n"
        + INPUTS % item_extra
        + data_extra
        + f"explainers:\n{explainers}report:\n  formats: []\n"
    )
