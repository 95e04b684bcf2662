"""The tokens of a text run, as the report reads them: ``tokens.npz`` and the top tokens.

``tokens.npz`` holds, for the slice in slice order, each sample's token ``ids``, token
strings (``pieces``, "" for pads), the word each piece belongs to (``word_ids``, -1 for
special tokens and pads), character ``offsets`` into ``texts``, ``lengths`` and whether the
text was ``truncated``. ``words`` joins word pieces back into the words of the original text
for reading: a word's value is the sum of its pieces' attributions (attributions are
additive over features, as in SHAP's text explanations: Lundberg & Lee 2017), and each
piece's own value is kept for the tooltip and table. ``rankings/<id>.tokens.json`` holds an
explainer's top tokens over the slice and per class (``TokenRankings``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Word-piece markers stripped when a word is rebuilt from its pieces without offsets:
#: WordPiece continuation, byte-level BPE and SentencePiece word starts.
PIECE_MARKERS = ("##", "Ġ", "▁")


@dataclass(frozen=True)
class Piece:
    text: str
    value: float


@dataclass(frozen=True)
class Word:
    """One word of a sample: its text as written, the gap before it and its pieces."""

    text: str
    before: str  # the original characters between the previous word and this one
    pieces: tuple[Piece, ...]

    @property
    def value(self) -> float:
        return float(sum(p.value for p in self.pieces))


@dataclass(frozen=True)
class SliceTokens:
    """``tokens.npz`` of a text run (see the module docstring)."""

    ids: np.ndarray  # (N, L) int64
    lengths: np.ndarray  # (N,)
    pieces: np.ndarray  # (N, L) unicode
    word_ids: np.ndarray  # (N, L) int32, -1: special token or pad
    offsets: np.ndarray  # (N, L, 2) int32
    truncated: np.ndarray  # (N,) bool
    texts: np.ndarray  # (N,) unicode

    FIELDS = ("ids", "lengths", "pieces", "word_ids", "offsets", "truncated", "texts")

    @classmethod
    def load(cls, path: Path) -> SliceTokens:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in cls.FIELDS if name not in data.files]
            if missing:
                raise ValueError(f"{path.name} lacks {', '.join(missing)}")
            tokens = cls(**{name: np.asarray(data[name]) for name in cls.FIELDS})
        n, length = tokens.ids.shape
        shapes = {
            "pieces": (n, length),
            "word_ids": (n, length),
            "offsets": (n, length, 2),
            "lengths": (n,),
            "truncated": (n,),
            "texts": (n,),
        }
        for name, shape in shapes.items():
            if getattr(tokens, name).shape != shape:
                raise ValueError(
                    f"{path.name}: {name} has shape {getattr(tokens, name).shape}, "
                    f"expected {shape} (ids are {n} x {length})"
                )
        return tokens

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def real(self) -> np.ndarray:
        """(N, L) True at tokens of the text (not special tokens, not pads)."""
        return np.asarray(self.word_ids) >= 0

    def words(self, row: int, values: np.ndarray) -> list[Word]:
        """Sample ``row``'s words in order, each with its pieces' ``values`` (one per position)."""
        text = str(self.texts[row])
        word_ids = np.asarray(self.word_ids[row])
        offsets = np.asarray(self.offsets[row])
        groups: list[list[int]] = []
        for p in np.flatnonzero(word_ids >= 0):
            if groups and word_ids[groups[-1][-1]] == word_ids[p] and groups[-1][-1] == p - 1:
                groups[-1].append(int(p))
            else:
                groups.append([int(p)])
        words, end = [], 0
        for group in groups:
            pieces = tuple(Piece(str(self.pieces[row, p]), float(values[p])) for p in group)
            start, stop = int(offsets[group, 0].min()), int(offsets[group, 1].max())
            if end <= start < stop <= len(text):
                words.append(Word(text[start:stop], text[end:start], pieces))
                end = stop
            else:  # no usable offsets: the pieces joined, separated by a space
                joined = "".join(_strip_marker(p.text) for p in pieces)
                words.append(Word(joined, " " if words else "", pieces))
        return words

    def rest(self, row: int) -> str:
        """The text after the last token that the model saw ("" unless truncated)."""
        if not bool(self.truncated[row]):
            return ""
        real = self.real[row]
        ends = np.asarray(self.offsets[row, :, 1])[real]
        end = int(ends.max()) if ends.size else 0
        text = str(self.texts[row])
        return text[end:] if 0 < end <= len(text) else ""


def _strip_marker(piece: str) -> str:
    for marker in PIECE_MARKERS:
        if piece.startswith(marker) and len(piece) > len(marker):
            return piece[len(marker) :]
    return piece


@dataclass(frozen=True)
class TokenScore:
    """A token over the slice: mean signed and mean |attribution|, count and the score
    ranked by (shrunk mean |attribution|: sum / (count + 5), so a rare token with one large
    value does not outrank a frequent, consistent one)."""

    token: str
    mean: float
    mean_abs: float
    count: int
    score: float


@dataclass(frozen=True)
class TokenRankings:
    """``rankings/<id>.tokens.json``: the top tokens overall and per class (signed mean
    towards the class, over the samples explained for it)."""

    overall: list[TokenScore]
    by_class: dict[str, list[TokenScore]]

    @classmethod
    def load(cls, path: Path) -> TokenRankings:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                [_score(t) for t in raw.get("overall") or []],
                {str(k): [_score(t) for t in v] for k, v in (raw.get("by_class") or {}).items()},
            )
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ValueError(f"{path.name} is not a token ranking: {error}") from error


def _score(t: dict[str, Any]) -> TokenScore:
    return TokenScore(
        str(t["token"]), float(t["mean"]), float(t["mean_abs"]), int(t["count"]), float(t["score"])
    )


#: Pseudo-count of the shrunk mean: score = sum |attribution| / (count + SHRINK).
SHRINK = 5


def slice_scores(tokens: SliceTokens, attributions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct token of the slice (sorted) and its score over the slice for one
    explainer: the shrunk mean |attribution|, sum / (count + 5), as in the token rankings.
    Pads and special tokens are left out. The vocabulary is the same for every explainer of
    a run, so the scores of two explainers compare position by position."""
    real = tokens.real
    vocab, inverse = np.unique(np.asarray(tokens.pieces)[real], return_inverse=True)
    a = np.abs(np.nan_to_num(np.asarray(attributions, dtype=np.float64)))[real]
    total = np.bincount(inverse, weights=a, minlength=len(vocab))
    count = np.bincount(inverse, minlength=len(vocab))
    return vocab, total / (count + SHRINK)
