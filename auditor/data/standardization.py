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
import zipfile
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
#: Largest statistics file read (bytes; for NPZ, of its arrays unpacked): a million
#: features' mean and std fit easily, and /dev/zero or a wrong file cannot hang or fill memory.
MAX_STATISTICS_BYTES = 16 * 2**20


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
    if suffix not in (".json", ".npz"):
        raise SpecError.at(
            loc, f"{path} has an unsupported file type '{path.suffix}'; expected .json or .npz"
        )
    try:
        data = _read_json(path) if suffix == ".json" else _read_npz(path)
    except OSError as exc:
        raise SpecError.at(loc, f"{path} could not be read: {exc.strerror or exc}") from exc
    if not isinstance(data, dict):
        raise SpecError.at(loc, f"{path} holds a JSON {type(data).__name__}; {_EXPECTED}")
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
_TOO_LARGE = (
    "{path} is larger than {mb} MB{how}; a statistics file holds one mean and one std per feature"
)


def _too_large(path: Path, how: str = "") -> SpecError:
    return SpecError.at(
        ("data", "standardize"),
        _TOO_LARGE.format(path=path, mb=MAX_STATISTICS_BYTES // 2**20, how=how),
    )


def _read_json(path: Path) -> Any:
    """The JSON value in ``path``, reading at most ``MAX_STATISTICS_BYTES``."""
    loc: Loc = ("data", "standardize")
    with path.open("rb") as file:
        raw = file.read(MAX_STATISTICS_BYTES + 1)
    if len(raw) > MAX_STATISTICS_BYTES:
        raise _too_large(path)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SpecError.at(loc, f"{path} is not a readable JSON file: {exc}") from exc


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """``mean`` and ``std`` of an NPZ archive whose arrays unpack to at most
    ``MAX_STATISTICS_BYTES`` (checked in the zip directory before anything is unpacked)."""
    loc: Loc = ("data", "standardize")
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_STATISTICS_BYTES:
            raise _too_large(path, " unpacked")
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in ("mean", "std") if key in archive.files}
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise SpecError.at(loc, f"{path} is not a readable NPZ file: {exc}") from exc


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
