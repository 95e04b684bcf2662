"""Inputs and labels saved as arrays: ``.pt``/``.pth``, ``.npy`` (+ a labels file) or ``.npz``.

Files are read safely: ``torch.load(weights_only=True)`` and ``np.load(allow_pickle=False)``,
so a file that needs code to load is refused. The samples' rank gives the modality
unless the spec names it: ``(N, F)`` is tabular, ``(N, C, H, W)`` is images, and
``(N, H, W)`` is one-channel images (the channel is added).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import IO, Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from auditor.data.base import (
    DataSource,
    Modality,
    StaticInfo,
    TensorDataset,
    default_class_names,
)
from auditor.data.structured_table import InputsParam, StructuredDataset, fields_of, from_arrays
from auditor.errors import SpecError
from auditor.paths import ExistingFile
from auditor.plugin import Params
from auditor.suggest import did_you_mean

_DEFAULT_KEYS = {".pt": ("inputs", "labels"), ".pth": ("inputs", "labels"), ".npz": ("x", "y")}
_SUFFIXES = ".pt, .pth, .npy or .npz"


class TensorsParams(Params):
    """Which file holds the arrays and what they mean."""

    path: ExistingFile = Field(
        description="A .pt/.pth file (dict or (inputs, labels) tuple), a .npy file of inputs "
        "(with labels: ...), or a .npz file."
    )
    labels: ExistingFile | None = Field(
        default=None, description="A .npy file of integer labels, for .npy inputs."
    )
    inputs_key: str | None = Field(
        default=None,
        min_length=1,
        description='Key of the inputs in a dict (.pt/.pth default "inputs", .npz default "x").',
    )
    labels_key: str | None = Field(
        default=None,
        min_length=1,
        description='Key of the labels in a dict (.pt/.pth default "labels", .npz default "y").',
    )
    modality: Literal["image", "tabular"] | None = Field(
        default=None, description="image or tabular; inferred from the samples' rank if unset."
    )
    class_names: list[str] | None = Field(
        default=None, min_length=1, description='Names of classes 0, 1, ...; default "0", "1", ...'
    )
    feature_names: list[str] | None = Field(
        default=None, min_length=1, description="Names of the columns of tabular inputs."
    )
    inputs: InputsParam | None = Field(
        default=None,
        min_length=1,
        description="Named input fields (.npz/.pt dict: one array per field, under the field's "
        "name): field -> {columns: [...], categorical: true|false, baseline: marginal|<id>}, "
        "or a list of fields with name: (positional). Samples are then structured data.",
    )
    embedding_layers: dict[str, str] | None = Field(
        default=None,
        description="Categorical column -> the nn.Embedding it feeds; default: found by one "
        "forward pass.",
    )
    vocabularies: dict[str, ExistingFile] | None = Field(
        default=None,
        description="Categorical column -> a file naming its ids (one value a line, or a JSON "
        "list), for the report.",
    )

    @model_validator(mode="after")
    def _fields_alone(self) -> TensorsParams:
        if self.inputs is None:
            for key in ("embedding_layers", "vocabularies"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} applies to data with inputs (fields) only")
        else:
            for key in ("inputs_key", "modality", "feature_names"):
                if getattr(self, key) is not None:
                    raise ValueError(f"with inputs, each field names its array; leave {key} out")
        return self


class TensorsDataSource(DataSource):
    """Arrays from a .pt, .pth, .npy or .npz file, held in memory."""

    name: ClassVar[str] = "tensors"
    Params: ClassVar[type[TensorsParams]] = TensorsParams

    @classmethod
    def static_info(cls, params: TensorsParams) -> StaticInfo | None:  # type: ignore[override]
        """Shape from the .npy/.npz header (no array is read); None for .pt/.pth files,
        whose shapes are only known by unpickling them."""
        if params.inputs is not None:
            fields, _ = fields_of(params.inputs)
            names = [c for _, f, _ in fields for c in f.columns]
            return StaticInfo("structured", (len(names),), names, params.class_names)
        shape = _header_shape(params)
        if shape is None or not 2 <= len(shape) <= 4:
            return None  # load() says what is wrong with the file
        sample = tuple(int(side) for side in shape[1:])
        modality = params.modality or _infer_modality(len(sample))
        if modality == "image" and len(sample) == 2:
            sample = (1, *sample)
        if (modality == "tabular") != (len(sample) == 1):
            return None
        features = params.feature_names if modality == "tabular" else None
        return StaticInfo(modality, sample, features, params.class_names)

    def load(self, params: TensorsParams) -> TensorDataset:  # type: ignore[override]
        if params.inputs is not None:
            return _structured(params)
        raw_inputs, raw_labels = _read(params)
        inputs = _inputs(raw_inputs, params.path)
        labels = _labels(raw_labels, len(inputs), params)
        modality = params.modality or _infer_modality(inputs.ndim - 1)
        inputs = _fit_modality(inputs, modality, params)
        class_names = _class_names(params.class_names, labels)
        feature_names = _feature_names(params.feature_names, modality, inputs.shape[1:])
        return TensorDataset(
            inputs,
            labels,
            modality=modality,
            class_names=class_names,
            feature_names=feature_names,
            description=f"tensors {params.path}: {len(labels)} samples of shape "
            f"{tuple(inputs.shape[1:])}",
        )


def _structured(params: TensorsParams) -> StructuredDataset:
    """One array per field of ``inputs`` and the labels, from a .npz or a .pt/.pth dict."""
    suffix = params.path.suffix.lower()
    if suffix not in _DEFAULT_KEYS:
        raise SpecError.at(
            ("data", "path"),
            f"{params.path}: fields (inputs) are read from a .npz file or a .pt/.pth dict, one "
            "array per field",
        )
    if params.labels is not None:
        raise SpecError.at(("data", "labels"), f"{params.path} holds its own labels (under a key)")
    if suffix == ".npz":
        try:
            with np.load(params.path, allow_pickle=False) as archive:
                found: dict[str, Any] = {key: archive[key] for key in archive.files}
        except (ValueError, OSError) as exc:
            raise SpecError.at(
                ("data", "path"), f"{params.path} could not be read as a .npz archive: {exc}"
            ) from exc
    else:
        found = _torch_dict(params)
    key = params.labels_key or _DEFAULT_KEYS[suffix][1]
    if key not in found:
        keys = sorted(found)
        raise SpecError.at(
            ("data", "labels_key") if params.labels_key else ("data", "path"),
            f"{params.path} has no labels '{key}'.{did_you_mean(key, keys)} Arrays: "
            f"{', '.join(keys)}; name them with labels_key",
        )
    arrays = {k: _as_array(v, f"array '{k}'", params.path) for k, v in found.items() if k != key}
    labels = _labels(
        found[key], len(np.asarray(_as_array(found[key], "labels", params.path))), params
    )
    return from_arrays(
        arrays,
        labels,
        params.inputs,  # type: ignore[arg-type]
        path=params.path,
        vocabularies=params.vocabularies,
        embedding_layers=params.embedding_layers,
        class_names=_class_names(params.class_names, labels),
    )


def _torch_load(params: TensorsParams, hint: str = "") -> Any:
    """``torch.load(weights_only=True)`` of the spec's file (never code); a SpecError at
    ``data.path`` saying why it could not be loaded, and ``hint``."""
    try:
        return torch.load(params.path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as exc:
        raise SpecError.at(
            ("data", "path"),
            f"{params.path} could not be loaded with torch.load(weights_only=True) "
            f"({_unpickling_reason(exc)}){hint}",
        ) from exc


def _torch_dict(params: TensorsParams) -> dict[str, Any]:
    data = _torch_load(params)
    if not isinstance(data, dict):
        raise SpecError.at(
            ("data", "path"),
            f"{params.path} holds a {type(data).__name__}; with inputs it must be a dict of one "
            "tensor per field and the labels",
        )
    return {str(k): v for k, v in data.items()}


# -- reading ----------------------------------------------------------------------------


def _header_shape(params: TensorsParams) -> tuple[int, ...] | None:
    """The inputs' shape from a .npy file's header or a .npz member's, without the data."""
    suffix = params.path.suffix.lower()
    try:
        if suffix == ".npy":
            with params.path.open("rb") as fh:
                return _npy_header(fh)
        if suffix == ".npz":
            member = f"{params.inputs_key or _DEFAULT_KEYS['.npz'][0]}.npy"
            with zipfile.ZipFile(params.path) as archive:
                if member not in archive.namelist():
                    return None
                with archive.open(member) as fh:
                    return _npy_header(fh)
    except (OSError, ValueError, zipfile.BadZipFile):
        return None  # load() reads the file and reports what is wrong with it
    return None


