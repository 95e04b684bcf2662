"""A CSV file with a header row: numeric feature columns and one label column.

Labels become class indices. With ``class_names`` a label is matched by name (or, if
no label is a name, read as an index into the list). Without it, labels that are all
whole numbers >= 0 are the class indices themselves (so a file that lacks class 7 still
gives class 8 the index 8, as the model sees it); any other labels are sorted (as numbers
when they all are numbers) and numbered 0..K-1.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from auditor.data.base import DataSource, TensorDataset
from auditor.errors import SpecError
from auditor.paths import ExistingFile
from auditor.plugin import Params
from auditor.suggest import did_you_mean


class CsvParams(Params):
    """Which file, which column is the label, which are the features."""

    path: ExistingFile = Field(description="CSV file with a header row.")
    label: str = Field(min_length=1, description="Name of the label column.")
    features: list[str] | None = Field(
        default=None, min_length=1, description="Feature columns, in order; default all others."
    )
    standardize: bool = Field(
        default=False, description="z-score each feature with the file's own mean and std."
    )
    class_names: list[str] | None = Field(
        default=None, min_length=1, description="Class names in index order; default from labels."
    )
    delimiter: str = Field(
        default=",", min_length=1, max_length=1, description="Field separator, one character."
    )


class CsvDataSource(DataSource):
    """Numeric columns of a CSV file as tabular data, read with the csv module."""

    name: ClassVar[str] = "csv"
    Params: ClassVar[type[CsvParams]] = CsvParams

    def load(self, params: CsvParams) -> TensorDataset:  # type: ignore[override]
        header, rows = _read(params.path, params.delimiter)
        label_col = _column(header, params.label, ("data", "label"), params.path)
        feature_cols = _feature_columns(header, label_col, params)
        features = _numbers(rows, feature_cols, header, params.path)
        if params.standardize:
            features = _standardize(features)
        raw_labels = [(line, row[label_col].strip()) for line, row in rows]
        labels, class_names = _labels(raw_labels, params, header[label_col])
        feature_names = [header[i] for i in feature_cols]
        return TensorDataset(
            torch.from_numpy(features.astype(np.float32)),
            labels,
            modality="tabular",
            class_names=class_names,
            feature_names=feature_names,
            description=f"CSV {params.path}: {len(labels)} rows, {len(feature_names)} features, "
            f"label '{params.label}' ({len(class_names)} classes)",
        )


Rows = list[tuple[int, list[str]]]  # (line number in the file, fields)


def _read(path: Path, delimiter: str) -> tuple[list[str], Rows]:
    """Header names and the non-empty rows, each with its line number."""
    loc = ("data", "path")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            rows = [(reader.line_num, row) for row in reader if any(f.strip() for f in row)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SpecError.at(loc, f"{path} is not a readable CSV file: {exc}") from exc
    if not header or not any(h.strip() for h in header):
        raise SpecError.at(loc, f"{path} is empty; expected a header row and data rows")
    header = [h.strip() for h in header]
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise SpecError.at(loc, f"{path} has two columns named '{name}'")
        seen.add(name)
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


def _column(header: list[str], name: str, loc: tuple[str | int, ...], path: Path) -> int:
    if name not in header:
        named = [h for h in header if h]
        raise SpecError.at(
            loc,
            f"column '{name}' is not in {path}.{did_you_mean(name, named)} "
            f"Columns: {', '.join(named)}",
        )
    return header.index(name)


def _feature_columns(header: list[str], label_col: int, params: CsvParams) -> list[int]:
    if params.features is None:
        cols = [i for i in range(len(header)) if i != label_col]
        if not cols:
            raise SpecError.at(("data", "path"), f"{params.path} has no columns besides the label")
        for i in cols:
            if not header[i]:
                raise SpecError.at(
                    ("data", "features"),
                    f"column {i + 1} of {params.path} has no name; name it in the header or "
                    "list the features to use",
                )
        return cols
    cols = []
    for k, name in enumerate(params.features):
        loc = ("data", "features", k)
        col = _column(header, name, loc, params.path)
        if col == label_col:
            raise SpecError.at(loc, f"'{name}' is the label column; it cannot also be a feature")
        if col in cols:
            raise SpecError.at(loc, f"feature '{name}' is listed twice")
        cols.append(col)
    return cols


def _numbers(rows: Rows, cols: list[int], header: list[str], path: Path) -> np.ndarray:
    """The feature cells as float64 ``(rows, features)``; names the first bad cell."""
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


def _standardize(features: np.ndarray) -> np.ndarray:
    """z-scores per column; a constant column becomes zeros rather than NaN."""
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    return (features - mean) / np.where(std > 0, std, 1.0)


def _labels(
    raw: list[tuple[int, str]], params: CsvParams, column: str
) -> tuple[np.ndarray, list[str]]:
    """Class indices and class names (see the module docstring for the rules)."""
    for line, text in raw:
        if not text:
            raise SpecError.at(
                ("data", "path"),
                f"{params.path} line {line}, column '{column}' is empty; expected a label",
            )
    values = [text for _, text in raw]
    integers = [_whole(v) for v in values]
    if params.class_names is not None:
        return _labels_by_names(raw, integers, params), list(params.class_names)
    if all(i is not None and i >= 0 for i in integers):
        top = max(i for i in integers if i is not None)
        return np.asarray(integers, dtype=np.int64), [str(i) for i in range(top + 1)]
    distinct = sorted(set(values), key=_sort_key(values))
    index = {v: k for k, v in enumerate(distinct)}
    return np.asarray([index[v] for v in values], dtype=np.int64), distinct


def _labels_by_names(
    raw: list[tuple[int, str]], integers: list[int | None], params: CsvParams
) -> np.ndarray:
    names = list(params.class_names or [])
    loc = ("data", "class_names")
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise SpecError.at(loc, f"class name '{twice}' appears more than once")
    index = {name: k for k, name in enumerate(names)}
    if all(text in index for _, text in raw):
        return np.asarray([index[text] for _, text in raw], dtype=np.int64)
    if not any(text in index for _, text in raw) and all(
        i is not None and 0 <= i < len(names) for i in integers
    ):
        return np.asarray(integers, dtype=np.int64)
    line, text = next((line, text) for line, text in raw if text not in index)
    raise SpecError.at(
        loc,
        f"label '{text}' ({params.path} line {line}) is not in class_names."
        f"{did_you_mean(text, names)} class_names: {', '.join(names)}",
    )


def _whole(text: str) -> int | None:
    """``"3"`` or ``"3.0"`` -> 3; anything else -> None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value.is_integer() else None


def _sort_key(values: list[str]) -> Callable[[str], Any]:
    """Numeric order when every label is a number (so -1 < 2 < 10), else text order."""
    try:
        for v in set(values):
            float(v)
    except ValueError:
        return lambda v: v
    return lambda v: (float(v), v)
