"""The model as a graph of blocks, for the report's architecture diagram.

``model_graph`` traces the model with ``torch.fx`` down to torch's own layers and runs the
traced graph once on one sample (``ShapeProp``) for the output shape of every node. The
nodes are then grouped into *blocks*: a node belongs to the outermost module above it that
is not a plain container (``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``), so a
ResNet shows ``conv1``, ``bn1``, ..., one box per ``BasicBlock``, ``fc``; functions called at
the top level (``add``, ``cat``, ``flatten``) stay nodes of their own. Identical consecutive
blocks on a chain become one node with ``repeat`` N, and the inside of the most common block
types is kept as small detail graphs (up to ``MAX_DETAILS``), where skip connections show as
an ``add`` with two inputs.

A model ``torch.fx`` cannot trace (data-dependent control flow, TorchScript) is drawn from
its module tree instead: its blocks in registration order, as a chain, with the output
shapes the forward hooks of ``describe_model`` recorded, and a note that says so.

The graph is stored in results.json under ``model.graph`` (``ModelGraph.to_dict``) so that
``auditor render`` redraws it from the run folder alone.
"""

from __future__ import annotations

import itertools
from collections import Counter

import torch
from torch import fx, nn

from auditor.models.graph_model import BlockGraph, GraphNode, ModelGraph
from auditor.models.info import LayerInfo

#: Detail figures: the inside of at most this many block types.
MAX_DETAILS = 3
#: Modules that only hold others: drawn as their children, never as a box.
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def model_graph(
    module: nn.Module,
    sample: torch.Tensor | tuple[torch.Tensor, ...],
    layers: list[LayerInfo] | None = None,
) -> ModelGraph:
    """The block graph of ``module`` for ``sample`` (a batch of one; a tuple for a model with
    several inputs).

    ``layers`` (from ``describe_model``) gives the output shapes when the model does not
    trace and its module tree is drawn instead.
    """
    try:
        traced = _trace(module, sample)
    except Exception as exc:  # fx fails in many ways (TraceError, TypeError, NameError...)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        note = (
            f"torch.fx could not trace the model ({type(exc).__name__}: {first}); the diagram "
            "shows its modules in the order they are registered, without skip connections."
        )
        return _tree_graph(module, layers or [], note)
    return _fx_graph(module, traced)


# -- torch.fx ---------------------------------------------------------------------------------
def _trace(module: nn.Module, sample: torch.Tensor | tuple[torch.Tensor, ...]) -> fx.GraphModule:
    if isinstance(module, torch.jit.ScriptModule):
        raise TypeError("a TorchScript module has no Python forward to trace")
    # Imported here: torch.fx.passes costs about 0.2 s, and `auditor render` only reads the
    # stored graph.
    from torch.fx.passes.shape_prop import ShapeProp

    tracer = fx.Tracer()
    graph = tracer.trace(module)
    traced = fx.GraphModule(module, graph)
    with torch.no_grad():
        ShapeProp(traced).propagate(*(sample if isinstance(sample, tuple) else (sample,)))
    return traced


def _shape(node: fx.Node) -> list[int] | None:
    meta = node.meta.get("tensor_meta")  # ShapeProp's TensorMetadata, or a tuple of them
    if isinstance(meta, tuple | list) and meta and not hasattr(meta, "shape"):
        meta = meta[0]
    shape = getattr(meta, "shape", None)
    return list(shape) if isinstance(shape, torch.Size) else None


def _fn_name(node: fx.Node) -> str:
    target = node.target
    if isinstance(target, str):
        return target
    return getattr(target, "__name__", str(target))


def _params(module: nn.Module, recurse: bool = True) -> int:
    return sum(p.numel() for p in module.parameters(recurse=recurse))