def _npy_header(fh: IO[bytes]) -> tuple[int, ...] | None:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        return None
    return None if dtype.hasobject else tuple(shape)


def _read(params: TensorsParams) -> tuple[Any, Any]:
    """``(inputs, labels)`` as stored, checking that the params fit the file type."""
    suffix = params.path.suffix.lower()
    if suffix not in (*_DEFAULT_KEYS, ".npy"):
        raise SpecError.at(
            ("data", "path"),
            f"{params.path} has an unsupported file type '{params.path.suffix}'; expected "
            f"{_SUFFIXES} (CSV files use source: csv)",
        )
    if suffix == ".npy":
        for key in ("inputs_key", "labels_key"):
            if getattr(params, key) is not None:
                raise SpecError.at(
                    ("data", key), f"{key} applies to .pt, .pth and .npz files, not to .npy"
                )
        if params.labels is None:
            raise SpecError.at(
                ("data", "labels"),
                f"{params.path} holds only inputs; name a .npy file of labels with labels: ...",
            )
        return _npy(params.path, ("data", "path")), _npy(params.labels, ("data", "labels"))
    if params.labels is not None:
        raise SpecError.at(
            ("data", "labels"),
            f"labels is only for .npy inputs; {params.path} holds its own labels (under a key)",
        )
    if suffix == ".npz":
        return _from_npz(params)
    return _from_torch(params)


