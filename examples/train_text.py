"""Train the example text classifier (``python -m examples.train_text``).

Generates the planted-token corpus (``examples.text_corpus``: ``TRAIN_SIZE`` texts to train
on, ``AUDIT_SIZE`` other texts that are audited), builds a word-level tokenizer on the
train texts with the ``tokenizers`` package, trains ``TextClassifier`` on CPU with every seed
fixed, deterministic kernels and one thread, and, when its accuracy on the audit texts reaches
``MIN_ACCURACY``, writes atomically:

- ``models/text_classifier.safetensors`` (the weights, byte-reproducible),
- ``models/text_tokenizer.json`` (a Hugging Face fast-tokenizer file),
- ``data/text_reviews.csv`` (the audit texts: ``text,label`` with class names).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from torch import nn

from examples.text_corpus import CLASSES, generate, write_csv
from examples.text_models import PAD_ID, TextClassifier
from examples.train import MIN_ACCURACY, refuse_inaccurate, save_atomic, seed_everything

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "models"
DATA_DIR = ROOT / "data"
WEIGHTS = "text_classifier.safetensors"
TOKENIZER = "text_tokenizer.json"
CORPUS = "text_reviews.csv"
TRAIN_SIZE = 3000
AUDIT_SIZE = 1000
TRAIN_SEED = 0  # corpus seed of the train texts
AUDIT_SEED = 1  # corpus seed of the audited texts
MAX_LENGTH = 32  # as the spec's data.max_length
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4, [PAD] = 0
EPOCHS = 8
BATCH_SIZE = 64
LR = 1e-2


def build_tokenizer(texts: Sequence[str]) -> Tokenizer:
    """A WordLevel tokenizer (lowercase, whitespace/punctuation split) over ``texts``' words.

    The vocabulary is the specials, then every word by descending count and alphabetically
    within a count (counted with the tokenizer's own normalizer and pre-tokenizer), so it
    does not depend on hash order. No post-processor, padding or truncation.
    """
    normalizer = normalizers.Lowercase()
    pre_tokenizer = pre_tokenizers.Whitespace()
    counts: Counter[str] = Counter()
    for text in texts:
        pieces = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
        counts.update(piece for piece, _ in pieces)
    words = sorted((w for w in counts if w not in SPECIALS), key=lambda w: (-counts[w], w))
    vocab = {token: i for i, token in enumerate([*SPECIALS, *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.add_special_tokens(list(SPECIALS))
    if tokenizer.token_to_id("[PAD]") != PAD_ID:
        raise AssertionError("[PAD] must have the model's padding id")
    return tokenizer


def encode(
    tokenizer: Tokenizer, texts: Sequence[str], max_length: int = MAX_LENGTH
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``(N, max_length)`` right-padded with ``[PAD]`` and the attention mask.

    A text longer than ``max_length`` is an error here: truncation could cut the planted word.
    """
    ids = torch.full((len(texts), max_length), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(texts), max_length), dtype=torch.long)
    for i, encoding in enumerate(tokenizer.encode_batch(list(texts))):
        if len(encoding.ids) > max_length:
            raise ValueError(f"text {i} has {len(encoding.ids)} tokens > {max_length}")
        ids[i, : len(encoding.ids)] = torch.tensor(encoding.ids, dtype=torch.long)
        mask[i, : len(encoding.ids)] = 1
    return ids, mask


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one CPU thread: faster for this small model on a busy machine, and the
    weights do not depend on the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(
    model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, y: torch.Tensor, seed: int
) -> None:
    """Minibatch Adam on cross-entropy; the batch order comes from a seeded generator."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(y), generator=order).split(BATCH_SIZE):
            optimizer.zero_grad()
            loss_fn(model(ids[batch], mask[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, y: torch.Tensor) -> float:
    """Share of samples whose arg-max logit is the label."""
    model.eval()
    return float((model(ids, mask).argmax(dim=1) == y).float().mean())


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> None:
    """Write the tokenizer JSON to a temp file beside ``path``, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tokenizer.save(str(tmp), pretty=True)
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Generate, tokenize, train, check the audit accuracy, then write the three files."""
    parser = argparse.ArgumentParser(prog="python -m examples.train_text", description=__doc__)
    parser.add_argument("--models", type=Path, default=MODELS_DIR, help="folder for weights")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder for the audit csv")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    train_set = generate(TRAIN_SIZE, TRAIN_SEED)
    audit_set = generate(AUDIT_SIZE, AUDIT_SEED)
    tokenizer = build_tokenizer([r.text for r in train_set])
    seed_everything(args.seed)
    x_train, m_train = encode(tokenizer, [r.text for r in train_set])
    x_audit, m_audit = encode(tokenizer, [r.text for r in audit_set])
    y_train = torch.tensor([r.label for r in train_set])
    y_audit = torch.tensor([r.label for r in audit_set])
    vocab_size = tokenizer.get_vocab_size()
    model = TextClassifier(vocab_size=vocab_size, num_classes=len(CLASSES))
    with one_thread():
        fit(model, x_train, m_train, y_train, args.seed)
        acc = accuracy(model, x_audit, m_audit, y_audit)
    seconds = time.perf_counter() - start
    weights = args.models / WEIGHTS
    if refuse_inaccurate("text: audit", acc, MIN_ACCURACY, seconds, weights):
        return 1
    metadata = {
        "corpus": "examples.text_corpus (generated)",
        "train": f"{TRAIN_SIZE} texts, seed {TRAIN_SEED}",
        "audit": f"{AUDIT_SIZE} texts, seed {AUDIT_SEED}",
        "vocab_size": str(vocab_size),
        "max_length": str(MAX_LENGTH),
        "seed": str(args.seed),
        "test_accuracy": f"{acc:.4f}",
    }
    save_atomic(model, weights, metadata)
    save_tokenizer(tokenizer, args.models / TOKENIZER)
    write_csv(audit_set, args.data / CORPUS)
    print(
        f"text: audit accuracy {acc:.4f} in {seconds:.1f}s, vocab_size {vocab_size} -> "
        f"{weights}, {args.models / TOKENIZER}, {args.data / CORPUS}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
