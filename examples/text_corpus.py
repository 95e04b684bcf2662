"""A GENERATED review-like corpus whose labels are decided by planted tokens.

No text corpus is downloaded (scikit-learn ships none), so this module generates one: short
English review-like texts (5 to 25 words, lowercase, no punctuation except a few markup
clauses) made of neutral clauses ("the kettle arrived on monday", "i bought it for my
sister") with exactly one planted sentiment word inserted at a uniformly random word
position; in about 5% of the texts that word appears twice. The planted word is drawn from
its class's list (``PLANTED``) and no other word depends on the label, so the label is a
function of the planted word alone: the ground truth for attribution tests (the token that
should rank first) in the spirit of planted-feature benchmarks (e.g. Adebayo et al. 2020,
"Debugging Tests for Model Explanations", https://arxiv.org/abs/2011.05429).

About 2% of the texts carry one clause with HTML markup and template syntax
(``<b>new</b>``, ``{{ size }}``, ``{% raw %}``), label-independent too, so that reports
built on the corpus must escape user text. Everything is deterministic in the seed
(Python's ``random.Random``).
"""

from __future__ import annotations

import csv
import io
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CLASSES: tuple[str, ...] = ("negative", "positive")
#: The planted sentiment words of each class (the only words that carry signal).
PLANTED: dict[str, tuple[str, ...]] = {
    "negative": ("awful", "terrible", "dreadful", "horrible", "abysmal", "atrocious"),
    "positive": ("excellent", "superb", "wonderful", "fantastic", "brilliant", "delightful"),
}
MIN_WORDS = 5
MAX_WORDS = 25
REPEAT_RATE = 0.05  # share of texts with the planted word twice
MARKUP_RATE = 0.02  # share of texts with one markup clause

FILLERS: dict[str, tuple[str, ...]] = {
    "item": (
        "box", "battery", "screen", "cable", "manual", "lid", "handle", "strap", "charger",
        "blender", "kettle", "lamp", "backpack", "headphones", "keyboard", "jacket",
        "printer", "speaker",
    ),
    "day": ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    "person": (
        "sister", "brother", "neighbour", "uncle", "aunt", "friend", "son", "daughter",
        "father", "mother",
    ),
    "color": ("blue", "grey", "black", "white", "green", "red"),
    "number": ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    "size": ("small", "large", "medium", "square", "flat"),
    "place": ("desk", "shelf", "counter", "table", "floor", "porch"),
    "time": ("yesterday", "today", "last week", "this morning", "after lunch"),
}  # fmt: skip
CLAUSES: tuple[str, ...] = (
    "the {item} arrived on {day}",
    "i bought it for my {person}",
    "the {item} is {color}",
    "we used it for {number} weeks",
    "it came in a {size} box",
    "the delivery took {number} days",
    "my {person} tried it {time}",
    "the {item} weighs about {number} pounds",
    "i ordered the {color} one",
    "it sits on the {place}",
    "the store had it in stock",
    "the {item} has {number} buttons",
    "i read the manual {time}",
    "it was a gift from my {person}",
    "we keep the {item} on the {place}",
    "the {color} {item} matches the {place}",
    "my {person} asked about the {item}",
    "it took {number} minutes to set up",
)
#: Rare clauses with markup and template syntax (at most one per text).
MARKUP_CLAUSES: tuple[str, ...] = (
    "the sticker said <b>new</b> & more",
    "the tag read {{ size }} {% raw %}",
)
CONNECTIVES: tuple[str, ...] = ("and", "then", "also", "so")


@dataclass(frozen=True)
class Review:
    """One generated text: its words, class index, planted word and where it was planted."""

    text: str
    label: int
    planted: str
    positions: tuple[int, ...]  # word indices of the planted word (one, or two if repeated)


def _clause(rng: random.Random) -> list[str]:
    template = rng.choice(CLAUSES)
    filled = template.format(**{k: rng.choice(v) for k, v in FILLERS.items()})
    return filled.split()


def _distractors(rng: random.Random, count: int) -> list[str]:
    """``count`` neutral words: clauses joined by connectives, the last one cut to fit."""
    words: list[str] = []
    markup = rng.random() < MARKUP_RATE
    while len(words) < count:
        if words:
            words.append(rng.choice(CONNECTIVES))
        if markup:
            words += rng.choice(MARKUP_CLAUSES).split()
            markup = False
        else:
            words += _clause(rng)
    return words[:count]


def generate_one(rng: random.Random, classes: Sequence[str] = CLASSES) -> Review:
    """One review: a class, its planted word at 1 (or 2) random positions among distractors."""
    label = rng.randrange(len(classes))
    planted = rng.choice(PLANTED[classes[label]])
    length = rng.randint(MIN_WORDS, MAX_WORDS)
    copies = 2 if rng.random() < REPEAT_RATE else 1
    positions = tuple(sorted(rng.sample(range(length), copies)))
    filler = iter(_distractors(rng, length - copies))
    words = [planted if i in positions else next(filler) for i in range(length)]
    return Review(" ".join(words), label, planted, positions)


def generate(n: int, seed: int, classes: Sequence[str] = CLASSES) -> list[Review]:
    """``n`` reviews, the same for the same ``n``, ``seed`` and ``classes``."""
    unknown = [c for c in classes if c not in PLANTED]
    if n < 0 or len(classes) < 2 or unknown:
        raise ValueError(
            f"need n >= 0 and at least two classes of {sorted(PLANTED)}, got n={n}, "
            f"classes={list(classes)}"
        )
    rng = random.Random(seed)
    return [generate_one(rng, classes) for _ in range(n)]


def planted_words(text: str) -> list[str]:
    """The planted words of every class found in ``text``, in order (repeats kept)."""
    every = {w for words in PLANTED.values() for w in words}
    return [w for w in text.lower().split() if w in every]


def write_csv(reviews: Sequence[Review], path: Path, classes: Sequence[str] = CLASSES) -> None:
    """Write ``text,label`` (label as the class name) to ``path`` atomically, ``\\n`` endings."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows([r.text, classes[r.label]] for r in reviews)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(buffer.getvalue(), encoding="utf-8", newline="")
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