def _npy(path: Path, loc: tuple[str, ...]) -> np.ndarray:
    if path.suffix.lower() != ".npy":
        raise SpecError.at(loc, f"{path} is not a .npy file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise SpecError.at(loc, f"{path} could not be read as a .npy array: {exc}") from exc


def _from_npz(params: TensorsParams) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(params.path, allow_pickle=False) as archive:
            found = {key: archive[key] for key in archive.files}
    except (ValueError, OSError) as exc:
        raise SpecError.at(
            ("data", "path"), f"{params.path} could not be read as a .npz archive: {exc}"
        ) from exc
    return _pick(found, params, ".npz")


def _from_torch(params: TensorsParams) -> tuple[Any, Any]:
    data = _torch_load(
        params, "; save plain tensors, e.g. torch.save({'inputs': x, 'labels': y}, path)"
    )
    if isinstance(data, dict):
        return _pick(data, params, params.path.suffix.lower())
    if isinstance(data, tuple | list) and len(data) == 2:
        for key in ("inputs_key", "labels_key"):
            if getattr(params, key) is not None:
                raise SpecError.at(
                    ("data", key), f"{params.path} holds a {type(data).__name__}, not a dict"
                )
        return data[0], data[1]
    kind = f"a {type(data).__name__}" + (
        f" of {len(data)} items" if isinstance(data, tuple | list) else ""
    )
    raise SpecError.at(
        ("data", "path"),
        f"{params.path} holds {kind}; expected a dict with inputs and labels, or a tuple "
        "(inputs, labels)",
    )


def _unpickling_reason(exc: BaseException) -> str:
    """The cause in torch's long message, without its advice to turn weights_only off."""
    text = str(exc)
    match = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\s+Please use|\n\n|$)", text, re.S)
    reason = match.group(1) if match else text.strip().splitlines()[0] if text.strip() else ""
    return reason.strip().rstrip(".") or type(exc).__name__


def _pick(found: dict[str, Any], params: TensorsParams, suffix: str) -> tuple[Any, Any]:
    """The inputs and labels entries of a dict, by the configured or default keys."""
    defaults = _DEFAULT_KEYS[suffix]
    picked = []
    for field, default in zip(("inputs_key", "labels_key"), defaults, strict=True):
        key = getattr(params, field) or default
        if key not in found:
            keys = [str(k) for k in found]
            loc = ("data", field) if getattr(params, field) else ("data", "path")
            raise SpecError.at(
                loc,
                f"{params.path} has no key '{key}'.{did_you_mean(key, keys)} Keys: "
                f"{', '.join(keys) or '(none)'}; name the right one with {field}",
            )
        picked.append(found[key])
    return picked[0], picked[1]


