"""Safe loading of weights files and fitting them into a module.

Weights come from safetensors or from ``torch.load(weights_only=True)``. A pickle that
needs code to load (a class, a function: anything that could run on unpickling) is
refused unless the spec says ``trust_pickle: true`` (design.md "Bad input and faults").
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from auditor.errors import Loc, SpecError
from auditor.hashing import sha256_file

#: Keys under which training scripts commonly nest the state dict in a checkpoint.
CONTAINER_KEYS = ("state_dict", "model_state_dict")
#: How many keys of each kind a mismatch message lists before "and N more".
SHOW = 5

_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)")


def load_state_dict(
    path: Path, *, trust_pickle: bool, loc: Loc = ("model", "weights")
) -> dict[str, torch.Tensor]:
    """Read a state dict (name -> tensor, on CPU) from a ``.safetensors`` or ``torch.save`` file.

    Checkpoints that nest the state dict under ``state_dict`` / ``model_state_dict`` are
    unwrapped; a whole pickled ``nn.Module`` (only loadable with ``trust_pickle``) gives
    its ``state_dict()``. Every failure is a ``SpecError`` at ``loc`` naming the file.
    """
    path = Path(path)
    if path.suffix == ".safetensors" or _looks_like_safetensors(path):
        obj: Any = _load_safetensors(path, loc)
    else:
        obj = _load_torch(path, trust_pickle=trust_pickle, loc=loc)
    return _as_state_dict(obj, path, loc)


def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors file starts with an 8-byte header length and a JSON header."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 0 < int.from_bytes(head[:8], "little") < path.stat().st_size


def _load_safetensors(path: Path, loc: Loc) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise SpecError.at(
            loc, f"weights file {path} is not a valid safetensors file: {exc}"
        ) from exc


def _load_torch(path: Path, *, trust_pickle: bool, loc: Loc) -> Any:
    if path.stat().st_size == 0:
        raise _corrupt(path, "the file is empty", loc)
    try:
        with warnings.catch_warnings():
            # The TorchScript case is answered below with a clearer message than torch's.
            warnings.filterwarnings("ignore", message=".*looks like a TorchScript archive")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" not in text:
            raise _corrupt(path, exc, loc) from exc
        found = _GLOBAL.search(text)
        if found is None and "Unsupported operand" in text:
            # weights_only also rejects bytes that are no pickle at all.
            raise _corrupt(path, _reason(text), loc) from exc
        if not trust_pickle:
            needs = f"GLOBAL {found.group(1)}" if found else _reason(text)
            raise SpecError.at(
                loc,
                f"weights file {path} is a pickle that needs code to load ({needs}); "
                "refusing to run it. Convert it to safetensors or set "
                "model.trust_pickle: true if you trust its source",
            ) from exc
    except Exception as exc:  # zip errors, truncated files: the file is not what it claims
        if "TorchScript archive" in str(exc):
            raise SpecError.at(
                loc,
                f"weights file {path} is a TorchScript archive, not a state dict: use "
                "model.source: torchscript with path: set to this file",
            ) from exc
        raise _corrupt(path, exc, loc) from exc
    # Only reached with trust_pickle: the user vouched for this file's code.
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise SpecError.at(
            loc, f"weights file {path} could not be unpickled: {type(exc).__name__}: {exc}"
        ) from exc


def _reason(text: str) -> str:
    """The line of torch's long weights_only message that says what was wrong."""
    _, _, tail = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[0] if lines else "content that weights_only loading does not support"


def _corrupt(path: Path, exc: BaseException | str, loc: Loc) -> SpecError:
    if isinstance(exc, BaseException):
        text = str(exc).split(". This is an internal miniz error")[0]
        reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    else:
        reason = exc
    return SpecError.at(
        loc,
        f"weights file {path} cannot be read as a torch.save or safetensors file ({reason})",
    )


def _as_state_dict(obj: Any, path: Path, loc: Loc) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        for key in CONTAINER_KEYS:
            if key in obj and isinstance(obj[key], Mapping | nn.Module):
                return _as_state_dict(obj[key], path, loc)
    if not isinstance(obj, Mapping):
        raise SpecError.at(
            loc,
            f"weights file {path} holds a {type(obj).__name__}, expected a state dict "
            "(a mapping of parameter names to tensors)",
        )
    bad = [str(k) for k, v in obj.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if bad:
        raise SpecError.at(
            loc,
            f"weights file {path} is not a state dict: entries that are not name -> tensor: "
            f"{_listing(bad)}",
        )
    return dict(obj)


def fit_state_dict(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    loc: Loc = ("model", "weights"),
    *,
    path: Path | None = None,
) -> None:
    """Load ``state`` into ``module`` after checking that names and shapes match exactly.

    A ``module.`` prefix on every key (left by ``nn.DataParallel``) is stripped when that
    makes more keys fit. Mismatches raise one ``SpecError`` at ``loc`` that lists missing
    keys, unexpected keys and shape mismatches (the first few of each).
    """
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    state = _strip_data_parallel(dict(state), expected)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} (file {list(v.shape)}, model {list(expected[k])})"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != expected[k]
    ]
    problems = [
        f"{label}: {_listing(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", shapes),
        )
        if keys
    ]
    if problems:
        what = f"weights file {path} does" if path is not None else "the weights do"
        raise SpecError.at(
            loc,
            f"{what} not fit the model ({type(module).__name__}): " + "; ".join(problems),
        )
    module.load_state_dict(state, strict=True)


def _strip_data_parallel(
    state: dict[str, torch.Tensor], expected: Mapping[str, Any]
) -> dict[str, torch.Tensor]:
    prefix = "module."
    if not state or not all(k.startswith(prefix) for k in state):
        return state
    stripped = {k[len(prefix) :]: v for k, v in state.items()}
    if len(stripped.keys() & expected.keys()) > len(state.keys() & expected.keys()):
        return stripped
    return state


def _listing(items: list[str]) -> str:
    head = ", ".join(items[:SHOW])
    return head + (f" and {len(items) - SHOW} more" if len(items) > SHOW else "")


def load_weights_into(
    module: nn.Module, path: Path, *, trust_pickle: bool, loc: Loc = ("model", "weights")
) -> str:
    """Read ``path``, fit it into ``module`` and return the file's sha256 (for provenance)."""
    fit_state_dict(
        module, load_state_dict(path, trust_pickle=trust_pickle, loc=loc), loc, path=path
    )
    return sha256_file(path)
