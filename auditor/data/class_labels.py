"""Labels read from a file's column turned into the model's class indices.

A model numbers its classes in an order that the data file does not tell: sorting text
labels gives a silent, plausible and often wrong order (a model trained with luminal,
basal, her2 as 0, 1, 2 would be scored against basal, her2, luminal). So:

- labels that are whole numbers >= 0 are the class indices themselves (a file that lacks
  class 7 still gives class 8 the index 8); ``classes``, if given, names them;
- other numeric labels (-1/1, 0.5/1.5) are numbered in numeric order, as scikit-learn's
  LabelEncoder does, unless ``classes`` lists them;
- text labels need ``classes``, the model's class order; without it the error lists the
  labels found and shows the line to add.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from auditor.errors import SpecError
from auditor.suggest import did_you_mean

MAX_LISTED = 30  # labels named in an error message
_PLAIN = re.compile(r"[A-Za-z_][\w.\-/]*(?: [\w.\-/]+)*")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n"}

Labels = list[tuple[int, str]]  # (line in the file, label text), stripped


def class_indices(
    raw: Labels, classes: list[str] | None, *, column: str, path: Path, classes_key: str
) -> tuple[np.ndarray, list[str]]:
    """Class index of every label and the class names (see the module docstring).

    ``classes_key`` is the spec key that gave ``classes`` (errors about them point there).
    """
    for line, text in raw:
        if not text:
            raise SpecError.at(
                ("data", "path"),
                f"{path} line {line}, column '{column}' is empty; expected a label",
            )
    values = [text for _, text in raw]
    integers = [_whole(v) for v in values]
    if classes is not None:
        return _by_classes(raw, integers, classes, path, classes_key), list(classes)
    if all(i is not None and i >= 0 for i in integers):
        top = max(i for i in integers if i is not None)
        return np.asarray(integers, dtype=np.int64), [str(i) for i in range(top + 1)]
    if not all(_is_number(v) for v in values):
        raise SpecError.at(("data", "label"), text_labels_message(column, values))
    distinct = sorted(set(values), key=lambda v: (float(v), v))
    index = {v: k for k, v in enumerate(distinct)}
    return np.asarray([index[v] for v in values], dtype=np.int64), distinct


def text_labels_message(column: str, values: list[str]) -> str:
    """The error for text labels without ``classes``: the labels found, the line to add."""
    distinct = sorted(set(values))
    shown = distinct[:MAX_LISTED]
    more = len(distinct) - len(shown)
    listing = ", ".join(shown) + (f", and {more} more" if more else "")
    line = ", ".join(yaml_item(v) for v in shown) + (", ..." if more else "")
    return (
        f"column '{column}' holds text labels ({listing}); give the model's class order: "
        f"classes: [{line}]"
    )


def yaml_item(text: str) -> str:
    """``text`` as an item of a YAML flow list: plain when YAML reads it back as that text."""
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML string


def names_as_text(value: Any) -> Any:
    """Before validation of ``classes``: numbers (``[0, 1]`` in YAML) become their text."""
    if isinstance(value, list):
        return [
            str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value
        ]
    return value


def _by_classes(
    raw: Labels, integers: list[int | None], classes: list[str], path: Path, key: str
) -> np.ndarray:
    loc = ("data", key)
    if len(set(classes)) != len(classes):
        twice = next(n for n in classes if classes.count(n) > 1)
        raise SpecError.at(loc, f"class name '{twice}' appears more than once")
    index = {name: k for k, name in enumerate(classes)}
    if all(text in index for _, text in raw):
        return np.asarray([index[text] for _, text in raw], dtype=np.int64)
    if not any(text in index for _, text in raw) and all(
        i is not None and i >= 0 for i in integers
    ):
        for (line, text), i in zip(raw, integers, strict=True):
            if i is not None and i >= len(classes):
                raise SpecError.at(
                    loc,
                    f"label {text} ({path} line {line}) is not a class index: {key} names "
                    f"{len(classes)} classes (indices 0 to {len(classes) - 1})",
                )
        return np.asarray(integers, dtype=np.int64)
    line, text = next((line, text) for line, text in raw if text not in index)
    return _unknown(text, line, classes, path, key)


def _unknown(text: str, line: int, classes: list[str], path: Path, key: str) -> np.ndarray:
    shown = ", ".join(classes[:MAX_LISTED]) + (", ..." if len(classes) > MAX_LISTED else "")
    raise SpecError.at(
        ("data", key),
        f"label '{text}' ({path} line {line}) is not in {key}.{did_you_mean(text, classes)} "
        f"{key}: {shown}",
    )


def _whole(text: str) -> int | None:
    """``"3"`` or ``"3.0"`` -> 3; anything else -> None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value.is_integer() else None


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
