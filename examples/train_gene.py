"""Train the example gene-expression MLP (``python -m examples.train_gene``).

Generates the planted wide table (``examples.gene_expression``: ``TRAIN_SIZE`` samples to
train on, ``AUDIT_SIZE`` other samples that are audited), trains ``GeneMLP`` on CPU with every
seed fixed, deterministic kernels and one thread, and, when its accuracy on the audit samples
reaches ``MIN_ACCURACY``, writes atomically:

- ``models/gene_mlp.safetensors`` (the weights and the standardization statistics),
- ``data/gene_expression.csv`` (the audit samples: 500 genes and ``label``),
- ``data/gene_pathways.json`` (the pathway groups, ``{group: [genes]}``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

from examples.gene_expression import (
    GeneMLP,
    csv_text,
    generate,
    make_world,
    pathways_json,
    tensors,
    write_text,
)
from examples.train import accuracy, refuse_inaccurate, save_atomic, seed_everything
from examples.train_text import one_thread

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = "gene_mlp.safetensors"
CSV = "gene_expression.csv"
GROUPS = "gene_pathways.json"
TRAIN_SIZE = 3_000
AUDIT_SIZE = 150
TRAIN_SEED = 0  # data seed of the train samples
AUDIT_SEED = 1  # data seed of the audited samples
MIN_ACCURACY = 0.9
EPOCHS = 30
BATCH_SIZE = 64
LR = 1e-3
WEIGHT_DECAY = 1e-2


def fit(model: GeneMLP, x: torch.Tensor, y: torch.Tensor, seed: int) -> None:
    """Minibatch AdamW on cross-entropy; the batch order comes from a seeded generator."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(y), generator=order).split(BATCH_SIZE):
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()


def main(argv: list[str] | None = None) -> int:
    """Generate, train, check the audit accuracy, then write the weights, CSV and groups."""
    parser = argparse.ArgumentParser(prog="python -m examples.train_gene", description=__doc__)
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="weights folder")
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="folder for the data")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    world = make_world()
    train_samples = generate(TRAIN_SIZE, TRAIN_SEED, world)
    audit_samples = generate(AUDIT_SIZE, AUDIT_SEED, world)
    x_train, y_train = tensors(train_samples)
    x_audit, y_audit = tensors(audit_samples)
    seed_everything(args.seed)
    model = GeneMLP()
    model.center.copy_(x_train.mean(dim=0))
    model.scale.copy_(x_train.std(dim=0))
    with one_thread():
        fit(model, x_train, y_train, args.seed)
        acc = accuracy(model, x_audit, y_audit)
    seconds = time.perf_counter() - start
    weights = args.models / WEIGHTS
    if refuse_inaccurate("gene: audit", acc, MIN_ACCURACY, seconds, weights):
        return 1
    metadata = {
        "data": "examples.gene_expression (generated)",
        "train": f"{TRAIN_SIZE} samples, seed {TRAIN_SEED}",
        "audit": f"{AUDIT_SIZE} samples, seed {AUDIT_SEED}",
        "seed": str(args.seed),
        "test_accuracy": f"{acc:.4f}",
    }
    save_atomic(model, weights, metadata)
    write_text(csv_text(audit_samples, world), args.data / CSV)
    write_text(pathways_json(world), args.data / GROUPS)
    print(
        f"gene: audit accuracy {acc:.4f} in {seconds:.1f}s -> {weights}, "
        f"{args.data / CSV}, {args.data / GROUPS}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
