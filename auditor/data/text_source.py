"""Texts with labels from a CSV file (header row) or a JSON Lines file, as token ids.

The model's own tokenizer turns each text into at most ``max_length`` token ids (see
``auditor.data.tokenization``), right-padded with the pad token; truncation is recorded per
sample. Labels become class indices by the rules of ``auditor.data.class_labels``: text
labels need ``classes``, the model's class order. Every problem in the file (an empty text,
one that tokenizes to nothing, bytes that are not UTF-8) is an error that names the
file and line.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from auditor.data.base import AuditDataset, DataSource, StaticInfo
from auditor.data.class_labels import class_indices, names_as_text
from auditor.data.tokenization import (
    Encoding,
    Feed,
    TextTokenizer,
    TokenizerFailed,
    UnknownWord,
    Vocabulary,
    check_tensor_name,
    feed_from,
    load_tokenizer,
    read_utf8,
)
from auditor.errors import SpecError, SpecIssue
from auditor.paths import ExistingFile
from auditor.plugin import Params
from auditor.suggest import did_you_mean

#: Files up to this size are read and tokenized whole by ``auditor validate``.
STATIC_READ_LIMIT = 8 * 2**20
#: Lines named in one error about many lines.
MAX_LINES_LISTED = 10
_JSONL = (".jsonl", ".ndjson")

TensorName = Annotated[str, AfterValidator(check_tensor_name)]


def _keyword(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"'{name}' is not a keyword argument name")
    return name


Keyword = Annotated[str, AfterValidator(_keyword)]


class TextParams(Params):
    """Which file, which columns, which tokenizer, and how the model takes the ids."""

    path: ExistingFile = Field(
        description="A .csv file with a header row, or a .jsonl file of one JSON object a line."
    )
    text_column: str = Field(default="text", min_length=1, description="The column of texts.")
    label: str = Field(default="label", min_length=1, description="The column of labels.")
    classes: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The model's class order (class names by index); needed for text labels.",
    )
    tokenizer: ExistingFile | None = Field(
        default=None,
        description="The model's tokenizer.json (Hugging Face tokenizers), read offline.",
    )
    vocab: ExistingFile | None = Field(
        default=None,
        description="A vocabulary file, one token a line (id = line index from 0); texts are "
        "split at whitespace and punctuation.",
    )
    lowercase: bool | None = Field(
        default=None, description="Lowercase texts before looking words up in vocab (default true)."
    )
    max_length: int = Field(
        default=64, ge=1, description="Tokens per text, special ones included; longer is cut."
    )
    pad: str | None = Field(
        default=None, min_length=1, description="The padding token (default [PAD] or <pad>)."
    )
    unk: str | None = Field(
        default=None, min_length=1, description="The unknown token (default [UNK] or <unk>)."
    )
    mask: str | None = Field(
        default=None, min_length=1, description="The mask token (default [MASK] or <mask>)."
    )
    inputs: list[TensorName] | dict[Keyword, TensorName] = Field(
        default_factory=lambda: ["input_ids"],
        min_length=1,
        description="How the model is called: a list of input_ids/attention_mask (positional) "
        "or a mapping of forward's keyword to one of them.",
    )
    embedding_layer: str | None = Field(
        default=None,
        min_length=1,
        description="The module whose output is attributed (default the first nn.Embedding).",
    )
    remove_with: Literal["pad", "mask", "unk"] | None = Field(
        default=None,
        description="The token that removes a token in perturbations and baselines (default: "
        "mask if the vocabulary has one, else unk, else pad). With pad a removed token is also "
        "masked out; with mask or unk the attention mask keeps it, as Integrated Gradients' "
        "baseline does.",
    )

    _numbers_as_names = field_validator("classes", mode="before")(names_as_text)

    @field_validator("vocab")
    @classmethod
    def _not_both(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("tokenizer") is not None:
            raise ValueError("give tokenizer or vocab, not both")
        return value

    @field_validator("lowercase")
    @classmethod
    def _vocab_only(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value is not None and info.data.get("tokenizer") is not None:
            raise ValueError(
                "lowercase is for vocab files; a tokenizer.json lowercases (or not) by its "
                "own normalizer"
            )
        return value

    @field_validator("label")
    @classmethod
    def _two_columns(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("text_column"):
            raise ValueError(f"'{value}' is the text column; the label is another column")
        return value

    @field_validator("inputs")
    @classmethod
    def _ids_fed_once(cls, value: list[str] | dict[str, str]) -> list[str] | dict[str, str]:
        names = list(value.values()) if isinstance(value, dict) else value
        if "input_ids" not in names:
            raise ValueError("the model needs input_ids; list it in inputs")
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice is not None:
            raise ValueError(f"'{twice}' is given twice")
        return value

    @model_validator(mode="after")
    def _one_tokenizer(self) -> TextParams:
        if self.tokenizer is None and self.vocab is None:
            raise ValueError(
                "give the model's tokenizer: tokenizer: tokenizer.json (Hugging Face "
                "tokenizers) or vocab: vocab.txt (one token a line)"
            )
        return self

    @property
    def feed(self) -> Feed:
        """How the model is called, from ``inputs``."""
        return feed_from(self.inputs)


@dataclass(frozen=True)
class Row:
    """One sample as read: the line it starts on, its text, its label as text."""

    line: int
    text: str
    label: str


class TextDataset(AuditDataset):
    """Token ids of every text, right-padded to ``max_length``, with what the report needs:
    the texts, each token's character span and word, and which texts were truncated."""

    modality = "text"

    def __init__(
        self,
        *,
        texts: list[str],
        labels: np.ndarray,
        class_names: list[str],
        encodings: list[Encoding],
        max_length: int,
        vocab: Vocabulary,
        feed: Feed,
        embedding_layer: str | None,
        description: str,
        tokenizer_kind: Literal["tokenizer", "vocab"] = "tokenizer",
    ) -> None:
        if len(texts) != len(labels) or len(texts) != len(encodings):
            raise ValueError(f"{len(texts)} texts, {len(labels)} labels, {len(encodings)} codes")
        n = len(texts)
        self.texts = list(texts)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = list(class_names)
        self.feature_names = None
        self.input_shape = (max_length,)
        self.max_length = max_length
        self.vocab = vocab
        self.feed = feed
        self.embedding_layer = embedding_layer
        #: The spec key that gave the tokenizer: ``tokenizer`` (a tokenizer.json) or ``vocab``.
        self.tokenizer_kind: Literal["tokenizer", "vocab"] = tokenizer_kind
        self.description = description
        ids = np.full((n, max_length), vocab.pad_id, dtype=np.int64)
        self.offsets = np.zeros((n, max_length, 2), dtype=np.int32)
        self.word_ids = np.full((n, max_length), -1, dtype=np.int32)
        self.lengths = np.zeros(n, dtype=np.int64)
        self.truncated = np.zeros(n, dtype=bool)
        for k, code in enumerate(encodings):
            m = len(code.ids)
            ids[k, :m] = code.ids
            if m:
                self.offsets[k, :m] = code.offsets
            self.word_ids[k, :m] = code.word_ids
            self.lengths[k] = m
            self.truncated[k] = code.truncated
        self.ids = torch.from_numpy(ids)

    def get(self, indices: np.ndarray) -> torch.Tensor:
        """Token ids, int64 ``(len(indices), max_length)``, right-padded with the pad id."""
        return self.ids[torch.as_tensor(np.asarray(indices, dtype=np.int64))].clone()

    def attention_mask(self, indices: np.ndarray) -> torch.Tensor:
        """1 for each real token (special ones included), 0 for padding, int64."""
        lengths = torch.as_tensor(self.lengths[np.asarray(indices, dtype=np.int64)])
        return (torch.arange(self.max_length)[None, :] < lengths[:, None]).to(torch.int64)

    def tokens(self, index: int) -> list[str]:
        """The real tokens of sample ``index`` (no padding), as text."""
        return self.vocab.tokens(self.ids[index, : self.lengths[index]].tolist())


