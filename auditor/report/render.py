"""Render report.html and report.pdf from a run folder (Jinja2 + weasyprint)."""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from auditor.report.view import View, build_view
from auditor.results import Results
from auditor.run_folder import RunFolder

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "xml"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(view: View, folder: RunFolder, *, for_print: bool) -> str:
    env = environment()
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    if for_print:
        css += (TEMPLATES / "print.css").read_text(encoding="utf-8")
    images = {name: _data_uri(folder.file(rel)) for name, rel in view.figures.items()}
    return env.get_template("report.html").render(v=view, css=css, images=images, for_print=for_print)


def render(folder: RunFolder, formats: list[str]) -> list[Path]:
    """Write the requested report formats into the run folder; return their paths."""
    results = Results.model_validate(folder.read_json("results.json"))
    view = build_view(folder, results)
    written = []
    if "html" in formats:
        written.append(folder.write_text("report.html", render_html(view, folder, for_print=False)))
    if "pdf" in formats:
        from weasyprint import HTML

        html = render_html(view, folder, for_print=True)
        pdf = HTML(string=html, base_url=str(folder.path), url_fetcher=_no_fetch).write_pdf()
        written.append(folder.write_bytes("report.pdf", pdf))
    return written


def _no_fetch(url: str, timeout: int = 10, ssl_context: object = None) -> dict:
    """Everything is inlined; any other fetch is refused (no network, no files)."""
    raise ValueError(f"report fetch refused: {url}")
