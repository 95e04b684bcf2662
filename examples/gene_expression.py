"""A GENERATED gene-expression-like wide table with planted marker genes, and its MLP.

No expression data set ships with a registry package under a licence we checked, so this
module generates one. The world is fixed (``WORLD_SEED``): ``N_GENES`` genes ``GENE0001..``
are shuffled into ``N_PATHWAYS`` pathway groups (``pathway_a``, ``pathway_b``, ...) of
``PATHWAY_SIZE`` genes; each gene has a mean log2 expression and a spread. ``N_MARKERS``
genes of ``pathway_a`` are the markers. One sample is log2 expression values (log-normal
expression, as after a log transform):

    z_g = sqrt(RHO) * f_p + sqrt(1 - RHO) * e_g,      expression_g = mean_g + spread_g * z_g

with one activity ``f_p ~ N(0, 1)`` per pathway and sample (genes of one pathway are
correlated) and gene noise ``e_g ~ N(0, 1)``. The label is ``case`` when the mean of the
markers' ``z`` is above 0, else ``control``: it depends on the markers alone, all in
``pathway_a``, each of them with a small share of the signal (no single gene decides),
which is the planted truth: the group ranking should put ``pathway_a`` first. Values are
rounded to 3 decimals; everything is deterministic in the seed (Python's ``random.Random``).

The model (``GeneMLP``) is 500 -> 64 -> 2 with the training statistics inside (buffers), so
it reads the table's own units.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

N_GENES = 500
N_PATHWAYS = 20
PATHWAY_SIZE = N_GENES // N_PATHWAYS
N_MARKERS = 10
PLANTED_PATHWAY = "pathway_a"
CLASSES: tuple[str, ...] = ("control", "case")
LABEL = "label"
WORLD_SEED = 14
RHO = 0.3  # within-pathway correlation of z
MEAN_RANGE = (2.0, 10.0)  # log2 expression means
SPREAD_RANGE = (0.3, 1.2)


@dataclass(frozen=True)
class GeneWorld:
    """Genes, their pathways and markers, and each gene's mean and spread (the truth)."""

    genes: tuple[str, ...]
    pathways: dict[str, tuple[str, ...]]  # group -> genes, in gene order
    markers: tuple[str, ...]  # in pathway_a
    means: tuple[float, ...]
    spreads: tuple[float, ...]

    def pathway_of(self) -> list[int]:
        """Index of every gene's pathway (in ``pathways`` order)."""
        where = {g: k for k, genes in enumerate(self.pathways.values()) for g in genes}
        return [where[g] for g in self.genes]


@dataclass(frozen=True)
class Sample:
    """One sample: log2 expression per gene (rounded), its label, and the marker score."""

    values: tuple[float, ...]
    label: int
    marker_score: float  # mean z of the markers (the label is score > 0)


def gene_name(index: int) -> str:
    """``GENE0001`` for index 0."""
    return f"GENE{index + 1:04d}"


def pathway_names() -> list[str]:
    """``pathway_a`` .. one name per group."""
    return [f"pathway_{letter}" for letter in string.ascii_lowercase[:N_PATHWAYS]]


def make_world(seed: int = WORLD_SEED) -> GeneWorld:
    """Shuffle the genes into pathways, pick the markers, draw each gene's mean and spread."""
    rng = random.Random(seed)
    genes = [gene_name(i) for i in range(N_GENES)]
    shuffled = genes[:]
    rng.shuffle(shuffled)
    pathways = {
        name: tuple(sorted(shuffled[k * PATHWAY_SIZE : (k + 1) * PATHWAY_SIZE]))
        for k, name in enumerate(pathway_names())
    }
    markers = tuple(sorted(rng.sample(pathways[PLANTED_PATHWAY], N_MARKERS)))
    means = tuple(rng.uniform(*MEAN_RANGE) for _ in genes)
    spreads = tuple(rng.uniform(*SPREAD_RANGE) for _ in genes)
    return GeneWorld(tuple(genes), pathways, markers, means, spreads)


def marker_score(world: GeneWorld, values: Sequence[float]) -> float:
    """Mean z of the marker genes in ``values`` (log2 expression, in gene order)."""
    index = [world.genes.index(g) for g in world.markers]
    zs = [(values[i] - world.means[i]) / world.spreads[i] for i in index]
    return sum(zs) / len(zs)


def generate(n: int, seed: int, world: GeneWorld | None = None) -> list[Sample]:
    """``n`` samples, the same for the same ``n``, ``seed`` and world.

    The label is computed from the rounded values, so it can be recomputed from the CSV.
    """
    if n < 0:
        raise ValueError(f"need n >= 0, got n={n}")
    world = world or make_world()
    pathway = world.pathway_of()
    rng = random.Random(seed)
    a, b = math.sqrt(RHO), math.sqrt(1.0 - RHO)
    samples = []
    for _ in range(n):
        activity = [rng.gauss(0.0, 1.0) for _ in range(N_PATHWAYS)]
        values = tuple(
            round(mean + spread * (a * activity[p] + b * rng.gauss(0.0, 1.0)), 3)
            for mean, spread, p in zip(world.means, world.spreads, pathway, strict=True)
        )
        score = marker_score(world, values)
        samples.append(Sample(values, int(score > 0.0), score))
    return samples


def csv_text(samples: Sequence[Sample], world: GeneWorld | None = None) -> str:
    """Genes as columns (3 decimals) and ``label`` last, as class names; ``\\n`` endings."""
    world = world or make_world()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*world.genes, LABEL])
    for s in samples:
        writer.writerow([*(f"{v:.3f}" for v in s.values), CLASSES[s.label]])
    return buffer.getvalue()


def pathways_json(world: GeneWorld | None = None) -> str:
    """``{group: [genes]}`` as indented JSON with a final newline."""
    world = world or make_world()
    return json.dumps({k: list(v) for k, v in world.pathways.items()}, indent=1) + "\n"


def write_text(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` atomically (mode 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="")
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def tensors(samples: Sequence[Sample]) -> tuple[torch.Tensor, torch.Tensor]:
    """Expression ``(N, N_GENES)`` float32 and labels ``(N,)`` int64."""
    x = torch.tensor([s.values for s in samples], dtype=torch.float32).reshape(-1, N_GENES)
    return x, torch.tensor([s.label for s in samples], dtype=torch.long)


class GeneMLP(nn.Module):
    """Standardize with the training statistics, then ``in_features -> hidden -> classes``.

    Shape: ``(N, in_features)`` float32 log2 expression in the table's units -> logits
    ``(N, num_classes)``. ``center`` and ``scale`` are buffers saved with the weights; the
    layers live in ``self.layers`` (``Linear, ReLU, Linear``; the ReLU its own module).
    """

    def __init__(self, in_features: int = N_GENES, hidden: int = 64, num_classes: int = 2) -> None:
        super().__init__()
        if any(int(n) < 1 for n in (in_features, hidden, num_classes)):
            raise ValueError(
                f"sizes must be positive, got in_features={in_features}, hidden={hidden}, "
                f"num_classes={num_classes}"
            )
        self.register_buffer("center", torch.zeros(in_features))
        self.register_buffer("scale", torch.ones(in_features))
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers((x - self.center) / self.scale)