@dataclass(frozen=True)
class TextTable:
    """A read and tokenized file."""

    rows: list[Row]
    labels: np.ndarray
    class_names: list[str]
    encodings: list[Encoding]


class TextDataSource(DataSource):
    """Texts and labels from a CSV or JSON Lines file, tokenized with the model's tokenizer."""

    name: ClassVar[str] = "text"
    Params: ClassVar[type[TextParams]] = TextParams

    def load(self, params: TextParams) -> TextDataset:  # type: ignore[override]
        tokenizer = make_tokenizer(params)
        table = parse(params, tokenizer)
        return TextDataset(
            texts=[row.text for row in table.rows],
            labels=table.labels,
            class_names=table.class_names,
            encodings=table.encodings,
            max_length=params.max_length,
            vocab=tokenizer.vocab,
            feed=params.feed,
            embedding_layer=params.embedding_layer,
            description=_description(params, table, tokenizer),
            tokenizer_kind="tokenizer" if params.tokenizer is not None else "vocab",
        )

    @classmethod
    def static_info(cls, params: TextParams) -> StaticInfo:  # type: ignore[override]
        """Shape, class names and the vocabulary; the tokenizer is read, and a file up to
        ``STATIC_READ_LIMIT`` is read and tokenized whole so that ``validate`` finds what
        ``run`` would (a larger one has its columns checked)."""
        tokenizer = make_tokenizer(params)
        class_names = list(params.classes) if params.classes is not None else None
        issues: tuple[SpecIssue, ...] = ()
        if params.path.stat().st_size <= STATIC_READ_LIMIT:
            try:
                class_names = parse(params, tokenizer).class_names
            except SpecError as exc:
                issues = tuple(exc.issues)
        else:
            _check_columns(params, _first_keys(params))
        # A text's features are tokens: ranking checks are planned against the vocabulary.
        vocab = [tokenizer.vocab.token(i) for i in range(tokenizer.vocab.size)]
        return StaticInfo("text", (params.max_length,), vocab, class_names, issues)


