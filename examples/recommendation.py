"""GENERATED click data with a planted preference, and the example recommendation model.

No interaction log is downloaded; this module generates one. The world is fixed
(``WORLD_SEED``): ``N_USERS`` users ``u000..`` each belong to a hidden segment, ``N_ITEMS``
items ``i000..`` each belong to one of ``CATEGORIES`` (segment ``s`` prefers category
``CATEGORIES[s]``). One interaction shows an item to a user at a price, an item age and an
hour, and the click is drawn with probability ``sigmoid(logit)`` where

    logit = MATCH_WEIGHT * (match - 0.5) - PRICE_WEIGHT * (price - PRICE_MID) / PRICE_SCALE

``match`` is 1 when the item's category is the one the user's segment prefers. So the click
depends on (user segment, item category) and on price (higher price, fewer clicks: a known
monotone effect); ``age_days`` and ``hour`` are pure noise, and ``item_id`` carries no
signal beyond its category. Half of the interactions show an item of the preferred category
(as a recommender would), the other half an item drawn uniformly. These are the planted
truths that attribution tests check, in the spirit of planted-feature benchmarks
(Adebayo et al. 2020, "Debugging Tests for Model Explanations",
https://arxiv.org/abs/2011.05429). Everything is deterministic in the seed (Python's
``random.Random``, whose streams do not change between versions).

The model (``RecommendationModel``) is embedding + MLP: ``forward(user, item, dense)`` with
``nn.Embedding`` layers ``user_emb``, ``item_emb`` and ``category_emb`` so that gradient
explainers can attribute at their outputs (as Captum's layer methods do).
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

N_USERS = 100
N_ITEMS = 200
#: Item categories, in sorted order: a vocabulary built by sorting the values gives each
#: category its index here (the same holds for the zero-padded user and item ids).
CATEGORIES: tuple[str, ...] = ("books", "electronics", "garden", "toys")
CLASSES: tuple[str, ...] = ("no click", "click")
COLUMNS: tuple[str, ...] = (
    "user_id",
    "item_id",
    "item_category",
    "price",
    "age_days",
    "hour",
    "clicked",
)
DENSE: tuple[str, ...] = ("price", "age_days", "hour")
WORLD_SEED = 14
PREFERRED_SHARE = 0.5  # share of interactions that show an item of the preferred category
MATCH_WEIGHT = 5.0
PRICE_WEIGHT = 2.5
PRICE_MIN, PRICE_MAX = 5.0, 100.0
PRICE_MID = (PRICE_MIN + PRICE_MAX) / 2
PRICE_SCALE = (PRICE_MAX - PRICE_MIN) / math.sqrt(12)  # std of the uniform price
MAX_AGE_DAYS = 365


@dataclass(frozen=True)
class World:
    """Who is in which segment and which item is in which category (the hidden truth)."""

    user_segment: tuple[int, ...]  # index into CATEGORIES, per user
    item_category: tuple[int, ...]  # index into CATEGORIES, per item


@dataclass(frozen=True)
class Interaction:
    """One shown item: the logged columns, and the click probability it was drawn with."""

    user: int
    item: int
    category: int
    price: float
    age_days: int
    hour: int
    clicked: int
    probability: float


def user_name(user: int) -> str:
    """``u017`` for user 17 (zero-padded, so sorting names sorts ids)."""
    return f"u{user:03d}"


def item_name(item: int) -> str:
    """``i042`` for item 42."""
    return f"i{item:03d}"


def make_world(seed: int = WORLD_SEED) -> World:
    """Balanced segments and categories, shuffled by ``seed``."""
    rng = random.Random(seed)
    k = len(CATEGORIES)
    segments = [u % k for u in range(N_USERS)]
    categories = [i % k for i in range(N_ITEMS)]
    rng.shuffle(segments)
    rng.shuffle(categories)
    return World(tuple(segments), tuple(categories))


def click_logit(match: bool, price: float) -> float:
    """The planted click log-odds: the preference match and a falling price effect."""
    return MATCH_WEIGHT * (float(match) - 0.5) - PRICE_WEIGHT * (price - PRICE_MID) / PRICE_SCALE


def generate(n: int, seed: int, world: World | None = None) -> list[Interaction]:
    """``n`` interactions, the same for the same ``n``, ``seed`` and world."""
    if n < 0:
        raise ValueError(f"need n >= 0, got n={n}")
    world = world or make_world()
    by_category: dict[int, list[int]] = {c: [] for c in range(len(CATEGORIES))}
    for item, category in enumerate(world.item_category):
        by_category[category].append(item)
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        user = rng.randrange(N_USERS)
        segment = world.user_segment[user]
        if rng.random() < PREFERRED_SHARE:
            item = rng.choice(by_category[segment])
        else:
            item = rng.randrange(N_ITEMS)
        category = world.item_category[item]
        price = round(rng.uniform(PRICE_MIN, PRICE_MAX), 2)
        age_days = rng.randint(0, MAX_AGE_DAYS)
        hour = rng.randrange(24)
        probability = 1.0 / (1.0 + math.exp(-click_logit(category == segment, price)))
        clicked = int(rng.random() < probability)
        rows.append(Interaction(user, item, category, price, age_days, hour, clicked, probability))
    return rows


def bench_interactions(n: int = 10_000, seed: int = 2) -> list[Interaction]:
    """The larger variant for the benchmark (not committed): ``n`` interactions."""
    return generate(n, seed)


def csv_text(rows: Sequence[Interaction]) -> str:
    """The rows as CSV text (``COLUMNS`` header, names for ids and categories, ``\\n``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(
            [
                user_name(r.user),
                item_name(r.item),
                CATEGORIES[r.category],
                f"{r.price:.2f}",
                r.age_days,
                r.hour,
                r.clicked,
            ]
        )
    return buffer.getvalue()


def write_csv(rows: Sequence[Interaction], path: Path) -> None:
    """Write ``csv_text(rows)`` to ``path`` atomically (mode 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(csv_text(rows), encoding="utf-8", newline="")
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def tensors(rows: Sequence[Interaction]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The model's inputs and the labels: ``user (N,)`` and ``item (N, 2)`` int64 ids
    (item id, category id), ``dense (N, 3)`` float32 (price, age_days, hour), labels ``(N,)``.
    """
    user = torch.tensor([r.user for r in rows], dtype=torch.long)
    item = torch.tensor([[r.item, r.category] for r in rows], dtype=torch.long).reshape(-1, 2)
    dense = torch.tensor(
        [[r.price, r.age_days, r.hour] for r in rows], dtype=torch.float32
    ).reshape(-1, len(DENSE))
    labels = torch.tensor([r.clicked for r in rows], dtype=torch.long)
    return {"user": user, "item": item, "dense": dense}, labels


class RecommendationModel(nn.Module):
    """User, item and category embeddings and the dense features, into an MLP.

    Shape: ``user (N,)`` int64 user ids, ``item (N, 2)`` int64 (item id, category id),
    ``dense (N, 3)`` float32 (price, age_days, hour, in their own units) -> logits
    ``(N, num_classes)``. The dense features are standardized inside with the training
    statistics (buffers ``dense_mean`` and ``dense_std``, saved with the weights). Every
    ReLU is its own module (see ``examples.models``).
    """

    def __init__(
        self,
        n_users: int = N_USERS,
        n_items: int = N_ITEMS,
        n_categories: int = len(CATEGORIES),
        n_dense: int = len(DENSE),
        dim: int = 8,
        hidden: int = 32,
        num_classes: int = 2,
    ) -> None:
        super().__init__()
        sizes = (n_users, n_items, n_categories, n_dense, dim, hidden, num_classes)
        if any(int(s) < 1 for s in sizes):
            raise ValueError(
                f"sizes must be positive, got n_users={n_users}, n_items={n_items}, "
                f"n_categories={n_categories}, n_dense={n_dense}, dim={dim}, "
                f"hidden={hidden}, num_classes={num_classes}"
            )
        self.user_emb = nn.Embedding(n_users, dim)
        self.item_emb = nn.Embedding(n_items, dim)
        self.category_emb = nn.Embedding(n_categories, dim)
        self.register_buffer("dense_mean", torch.zeros(n_dense))
        self.register_buffer("dense_std", torch.ones(n_dense))
        self.mlp = nn.Sequential(
            nn.Linear(3 * dim + n_dense, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, user: torch.Tensor, item: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        scaled = (dense - self.dense_mean) / self.dense_std
        features = [
            self.user_emb(user),
            self.item_emb(item[:, 0]),
            self.category_emb(item[:, 1]),
            scaled,
        ]
        return self.mlp(torch.cat(features, dim=1))
