"""Texts into token ids with the model's own tokenizer, and how ids are fed to the model.

Two kinds of tokenizer, both giving per token its id, its character span in the text and
the word it belongs to:

- a Hugging Face fast-tokenizer file (``tokenizer.json``), read offline with the
  ``tokenizers`` package. Its own padding and truncation are turned off (``max_length`` and
  padding are auditor's); its normalizer, pre-tokenizer and post-processor (``[CLS]`` ...
  ``[SEP]``) are kept, and truncation drops text tokens, never the special ones;
- a vocabulary file, one token per line (the id is the line's index from 0): the text is
  split at whitespace, optionally lowercased, and a chunk not in the vocabulary is split
  into words and single punctuation marks (as BERT's basic tokenizer does); a piece not in
  the vocabulary becomes the unknown token.

Errors that are the spec's fault are ``SpecError.at(("data", field), ...)``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tokenizers import Tokenizer

from auditor.errors import SpecError
from auditor.suggest import did_you_mean, join_names

#: The tensors a model can be given, by the names ``inputs:`` uses.
TENSOR_NAMES = ("input_ids", "attention_mask")
#: Special tokens looked for when the spec names none, in order.
DEFAULT_SPECIALS: dict[str, tuple[str, ...]] = {
    "pad": ("[PAD]", "<pad>"),
    "unk": ("[UNK]", "<unk>"),
    "mask": ("[MASK]", "<mask>"),
}
Special = Literal["pad", "unk", "mask"]

_WORDS = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks
_CHUNKS = re.compile(r"\S+")


@dataclass(frozen=True)
class Feed:
    """How a batch of token ids is given to the model: ``model(*positional, **keywords)``.

    ``positional`` names the tensors in order; ``keywords`` pairs a keyword argument of the
    model's ``forward`` with a tensor name. Tensor names are those of ``TENSOR_NAMES``.
    """

    positional: tuple[str, ...] = ("input_ids",)
    keywords: tuple[tuple[str, str], ...] = ()

    @property
    def tensors(self) -> tuple[str, ...]:
        """Every tensor name used, in the order given."""
        return (*self.positional, *(name for _, name in self.keywords))

    def arguments(
        self, tensors: Mapping[str, object]
    ) -> tuple[tuple[object, ...], dict[str, object]]:
        """The positional and keyword arguments of the call, from tensors by name."""
        return (
            tuple(tensors[name] for name in self.positional),
            {key: tensors[name] for key, name in self.keywords},
        )


def feed_from(inputs: Sequence[str] | Mapping[str, str]) -> Feed:
    """The ``Feed`` of the spec's ``inputs`` (a list: positional; a mapping: keywords)."""
    if isinstance(inputs, Mapping):
        return Feed(positional=(), keywords=tuple((k, v) for k, v in inputs.items()))
    return Feed(positional=tuple(inputs))


def check_tensor_name(name: str) -> str:
    """``name`` if it is a tensor auditor can feed, else a ValueError with a suggestion."""
    if name not in TENSOR_NAMES:
        raise ValueError(
            f"'{name}' is not a tensor auditor feeds.{did_you_mean(name, TENSOR_NAMES)} "
            f"Tensors: {', '.join(TENSOR_NAMES)}"
        )
    return name


@dataclass(frozen=True)
class Vocabulary:
    """Token text by id, the special tokens' ids, and the file it came from."""

    tokens_by_id: tuple[str, ...]
    pad_id: int
    unk_id: int | None
    mask_id: int | None
    #: The id that "removes" a token in perturbations and baselines (``remove_with``).
    remove_id: int
    source: Path
    #: Ids of every special token (pad, unk, mask, and the tokenizer's [CLS], [SEP], ...).
    special_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def size(self) -> int:
        """Number of ids: the largest id + 1 (an embedding table needs this many rows)."""
        return len(self.tokens_by_id)

    def token(self, i: int) -> str:
        """The text of token ``i`` (``[id 17]`` for an id with no token)."""
        if 0 <= i < len(self.tokens_by_id) and self.tokens_by_id[i]:
            return self.tokens_by_id[i]
        return f"[id {i}]"

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """The text of each id."""
        return [self.token(int(i)) for i in ids]


@dataclass(frozen=True)
class Encoding:
    """One text's tokens before padding: ids, character spans, words (-1: special)."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    word_ids: list[int]
    truncated: bool
    #: Tokens of the text itself, before truncation and special tokens (0: it tokenizes
    #: to nothing).
    text_tokens: int


class UnknownWord(Exception):
    """A word not in a vocabulary that has no unknown token."""

    def __init__(self, index: int, word: str) -> None:
        super().__init__(word)
        self.index = index
        self.word = word


class TokenizerFailed(Exception):
    """The tokenizer raised on a text (a word-level model without its unknown token)."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


