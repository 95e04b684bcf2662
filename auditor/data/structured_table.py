"""Named input fields of a table: which columns each model argument gets, categorical ids.

``data.inputs`` maps the model's arguments to columns (a mapping: keyword arguments; a list
of fields with ``name:``: positional). A sample stays one float32 row of every field's
columns in field order (so every stage sees one tensor); ``StructuredFeed`` splits it again.

Categorical columns hold ids: string values map through a vocabulary (a file given in
``vocabularies``, one value a line or a JSON list; else the column's distinct values,
sorted), integer values without a vocabulary file are ids as they are. ``unknown:`` names
the value unknown strings map to; without it an unknown value is an error naming the value,
the column and the line. ``baseline:`` is what removing a categorical value means:
``marginal`` (a seeded draw from the column's values in the data, per sample) or one value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import Field, model_validator

from auditor.data.base import TensorDataset
from auditor.errors import Loc, SpecError, SpecIssue
from auditor.plugin import Params
from auditor.suggest import did_you_mean

#: Ids are carried in float32 rows: exact up to 2**24.
MAX_ID = 2**24


class FieldParams(Params):
    """One model argument: its columns, whether they are categorical ids, and how a
    categorical value is removed."""

    name: str | None = Field(
        default=None, min_length=1, description="The field's name (positional fields only)."
    )
    columns: list[str] = Field(min_length=1, description="The columns, in order.")
    categorical: bool = Field(
        default=False, description="Ids (long) for an embedding instead of float values."
    )
    unknown: str | None = Field(
        default=None,
        min_length=1,
        description="The value unknown categorical values map to (added to a built vocabulary).",
    )
    baseline: str | int | dict[str, str | int] | None = Field(
        default=None,
        description="What removes a categorical value: marginal (a draw from the column's "
        "values in the data) or one value, or a mapping column -> either; default the unknown "
        "value if declared, else marginal.",
    )

    @model_validator(mode="after")
    def _categorical_only(self) -> FieldParams:
        if not self.categorical:
            for key in ("unknown", "baseline"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} applies to categorical fields only")
        if isinstance(self.baseline, dict):
            other = next((c for c in self.baseline if c not in self.columns), None)
            if other is not None:
                raise ValueError(f"baseline names '{other}', which is not a column of the field")
        if len(set(self.columns)) != len(self.columns):
            twice = next(c for c in self.columns if self.columns.count(c) > 1)
            raise ValueError(f"column '{twice}' is listed twice")
        return self


InputsParam = dict[str, FieldParams] | list[FieldParams]


@dataclass(frozen=True)
class InputField:
    """A field as run: its name, columns, and where they sit in a sample's row."""

    name: str
    columns: tuple[str, ...]
    categorical: bool
    start: int  # first column's index in the row
    unknown: str | None = None
    baseline: str = "marginal"  # "marginal" or a value of the vocabulary
    #: The spec's location of the field (``data.inputs.<name>`` or ``data.inputs.<i>``).
    loc: tuple[str | int, ...] = ()

    @property
    def positions(self) -> range:
        return range(self.start, self.start + len(self.columns))

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "columns": list(self.columns),
            "categorical": self.categorical,
            "unknown": self.unknown,
            "baseline": self.baseline if self.categorical else None,
        }


class StructuredDataset(TensorDataset):
    """Rows of every field's columns (ids as exact floats), with the fields, the
    vocabularies of categorical columns and each one's reference id (None: marginal)."""

    def __init__(
        self,
        inputs: torch.Tensor,
        labels: np.ndarray,
        *,
        fields: list[InputField],
        keyword: bool,
        vocabularies: dict[str, list[str]],
        references: dict[str, int | None],
        embedding_layers: dict[str, str] | None,
        class_names: list[str],
        description: str,
    ) -> None:
        names = [c for f in fields for c in f.columns]
        super().__init__(
            inputs,
            labels,
            modality="structured",
            class_names=class_names,
            feature_names=names,
            description=description,
        )
        self.fields = list(fields)
        self.keyword = keyword
        self.vocabularies = dict(vocabularies)
        self.references = dict(references)
        self.embedding_layers = dict(embedding_layers or {})

    @property
    def categorical(self) -> list[int]:
        """Row positions of the categorical columns."""
        return [i for f in self.fields if f.categorical for i in f.positions]

    def field_of(self, column: str) -> InputField:
        return next(f for f in self.fields if column in f.columns)

    def summary(self, embeddings: dict[str, str] | None = None) -> list[dict[str, object]]:
        """``results.json`` data.inputs: each field, and per column its embedding layer."""
        out = []
        for f in self.fields:
            entry = f.to_dict()
            if f.categorical:
                entry["embedding_layers"] = {c: (embeddings or {}).get(c) for c in f.columns}
                entry["vocabulary_sizes"] = {
                    c: len(self.vocabularies[c]) if c in self.vocabularies else None
                    for c in f.columns
                }
            out.append(entry)
        return out


