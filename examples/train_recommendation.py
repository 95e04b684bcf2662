"""Train the example recommendation model (``python -m examples.train_recommendation``).

Generates the planted click data (``examples.recommendation``: ``TRAIN_SIZE`` interactions to
train on, ``AUDIT_SIZE`` other interactions that are audited), trains
``RecommendationModel`` on CPU with every seed fixed, deterministic kernels and one thread,
and, when its accuracy on the audit interactions reaches ``MIN_ACCURACY`` (the planted
clicks are random: the best possible accuracy is about 0.86), writes atomically:

- ``models/recommendation.safetensors`` (the weights and the dense statistics),
- ``data/interactions.csv`` (the audit interactions, the slice the audit reads).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

from examples.recommendation import RecommendationModel, generate, tensors, write_csv
from examples.train import refuse_inaccurate, save_atomic, seed_everything
from examples.train_text import one_thread

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = "recommendation.safetensors"
CSV = "interactions.csv"
TRAIN_SIZE = 20_000
AUDIT_SIZE = 2_000
TRAIN_SEED = 0  # data seed of the train interactions
AUDIT_SEED = 1  # data seed of the audited interactions
MIN_ACCURACY = 0.8
EPOCHS = 12
BATCH_SIZE = 128
LR = 3e-3
WEIGHT_DECAY = 1e-4


def fit(
    model: RecommendationModel, inputs: dict[str, torch.Tensor], y: torch.Tensor, seed: int
) -> None:
    """Minibatch AdamW on cross-entropy; the batch order comes from a seeded generator."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(y), generator=order).split(BATCH_SIZE):
            optimizer.zero_grad()
            logits = model(**{name: t[batch] for name, t in inputs.items()})
            loss_fn(logits, y[batch]).backward()
            optimizer.step()
    model.eval()


@torch.no_grad()
def scores(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Click probability of every interaction, ``(N,)``."""
    model.eval()
    return model(**inputs).softmax(dim=1)[:, 1]


def auc(score: torch.Tensor, y: torch.Tensor) -> float:
    """Area under the ROC curve: the chance that a click outscores a non-click (ties 1/2)."""
    pos, neg = score[y == 1], score[y == 0]
    greater = (pos[:, None] > neg[None, :]).double().sum()
    ties = (pos[:, None] == neg[None, :]).double().sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def main(argv: list[str] | None = None) -> int:
    """Generate, train, check the audit accuracy, then write the weights and the CSV."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.train_recommendation", description=__doc__
    )
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="weights folder")
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="folder for the csv")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    train_rows = generate(TRAIN_SIZE, TRAIN_SEED)
    audit_rows = generate(AUDIT_SIZE, AUDIT_SEED)
    x_train, y_train = tensors(train_rows)
    x_audit, y_audit = tensors(audit_rows)
    seed_everything(args.seed)
    model = RecommendationModel()
    model.dense_mean.copy_(x_train["dense"].mean(dim=0))
    model.dense_std.copy_(x_train["dense"].std(dim=0))
    with one_thread():
        fit(model, x_train, y_train, args.seed)
        score = scores(model, x_audit)
    acc = float(((score > 0.5).long() == y_audit).float().mean())
    area = auc(score, y_audit)
    seconds = time.perf_counter() - start
    weights = args.models / WEIGHTS
    if refuse_inaccurate("recommendation: audit", acc, MIN_ACCURACY, seconds, weights):
        return 1
    metadata = {
        "data": "examples.recommendation (generated)",
        "train": f"{TRAIN_SIZE} interactions, seed {TRAIN_SEED}",
        "audit": f"{AUDIT_SIZE} interactions, seed {AUDIT_SEED}",
        "seed": str(args.seed),
        "test_accuracy": f"{acc:.4f}",
        "test_auc": f"{area:.4f}",
    }
    save_atomic(model, weights, metadata)
    write_csv(audit_rows, args.data / CSV)
    print(
        f"recommendation: audit accuracy {acc:.4f}, AUC {area:.4f} in {seconds:.1f}s -> "
        f"{weights}, {args.data / CSV}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