class TextTokenizer(ABC):
    """Texts into ``Encoding`` s of at most ``max_length`` tokens, special tokens included."""

    vocab: Vocabulary
    #: What to call it in messages and descriptions (the file's name).
    label: str

    @property
    @abstractmethod
    def special_tokens_added(self) -> int:
        """Special tokens added to every text ([CLS] and [SEP]: 2)."""

    @abstractmethod
    def encode(self, texts: Sequence[str], max_length: int) -> list[Encoding]:
        """Tokenize, truncate to ``max_length``; ``UnknownWord`` if a word has no id,
        ``TokenizerFailed`` if the tokenizer raised."""


class HuggingFaceTokenizer(TextTokenizer):
    """A ``tokenizer.json`` read with ``tokenizers``; its post-processor is kept."""

    def __init__(self, tokenizer: Tokenizer, vocab: Vocabulary) -> None:
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.label = vocab.source.name

    @property
    def special_tokens_added(self) -> int:
        processor = self.tokenizer.post_processor
        return processor.num_special_tokens_to_add(False) if processor is not None else 0

    def encode(self, texts: Sequence[str], max_length: int) -> list[Encoding]:
        budget = max_length - self.special_tokens_added
        out = []
        for raw in self._encode_batch(texts):
            n = len(raw.ids)
            if n > budget:
                raw.truncate(budget)
            done = self.tokenizer.post_process(raw) if n else raw
            out.append(
                Encoding(
                    ids=list(done.ids),
                    offsets=[(int(a), int(b)) for a, b in done.offsets],
                    word_ids=[-1 if w is None else int(w) for w in done.word_ids],
                    truncated=n > budget,
                    text_tokens=n,
                )
            )
        return out

    def _encode_batch(self, texts: Sequence[str]) -> list[Any]:
        try:
            return list(self.tokenizer.encode_batch(list(texts), add_special_tokens=False))
        except Exception:  # e.g. "WordLevel error: Missing [UNK] token from the vocabulary"
            pass
        out = []
        for index, text in enumerate(texts):  # which text, and why
            try:
                out.append(self.tokenizer.encode(text, add_special_tokens=False))
            except Exception as exc:
                raise TokenizerFailed(index, str(exc)) from None
        return out


class WordTokenizer(TextTokenizer):
    """A vocabulary file: whitespace chunks, split into words and punctuation if unknown."""

    def __init__(self, vocab: Vocabulary, *, lowercase: bool) -> None:
        self.vocab = vocab
        self.label = vocab.source.name
        self.lowercase = lowercase
        self.ids = {tok: i for i, tok in enumerate(vocab.tokens_by_id)}

    @property
    def special_tokens_added(self) -> int:
        return 0

    def encode(self, texts: Sequence[str], max_length: int) -> list[Encoding]:
        return [self._encode(k, text, max_length) for k, text in enumerate(texts)]

    def _encode(self, index: int, text: str, max_length: int) -> Encoding:
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for start, end in self._pieces(text):
            piece = text[start:end]
            key = piece.lower() if self.lowercase else piece
            i = self.ids.get(key, self.vocab.unk_id)
            if i is None:
                raise UnknownWord(index, piece)
            ids.append(i)
            offsets.append((start, end))
        n = len(ids)
        keep = min(n, max_length)
        return Encoding(
            ids=ids[:keep],
            offsets=offsets[:keep],
            word_ids=list(range(keep)),
            truncated=n > max_length,
            text_tokens=n,
        )

    def _pieces(self, text: str) -> list[tuple[int, int]]:
        """Spans of the tokens: a whitespace chunk if the vocabulary has it, else its words
        and punctuation marks."""
        spans = []
        for chunk in _CHUNKS.finditer(text):
            word = chunk.group()
            if (word.lower() if self.lowercase else word) in self.ids:
                spans.append(chunk.span())
                continue
            base = chunk.start()
            spans.extend((base + m.start(), base + m.end()) for m in _WORDS.finditer(word))
        return spans


def load_tokenizer(
    *,
    tokenizer: Path | None,
    vocab: Path | None,
    lowercase: bool,
    specials: Mapping[Special, str | None],
    remove_with: Special | None,
) -> TextTokenizer:
    """The tokenizer of ``tokenizer:`` (a tokenizer.json) or ``vocab:`` (one token a line).

    ``specials`` are the spec's ``pad``/``unk``/``mask`` (None: look for the usual names).
    """
    if tokenizer is not None:
        hf, named = _read_tokenizer_json(tokenizer)
        by_id = _tokens_by_id(hf.get_vocab(with_added_tokens=True))
        found = _specials(by_id, specials, tokenizer, named)
        added = {
            i for i, tok in hf.get_added_tokens_decoder().items() if getattr(tok, "special", False)
        }
        return HuggingFaceTokenizer(hf, _vocabulary(by_id, found, remove_with, tokenizer, added))
    if vocab is None:
        raise SpecError.at(("data",), "give tokenizer: (a tokenizer.json) or vocab: (a vocab.txt)")
    by_id = _read_vocab_file(vocab)
    found = _specials(by_id, specials, vocab, {})
    return WordTokenizer(_vocabulary(by_id, found, remove_with, vocab, set()), lowercase=lowercase)