# -- checking ---------------------------------------------------------------------------


def _as_array(value: Any, what: str, path: Path) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        # numpy has no bfloat16; half precision widens losslessly to float32.
        return (value.float() if value.dtype in (torch.bfloat16, torch.float16) else value).numpy()
    if isinstance(value, np.ndarray):
        return value
    raise SpecError.at(
        ("data", "path"), f"{what} in {path} are a {type(value).__name__}, not a tensor or array"
    )


def _inputs(value: Any, path: Path) -> torch.Tensor:
    loc = ("data", "path")
    array = _as_array(value, "inputs", path)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) or np.iscomplexobj(
        array
    ):
        raise SpecError.at(loc, f"inputs in {path} have dtype {array.dtype}; expected numbers")
    if array.ndim < 2 or array.ndim > 4:
        raise SpecError.at(
            loc,
            f"inputs in {path} have shape {array.shape}; expected (N, features), (N, H, W) or "
            "(N, C, H, W)",
        )
    if len(array) == 0:
        raise SpecError.at(loc, f"inputs in {path} hold no samples (shape {array.shape})")
    inputs = torch.from_numpy(np.array(array, dtype=np.float32))
    finite = torch.isfinite(inputs.reshape(len(inputs), -1)).all(dim=1)
    if not bool(finite.all()):
        first = int(torch.nonzero(~finite)[0, 0])
        raise SpecError.at(loc, f"inputs in {path} have NaN or infinite values (sample {first})")
    return inputs


def _labels(value: Any, count: int, params: TensorsParams) -> np.ndarray:
    loc = ("data", "labels") if params.labels is not None else ("data", "path")
    where = params.labels or params.path
    array = _as_array(value, "labels", where)
    if array.ndim != 1 or len(array) != count:
        raise SpecError.at(
            loc, f"labels in {where} have shape {array.shape}; expected ({count},), one per input"
        )
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise SpecError.at(
            loc, f"labels in {where} have dtype {array.dtype}; expected integer class indices"
        )
    labels = array.astype(np.int64)
    if (labels < 0).any():
        first = int(np.flatnonzero(labels < 0)[0])
        raise SpecError.at(
            loc, f"labels in {where} must be >= 0; sample {first} has label {labels[first]}"
        )
    return labels


def _infer_modality(sample_rank: int) -> Modality:
    return "tabular" if sample_rank == 1 else "image"


def _fit_modality(inputs: torch.Tensor, modality: Modality, params: TensorsParams) -> torch.Tensor:
    """Inputs in the modality's layout: ``(N, F)`` or ``(N, C, H, W)``."""
    shape = tuple(inputs.shape)
    if modality == "tabular" and inputs.ndim != 2:
        raise SpecError.at(
            ("data", "modality"),
            f"tabular inputs must have shape (N, features); {params.path} has {shape}",
        )
    if modality == "image":
        if inputs.ndim == 2:
            raise SpecError.at(
                ("data", "modality"),
                f"image inputs must have shape (N, H, W) or (N, C, H, W); {params.path} has "
                f"{shape}",
            )
        if inputs.ndim == 3:
            inputs = inputs.unsqueeze(1)  # (N, H, W) -> (N, 1, H, W)
    return inputs


def _class_names(names: list[str] | None, labels: np.ndarray) -> list[str]:
    if names is None:
        return default_class_names(labels)
    loc = ("data", "class_names")
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise SpecError.at(loc, f"class name '{twice}' appears more than once")
    top = int(labels.max())
    if top >= len(names):
        raise SpecError.at(loc, f"class_names has {len(names)} names but the labels go up to {top}")
    return list(names)


def _feature_names(
    names: list[str] | None, modality: Modality, sample_shape: tuple[int, ...]
) -> list[str] | None:
    if names is None:
        return None
    loc = ("data", "feature_names")
    if modality != "tabular":
        raise SpecError.at(loc, "feature_names is only for tabular inputs; these are images")
    if len(names) != sample_shape[0]:
        raise SpecError.at(
            loc,
            f"feature_names has {len(names)} names but the inputs have {sample_shape[0]} features",
        )
    return list(names)
