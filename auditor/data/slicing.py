"""Which samples of a dataset an audit looks at (the spec's ``data.slice``), and batching.

Order of operations: ``classes`` filters first (keeping dataset order); then either
``start``/``stop`` cut the filtered order like a Python slice, or ``sample`` draws that
many without replacement (``numpy.random.default_rng(seed)``, returned sorted). ``indices``
names samples outright and is used alone. The result is deterministic for a given spec
and dataset.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from auditor.errors import SpecError
from auditor.suggest import did_you_mean

if TYPE_CHECKING:  # auditor.data.base imports torch; the report reads SliceSpec only
    from auditor.data.base import AuditDataset

#: Far above any dataset; larger values are typos, reported by pydantic.
MAX_INDEX = 2**40
Index = Annotated[int, Field(ge=0, le=MAX_INDEX)]
_SHOWN_CLASSES = 20  # how many class names an error lists before "..."


class SliceSpec(BaseModel):
    """The spec's ``data.slice``: a range, a seeded sample, some classes, or explicit indices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: int | None = Field(
        default=None, ge=0, le=MAX_INDEX, description="First position to keep (after classes)."
    )
    stop: int | None = Field(
        default=None, ge=1, le=MAX_INDEX, description="Position to stop before, like a slice."
    )
    sample: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Draw this many samples at random."
    )
    seed: int = Field(
        default=0, ge=0, le=2**32 - 1, description="Seed of the random draw for sample."
    )
    classes: list[Index | str] | None = Field(
        default=None, min_length=1, description="Keep only these classes (names or indices)."
    )
    indices: list[Index] | None = Field(
        default=None, min_length=1, description="Exactly these samples, in this order."
    )

    @model_validator(mode="after")
    def _compatible(self) -> SliceSpec:
        if self.indices is not None:
            others = [
                k for k in ("start", "stop", "sample", "classes") if getattr(self, k) is not None
            ]
            if others:
                raise ValueError(
                    f"indices cannot be combined with {', '.join(others)}; indices already name "
                    "the samples"
                )
        if self.sample is not None and (self.start is not None or self.stop is not None):
            raise ValueError(
                "sample cannot be combined with start or stop; use classes to narrow what is "
                "sampled"
            )
        if self.start is not None and self.stop is not None and self.start >= self.stop:
            raise ValueError(f"start ({self.start}) must be less than stop ({self.stop})")
        return self


def select_indices(spec: SliceSpec | None, dataset: AuditDataset) -> np.ndarray:
    """Dataset indices the slice selects, int64; raises SpecError if it selects none."""
    size = len(dataset)
    if size == 0:
        raise SpecError.at(("data",), "slice selects no samples: the dataset is empty")
    if spec is None:
        return np.arange(size, dtype=np.int64)
    if spec.indices is not None:
        return _explicit(spec.indices, size)
    pool = np.arange(size, dtype=np.int64)
    what = f"the {size} samples in the dataset"
    if spec.classes is not None:
        wanted = _class_ids(spec.classes, dataset.class_names)
        pool = np.flatnonzero(np.isin(dataset.labels, wanted)).astype(np.int64)
        shown = ", ".join(_class_label(c, dataset.class_names) for c in wanted)
        if len(pool) == 0:
            raise SpecError.at(
                _loc("classes"),
                f"slice selects no samples: none of the {size} samples is of "
                f"class{'es' if len(wanted) > 1 else ''} {shown}",
            )
        what = f"the {len(pool)} samples of class{'es' if len(wanted) > 1 else ''} {shown}"
    if spec.sample is not None:
        return _sample(pool, spec.sample, spec.seed, what)
    if spec.start is not None or spec.stop is not None:
        cut = pool[spec.start : spec.stop]
        if len(cut) == 0:
            raise SpecError.at(
                _loc("start"),
                f"slice selects no samples: start {spec.start} is at or past the end of {what}",
            )
        return cut
    return pool


def iter_batches(indices: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive chunks of ``indices`` of at most ``batch_size`` (the last may be shorter)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    for begin in range(0, len(indices), batch_size):
        yield indices[begin : begin + batch_size]


def _loc(field: str) -> tuple[str, ...]:
    return ("data", "slice", field)


def _explicit(indices: Sequence[int], size: int) -> np.ndarray:
    seen: set[int] = set()
    for index in indices:
        if index >= size:
            raise SpecError.at(
                _loc("indices"),
                f"index {index} is out of range for a dataset of {size} samples",
            )
        if index in seen:
            raise SpecError.at(_loc("indices"), f"index {index} is listed more than once")
        seen.add(index)
    return np.asarray(indices, dtype=np.int64)


def _class_ids(classes: Sequence[int | str], names: list[str]) -> list[int]:
    """Class indices for names or indices, in the order given, without repeats."""
    ids: list[int] = []
    for cls in classes:
        if isinstance(cls, int):
            if cls >= len(names):
                raise SpecError.at(
                    _loc("classes"),
                    f"class index {cls} is out of range; the dataset has {len(names)} classes "
                    f"(0..{len(names) - 1})",
                )
            index = cls
        elif cls in names:
            index = names.index(cls)
        else:
            listed = ", ".join(names[:_SHOWN_CLASSES])
            if len(names) > _SHOWN_CLASSES:
                listed += f", ... ({len(names)} in all)"
            raise SpecError.at(
                _loc("classes"),
                f"unknown class '{cls}'.{did_you_mean(cls, names)} Classes: {listed}",
            )
        if index not in ids:
            ids.append(index)
    return ids


def _class_label(index: int, names: list[str]) -> str:
    return names[index] if names[index] == str(index) else f"{index} ({names[index]})"


def _sample(pool: np.ndarray, count: int, seed: int, what: str) -> np.ndarray:
    if count > len(pool):
        raise SpecError.at(_loc("sample"), f"sample {count} is more than {what}")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pool), size=count, replace=False)
    return np.sort(pool[chosen])
