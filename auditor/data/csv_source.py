"""A CSV file with a header row: numeric feature columns and one label column.

Feature columns are every column but the label (less ``exclude``), or ``features`` in the
order given; a column of text is an error that names it and shows the ``exclude`` line.
Labels become class indices by the rules of ``auditor.data.class_labels``: text labels need
``classes``, the model's class order. ``standardize`` z-scores the features with the
training statistics (or, with ``true``, the file's own); the dataset keeps them so that
reports show values in the CSV's own units.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator

from auditor.data.base import DataSource, StaticInfo, TensorDataset
from auditor.data.class_labels import class_indices, names_as_text, yaml_item
from auditor.data.standardization import Scaling, StandardizeParam, scaling
from auditor.data.structured_table import (
    FieldParams,
    InputField,
    InputsParam,
    StructuredDataset,
    baseline_of,
    categorical_ids,
    check_fields,
    read_vocabulary,
)
from auditor.errors import Loc, SpecError, SpecIssue
from auditor.paths import ExistingFile
from auditor.plugin import Params
from auditor.suggest import did_you_mean

#: Files up to this size are read whole by ``auditor validate`` (about 1 s on a laptop core).
STATIC_READ_LIMIT = 8 * 2**20


class CsvParams(Params):
    """Which file, which column is the label, which are the features."""

    path: ExistingFile = Field(description="CSV file with a header row.")
    label: str = Field(min_length=1, description="Name of the label column.")
    features: list[str] | None = Field(
        default=None, min_length=1, description="Feature columns, in order; default all others."
    )
    exclude: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Columns that are not features (ids, notes); the others are, in file order.",
    )
    standardize: StandardizeParam = Field(
        default=False,
        description="z-score the features: {mean: [...], std: [...]} or a JSON/NPZ file with "
        "the training statistics; true uses the file's own statistics.",
    )
    classes: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The model's class order (class names by index); needed for text labels.",
    )
    class_names: list[str] | None = Field(
        default=None, min_length=1, description="Older name of classes."
    )
    delimiter: str = Field(
        default=",", min_length=1, max_length=1, description="Field separator, one character."
    )

    inputs: InputsParam | None = Field(
        default=None,
        min_length=1,
        description="Named input fields for a model with several arguments: field -> "
        "{columns: [...], categorical: true|false, unknown: <value>, baseline: marginal|<value>} "
        "(keyword arguments), or a list of fields with name: (positional). Samples are then "
        "structured data.",
    )
    embedding_layers: dict[str, str] | None = Field(
        default=None,
        description="Categorical column -> the nn.Embedding it feeds (gradient methods "
        "attribute at its output); default: found by one forward pass.",
    )
    vocabularies: dict[str, ExistingFile] | None = Field(
        default=None,
        description="Categorical column -> vocabulary file (one value a line, or a JSON list; "
        "id = index); default: the column's distinct values, sorted.",
    )

    _numbers_as_names = field_validator("classes", "class_names", mode="before")(names_as_text)

    @model_validator(mode="after")
    def _one_class_list(self) -> CsvParams:
        if self.classes is not None and self.class_names is not None:
            raise ValueError("give classes or class_names (its older name), not both")
        if self.inputs is None:
            for key in ("embedding_layers", "vocabularies"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} applies to data with inputs (fields) only")
        else:
            for key in ("features", "exclude"):
                if getattr(self, key) is not None:
                    raise ValueError(f"with inputs, the fields list the columns; leave {key} out")
            if self.standardize is not False:
                raise ValueError("standardize is not supported with inputs (yet)")
        return self

    @property
    def class_order(self) -> tuple[list[str] | None, str]:
        """The class names given and the key that gave them."""
        if self.class_names is not None:
            return list(self.class_names), "class_names"
        return (list(self.classes) if self.classes is not None else None), "classes"


class CsvDataset(TensorDataset):
    """The features as fed to the model, and the scaling that undoes standardization."""

    def __init__(self, *args: Any, scaling: Scaling | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scaling = scaling

    def raw_values(self, indices: np.ndarray) -> np.ndarray | None:
        """Features in the CSV's own units, float64 ``(len(indices), F)``; None if unscaled."""
        if self.scaling is None:
            return None
        return self.scaling.invert(self.get(indices).numpy().astype(np.float64))