def _read_tokenizer_json(path: Path) -> tuple[Tokenizer, dict[Special, str]]:
    """The tokenizer with its padding and truncation off, and the special tokens it names."""
    loc = ("data", "tokenizer")
    try:
        hf = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception with serde's message
        raise SpecError.at(
            loc,
            f"{path} is not a tokenizer file (the tokenizer.json that Hugging Face "
            f"tokenizers saves): {exc}",
        ) from None
    if not hf.get_vocab(with_added_tokens=True):
        raise SpecError.at(loc, f"the tokenizer in {path} has an empty vocabulary")
    named: dict[Special, str] = {}
    padding = hf.padding
    if padding and padding.get("pad_token"):
        named["pad"] = padding["pad_token"]
    unk = getattr(hf.model, "unk_token", None)
    if isinstance(unk, str) and unk:
        named["unk"] = unk
    hf.no_padding()
    hf.no_truncation()
    return hf, named


def _tokens_by_id(vocab: Mapping[str, int]) -> tuple[str, ...]:
    out = [""] * (max(vocab.values()) + 1)
    for token, i in vocab.items():
        out[i] = token
    return tuple(out)


def _read_vocab_file(path: Path) -> tuple[str, ...]:
    loc = ("data", "vocab")
    text = read_utf8(path, loc)
    if text.lstrip().startswith("{"):
        raise SpecError.at(
            loc,
            f"{path} is JSON, not a vocabulary of one token a line; a tokenizer.json goes "
            "in tokenizer:",
        )
    tokens = text.splitlines()
    if not tokens:
        raise SpecError.at(loc, f"{path} is empty; expected one token a line")
    seen: dict[str, int] = {}
    for line, token in enumerate(tokens, 1):
        if not token.strip() or token != token.strip() or len(token.split()) > 1:
            raise SpecError.at(
                loc,
                f"{path}:{line}: {token!r} is not one token; a vocabulary file has one token "
                "a line, without spaces (the id is the line's index from 0)",
            )
        if token in seen:
            raise SpecError.at(loc, f"{path}:{line}: token {token!r} is also on line {seen[token]}")
        seen[token] = line
    return tuple(tokens)


def _specials(
    by_id: tuple[str, ...],
    given: Mapping[Special, str | None],
    path: Path,
    defaults: Mapping[Special, str],
) -> dict[Special, int | None]:
    """Id of each special token: the one the spec names, else the file's, else a usual name."""
    ids = {tok: i for i, tok in enumerate(by_id) if tok}
    out: dict[Special, int | None] = {}
    for kind in ("pad", "unk", "mask"):
        name = given.get(kind)
        if name is not None:
            if name not in ids:
                likely = [t for t in ids if t[:1] in "[<" and t[-1:] in "]>" and len(t) > 2]
                message = f"{kind} token {name!r} is not in the vocabulary of {path}."
                message += did_you_mean(name, likely or ids)
                if likely:
                    message += f" Tokens like it: {join_names(likely, 10)}"
                raise SpecError.at(("data", kind), message)
            out[kind] = ids[name]
            continue
        names = [defaults[kind]] if kind in defaults else []
        names += DEFAULT_SPECIALS[kind]
        out[kind] = next((ids[n] for n in names if n in ids), None)
    if out["pad"] is None:
        usual = " or ".join(DEFAULT_SPECIALS["pad"])
        raise SpecError.at(
            ("data", "pad"),
            f"the vocabulary of {path} has no padding token ({usual}); name the token that "
            f"pads with pad: (auditor pads every text to max_length)",
        )
    return out


def _vocabulary(
    by_id: tuple[str, ...],
    found: Mapping[Special, int | None],
    remove_with: Special | None,
    source: Path,
    added: set[int],
) -> Vocabulary:
    if remove_with is None:  # the default: a token the model saw, kept in the mask
        remove_with = next(s for s in ("mask", "unk", "pad") if found.get(s) is not None)
    remove_id = found[remove_with]
    if remove_id is None:
        usual = " or ".join(DEFAULT_SPECIALS[remove_with])
        raise SpecError.at(
            ("data", "remove_with"),
            f"remove_with: {remove_with} needs a {remove_with} token, and the vocabulary of "
            f"{source} has none ({usual}); name it with {remove_with}: <token>, or use "
            "remove_with: pad",
        )
    pad_id = found["pad"]
    assert pad_id is not None  # _specials raised otherwise
    specials = {i for i in found.values() if i is not None} | added
    return Vocabulary(
        tokens_by_id=by_id,
        pad_id=pad_id,
        unk_id=found["unk"],
        mask_id=found["mask"],
        remove_id=remove_id,
        source=source,
        special_ids=frozenset(specials),
    )


def read_utf8(path: Path, loc: tuple[str, ...]) -> str:
    """The file's text (less a byte-order mark); a SpecError at ``loc`` naming the line
    and column of the first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError.at(
            loc,
            f"{path}:{line}: byte 0x{data[exc.start]:02x} (column {column}) is not UTF-8; "
            "save the file as UTF-8",
        ) from None
    return text.removeprefix("\ufeff")
