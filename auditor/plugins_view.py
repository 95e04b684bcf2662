"""What ``auditor plugins`` shows."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from auditor import registries


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


def render_listing(listing: dict[str, list[dict[str, Any]]]) -> None:
    console = Console(soft_wrap=False)
    for kind, rows in listing.items():
        table = Table(title=f"{kind} ({len(rows)})", title_justify="left", show_lines=True)
        table.add_column("name", style="bold")
        table.add_column("what")
        table.add_column("params (default)")
        for row in rows:
            params = (
                "\n".join(f"{p['name']}: {p['type']} = {p['default']}" for p in row["params"])
                or "-"
            )
            what = row["summary"]
            if "scope" in row:
                what += f"\n[dim]{row['scope']}; {', '.join(row.get('modalities', []))}[/dim]"
            table.add_row(row["name"], what, params)
        console.print(table)