class _Grouping:
    """The fx nodes of a traced model grouped into blocks (see the module docstring)."""

    def __init__(self, root: nn.Module, traced: fx.GraphModule, inlined: frozenset[str]):
        self.root = root
        self.nodes: list[fx.Node] = []  # the kept nodes, in execution order
        self.block: dict[fx.Node, str] = {}  # node -> block key
        for node in traced.graph.nodes:
            if node.op == "get_attr":
                continue
            if node.op in ("call_function", "call_method") and _shape(node) is None:
                continue  # x.size(0), getattr: shape arithmetic, not data flow
            self.nodes.append(node)
            self.block[node] = self._key(node, inlined)
        self.order: list[str] = list(dict.fromkeys(self.block[n] for n in self.nodes))
        self.members: dict[str, list[fx.Node]] = {k: [] for k in self.order}
        for node in self.nodes:
            self.members[self.block[node]].append(node)

    def _key(self, node: fx.Node, inlined: frozenset[str]) -> str:
        if node.op in ("placeholder", "output"):
            return f"{node.op}:{node.name}"
        stack = node.meta.get("nn_module_stack") or {}
        paths = [str(k).split("@")[0] for k in stack]
        if node.op == "call_module" and not paths:
            paths = [str(node.target)]
        for path in paths:
            if path in inlined or type(self.root.get_submodule(path)) in CONTAINERS:
                continue
            return f"module:{path}"
        return f"fn:{node.name}"

    def sources(self, node: fx.Node) -> list[fx.Node]:
        """The kept nodes ``node`` reads, looking through the dropped ones."""
        found: list[fx.Node] = []
        todo = list(node.all_input_nodes)
        seen: set[fx.Node] = set()
        while todo:
            n = todo.pop(0)
            if n in seen:
                continue
            seen.add(n)
            if n in self.block:
                found.append(n)
            else:
                todo.extend(n.all_input_nodes)
        return found

    def composite(self, key: str) -> bool:
        return key.startswith("module:") and len(self.members[key]) > 1


def _fx_graph(root: nn.Module, traced: fx.GraphModule) -> ModelGraph:
    inlined: frozenset[str] = frozenset()
    while True:
        grouping = _Grouping(root, traced, inlined)
        blocks = [k for k in grouping.order if k.startswith(("module:", "fn:"))]
        # a model that is one wrapper around its real network: draw the network
        if len(blocks) == 1 and grouping.composite(blocks[0]):
            inlined = inlined | {blocks[0].removeprefix("module:")}
            continue
        break
    main = _main_graph(grouping)
    details = _details(grouping, main)
    return ModelGraph(source="torch.fx", main=_collapse(main, grouping), details=details)


def _main_graph(g: _Grouping) -> BlockGraph:
    nodes = []
    for i, key in enumerate(g.order):
        members = g.members[key]
        last = members[-1]
        kind, _, rest = key.partition(":")
        if kind == "placeholder":
            node = GraphNode(f"n{i}", str(last.target), "Input", "input", _shape(last), 0)
        elif kind == "output":
            out = g.sources(last)
            shape = _shape(out[0]) if len(out) == 1 else None
            node = GraphNode(f"n{i}", "output", "Output", "output", shape, 0)
        elif kind == "module":
            sub = g.root.get_submodule(rest)
            node = GraphNode(
                f"n{i}", rest, type(sub).__name__, "module", _shape(last), _params(sub)
            )
        else:
            node = GraphNode(f"n{i}", last.name, _fn_name(last), "function", _shape(last), 0)
        nodes.append(node)
    ids = {key: n.id for key, n in zip(g.order, nodes, strict=True)}
    edges: list[tuple[str, str]] = []
    for node in g.nodes:
        for src in g.sources(node):
            edge = (ids[g.block[src]], ids[g.block[node]])
            if edge[0] != edge[1] and edge not in edges:
                edges.append(edge)
    return BlockGraph(nodes, edges, title="model")


def _structure(g: _Grouping, key: str) -> tuple:
    """What the inside of a block looks like: its nodes' kinds and names, relative to it."""
    prefix = key.removeprefix("module:") + "."
    return tuple(
        (
            n.op,
            str(n.target).removeprefix(prefix) if n.op == "call_module" else _fn_name(n),
            tuple(sorted(g.members[key].index(s) for s in g.sources(n) if s in g.members[key])),
        )
        for n in g.members[key]
    )


def _collapse(graph: BlockGraph, g: _Grouping | None) -> BlockGraph:
    """Identical consecutive blocks on a chain as one node with ``repeat``."""
    keys = {n.id: key for n, key in zip(graph.nodes, g.order, strict=True)} if g else {}

    def signature(n: GraphNode) -> tuple:
        inside = _structure(g, keys[n.id]) if g and keys[n.id].startswith("module:") else ()
        return (n.kind, n.type, n.params, tuple(n.shape or ()), inside)

    nodes: list[GraphNode] = []
    merged: dict[str, str] = {}  # id of a node folded into another -> that node's id
    runs: dict[str, list[GraphNode]] = {}
    for n in graph.nodes:
        prev = nodes[-1] if nodes else None
        if (
            prev is not None
            and n.kind == "module"
            and graph.inputs_of(n.id) == [runs[prev.id][-1].id]
            and graph.outputs_of(runs[prev.id][-1].id) == [n.id]
            and signature(n) == signature(runs[prev.id][0])
        ):
            runs[prev.id].append(n)
            merged[n.id] = prev.id
            continue
        nodes.append(n)
        runs[n.id] = [n]
    out = []
    for n in nodes:
        run = runs[n.id]
        if len(run) == 1:
            out.append(n)
            continue
        out.append(
            GraphNode(
                n.id,
                _run_name(run[0].name, run[-1].name),
                n.type,
                n.kind,
                run[-1].shape,
                sum(r.params for r in run),
                repeat=len(run),
            )
        )
    edges: list[tuple[str, str]] = []
    for a, b in graph.edges:
        edge = (merged.get(a, a), merged.get(b, b))
        if edge[0] != edge[1] and edge not in edges:
            edges.append(edge)
    return BlockGraph(out, edges, graph.title, graph.example, graph.instances)