def fields_of(inputs: InputsParam) -> tuple[list[tuple[str, FieldParams, Loc]], bool]:
    """``(name, params, loc)`` per field and whether the model takes them by keyword."""
    if isinstance(inputs, dict):
        return [(name, f, ("data", "inputs", name)) for name, f in inputs.items()], True
    out = []
    for i, f in enumerate(inputs):
        if f.name is None:
            raise SpecError.at(
                ("data", "inputs", i),
                "a positional field needs a name: (name: user); or give inputs as a mapping "
                "of forward's keyword to the field",
            )
        out.append((f.name, f, ("data", "inputs", i)))
    names = [n for n, _, _ in out]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise SpecError.at(("data", "inputs"), f"field name '{twice}' is used twice")
    return out, False


def check_fields(
    inputs: InputsParam, header: list[str], label: str, path: Path
) -> tuple[list[tuple[str, FieldParams, Loc]], bool, list[int]]:
    """The fields, whether keyword, and the CSV column of every field column in row order;
    every problem (unknown column, one in two fields, the label as an input) in one error."""
    fields, keyword = fields_of(inputs)
    issues: list[SpecIssue] = []
    owner: dict[str, str] = {}
    cols: list[int] = []
    named = [h for h in header if h]
    for name, f, loc in fields:
        for j, column in enumerate(f.columns):
            at = (*loc, "columns", j)
            if column == label:
                issues.append(
                    SpecIssue(f"'{column}' is the label column; it cannot also be an input", at)
                )
            elif column not in header:
                issues.append(
                    SpecIssue(
                        f"column '{column}' is not in {path}.{did_you_mean(column, named)} "
                        f"Columns: {', '.join(named)}",
                        at,
                    )
                )
            elif column in owner:
                issues.append(
                    SpecIssue(
                        f"column '{column}' is already in field '{owner[column]}'; a column "
                        "belongs to one field",
                        at,
                    )
                )
            else:
                owner[column] = name
                cols.append(header.index(column))
    if issues:
        raise SpecError(issues)
    return fields, keyword, cols