def make_tokenizer(params: TextParams) -> TextTokenizer:
    """The spec's tokenizer, checked against ``max_length``."""
    tokenizer = load_tokenizer(
        tokenizer=params.tokenizer,
        vocab=params.vocab,
        lowercase=params.lowercase is not False,
        specials={"pad": params.pad, "unk": params.unk, "mask": params.mask},
        remove_with=params.remove_with,
    )
    added = tokenizer.special_tokens_added
    if params.max_length <= added:
        raise SpecError.at(
            ("data", "max_length"),
            f"max_length {params.max_length} leaves no room for text: {tokenizer.label} adds "
            f"{added} special tokens to every text; use at least {added + 1}",
        )
    return tokenizer


def _description(params: TextParams, table: TextTable, tokenizer: TextTokenizer) -> str:
    cut = sum(code.truncated for code in table.encodings)
    return (
        f"text {params.path}: {len(table.rows)} texts, label '{params.label}' "
        f"({len(table.class_names)} classes); {tokenizer.label} "
        f"({tokenizer.vocab.size} tokens), max_length {params.max_length}, "
        f"{cut} truncated"
    )


def parse(params: TextParams, tokenizer: TextTokenizer) -> TextTable:
    """Read, check and tokenize the whole file; the problems found are one SpecError."""
    rows = read_rows(params)
    issues: list[SpecIssue] = []
    empty = [row.line for row in rows if not row.text.strip()]
    if empty:
        issues.append(_lines_issue(params.path, empty, "the text is empty"))
    labelled = None
    try:
        labelled = class_indices(
            [(row.line, row.label) for row in rows],
            params.classes,
            column=params.label,
            path=params.path,
            classes_key="classes",
        )
    except SpecError as exc:
        issues.extend(exc.issues)
    encodings: list[Encoding] = []
    if not empty:
        try:
            encodings = tokenizer.encode([row.text for row in rows], params.max_length)
        except UnknownWord as exc:
            issues.append(
                SpecIssue(
                    f"{params.path}:{rows[exc.index].line}: {exc.word!r} is not in "
                    f"{tokenizer.label}, which has no unknown token ([UNK] or <unk>); add one "
                    "to the vocabulary or name it with unk:",
                    ("data", "vocab"),
                )
            )
        except TokenizerFailed as exc:
            issues.append(
                SpecIssue(
                    f"{params.path}:{rows[exc.index].line}: {tokenizer.label} cannot tokenize "
                    f"the text: {exc.reason}",
                    ("data", "tokenizer"),
                )
            )
        nothing = [row.line for row, code in zip(rows, encodings, strict=False) if not code.ids]
        if nothing:
            issues.append(
                _lines_issue(
                    params.path, nothing, f"the text tokenizes to nothing with {tokenizer.label}"
                )
            )
    if issues or labelled is None:
        raise SpecError(issues)
    labels, class_names = labelled
    return TextTable(rows, labels, class_names, encodings)