@dataclass(frozen=True)
class CsvTable:
    """A parsed CSV file: raw features, labels and names."""

    feature_names: list[str]
    excluded: list[str]
    features: np.ndarray  # float64 (rows, F), in the CSV's units
    labels: np.ndarray
    class_names: list[str]
    scaling: Scaling | None


class CsvDataSource(DataSource):
    """Numeric columns of a CSV file as tabular data, read with the csv module."""

    name: ClassVar[str] = "csv"
    Params: ClassVar[type[CsvParams]] = CsvParams

    def load(self, params: CsvParams) -> CsvDataset | StructuredDataset:  # type: ignore[override]
        if params.inputs is not None:
            return parse_structured(params)
        table = parse(params)
        features = table.features
        if table.scaling is not None:
            features = table.scaling.apply(features)
        return CsvDataset(
            torch.from_numpy(features.astype(np.float32)),
            table.labels,
            modality="tabular",
            class_names=table.class_names,
            feature_names=table.feature_names,
            description=_description(params, table),
            scaling=table.scaling,
        )

    @classmethod
    def static_info(cls, params: CsvParams) -> StaticInfo:  # type: ignore[override]
        """Feature names and shape from the header; a file up to ``STATIC_READ_LIMIT`` is
        read and checked whole (text columns, labels and classes, statistics), so that
        ``validate`` finds what ``run`` would."""
        header = _read_header(params.path, params.delimiter)
        label_col = _column(header, params.label, ("data", "label"), params.path)
        if params.inputs is not None:
            return _structured_info(params, header)
        cols, _ = _feature_columns(header, label_col, params)
        names, class_names = [header[i] for i in cols], params.class_order[0]
        issues: tuple[SpecIssue, ...] = ()
        if params.path.stat().st_size <= STATIC_READ_LIMIT:
            try:
                table = parse(params)
            except SpecError as exc:  # still planned with the header's names
                issues = tuple(exc.issues)
            else:
                names, class_names = table.feature_names, table.class_names
        return StaticInfo("tabular", (len(names),), names, class_names, issues)


def _structured_info(params: CsvParams, header: list[str]) -> StaticInfo:
    """Fields checked against the header; a small file is parsed whole (values, vocabularies)."""
    assert params.inputs is not None
    fields, _, _ = check_fields(params.inputs, header, params.label, params.path)
    names = [c for _, f, _ in fields for c in f.columns]
    class_names, issues = params.class_order[0], ()
    if params.path.stat().st_size <= STATIC_READ_LIMIT:
        try:
            dataset = parse_structured(params)
        except SpecError as exc:
            issues = tuple(exc.issues)
        else:
            class_names = dataset.class_names
    return StaticInfo("structured", (len(names),), names, class_names, issues)