def read_vocabulary(path: Path, loc: Loc) -> list[str]:
    """A vocabulary file: a JSON list of values, or one value a line (id = index)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError.at(loc, f"cannot read vocabulary {path}: {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError.at(loc, f"{path} is not JSON: {exc}") from exc
        if not isinstance(values, list):
            raise SpecError.at(loc, f"{path} must hold a JSON list of values (id = index)")
        values = [str(v) for v in values]
    else:
        values = [line.strip() for line in text.splitlines() if line.strip()]
    if not values:
        raise SpecError.at(loc, f"vocabulary {path} is empty")
    twice = next((v for v in values if values.count(v) > 1), None) if len(values) < 5000 else None
    if twice is None and len(set(values)) != len(values):
        twice = "a value"
    if twice is not None:
        raise SpecError.at(loc, f"vocabulary {path} lists {twice} twice")
    return values


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def categorical_ids(
    cells: list[tuple[int, str]],
    column: str,
    vocabulary: list[str] | None,
    unknown: str | None,
    *,
    path: Path,
    loc: Loc,
    vocab_loc: Loc,
) -> tuple[np.ndarray, list[str] | None]:
    """Ids of one column's ``(line, value)`` cells and its vocabulary (None: the values are
    ids as they are). Errors name the value, the column and the line."""
    values = [v.strip() for _, v in cells]
    for (line, _), v in zip(cells, values, strict=True):
        if not v:
            raise SpecError.at(("data", "path"), f"{path} line {line}, column '{column}' is empty")
    ints = [_is_int(v) for v in values]
    if vocabulary is None and any(ints) and not all(ints):
        r = ints.index(False)
        raise SpecError.at(
            ("data", "path"),
            f"{path} line {cells[r][0]}, column '{column}': '{values[r]}' is not an integer id, "
            "but the column's other values are; fix the cell, or give the column a vocabulary "
            f"file (data.vocabularies.{column}) to map its values through",
        )
    if vocabulary is None and all(ints):
        ids = np.array([int(v) for v in values], dtype=np.int64)
        bad = np.flatnonzero((ids < 0) | (ids >= MAX_ID))
        if len(bad):
            line = cells[int(bad[0])][0]
            raise SpecError.at(
                ("data", "path"),
                f"{path} line {line}, column '{column}': id {ids[bad[0]]} is outside "
                f"0..{MAX_ID - 1}",
            )
        if unknown is not None and not _is_int(unknown):
            raise SpecError.at(
                (*loc, "unknown"),
                f"column '{column}' holds integer ids; unknown must be one: '{unknown}' is not",
            )
        return ids, None
    if vocabulary is None:
        vocabulary = sorted(set(values) | ({unknown} if unknown is not None else set()))
    elif unknown is not None and unknown not in vocabulary:
        raise SpecError.at(
            (*loc, "unknown"),
            f"unknown value '{unknown}' is not in the vocabulary of column '{column}'"
            f"{did_you_mean(unknown, vocabulary)}",
        )
    index = {v: i for i, v in enumerate(vocabulary)}
    fallback = index.get(unknown) if unknown is not None else None
    ids = np.empty(len(values), dtype=np.int64)
    for r, v in enumerate(values):
        found = index.get(v, fallback)
        if found is None:
            raise SpecError.at(
                vocab_loc,
                f"{path} line {cells[r][0]}, column '{column}': value '{v}' is not in the "
                f"vocabulary{did_you_mean(v, vocabulary)}; add it, or declare unknown: <value> "
                "on the field to map unknown values to it",
            )
        ids[r] = found
    return ids, vocabulary


def baseline_of(
    f: FieldParams, column: str, vocabulary: list[str] | None, loc: Loc
) -> tuple[str, int | None]:
    """The field's ``baseline`` for one column: ("marginal", None) or (value, its id)."""
    value = f.baseline if f.baseline is not None else f.unknown
    at = (*loc, "baseline")
    if isinstance(value, dict):
        value = value.get(column, f.unknown)
        at = (*at, column)
    if value is None or value == "marginal":
        return "marginal", None
    text = str(value)
    if vocabulary is None:
        if not _is_int(text):
            raise SpecError.at(
                at,
                f"column '{column}' holds integer ids; baseline is marginal or an id, not '{text}'",
            )
        return text, int(text)
    if text not in vocabulary:
        raise SpecError.at(
            at,
            f"baseline '{text}' is not a value of column '{column}'"
            f"{did_you_mean(text, vocabulary)}",
        )
    return text, vocabulary.index(text)


