"""Train the example models and save their weights to ``models/`` (``python -m examples.train``).

Deterministic on CPU: every seed is fixed, torch runs deterministic algorithms, and the
data come from ``auditor.data.sklearn_source.load_arrays`` with the same split and scaling
that the ``sklearn`` data source uses when the models are audited. Weights are written only
when the test accuracy reaches ``MIN_ACCURACY``, as safetensors, atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from auditor.data.sklearn_source import load_arrays
from examples.models import DigitsCNN, TabularMLP

MIN_ACCURACY = 0.95
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
# The split the audits use too (the sklearn source's defaults).
TEST_SIZE = 0.25
SPLIT_SEED = 0


@dataclass(frozen=True)
class Recipe:
    """How to train one example model."""

    dataset: str
    filename: str
    build: Callable[[], nn.Module]
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0


RECIPES: dict[str, Recipe] = {
    "digits": Recipe(
        dataset="digits",
        filename="digits_cnn.safetensors",
        build=lambda: DigitsCNN(num_classes=10),
        epochs=30,
        batch_size=64,
        lr=2e-3,
    ),
    "breast_cancer": Recipe(
        dataset="breast_cancer",
        filename="breast_cancer_mlp.safetensors",
        build=lambda: TabularMLP(in_features=30, hidden=(32, 16), num_classes=2),
        epochs=100,
        batch_size=64,
        lr=1e-3,
    ),
}


def seed_everything(seed: int) -> None:
    """Fix Python's, NumPy's and torch's generators and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe, seed: int) -> None:
    """Minibatch Adam on cross-entropy; the batch order comes from a seeded generator."""
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(recipe.epochs):
        for batch in torch.randperm(len(y), generator=order).split(recipe.batch_size):
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of samples whose arg-max logit is the label."""
    model.eval()
    return float((model(x).argmax(dim=1) == y).float().mean())


def train(recipe: Recipe, seed: int = 0) -> tuple[nn.Module, float]:
    """Train on the train split and return the model (eval mode) and its test accuracy."""
    seed_everything(seed)
    x_train, y_train, _ = load_arrays(recipe.dataset, "train", TEST_SIZE, SPLIT_SEED)
    x_test, y_test, _ = load_arrays(recipe.dataset, "test", TEST_SIZE, SPLIT_SEED)
    model = recipe.build()
    fit(model, torch.from_numpy(x_train), torch.from_numpy(y_train), recipe, seed)
    return model, accuracy(model, torch.from_numpy(x_test), torch.from_numpy(y_test))


def save_atomic(model: nn.Module, path: Path, metadata: dict[str, str]) -> None:
    """Write the state dict as safetensors to a temp file beside ``path``, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # safetensors keeps metadata in a hash map whose order changes from run to run; one key
    # holding sorted JSON keeps the file byte-identical, so its sha256 is reproducible.
    header = {"training": json.dumps(metadata, sort_keys=True)}
    try:
        save_file(state, str(tmp), metadata=header)
        # safetensors creates the file 0600; committed weights must be readable (0644).
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def refuse_inaccurate(label: str, acc: float, minimum: float, seconds: float, path: Path) -> bool:
    """True (and why, on stderr) when ``acc`` is below ``minimum``: the weights at ``path``
    are then left as they are."""
    if acc >= minimum:
        return False
    print(
        f"{label} accuracy {acc:.4f} < {minimum} after {seconds:.1f}s; not saving {path}",
        file=sys.stderr,
    )
    return True


def main(argv: list[str] | None = None) -> int:
    """Train every recipe (or those named), print test accuracy, save those good enough."""
    parser = argparse.ArgumentParser(prog="python -m examples.train", description=__doc__)
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="folder for the weights")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--only", choices=sorted(RECIPES), action="append", help="train only these")
    args = parser.parse_args(argv)

    failed = []
    for key in args.only or list(RECIPES):
        recipe = RECIPES[key]
        start = time.perf_counter()
        model, acc = train(recipe, seed=args.seed)
        seconds = time.perf_counter() - start
        path = args.out / recipe.filename
        if refuse_inaccurate(f"{key}: test", acc, MIN_ACCURACY, seconds, path):
            failed.append(key)
            continue
        metadata = {
            "dataset": recipe.dataset,
            "test_size": str(TEST_SIZE),
            "split_seed": str(SPLIT_SEED),
            "seed": str(args.seed),
            "test_accuracy": f"{acc:.4f}",
        }
        save_atomic(model, path, metadata)
        print(f"{key}: test accuracy {acc:.4f} in {seconds:.1f}s -> {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