def _run_name(first: str, last: str) -> str:
    """``layer1.0`` .. ``layer1.1`` -> ``layer1.0–1``."""
    head, _, tail = last.rpartition(".")
    if head and first.startswith(head + "."):
        return f"{first}–{tail}"
    return f"{first}–{last}"


def _details(g: _Grouping, main: BlockGraph) -> list[BlockGraph]:
    """The inside of the most common composite block types, one example each."""
    by_type: dict[str, list[str]] = {}
    for key in g.order:
        if g.composite(key):
            by_type.setdefault(type(g.root.get_submodule(key[7:])).__name__, []).append(key)
    counts = Counter({t: len(keys) for t, keys in by_type.items()})
    order = list(by_type)
    chosen = sorted(by_type, key=lambda t: (-counts[t], order.index(t)))[:MAX_DETAILS]
    details = []
    for type_name in chosen:
        # the richest example: a BasicBlock with a downsample shows both kinds of skip
        key = max(by_type[type_name], key=lambda k: len(g.members[k]))
        details.append(_detail(g, key, type_name, len(by_type[type_name])))
    return details


def _detail(g: _Grouping, key: str, type_name: str, instances: int) -> BlockGraph:
    path = key.removeprefix("module:")
    members = g.members[key]
    ids = {n: f"d{i}" for i, n in enumerate(members)}
    nodes: list[GraphNode] = []
    edges: list[tuple[str, str]] = []
    outside: dict[fx.Node, str] = {}
    for n in members:
        for src in g.sources(n):
            if src not in ids and src not in outside:
                outside[src] = f"i{len(outside)}"
                name = "input" if len(outside) == 1 else f"input {len(outside)}"
                nodes.append(GraphNode(outside[src], name, "Input", "input", _shape(src), 0))
    for n in members:
        if n.op == "call_module":
            sub = g.root.get_submodule(str(n.target))
            name = str(n.target).removeprefix(path + ".")
            node = GraphNode(ids[n], name, type(sub).__name__, "module", _shape(n), _params(sub))
        else:
            node = GraphNode(ids[n], n.name, _fn_name(n), "function", _shape(n), 0)
        nodes.append(node)
        for src in g.sources(n):
            edges.append((ids.get(src) or outside[src], ids[n]))
    last = members[-1]
    nodes.append(GraphNode("o", "output", "Output", "output", _shape(last), 0))
    edges.append((ids[last], "o"))
    return BlockGraph(nodes, edges, title=type_name, example=path, instances=instances)


# -- the module tree (models fx cannot trace) ---------------------------------------------
def _tree_blocks(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    blocks = []
    for name, sub in module.named_children():
        path = f"{prefix}{name}"
        if type(sub) in CONTAINERS or (
            isinstance(sub, torch.jit.ScriptModule)
            and _type(sub) in {c.__name__ for c in CONTAINERS}  # a scripted Sequential
        ):
            blocks.extend(_tree_blocks(sub, path + "."))
        else:
            blocks.append((path, sub))
    return blocks


def _tree_graph(module: nn.Module, layers: list[LayerInfo], note: str) -> ModelGraph:
    shapes = {layer.name: layer.output_shape for layer in layers}
    blocks = _tree_blocks(module)
    if len(blocks) == 1 and list(blocks[0][1].children()):
        blocks = _tree_blocks(blocks[0][1], blocks[0][0] + ".")
    nodes = [GraphNode("n0", "input", "Input", "input", None, 0)]
    for i, (path, sub) in enumerate(blocks, start=1):
        nodes.append(GraphNode(f"n{i}", path, _type(sub), "module", shapes.get(path), _params(sub)))
    nodes.append(GraphNode(f"n{len(blocks) + 1}", "output", "Output", "output", None, 0))
    edges = [(a.id, b.id) for a, b in itertools.pairwise(nodes)]
    main = BlockGraph(nodes, edges, title="model")
    return ModelGraph(source="module tree", main=_collapse(main, None), note=note)


def _type(module: nn.Module) -> str:
    if isinstance(module, torch.jit.ScriptModule):
        return getattr(module, "original_name", type(module).__name__)
    return type(module).__name__