def parse_structured(params: CsvParams) -> StructuredDataset:
    """The fields' columns of every row: dense ones as numbers, categorical ones as ids through
    their vocabularies; every problem found is raised in one SpecError."""
    assert params.inputs is not None
    header, rows = _read(params.path, params.delimiter)
    label_col = _column(header, params.label, ("data", "label"), params.path)
    fields, keyword, cols = check_fields(params.inputs, header, params.label, params.path)
    issues: list[SpecIssue] = []
    categorical = {c for _, f, _ in fields if f.categorical for c in f.columns}
    for key in ("embedding_layers", "vocabularies"):
        for column in getattr(params, key) or {}:
            if column not in categorical:
                issues.append(
                    SpecIssue(
                        f"'{column}' is not a categorical column of the inputs."
                        f"{did_you_mean(column, sorted(categorical))} Categorical columns: "
                        f"{', '.join(sorted(categorical)) or 'none'}",
                        ("data", key, column),
                    )
                )
    raw_labels = [(line, row[label_col].strip()) for line, row in rows]
    classes, key = params.class_order
    labelled = _collect(
        issues,
        lambda: class_indices(
            raw_labels, classes, column=params.label, path=params.path, classes_key=key
        ),
    )
    values = np.zeros((len(rows), len(cols)), dtype=np.float64)
    vocabularies: dict[str, list[str]] = {}
    references: dict[str, int | None] = {}
    built: list[InputField] = []
    position = 0
    for name, f, loc in fields:
        built_field = _field_values(
            issues, params, header, rows, name, f, loc, position, values, vocabularies, references
        )
        built.append(built_field)
        position += len(f.columns)
    if issues or labelled is None:
        raise SpecError(issues)
    labels, class_names = labelled
    sizes = ", ".join(f"{f.name} ({len(f.columns)})" for f in built)
    description = (
        f"CSV {params.path}: {len(rows)} rows, fields {sizes}, label '{params.label}' "
        f"({len(class_names)} classes)"
    )
    return StructuredDataset(
        torch.from_numpy(values.astype(np.float32)),
        labels,
        fields=built,
        keyword=keyword,
        vocabularies=vocabularies,
        references=references,
        embedding_layers=params.embedding_layers,
        class_names=class_names,
        description=description,
    )


def _field_values(
    issues: list[SpecIssue],
    params: CsvParams,
    header: list[str],
    rows: Rows,
    name: str,
    f: FieldParams,
    loc: Loc,
    start: int,
    values: np.ndarray,
    vocabularies: dict[str, list[str]],
    references: dict[str, int | None],
) -> InputField:
    """Fill one field's columns of ``values``; its problems go to ``issues``."""
    baselines: list[str] = []
    for j, column in enumerate(f.columns):
        col = header.index(column)
        if not f.categorical:
            line, first = next(((ln, r[col].strip()) for ln, r in rows if r[col].strip()), (0, ""))
            if first and not _is_number(first):
                issues.append(
                    SpecIssue(
                        f"column '{column}' ('{first}' on line {line}) holds text, not numbers; "
                        "put it in a field with categorical: true",
                        (*loc, "columns", j),
                    )
                )
                continue
            found = _collect(issues, partial(_numbers, rows, [col], header, params))
            if found is not None:
                values[:, start + j] = found[:, 0]
            continue
        file = (params.vocabularies or {}).get(column)
        vocab_loc = ("data", "vocabularies", column) if file is not None else ("data", "path")
        given = _collect(issues, partial(read_vocabulary, file, vocab_loc)) if file else None
        if file is not None and given is None:
            continue
        cells = [(line, row[col]) for line, row in rows]
        parsed = _collect(
            issues,
            partial(
                categorical_ids,
                cells,
                column,
                given,
                f.unknown,
                path=params.path,
                loc=loc,
                vocab_loc=vocab_loc,
            ),
        )
        if parsed is None:
            continue
        ids, vocabulary = parsed
        values[:, start + j] = ids
        if vocabulary is not None:
            vocabularies[column] = vocabulary
        ref = _collect(issues, partial(baseline_of, f, column, vocabulary, loc))
        if ref is not None:
            baselines.append(f"{column}={ref[0]}")
            references[column] = ref[1]
    values_given = {b.split("=", 1)[1] for b in baselines}
    baseline = next(iter(values_given)) if len(values_given) == 1 else ", ".join(baselines)
    baseline = baseline or "marginal"
    return InputField(
        name=name,
        columns=tuple(f.columns),
        categorical=f.categorical,
        start=start,
        unknown=f.unknown,
        baseline=baseline,
        loc=loc,
    )


def _description(params: CsvParams, table: CsvTable) -> str:
    text = (
        f"CSV {params.path}: {len(table.labels)} rows, {len(table.feature_names)} features, "
        f"label '{params.label}' ({len(table.class_names)} classes)"
    )
    if table.excluded:
        text += f"; excluded: {', '.join(table.excluded)}"
    if table.scaling is not None:
        text += f"; {table.scaling.sentence()}"
    return text


