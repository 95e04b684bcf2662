"""What ``auditor plugins`` shows."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from auditor import registries

#: ``--kind`` values: each registry's name, plural or singular.
KINDS = {
    **{key: key for key in registries.ALL},
    **{key.removesuffix("s"): key for key in registries.ALL},
}


def registry_key(kind: str) -> str:
    """The registry a ``--kind`` names: ``metric`` and ``metrics`` are both ``metrics``."""
    return KINDS[kind.lower()]


def plugin_listing(kind: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every registered plugin by registry: name, summary, capabilities, params."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key, registry in registries.ALL.items():
        if kind and key != kind:
            continue
        rows = []
        for name, cls in registry.all().items():
            caps = {
                attr: sorted(value) if isinstance(value, frozenset | set) else value
                for attr in ("scope", "modalities", "direction")
                if (value := getattr(cls, attr, None)) is not None
            }
            rows.append(
                {
                    "name": name,
                    "summary": cls.summary(),
                    "module": f"{cls.__module__}:{cls.__qualname__}",
                    **caps,
                    "params": cls.param_table(),
                }
            )
        out[key] = rows
    return out


def params_text(params: list[dict[str, Any]]) -> Text:
    """Each param as ``name: type = default`` with its description under it (plain text:
    descriptions may hold brackets that rich would read as markup)."""
    text = Text()
    for i, param in enumerate(params):
        if i:
            text.append("\n")
        text.append(str(param["name"]), style="bold")
        text.append(f": {param['type']} = {param['default']}")
        if param.get("description"):
            text.append(f"\n  {param['description']}", style="dim")
    return text if params else Text("-")


def render_listing(
    listing: dict[str, list[dict[str, Any]]], console: Console | None = None
) -> None:
    console = console or Console(soft_wrap=False)
    for kind, rows in listing.items():
        table = Table(
            title=f"{kind} ({len(rows)})", title_justify="left", show_lines=True, expand=True
        )
        table.add_column("name", style="bold", no_wrap=True)
        table.add_column("what", ratio=2)
        table.add_column("params: type = default", ratio=3)
        for row in rows:
            what = Text(row["summary"])
            if "scope" in row:
                what.append(f"\n{row['scope']}; {', '.join(row.get('modalities', []))}", "dim")
            table.add_row(row["name"], what, params_text(row["params"]))
        console.print(table)