def from_arrays(
    arrays: dict[str, np.ndarray],
    labels: np.ndarray,
    inputs: InputsParam,
    *,
    path: Path,
    vocabularies: dict[str, Path] | None,
    embedding_layers: dict[str, str] | None,
    class_names: list[str],
) -> StructuredDataset:
    """Structured data from one array per field (``.npz``/``.pt``: the field's name is the
    key): ``(N,)`` or ``(N, k)`` for ``k`` columns; categorical arrays hold integer ids (a
    vocabulary file, if given, names them for the report). Every problem in one SpecError."""
    fields, keyword = fields_of(inputs)
    issues: list[SpecIssue] = []
    seen: dict[str, str] = {}
    n = len(labels)
    parts: list[np.ndarray] = []
    built: list[InputField] = []
    vocabs: dict[str, list[str]] = {}
    references: dict[str, int | None] = {}
    start = 0
    for name, f, loc in fields:
        for j, column in enumerate(f.columns):
            if column in seen:
                issues.append(
                    SpecIssue(
                        f"column '{column}' is already in field '{seen[column]}'; a column "
                        "belongs to one field",
                        (*loc, "columns", j),
                    )
                )
            seen.setdefault(column, name)
        if name not in arrays:
            keys = sorted(arrays)
            issues.append(
                SpecIssue(
                    f"{path} has no array '{name}' for field '{name}'.{did_you_mean(name, keys)} "
                    f"Arrays: {', '.join(keys)}",
                    loc,
                )
            )
            continue
        array = np.asarray(arrays[name])
        k = len(f.columns)
        if array.ndim == 1 and k == 1:
            array = array[:, None]
        if array.ndim != 2 or array.shape != (n, k):
            issues.append(
                SpecIssue(
                    f"array '{name}' in {path} has shape {array.shape}; field '{name}' has {k} "
                    f"column{'s' if k > 1 else ''} and there are {n} labels: expected "
                    f"{(n, k) if k > 1 else f'({n},) or ({n}, 1)'}",
                    loc,
                )
            )
            continue
        if f.categorical:
            if not np.issubdtype(array.dtype, np.integer):
                issues.append(
                    SpecIssue(
                        f"array '{name}' in {path} has dtype {array.dtype}; a categorical "
                        "field holds integer ids",
                        loc,
                    )
                )
                continue
            bad = np.argwhere((array < 0) | (array >= MAX_ID))
            if len(bad):
                r, c = (int(v) for v in bad[0])
                issues.append(
                    SpecIssue(
                        f"array '{name}' in {path}: sample {r}, column '{f.columns[c]}' has id "
                        f"{array[r, c]}, outside 0..{MAX_ID - 1}",
                        loc,
                    )
                )
                continue
            for column in f.columns:
                file = (vocabularies or {}).get(column)
                vocab = None
                if file is not None:
                    try:
                        vocab = read_vocabulary(file, ("data", "vocabularies", column))
                    except SpecError as exc:
                        issues.extend(exc.issues)
                        continue
                    vocabs[column] = vocab
                try:
                    _, ref = baseline_of(f, column, vocab, loc)
                except SpecError as exc:
                    issues.extend(exc.issues)
                    continue
                references[column] = ref
        elif not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            issues.append(
                SpecIssue(
                    f"array '{name}' in {path} has dtype {array.dtype}; expected numbers", loc
                )
            )
            continue
        elif not np.isfinite(array.astype(np.float64)).all():
            r = int(np.argwhere(~np.isfinite(array.astype(np.float64)))[0, 0])
            issues.append(
                SpecIssue(f"array '{name}' in {path} has NaN or infinite values (sample {r})", loc)
            )
            continue
        parts.append(array.astype(np.float64))
        shown = [_shown(f, c) for c in f.columns] if f.categorical else []
        pairs = ", ".join(f"{c}={v}" for c, v in zip(f.columns, shown, strict=False))
        built.append(
            InputField(
                name=name,
                columns=tuple(f.columns),
                categorical=f.categorical,
                start=start,
                unknown=f.unknown,
                baseline=shown[0] if len(set(shown)) == 1 else pairs or "marginal",
                loc=loc,
            )
        )
        start += k
    for column in (vocabularies or {}) | (embedding_layers or {}):
        if column not in {c for _, f, _ in fields if f.categorical for c in f.columns}:
            key = "vocabularies" if column in (vocabularies or {}) else "embedding_layers"
            issues.append(
                SpecIssue(
                    f"'{column}' is not a categorical column of the inputs", ("data", key, column)
                )
            )
    if issues:
        raise SpecError(issues)
    values = np.concatenate(parts, axis=1)
    sizes = ", ".join(f"{f.name} ({len(f.columns)})" for f in built)
    return StructuredDataset(
        torch.from_numpy(values.astype(np.float32)),
        labels,
        fields=built,
        keyword=keyword,
        vocabularies=vocabs,
        references=references,
        embedding_layers=embedding_layers,
        class_names=class_names,
        description=f"tensors {path}: {n} samples, fields {sizes}",
    )


def _shown(f: FieldParams, column: str) -> str:
    """The field's baseline for one column as written (``marginal`` by default)."""
    value = f.baseline if f.baseline is not None else f.unknown
    if isinstance(value, dict):
        value = value.get(column, f.unknown)
    return "marginal" if value is None else str(value)