def parse(params: CsvParams) -> CsvTable:
    """Read and check the whole file; every problem found is raised in one SpecError."""
    header, rows = _read(params.path, params.delimiter)
    label_col = _column(header, params.label, ("data", "label"), params.path)
    issues: list[SpecIssue] = []
    columns = _collect(issues, lambda: _feature_columns(header, label_col, params))
    raw_labels = [(line, row[label_col].strip()) for line, row in rows]
    classes, key = params.class_order
    labelled = _collect(
        issues,
        lambda: class_indices(
            raw_labels, classes, column=params.label, path=params.path, classes_key=key
        ),
    )
    if columns is None:
        raise SpecError(issues)
    feature_cols, excluded = columns
    names = [header[i] for i in feature_cols]
    features = _collect(issues, lambda: _numbers(rows, feature_cols, header, params))
    found = (
        _collect(issues, lambda: scaling(params.standardize, features, names, "the CSV file"))
        if features is not None
        else None
    )
    if issues or labelled is None or features is None:
        raise SpecError(issues)
    labels, class_names = labelled
    return CsvTable(names, excluded, features, labels, class_names, found)


Rows = list[tuple[int, list[str]]]  # (line number in the file, fields)
T = TypeVar("T")


def _collect(issues: list[SpecIssue], step: Callable[[], T]) -> T | None:
    """Run one check; a SpecError's issues are kept (and the result is None)."""
    try:
        return step()
    except SpecError as exc:
        issues.extend(exc.issues)
        return None


