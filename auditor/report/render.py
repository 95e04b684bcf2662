"""Render report.html and report.pdf from a run folder (Jinja2 templates + weasyprint).

One set of templates serves both: ``report.html`` inlines every image as a data URI and
its styles (no network request, no JavaScript); ``report.pdf`` links the same figure files
inside the run folder and adds the print stylesheet (cover, contents with page numbers,
running header, page breaks). The PDF is laid out in a second process where that pays
(``auditor.report.pdf_worker``): weasyprint sets up while the figures are drawn.

This module imports only jinja2 at the top, so that the PDF worker can read the stylesheet
without loading the report's drawing code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import BytecodeCache, Environment, FileSystemLoader, StrictUndefined
from jinja2.bccache import Bucket
from markupsafe import Markup, escape

if TYPE_CHECKING:
    from auditor.report.canvas import Image
    from auditor.report.pdf_worker import PdfWorker
    from auditor.report.view import View
    from auditor.run_folder import RunFolder

#: ``auditor/templates`` links to the repository's ``templates/``; a wheel holds a copy.
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


class MemoryBytecodeCache(BytecodeCache):
    """Compiled templates kept in memory for the life of the process.

    Compiling the report's templates takes about 0.2 s, more than rendering them; a render
    fills them twice (report.html and the PDF's page) and ``auditor diff`` twice more. Jinja
    checks each entry against its template's source (a checksum), so an edited template
    is compiled again. Nothing is written to disk.
    """

    def __init__(self) -> None:
        self._store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._store.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._store[bucket.key] = bucket.bytecode_to_string()


#: Shared by every environment below: they all compile the same templates the same way.
BYTECODE = MemoryBytecodeCache()


def environment() -> Environment:
    """Autoescape everywhere (names come from data) and fail on any undefined name.

    A new environment each call (a caller may add filters), sharing compiled templates."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=BYTECODE,
    )
    env.filters["wbr"] = breakable
    return env


def breakable(text: str) -> Markup:
    """Escaped text that may wrap after "_" and "." (long ids in narrow table headers)."""
    escaped = str(escape(text))
    return Markup(escaped.replace("_", "_<wbr>").replace(".", ".<wbr>"))


def stylesheet(for_print: bool) -> Markup:
    """The screen stylesheet, and the print one (always for the PDF; under @media print
    for the HTML, so that printing from a browser also looks right)."""
    screen = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    printed = (TEMPLATES / "print.css").read_text(encoding="utf-8")
    css = screen + "\n" + (printed if for_print else f"@media print {{\n{printed}\n}}")
    return Markup(css)  # our own files, not data: safe to place inside <style> as they are


def render_html(view: View, images: dict[str, Image], *, for_print: bool) -> str:
    template = environment().get_template("base.html")

    def src(name: str) -> str:
        image = images[name]
        return image.path if for_print else image.data_uri

    return template.render(
        v=view,
        images=images,
        src=src,
        css=stylesheet(for_print),
        for_print=for_print,
        rendered=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def render(folder: RunFolder, formats: list[str], worker: PdfWorker | None = None) -> list[Path]:
    """Write the requested report formats into the run folder; return their paths.

    No format, no work: figures are drawn only for a report that shows them. ``worker``: a
    PDF worker started earlier by the caller, who closes it (``auditor run`` starts one
    before it computes, so that weasyprint is warm when the report starts). Without one,
    one is started (and closed) here.
    """
    if not formats:
        return []
    from auditor.report.pdf_worker import PdfWorker

    # Started before the drawing code is imported (a second or more in a fresh process,
    # `auditor render`): the worker imports weasyprint and warms up meanwhile.
    own = PdfWorker.start() if "pdf" in formats and worker is None else None
    worker = (worker or own) if "pdf" in formats else None
    try:
        from auditor.report.canvas import Canvas
        from auditor.report.view import draw, open_view

        view, src = open_view(folder)
        with Canvas(folder, defer_figures=worker is not None) as canvas:
            draw(view, src, canvas)
            if worker is not None:  # laid out while the figures are drawn (in finish())
                worker.submit(folder.path, render_html(view, canvas.images, for_print=True))
        if worker is not None:
            worker.files_done()
        written = []
        if "html" in formats:
            html = render_html(view, canvas.images, for_print=False)
            written.append(folder.write_text("report.html", html))
        if "pdf" in formats:
            if worker is not None:
                pdf = worker.result()
            else:
                from auditor.report.pdf import write_pdf  # weasyprint is slow to import

                pdf = write_pdf(folder, render_html(view, canvas.images, for_print=True))
            written.append(folder.write_bytes("report.pdf", pdf))
        return written
    finally:
        if own is not None:
            own.close()
