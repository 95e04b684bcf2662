"""z-scoring of tabular features: with the training statistics, or the file's own.

``standardize`` in a tabular source's params is ``false`` (values as they are), ``true``
(the data file's own mean and std: not what the model was trained with), the training
statistics inline (``{mean: [...], std: [...]}``), or a path to a JSON or NPZ file that
holds them under the keys ``mean`` and ``std``. The statistics are kept with the dataset
so that reports can show values in the data's own units.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Discriminator, Field, Tag, model_validator

from auditor.errors import Loc, SpecError
from auditor.paths import ExistingFile
from auditor.plugin import Params

LIMIT = 1e15  # bound on statistics: far beyond any real feature's scale
MAX_FEATURES = 1_000_000


class TrainingStatistics(Params):
    """Mean and standard deviation of each feature in the training data, in feature order."""

    mean: list[Annotated[float, Field(ge=-LIMIT, le=LIMIT, allow_inf_nan=False)]] = Field(
        min_length=1, max_length=MAX_FEATURES, description="Mean of each feature."
    )
    std: list[Annotated[float, Field(gt=0.0, le=LIMIT, allow_inf_nan=False)]] = Field(
        min_length=1,
        max_length=MAX_FEATURES,
        description="Standard deviation of each feature, > 0.",
    )

    @model_validator(mode="after")
    def _same_length(self) -> TrainingStatistics:
        if len(self.mean) != len(self.std):
            raise ValueError(
                f"mean has {len(self.mean)} values but std has {len(self.std)}; give one per "
                "feature for both"
            )
        return self


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "standardize-flag"
    if isinstance(value, dict | TrainingStatistics):
        return "standardize-statistics"
    if isinstance(value, str | Path):
        return "standardize-file"
    return None


#: The ``standardize`` param: false, true, the statistics, or a JSON/NPZ file with them.
#: Tagged so that a bad value gets one error from the form it has, not one per form
#: (the tags are dropped from error locations by auditor.spec.errors).
StandardizeParam = Annotated[
    Annotated[bool, Tag("standardize-flag")]
    | Annotated[TrainingStatistics, Tag("standardize-statistics")]
    | Annotated[ExistingFile, Tag("standardize-file")],
    Discriminator(
        _kind,
        custom_error_type="standardize",
        custom_error_message="expected true, false, the training statistics "
        "{mean: [...], std: [...]} or a .json or .npz file with them",
    ),
]


@dataclass(frozen=True)
class Scaling:
    """``(x - mean) / scale`` per feature, and where the statistics came from."""

    mean: np.ndarray  # float64 (F,)
    scale: np.ndarray  # float64 (F,), > 0
    mode: Literal["training", "data"]
    origin: str  # "the spec", a file path, or the data file

    def apply(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.scale

    def invert(self, values: np.ndarray) -> np.ndarray:
        return values * self.scale + self.mean

    def sentence(self) -> str:
        """How the features were scaled, for the dataset's description (and the report)."""
        if self.mode == "data":
            return f"standardized with {self.origin}'s own statistics, not the training statistics"
        return f"standardized with the training statistics from {self.origin}"


def scaling(
    param: StandardizeParam, features: np.ndarray, names: list[str], data_name: str
) -> Scaling | None:
    """The scaling the param asks for, checked against the ``(rows, F)`` feature table.

    Raises ``SpecError`` at ``data.standardize`` when the statistics do not fit the features.
    """
    if param is False:
        return None
    if param is True:
        std = features.std(axis=0)
        # a constant column becomes zeros rather than NaN
        return Scaling(features.mean(axis=0), np.where(std > 0, std, 1.0), "data", data_name)
    if isinstance(param, TrainingStatistics):
        mean, std, origin = np.asarray(param.mean), np.asarray(param.std), "the spec"
    else:
        mean, std = read_statistics(Path(param))
        origin = str(param)
    check_statistics(mean, std, names, origin)
    return Scaling(mean.astype(np.float64), std.astype(np.float64), "training", origin)


def read_statistics(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``mean`` and ``std`` from a JSON object or an NPZ archive, as 1-D float arrays."""
    loc: Loc = ("data", "standardize")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise SpecError.at(loc, f"{path} is not a readable JSON file: {exc}") from exc
        if not isinstance(data, dict):
            raise SpecError.at(loc, f"{path} holds a JSON {type(data).__name__}; {_EXPECTED}")
    elif suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                data = {key: archive[key] for key in ("mean", "std") if key in archive.files}
        except (OSError, ValueError) as exc:
            raise SpecError.at(loc, f"{path} is not a readable NPZ file: {exc}") from exc
    else:
        raise SpecError.at(
            loc, f"{path} has an unsupported file type '{path.suffix}'; expected .json or .npz"
        )
    arrays = []
    for key in ("mean", "std"):
        if key not in data:
            raise SpecError.at(loc, f"{path} has no '{key}'; {_EXPECTED}")
        try:
            array = np.asarray(data[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise SpecError.at(loc, f"{path}: '{key}' is not a list of numbers") from None
        if array.ndim != 1:
            raise SpecError.at(
                loc, f"{path}: '{key}' has shape {array.shape}; expected one value per feature"
            )
        arrays.append(array)
    return arrays[0], arrays[1]


_EXPECTED = "expected keys mean and std, one value per feature"


def check_statistics(mean: np.ndarray, std: np.ndarray, names: list[str], origin: str) -> None:
    """One finite mean and one finite std > 0 per feature, or a SpecError saying which not."""
    loc: Loc = ("data", "standardize")
    if len(mean) != len(names) or len(std) != len(names):
        raise SpecError.at(
            loc,
            f"{origin} gives {len(mean)} means and {len(std)} stds for {len(names)} features "
            f"({_listing(names)}); give one of each per feature, in feature order",
        )
    for key, values in (("mean", mean), ("std", std)):
        for name, value in zip(names, values, strict=True):
            if not math.isfinite(value):
                raise SpecError.at(
                    loc, f"{origin}: {key} of feature '{name}' is {value}; expected a number"
                )
    for name, value in zip(names, std, strict=True):
        if value <= 0:
            raise SpecError.at(
                loc, f"{origin}: std of feature '{name}' is {value:g}; every std must be > 0"
            )


def _listing(names: list[str], most: int = 10) -> str:
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown}, ..."
