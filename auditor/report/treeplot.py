"""Draw a stored decision tree (the node lists of ``surrogate_tree``'s ``extra["tree"]``).

scikit-learn's ``plot_tree`` needs the fitted estimator, which the run folder does not keep;
this draws the same picture from the stored lists: split nodes say ``feature <= threshold``
(a sample goes left when true), leaves name the majority class with its share and sample
count. Deep trees are cut at ``max_depth`` levels; a cut subtree is drawn as one dashed box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure

from auditor.report.figures import QUALITATIVE, new_figure, shorten


@dataclass
class _Placed:
    node: int
    depth: int
    x: float
    cut: bool  # a subtree below the drawing depth


def _layout(tree: dict[str, Any], max_depth: int) -> list[_Placed]:
    """Leaves get consecutive x positions (in order); a parent sits between its children."""
    left, right = tree["children_left"], tree["children_right"]
    placed: list[_Placed] = []
    next_x = [0.0]

    def visit(node: int, depth: int) -> float:
        is_leaf = left[node] == -1
        if is_leaf or depth == max_depth:
            x = next_x[0]
            next_x[0] += 1.0
            placed.append(_Placed(node, depth, x, cut=not is_leaf))
            return x
        x = (visit(left[node], depth + 1) + visit(right[node], depth + 1)) / 2
        placed.append(_Placed(node, depth, x, cut=False))
        return x

    visit(0, 0)
    return placed


def tree_depth(tree: dict[str, Any]) -> int:
    left, right = tree["children_left"], tree["children_right"]

    def depth(node: int) -> int:
        if left[node] == -1:
            return 0
        return 1 + max(depth(left[node]), depth(right[node]))

    return depth(0)


def drawing_depth(tree: dict[str, Any], max_leaves: int = 14, most: int = 5) -> int:
    """The deepest cut (at most ``most`` levels) that keeps the drawing to ``max_leaves``
    boxes on its widest level, so the text stays readable on a page."""
    best = 1
    for depth in range(1, min(most, tree_depth(tree)) + 1):
        if _leaves(tree, depth) <= max_leaves:
            best = depth
    return best


def _leaves(tree: dict[str, Any], max_depth: int) -> int:
    left = tree["children_left"]
    return sum(1 for p in _layout(tree, max_depth) if left[p.node] == -1 or p.cut)


def draw_tree(tree: dict[str, Any], max_depth: int = 4) -> Figure:
    """The tree as boxes and edges; leaves tinted by their class."""
    placed = _layout(tree, max_depth)
    by_node = {p.node: p for p in placed}
    leaves = sum(1 for p in placed if tree["children_left"][p.node] == -1 or p.cut)
    depth = max(p.depth for p in placed)
    width = min(7.0, max(3.0, 0.62 * leaves + 0.6))
    fig = new_figure(width, 0.78 * (depth + 1) + 0.2)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(-0.6, max(leaves - 0.4, 0.6))
    ax.set_ylim(-depth - 0.55, 0.55)
    classes = sorted(set(tree["class"]))
    tint = {c: QUALITATIVE[i % len(QUALITATIVE)] for i, c in enumerate(classes)}
    font = 7.0 if leaves <= 8 else 6.2 if leaves <= 12 else 5.4
    for p in placed:
        n = p.node
        left, right = tree["children_left"][n], tree["children_right"][n]
        for child, word in ((left, "yes"), (right, "no")):
            if child != -1 and child in by_node and not p.cut:
                c = by_node[child]
                ax.plot([p.x, c.x], [-p.depth, -c.depth], color="#8C959F", linewidth=0.7, zorder=1)
                ax.text(
                    (p.x + c.x) / 2,
                    -(p.depth + c.depth) / 2,
                    word,
                    fontsize=font - 1,
                    color="#59636E",
                    ha="center",
                    va="center",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none"},
                )
        share = max(tree["value"][n]) if tree["value"][n] else 0.0
        samples = tree["n_samples"][n]
        if left == -1 or p.cut:
            name = str(tree["class_name"][n])
            name = f"class {name}" if len(name) <= 3 else shorten(name, 14)
            label = f"{name}\n{share:.0%} of {samples}"
            if p.cut:
                label = "subtree …\n" + label
            edge = tint[tree["class"][n]]
            face = to_hex([0.8 + 0.2 * c for c in to_rgb(edge)])  # opaque light tint
            style = {"fc": face, "ec": edge, "ls": "--" if p.cut else "-"}
        else:
            label = f"{shorten(str(tree['feature_name'][n]), 16)}\n≤ {tree['threshold'][n]:.3g}"
            label += f"\n{samples} samples"
            style = {"fc": "#F6F8FA", "ec": "#8C959F", "ls": "-"}
        ax.text(
            p.x,
            -p.depth,
            label,
            ha="center",
            va="center",
            fontsize=font,
            zorder=3,
            linespacing=1.15,
            bbox={"boxstyle": "round,pad=0.3", "lw": 0.7, **style},
        )
    return fig
