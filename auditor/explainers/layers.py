"""Find a module by its dotted path (``features.3``), with a helpful error."""

from __future__ import annotations

from torch import nn

from auditor.errors import SpecError
from auditor.suggest import did_you_mean


def resolve_layer(model: nn.Module, path: str) -> nn.Module:
    """The submodule at ``path``; a ``SpecError`` at ``params.layer`` listing candidates.

    A wrapper the runner puts around the user's model (``precision: bfloat16``) exposes it
    as ``wrapped_model``; paths are looked up there, as the spec's author wrote them.
    """
    model = getattr(model, "wrapped_model", model)
    modules = dict(model.named_modules())
    if path in modules and path:
        return modules[path]
    names = [n for n in modules if n]
    listed = ", ".join(names[:40]) + (f", ... ({len(names)} in all)" if len(names) > 40 else "")
    raise SpecError.at(
        ("params", "layer"),
        f"unknown layer '{path}'.{did_you_mean(path, names)} Layers: {listed}",
    )