def _read(path: Path, delimiter: str) -> tuple[list[str], Rows]:
    """Header names and the non-empty rows, each with its line number."""
    loc = ("data", "path")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = _header(next(reader, None), path)
            rows = [(reader.line_num, row) for row in reader if any(f.strip() for f in row)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SpecError.at(loc, f"{path} is not a readable CSV file: {exc}") from exc
    if not rows:
        raise SpecError.at(loc, f"{path} has a header but no data rows")
    for line, row in rows:
        if len(row) != len(header):
            raise SpecError.at(
                loc,
                f"{path} line {line} has {len(row)} fields but the header has {len(header)} "
                f"(delimiter {delimiter!r})",
            )
    return header, rows


def _read_header(path: Path, delimiter: str) -> list[str]:
    """The header row alone (for files too large to read whole at validation)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _header(next(csv.reader(handle, delimiter=delimiter), None), path)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SpecError.at(("data", "path"), f"{path} is not a readable CSV file: {exc}") from exc


def _header(header: list[str] | None, path: Path) -> list[str]:
    loc = ("data", "path")
    if not header or not any(h.strip() for h in header):
        raise SpecError.at(loc, f"{path} is empty; expected a header row and data rows")
    header = [h.strip() for h in header]
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise SpecError.at(loc, f"{path} has two columns named '{name}'")
        seen.add(name)
    return header


def _column(header: list[str], name: str, loc: Loc, path: Path) -> int:
    if name not in header:
        named = [h for h in header if h]
        raise SpecError.at(
            loc,
            f"column '{name}' is not in {path}.{did_you_mean(name, named)} "
            f"Columns: {', '.join(named)}",
        )
    return header.index(name)


def _feature_columns(
    header: list[str], label_col: int, params: CsvParams
) -> tuple[list[int], list[str]]:
    """Column numbers of the features, in order, and the names ``exclude`` dropped."""
    if params.features is not None:
        if params.exclude is not None:
            raise SpecError.at(
                ("data", "exclude"),
                "exclude drops columns from the default features (all but the label); with "
                "features listed, leave it out",
            )
        return _listed_features(header, label_col, params), []
    dropped = _excluded_columns(header, label_col, params)
    cols = [i for i in range(len(header)) if i != label_col and i not in dropped]
    if not cols:
        what = "exclude drops every column" if dropped else "there are no columns"
        raise SpecError.at(
            ("data", "exclude") if dropped else ("data", "path"),
            f"{params.path} has no feature columns: {what} besides the label",
        )
    for i in cols:
        if not header[i]:
            raise SpecError.at(
                ("data", "features"),
                f"column {i + 1} of {params.path} has no name; name it in the header or "
                "list the features to use",
            )
    return cols, [header[i] for i in dropped]


def _listed_features(header: list[str], label_col: int, params: CsvParams) -> list[int]:
    cols: list[int] = []
    for k, name in enumerate(params.features or []):
        loc = ("data", "features", k)
        col = _column(header, name, loc, params.path)
        if col == label_col:
            raise SpecError.at(loc, f"'{name}' is the label column; it cannot also be a feature")
        if col in cols:
            raise SpecError.at(loc, f"feature '{name}' is listed twice")
        cols.append(col)
    return cols


def _excluded_columns(header: list[str], label_col: int, params: CsvParams) -> list[int]:
    cols: list[int] = []
    for k, name in enumerate(params.exclude or []):
        loc = ("data", "exclude", k)
        col = _column(header, name, loc, params.path)
        if col == label_col:
            raise SpecError.at(loc, f"'{name}' is the label column; exclude lists feature columns")
        if col in cols:
            raise SpecError.at(loc, f"'{name}' is listed twice")
        cols.append(col)
    return cols


def _numbers(rows: Rows, cols: list[int], header: list[str], params: CsvParams) -> np.ndarray:
    """The feature cells as float64 ``(rows, features)``; names the first bad cell."""
    _reject_text_columns(rows, cols, header, params)
    try:  # the fast path; the loop below finds and names the first bad cell
        out = np.array([[float(row[c]) for c in cols] for _, row in rows], dtype=np.float64)
    except ValueError:
        pass
    else:
        if np.isfinite(out).all():
            return out.reshape(len(rows), len(cols))
    path = params.path
    out = np.empty((len(rows), len(cols)), dtype=np.float64)
    for r, (line, row) in enumerate(rows):
        for c, col in enumerate(cols):
            text = row[col].strip()
            where = f"{path} line {line}, column '{header[col]}'"
            if not text:
                raise SpecError.at(("data", "path"), f"{where} is empty; expected a number")
            try:
                value = float(text)
            except ValueError:
                raise SpecError.at(("data", "path"), f"{where}: '{text}' is not a number") from None
            if not math.isfinite(value):
                raise SpecError.at(("data", "path"), f"{where}: '{text}' is not a finite number")
            out[r, c] = value
    return out


def _reject_text_columns(rows: Rows, cols: list[int], header: list[str], params: CsvParams) -> None:
    """A column whose first value is text holds ids or categories, not numbers: say how to
    drop it (a stray word in a numeric column is reported by ``_numbers`` as a bad cell)."""
    text: list[tuple[int, str, int]] = []  # (column, first value, its line)
    for col in cols:
        line, value = next(
            ((ln, row[col].strip()) for ln, row in rows if row[col].strip()), (0, "")
        )
        if value and not _is_number(value):
            text.append((col, value, line))
    if not text:
        return
    if params.features is not None:
        raise SpecError(
            SpecIssue(
                f"column '{header[col]}' ('{value}' on line {line}) holds text, not numbers; "
                "take it out of features",
                ("data", "features", params.features.index(header[col])),
            )
            for col, value, line in text
        )
    described = [f"'{header[col]}' ('{value}' on line {line})" for col, value, line in text]
    drop = ", ".join(
        yaml_item(n) for n in [*(params.exclude or []), *(header[c] for c, _, _ in text)]
    )
    if len(text) == 1:
        what = f"column {described[0]} holds text, not numbers; drop it"
    else:
        listed = f"{', '.join(described[:-1])} and {described[-1]}"
        what = f"columns {listed} hold text, not numbers; drop them"
    raise SpecError.at(
        ("data", "exclude") if params.exclude else ("data", "path"),
        f"{what} with exclude: [{drop}]",
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
