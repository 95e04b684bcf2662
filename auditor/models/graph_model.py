"""The diagram's data: boxes (``GraphNode``), block graphs and the model graph, as stored in
results.json under ``model.graph``.

Without torch, so that ``auditor render`` redraws the diagram without importing it;
``auditor.models.graph`` builds these from a traced model and re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GraphNode:
    """One box of the diagram."""

    id: str
    name: str  # dotted module name, "layer1.0–1" for merged blocks, the input's argument name
    type: str  # class name, function name ("add", "cat") or "Input" / "Output"
    kind: str  # "input", "module", "function" or "output"
    shape: list[int] | None  # output shape for a batch of one
    params: int  # every parameter inside the block (all of them for merged blocks)
    repeat: int = 1  # identical consecutive blocks this node stands for


@dataclass
class BlockGraph:
    """Boxes and arrows; ``title`` names what it shows (a detail: the block type)."""

    nodes: list[GraphNode]
    edges: list[tuple[str, str]]
    title: str = ""
    #: For a detail graph: the block drawn, and how many blocks of this type the model has.
    example: str = ""
    instances: int = 0

    def node(self, node_id: str) -> GraphNode:
        return next(n for n in self.nodes if n.id == node_id)

    def inputs_of(self, node_id: str) -> list[str]:
        return [a for a, b in self.edges if b == node_id]

    def outputs_of(self, node_id: str) -> list[str]:
        return [b for a, b in self.edges if a == node_id]


@dataclass
class ModelGraph:
    """The block graph of the whole model and detail graphs of its block types."""

    source: str  # "torch.fx" or "module tree"
    main: BlockGraph
    details: list[BlockGraph] = field(default_factory=list)
    note: str = ""  # why the module tree was used

    def to_dict(self) -> dict[str, Any]:
        def graph(g: BlockGraph) -> dict[str, Any]:
            return {
                "title": g.title,
                "example": g.example,
                "instances": g.instances,
                "nodes": [vars(n).copy() for n in g.nodes],
                "edges": [list(e) for e in g.edges],
            }

        return {
            "source": self.source,
            "note": self.note,
            "main": graph(self.main),
            "details": [graph(d) for d in self.details],
        }

    @classmethod
    def from_dict(cls, raw: Any) -> ModelGraph | None:
        """The graph stored in results.json; None when absent or not readable."""
        if not isinstance(raw, dict):
            return None
        try:

            def graph(g: dict[str, Any]) -> BlockGraph:
                nodes = [
                    GraphNode(
                        id=str(n["id"]),
                        name=str(n.get("name", "")),
                        type=str(n.get("type", "")),
                        kind=str(n.get("kind", "module")),
                        shape=[int(d) for d in n["shape"]] if n.get("shape") else None,
                        params=int(n.get("params") or 0),
                        repeat=int(n.get("repeat") or 1),
                    )
                    for n in g["nodes"]
                ]
                ids = {n.id for n in nodes}
                edges = [(str(a), str(b)) for a, b in g["edges"] if str(a) in ids and str(b) in ids]
                return BlockGraph(
                    nodes,
                    edges,
                    str(g.get("title", "")),
                    str(g.get("example", "")),
                    int(g.get("instances") or 0),
                )

            return cls(
                source=str(raw.get("source", "")),
                main=graph(raw["main"]),
                details=[graph(d) for d in raw.get("details") or []],
                note=str(raw.get("note", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None
