"""The architecture diagram: a block graph laid out with grandalf and drawn as SVG text.

grandalf's Sugiyama layout (layered, top to bottom, pure Python) places the boxes and routes
the arrows around them, so skip connections and concatenations are drawn as arrows that
join at an ``add``/``cat`` node. The SVG is plain text: real ``<text>`` (selectable, found by
``pdftotext``), presentation attributes rather than CSS (weasyprint draws it as vector in
the PDF), every name escaped (module and class names are the user's). The output depends
only on the graph: the same graph gives the same bytes.

The drawing is scaled down, when needed, to ``MAX_WIDTH`` x ``MAX_HEIGHT`` CSS pixels: an
A4 page's text area less a heading, so a diagram fits one page.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout

from auditor.models.graph_model import BlockGraph, GraphNode
from auditor.report.common import fmt_shape

MAX_WIDTH = 660.0  # 180 mm of A4 text width is 680 CSS px
MAX_HEIGHT = 860.0  # 257 mm of text height is 971 CSS px, less a heading and a caption
FONT = 11.0
CHAR = 0.62 * FONT  # DejaVu Sans' mean advance, for box widths
LINE = 14.0
PAD = 8.0
MAX_CHARS = 40  # longer names are cut with "…" (the box's <title> has them whole)
MARGIN = 6.0

_FILL = {"input": "#e8f0f8", "output": "#e8f0f8", "module": "#ffffff", "function": "#f6f8fa"}
_STROKE = {"input": "#4477aa", "output": "#4477aa", "module": "#59636e", "function": "#8c959f"}


_STYLE = {
    "head": 'font-weight="bold" fill="#1f2328"',
    "name": 'fill="#4477aa" font-family="DejaVu Sans Mono, monospace" font-size="10"',
    "meta": 'fill="#59636e" font-size="10"',
}


@dataclass(frozen=True)
class Box:
    node: GraphNode
    lines: list[tuple[str, str]]  # (text, style): "head", "name" or "meta"
    x: float  # centre
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Layout:
    boxes: list[Box]
    arrows: list[tuple[str, str, list[tuple[float, float]]]]  # from, to, path
    width: float
    height: float


def _short_params(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    return f"{n:,}"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def box_lines(node: GraphNode) -> list[tuple[str, str]]:
    """What a box says, as (text, style) pieces of two lines: its type (×N when merged) and
    name, then its output shape and size."""
    shape = fmt_shape(node.shape) if node.shape else ""
    if node.kind in ("input", "output"):
        head = [(node.type, "head")]
        if node.name not in ("output", "input"):
            head.append((_cut(node.name), "name"))
        return [*head, (shape, "meta")] if shape else head
    if node.kind == "function":
        return (
            [(_cut(node.type), "head"), (shape, "meta")] if shape else [(_cut(node.type), "head")]
        )
    head = node.type + (f" ×{node.repeat}" if node.repeat > 1 else "")
    meta = "  ·  ".join(
        part
        for part in (shape, f"{_short_params(node.params)} params" if node.params else "")
        if part
    )
    lines = [(_cut(head), "head"), (_cut(node.name), "name")]
    return [*lines, (meta, "meta")] if meta else lines


def _rows(lines: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The pieces by line: a name goes on its type's line."""
    rows: list[list[tuple[str, str]]] = []
    for text, style in lines:
        if style == "name" and rows:
            rows[-1].append((text, style))
        else:
            rows.append([(text, style)])
    return rows


class _View:
    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy = (0.0, 0.0)


class _EdgeView:
    def __init__(self) -> None:
        self.pts: list[tuple[float, float]] = []

    def setpath(self, pts: list[tuple[float, float]]) -> None:
        self.pts = [(float(x), float(y)) for x, y in pts]