def _lines_issue(path: Path, lines: list[int], what: str) -> SpecIssue:
    """One issue for a problem on many lines: the first, and the others' numbers."""
    message = f"{path}:{lines[0]}: {what}"
    more = lines[1:]
    if more:
        shown = ", ".join(str(n) for n in more[:MAX_LINES_LISTED])
        extra = len(more) - MAX_LINES_LISTED
        message += f" (so are lines {shown}{f' and {extra} more' if extra > 0 else ''})"
    return SpecIssue(message, ("data", "path"))


def read_rows(params: TextParams) -> list[Row]:
    """The file's samples, each with the line it starts on."""
    text = read_utf8(params.path, ("data", "path"))
    rows = _jsonl_rows(text, params) if _is_jsonl(params.path) else _csv_rows(text, params)
    if not rows:
        raise SpecError.at(("data", "path"), f"{params.path} has no texts")
    return rows


def _is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in _JSONL


def _check_columns(params: TextParams, columns: list[str]) -> None:
    """The text and label columns are among ``columns`` (the header, the first object's keys)."""
    for key in ("text_column", "label"):
        name = getattr(params, key)
        if name not in columns:
            what = "column" if not _is_jsonl(params.path) else "key"
            raise SpecError.at(
                ("data", key),
                f"{what} '{name}' is not in {params.path}.{did_you_mean(name, columns)} "
                f"{what.capitalize()}s: {', '.join(columns)}",
            )


def _first_keys(params: TextParams) -> list[str]:
    """The header's names (CSV) or the first object's keys (JSON Lines), reading little."""
    loc = ("data", "path")
    with params.path.open("rb") as handle:
        head = handle.read(1 << 20)
    first = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if _is_jsonl(params.path):
        line = next((ln for ln in first.splitlines() if ln.strip()), "")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            raise SpecError.at(loc, f"{params.path} does not start with a JSON object")
        return list(obj)
    return _header(next(csv.reader(io.StringIO(first, newline="")), None), params.path)


def _header(header: list[str] | None, path: Path) -> list[str]:
    if not header or not any(h.strip() for h in header):
        raise SpecError.at(("data", "path"), f"{path} is empty; expected a header row and texts")
    return [h.strip() for h in header]


def _csv_rows(text: str, params: TextParams) -> list[Row]:
    path = params.path
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = _header(next(reader, None), path)
        _check_columns(params, header)
        t, y = header.index(params.text_column), header.index(params.label)
        rows: list[Row] = []
        done = reader.line_num
        for fields in reader:
            line, done = done + 1, reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise SpecError.at(
                    ("data", "path"),
                    f"{path}:{line}: {len(fields)} fields but the header has {len(header)} "
                    "(a text with commas needs double quotes around it)",
                )
            rows.append(Row(line, fields[t], fields[y].strip()))
    except csv.Error as exc:
        raise SpecError.at(
            ("data", "path"), f"{path}:{reader.line_num}: not a readable CSV line: {exc}"
        ) from None
    return rows


def _jsonl_rows(text: str, params: TextParams) -> list[Row]:
    path, loc = params.path, ("data", "path")
    rows: list[Row] = []
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj: Any = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SpecError.at(loc, f"{path}:{line}: not JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise SpecError.at(
                loc, f"{path}:{line}: expected a JSON object, got {type(obj).__name__}"
            )
        if not rows:
            _check_columns(params, list(obj))
        rows.append(Row(line, _json_text(obj, params, line), _json_label(obj, params, line)))
    return rows


def _json_text(obj: dict[str, Any], params: TextParams, line: int) -> str:
    key = params.text_column
    if key not in obj:
        raise SpecError.at(("data", "path"), f"{params.path}:{line}: no key '{key}'")
    value = obj[key]
    if not isinstance(value, str):
        raise SpecError.at(
            ("data", "path"),
            f"{params.path}:{line}: '{key}' is {json.dumps(value)[:40]}; expected a text",
        )
    return value


def _json_label(obj: dict[str, Any], params: TextParams, line: int) -> str:
    key = params.label
    if key not in obj:
        raise SpecError.at(("data", "path"), f"{params.path}:{line}: no key '{key}'")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError.at(
            ("data", "path"),
            f"{params.path}:{line}: label '{key}' is {json.dumps(value)[:40]}; expected a "
            "class index or name",
        )
    return str(value).strip()
