"""Model source ``python``: a class or factory named by ``package.module:Name``, plus weights."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from auditor.errors import RunError, SpecError
from auditor.models.base import LoadedModel, ModelSource
from auditor.models.weights import load_weights_into
from auditor.paths import ExistingDir, ExistingFile
from auditor.plugin import Params as PluginParams
from auditor.suggest import did_you_mean

_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
CLASS_LOC = ("model", "class")
INIT_LOC = ("model", "init")
WEIGHTS_LOC = ("model", "weights")


class PythonModelSource(ModelSource):
    """A model class (or a function returning a module) imported from Python code.

    ``class: package.module:Name`` is imported with the ``pythonpath`` folders in front of
    ``sys.path``, called with ``init`` as keyword arguments, and given ``weights`` (a
    safetensors or ``torch.save`` state dict) when the spec names a file.
    """

    name: ClassVar[str] = "python"

    class Params(PluginParams):
        model_config = ConfigDict(populate_by_name=True)

        class_: str = Field(
            alias="class",
            description="Import path 'package.module:ClassName' of an nn.Module class or of a "
            "function that returns one.",
        )
        init: dict[str, Any] = Field(
            default_factory=dict, description="Keyword arguments passed to the class."
        )
        weights: ExistingFile | None = Field(
            default=None,
            description="State dict to load (.safetensors or torch.save); none keeps the "
            "class's own initialisation.",
        )
        trust_pickle: bool = Field(
            default=False,
            description="Allow a weights pickle that runs code when loaded. Only for files "
            "from a trusted source.",
        )
        pythonpath: list[ExistingDir] = Field(
            default_factory=list,
            description="Folders put in front of sys.path while importing the class "
            "(relative to the spec file).",
        )

        @field_validator("class_")
        @classmethod
        def _import_path(cls, value: str) -> str:
            if not _IMPORT_PATH.match(value):
                raise ValueError(f"expected 'package.module:ClassName', got {value!r}")
            return value

    def load(self, params: BaseModel) -> LoadedModel:
        params = cast(PythonModelSource.Params, params)
        # The folders stay on sys.path for the whole load: the class may import lazily, and
        # a trusted pickle of a whole module names the class by its import path.
        with on_sys_path(params.pythonpath):
            factory = import_object(params.class_)
            module = build(factory, params.class_, params.init)
            sha = None
            if params.weights is not None:
                sha = load_weights_into(
                    module, params.weights, trust_pickle=params.trust_pickle, loc=WEIGHTS_LOC
                )
        origin = f"weights {params.weights.name}" if params.weights else "its own initialisation"
        return LoadedModel(
            module=self.finish(module),
            source=self.name,
            description=f"{params.class_}({_kwargs(params.init)}) with {origin}",
            weights_path=params.weights,
            weights_sha256=sha,
        )


def import_object(target: str) -> Any:
    """The object named by ``package.module:Attr.Sub``; errors name the spec's ``model.class``."""
    module_name, _, attr_path = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not _is_prefix(exc.name, module_name):
            # The module exists but one of its own imports is missing: the environment's fault.
            raise RunError(f"importing '{module_name}' failed: {exc}") from exc
        hint = did_you_mean(module_name, _sibling_modules(module_name))
        raise SpecError.at(CLASS_LOC, f"cannot import '{module_name}': {exc}.{hint}") from exc
    except Exception as exc:
        raise RunError(f"importing '{module_name}' failed: {type(exc).__name__}: {exc}") from exc
    owner = module_name
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            known = [n for n in dir(obj) if not n.startswith("_")]
            raise SpecError.at(
                CLASS_LOC,
                f"cannot import '{target}': '{owner}' has no attribute '{part}'."
                f"{did_you_mean(part, known)}",
            )
        obj = getattr(obj, part)
        owner = f"{owner}.{part}" if owner != module_name else f"{module_name}:{part}"
    return obj


def build(factory: Any, target: str, init: dict[str, Any]) -> nn.Module:
    """Call ``factory(**init)`` and check that it gave an ``nn.Module``."""
    if not callable(factory):
        raise SpecError.at(
            CLASS_LOC, f"'{target}' is a {type(factory).__name__}, not a class or function"
        )
    _check_signature(factory, target, init)
    call = f"{target}({_kwargs(init)})"
    try:
        module = factory(**init)
    except (TypeError, ValueError) as exc:
        raise SpecError.at(INIT_LOC, f"{call} failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise RunError(f"{call} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, nn.Module):
        raise SpecError.at(
            CLASS_LOC, f"{call} returned a {type(module).__name__}, expected a torch.nn.Module"
        )
    return module


def _check_signature(factory: Any, target: str, init: dict[str, Any]) -> None:
    """Reject unknown or missing keyword arguments before running any of the user's code."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    try:
        signature.bind(**init)
    except TypeError as exc:
        accepted = [
            p.name
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        unknown = [k for k in init if k not in accepted]
        hint = did_you_mean(unknown[0], accepted) if unknown else ""
        raise SpecError.at(
            INIT_LOC,
            f"{target} does not accept these arguments: {exc}.{hint} "
            f"Accepted: {', '.join(accepted) or 'none'}",
        ) from exc


@contextmanager
def on_sys_path(folders: Sequence[Path]) -> Iterator[None]:
    """Put ``folders`` in front of ``sys.path`` for the duration of the block."""
    added = [str(f) for f in folders]
    sys.path[:0] = added
    # A failed import leaves stale "not found" entries in the path caches.
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for entry in added:
            if entry in sys.path:
                sys.path.remove(entry)


def _is_prefix(missing: str, module_name: str) -> bool:
    return module_name == missing or module_name.startswith(missing + ".")


def _sibling_modules(module_name: str) -> list[str]:
    """Importable names next to ``module_name``, for a did-you-mean."""
    parent, _, _ = module_name.rpartition(".")
    if not parent:
        return [m.name for m in pkgutil.iter_modules()]
    try:
        package = importlib.import_module(parent)
    except ImportError:
        return [m.name for m in pkgutil.iter_modules()]
    paths = getattr(package, "__path__", None)
    return [f"{parent}.{m.name}" for m in pkgutil.iter_modules(paths)] if paths else []


def _kwargs(init: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in init.items())