def layout(graph: BlockGraph) -> Layout:
    """Box sizes from their text, positions and arrow paths from grandalf (top to bottom)."""
    vertices: dict[str, Vertex] = {}
    lines: dict[str, list[tuple[str, str]]] = {}
    for node in graph.nodes:
        lines[node.id] = box_lines(node)
        rows = _rows(lines[node.id])
        chars = max(sum(len(text) + 1 for text, _ in row) for row in rows)
        v = Vertex(node.id)
        v.view = _View(max(chars * CHAR + 2 * PAD, 70.0), len(rows) * LINE + PAD)
        vertices[node.id] = v
    edges = []
    for a, b in graph.edges:
        e = Edge(vertices[a], vertices[b])
        e.view = _EdgeView()
        edges.append(e)
    g = Graph(list(vertices.values()), edges)
    offset = 0.0
    placed: dict[str, tuple[float, float]] = {}
    arrows: list[tuple[str, str, list[tuple[float, float]]]] = []
    order = {node.id: i for i, node in enumerate(graph.nodes)}
    for comp in sorted(g.C, key=lambda c: min(order[v.data] for v in c.sV)):
        sug = SugiyamaLayout(comp)
        sug.xspace, sug.yspace = 24, 14
        roots = sorted((v for v in comp.sV if not v.e_in()), key=lambda v: order[v.data])
        sug.init_all(roots=roots, inverted_edges=[])
        sug.draw(3)
        # the arrows count too: grandalf routes a long skip arc beside the boxes
        paths = [e.view.pts for e in comp.sE]
        left = min(
            [v.view.xy[0] - v.view.w / 2 for v in comp.sV] + [x for pts in paths for x, _ in pts]
        )
        for v in comp.sV:
            placed[v.data] = (v.view.xy[0] - left + offset, v.view.xy[1])
        for e in comp.sE:
            path = [(x - left + offset, y) for x, y in e.view.pts]
            arrows.append((e.v[0].data, e.v[1].data, path))
        right = max(
            [v.view.xy[0] + v.view.w / 2 for v in comp.sV] + [x for pts in paths for x, _ in pts]
        )
        offset += right - left + 30
    boxes = [
        Box(
            node,
            lines[node.id],
            placed[node.id][0] + MARGIN,
            placed[node.id][1] + MARGIN,
            vertices[node.id].view.w,
            vertices[node.id].view.h,
        )
        for node in graph.nodes
    ]
    rank = {edge: i for i, edge in enumerate(graph.edges)}
    arrows = sorted(  # grandalf keeps edges in sets: draw them in the graph's order
        ((a, b, [(x + MARGIN, y + MARGIN) for x, y in pts]) for a, b, pts in arrows),
        key=lambda arrow: rank.get((arrow[0], arrow[1]), len(rank)),
    )
    width = max([b.x + b.w / 2 for b in boxes] + [x for _, _, pts in arrows for x, _ in pts])
    width += MARGIN
    height = max(b.y + b.h / 2 for b in boxes) + MARGIN
    return Layout(boxes, arrows, width, height)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _edge_point(box: Box, towards: tuple[float, float]) -> tuple[float, float]:
    """Where the line from ``box``'s centre to ``towards`` leaves the box."""
    dx, dy = towards[0] - box.x, towards[1] - box.y
    ts = [
        t for t in (box.w / 2 / abs(dx) if dx else None, box.h / 2 / abs(dy) if dy else None) if t
    ]
    t = min([*ts, 1.0])
    return (box.x + dx * t, box.y + dy * t)


def _arrow_path(pts: list[tuple[float, float]], start: Box, end: Box) -> str:
    """The arrow from box to box: grandalf's path, cut at the two boxes' borders."""
    pts = [_edge_point(start, pts[1]), *pts[1:-1], _edge_point(end, pts[-2])]
    return "M " + " L ".join(f"{_num(x)} {_num(y)}" for x, y in pts)


def svg(graph: BlockGraph, uid: str, label: str) -> str:
    """The diagram as an ``<svg>`` element (to be placed as it is in the HTML).

    ``uid`` keeps the arrowhead marker's id unique in a page with several diagrams; ``label``
    is the accessible name.
    """
    lay = layout(graph)
    scale = min(1.0, MAX_WIDTH / lay.width, MAX_HEIGHT / lay.height)
    marker = f"arrow-{escape(uid)}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="arch-diagram" role="img" '
        f'width="{_num(lay.width * scale)}" height="{_num(lay.height * scale)}" '
        f'viewBox="0 0 {_num(lay.width)} {_num(lay.height)}" '
        f'font-family="DejaVu Sans, Liberation Sans, sans-serif" font-size="{_num(FONT)}">',
        f"<title>{escape(label)}</title>",
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#59636e"/></marker></defs>',
    ]
    boxes = {box.node.id: box for box in lay.boxes}
    for a, b, pts in lay.arrows:
        if len(pts) < 2:
            continue
        out.append(
            f'<path d="{_arrow_path(pts, boxes[a], boxes[b])}" fill="none" stroke="#59636e" '
            f'stroke-width="1.2" marker-end="url(#{marker})"/>'
        )
    for box in lay.boxes:
        out.append(_box(box))
    out.append("</svg>")
    return "\n".join(out)


def _box(box: Box) -> str:
    node = box.node
    x0, y0 = box.x - box.w / 2, box.y - box.h / 2
    radius = box.h / 2 if node.kind != "module" else 4
    full = f"{node.name} ({node.type})" if node.kind == "module" else node.type
    parts = [
        f'<g class="node {node.kind}"><title>{escape(full)}</title>',
        f'<rect x="{_num(x0)}" y="{_num(y0)}" width="{_num(box.w)}" height="{_num(box.h)}" '
        f'rx="{_num(min(radius, 10))}" fill="{_FILL[node.kind]}" stroke="{_STROKE[node.kind]}" '
        f'stroke-width="{1.6 if node.repeat > 1 else 1}"/>',
    ]
    if node.repeat > 1:  # a stack of boxes: N identical blocks
        parts.insert(
            1,
            f'<rect x="{_num(x0 + 3)}" y="{_num(y0 + 3)}" width="{_num(box.w)}" '
            f'height="{_num(box.h)}" rx="4" fill="#f6f8fa" stroke="#8c959f"/>',
        )
    rows = _rows(box.lines)
    top = box.y - len(rows) * LINE / 2 + LINE * 0.75
    for i, row in enumerate(rows):
        spans = " ".join(f"<tspan {_STYLE[style]}>{escape(text)}</tspan>" for text, style in row)
        parts.append(
            f'<text x="{_num(box.x)}" y="{_num(top + i * LINE)}" text-anchor="middle">'
            f"{spans}</text>"
        )
    parts.append("</g>")
    return "".join(parts)
