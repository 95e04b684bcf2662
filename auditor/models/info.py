"""A description of a loaded model for results and report: layers, their output shapes, sizes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from auditor.errors import RunError

if TYPE_CHECKING:  # torch is imported where a model is described: the report reads the tables
    import torch
    from torch import nn

    from auditor.models.base import LoadedModel


@dataclass
class LayerInfo:
    """One submodule: its dotted name (what ``gradcam``'s ``layer`` param takes), type, size."""

    name: str
    type: str
    #: Shape of its output for a batch of one (first tensor of a tuple output), when known.
    output_shape: list[int] | None
    #: Parameters owned by this module itself, not by its children.
    params: int


@dataclass
class ModelInfo:
    """What results.json and the report say about the model."""

    class_name: str
    total_params: int
    layers: list[LayerInfo]
    weights_sha256: str | None
    #: Shape of the model's output for a batch of one.
    output_shape: list[int] | None = None
    #: What could not be described (output shapes of TorchScript submodules).
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_model(loaded: LoadedModel, sample: torch.Tensor) -> ModelInfo:
    """Describe ``loaded.module`` with output shapes from one no-grad forward pass.

    ``sample`` is a batch ``(1, *input_shape)`` (only its first row is used). Forward hooks
    go on every submodule and are removed before returning, also when the forward fails
    (which is a ``RunError``: the model does not accept the data's inputs).
    """
    module = loaded.module
    shapes, output, notes = _trace_shapes(module, sample[:1])
    layers = [
        LayerInfo(
            name=name,
            type=_type_name(sub),
            output_shape=shapes.get(name),
            params=sum(p.numel() for p in sub.parameters(recurse=False)),
        )
        for name, sub in module.named_modules()
        if name
    ]
    return ModelInfo(
        class_name=_type_name(getattr(module, "inner", module)),  # a TextFeed's own model
        total_params=sum(p.numel() for p in module.parameters()),
        layers=layers,
        weights_sha256=loaded.weights_sha256,
        output_shape=_shape(output),
        notes=notes,
    )


def _trace_shapes(
    module: nn.Module, sample: torch.Tensor
) -> tuple[dict[str, list[int] | None], Any, list[str]]:
    import torch

    shapes: dict[str, list[int] | None] = {}
    refused: list[str] = []
    handles = []

    def record(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_module: nn.Module, _inputs: Any, out: Any) -> None:
            shapes.setdefault(name, _shape(out))  # a module called twice keeps its first call

        return hook

    try:
        for name, sub in module.named_modules():
            if not name:
                continue
            if isinstance(sub, torch.jit.ScriptModule):
                # Compiled code calls its submodules without Python: hooks would never fire
                # (traced modules) or are refused (scripted ones).
                refused.append(name)
                continue
            handles.append(sub.register_forward_hook(record(name)))
        with torch.no_grad():
            try:
                output = module(sample)
            except Exception as exc:
                raise RunError(
                    f"the model's forward pass failed on a sample of shape "
                    f"{list(sample.shape)}: {type(exc).__name__}: {exc}"
                ) from exc
    finally:
        for handle in handles:
            handle.remove()
    notes = [f"no output shapes for {len(refused)} TorchScript modules"] if refused else []
    return shapes, output, notes


def _shape(out: Any) -> list[int] | None:
    import torch

    if isinstance(out, torch.Tensor):
        return list(out.shape)
    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        return list(out[0].shape)
    return None


def _type_name(module: nn.Module) -> str:
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        return getattr(module, "original_name", type(module).__name__)
    return type(module).__name__


# -- the report's view of the architecture --------------------------------------------------
#: Rows the report's architecture table aims at: about one page.
MAX_LAYER_ROWS = 40


@dataclass(frozen=True)
class LayerSummary:
    """One row of the architecture as the report shows it (results.json keeps every module)."""

    name: str  # dotted module name; "layer1.0–1" for identical blocks merged into one row
    type: str
    depth: int
    output_shape: list[int] | None  # of the last module of the row
    #: Parameters counted on this row: its own, plus those of every module folded into it.
    params: int
    repeat: int = 1  # identical consecutive blocks merged into this row
    folded: int = 0  # modules inside this row that have no row of their own
    expanded: bool = False  # its submodules have rows of their own below it


@dataclass(frozen=True)
class LayerTable:
    """The architecture folded to about ``MAX_LAYER_ROWS`` rows."""

    rows: list[LayerSummary]
    modules: int  # every submodule of the model
    depth: int | None  # deepest nesting level shown; None when nothing is folded
    omitted: int  # rows cut off at the end (only when even the top level is too long)


@dataclass
class _Node:
    layer: LayerInfo
    children: list[_Node] = field(default_factory=list)

    @property
    def total_params(self) -> int:
        return self.layer.params + sum(c.total_params for c in self.children)

    @property
    def descendants(self) -> int:
        return sum(1 + c.descendants for c in self.children)


def _forest(layers: list[LayerInfo]) -> list[_Node]:
    """Modules as a tree: the parent of ``a.b.c`` is ``a.b`` (or ``a`` when ``a.b`` is absent)."""
    nodes = {layer.name: _Node(layer) for layer in layers}
    roots = []
    for layer in layers:
        parts = layer.name.split(".")
        parent = next(
            (nodes[p] for i in range(len(parts) - 1, 0, -1) if (p := ".".join(parts[:i])) in nodes),
            None,
        )
        (parent.children if parent is not None else roots).append(nodes[layer.name])
    return roots


def _signature(node: _Node) -> tuple:
    """What makes two blocks identical: type, sizes, shapes and the same submodules."""
    start = len(node.layer.name) + 1
    return (
        node.layer.type,
        node.layer.params,
        tuple(node.layer.output_shape or ()),
        tuple((c.layer.name[start:], _signature(c)) for c in node.children),
    )


def _group_name(group: list[_Node]) -> str:
    first, last = group[0].layer.name, group[-1].layer.name
    head, _, tail = last.rpartition(".")
    if head and first.startswith(head + "."):
        return f"{first}–{tail}"
    return f"{first}–{last}"


def _rows(nodes: list[_Node], limit: int, depth: int) -> list[LayerSummary]:
    rows: list[LayerSummary] = []
    i = 0
    while i < len(nodes):
        first = nodes[i]
        j = i + 1
        while j < len(nodes) and _signature(nodes[j]) == _signature(first):
            j += 1
        group = nodes[i:j]
        i = j
        if len(group) > 1:
            rows.append(
                LayerSummary(
                    name=_group_name(group),
                    type=first.layer.type,
                    depth=depth,
                    output_shape=group[-1].layer.output_shape,
                    params=sum(n.total_params for n in group),
                    repeat=len(group),
                    folded=sum(n.descendants for n in group),
                )
            )
            continue
        # a wrapper of a single module (InvertedResidual -> block) says no more expanded
        expand = len(first.children) > 1 and depth < limit
        rows.append(
            LayerSummary(
                name=first.layer.name,
                type=first.layer.type,
                depth=depth,
                output_shape=first.layer.output_shape,
                params=first.layer.params if expand else first.total_params,
                folded=0 if expand else first.descendants,
                expanded=expand,
            )
        )
        if expand:
            rows.extend(_rows(first.children, limit, depth + 1))
    return rows


def _unfolded(nodes: list[_Node], depth: int = 0) -> list[LayerSummary]:
    rows = []
    for n in nodes:
        layer = n.layer
        rows.append(
            LayerSummary(
                layer.name,
                layer.type,
                depth,
                layer.output_shape,
                layer.params,
                expanded=bool(n.children),
            )
        )
        rows.extend(_unfolded(n.children, depth + 1))
    return rows


def layer_table(layers: list[LayerInfo], max_rows: int = MAX_LAYER_ROWS) -> LayerTable:
    """The architecture in at most ``max_rows`` rows: every module when they fit; otherwise
    identical consecutive blocks merged into one row, modules below the deepest level that
    fits and the one module inside a wrapper folded into their parent (its row counts their
    parameters).

    When even the top level (merged) has more rows, the first ``max_rows`` are kept and
    ``omitted`` says how many more there were. Unless rows are omitted, the rows' parameters
    add up to the model's total.
    """
    roots = _forest(layers)
    if len(layers) <= max_rows:
        return LayerTable(_unfolded(roots), len(layers), None, 0)
    deepest = max((layer.name.count(".") for layer in layers), default=0)
    for limit in range(deepest, -1, -1):
        rows = _rows(roots, limit, 0)
        if len(rows) <= max_rows:
            return LayerTable(rows, len(layers), limit, 0)
    return LayerTable(rows[:max_rows], len(layers), 0, len(rows) - max_rows)
