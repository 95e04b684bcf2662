"""The report's content is what it was before the render was made faster (issue 17).

The digits test run's report.html and report.pdf are reduced to what must not change when
only the speed of rendering changes: the visible text (every number masked as ``#``, since
the run's figures may differ in the last digit between machines; durations and machine
paths replaced), the images with their display sizes and alternative texts, the PDF's page count,
images, attachments and PDF/A identification. ``tests/report/golden/`` holds that reduction
as the code before the speed work produced it.

After a deliberate change of the report's content, rewrite the golden files with
``AUDITOR_WRITE_GOLDEN=1 pytest tests/report/test_report_content.py`` and review their diff.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pypdf import PdfReader

from auditor.run_folder import RunFolder

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
WRITE = os.environ.get("AUDITOR_WRITE_GOLDEN") == "1"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian poppler-utils; .ci/run installs it)")
    return path


def durations(text: str) -> str:
    """Every duration ("12 ms", "1.4 s") as ``<time>``: they differ from run to run."""
    return re.sub(r"\d+(?:\.\d+)?\s?(?:ms|s|min)\b", "<time>", text)


def machine_values(folder: RunFolder) -> dict[str, str]:
    """What differs between machines for the same content, with its placeholder: the host,
    the CPU's name, and SHA-256 digests (attributions' float rounding depends on the CPU's
    vector units, and cache keys and the data's digest follow from them and the paths)."""
    results = json.loads((folder.path / "results.json").read_text())
    provenance = results["provenance"]
    found = {provenance["hostname"]: "<HOST>"}
    name = (provenance.get("device_info") or {}).get("name")
    if name:  # as the HTML shows it, and as the PDF's text without whitespace
        found |= {name: "<CPU>", "".join(name.split()): "<CPU>"}
    digests = [provenance["spec_sha256"], provenance["weights_sha256"], provenance["data_sha256"]]
    for record in results["explainers"].values():
        digests += [record.get("attribution_sha256"), record.get("cache_key")]
    found |= {d: "<sha256>" for d in digests if d}
    return found


def mask(text: str, folder: RunFolder) -> str:
    """Machine paths, hosts, CPU names and digests as placeholders, then every run of
    digits as ``#``."""
    text = text.replace(str(folder.path.parent.parent), "<TMP>").replace(str(ROOT), "<ROOT>")
    for value, placeholder in sorted(machine_values(folder).items(), key=lambda v: -len(v[0])):
        text = text.replace(value, placeholder)
    return re.sub(r"\d+", "#", text)


class _Text(HTMLParser):
    """The text a reader sees (no style), one line per block of text, and every image."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.images: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._hidden += 1
        elif tag == "img":
            a = dict(attrs)
            self.images.append(f"{a.get('width')}x{a.get('height')} {a.get('alt')}")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        words = " ".join(data.split())
        if words and not self._hidden:
            self.parts.append(words)


def html_content(folder: RunFolder) -> str:
    parser = _Text()
    parser.feed((folder.path / "report.html").read_text(encoding="utf-8"))
    lines = [*parser.parts, "", "images:", *parser.images]
    return mask(durations("\n".join(lines)), folder) + "\n"


def pdf_text(folder: RunFolder) -> str:
    """The PDF's text in drawing order, page by page, with no whitespace (line breaks of
    long words and paths depend on glyph widths, not on content)."""
    raw = subprocess.run(
        [need("pdftotext"), "-raw", str(folder.path / "report.pdf"), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pages = ["".join(page.split()) for page in durations(raw).split("\f")]
    return mask("\n".join(p for p in pages if p), folder) + "\n"


def pdf_facts(folder: RunFolder) -> dict[str, object]:
    reader = PdfReader(folder.path / "report.pdf")
    images = subprocess.run(
        [need("pdfimages"), "-list", str(folder.path / "report.pdf")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()[2:]
    metadata = reader.xmp_metadata
    assert metadata is not None
    xmp = metadata.rdf_root.toxml()
    return {
        "pages": len(reader.pages),
        "images per page": [
            sum(1 for line in images if int(line.split()[0]) == n)
            for n in range(1, len(reader.pages) + 1)
        ],
        "attachments": sorted(reader.attachments),
        "pdfa": re.findall(r'pdfaid:(?:part|conformance)="(\w+)"', xmp),
    }


def check(name: str, actual: str) -> None:
    path = GOLDEN / name
    if WRITE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert actual.splitlines() == expected.splitlines(), f"{name} changed"


def test_html_text_and_images_are_unchanged(digits_run: RunFolder) -> None:
    check("digits_report.html.txt", html_content(digits_run))


def test_pdf_text_is_unchanged(digits_run: RunFolder) -> None:
    check("digits_report.pdf.txt", pdf_text(digits_run))


def test_pdf_pages_images_attachments_and_pdfa_are_unchanged(digits_run: RunFolder) -> None:
    facts = pdf_facts(digits_run)
    assert facts["pdfa"] == ["3", "B"]
    assert facts["attachments"] == ["results.json", "spec.yaml"]
    check("digits_report.pdf.json", json.dumps(facts, indent=1) + "\n")


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        [need("pdftotext"), "-raw", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def test_the_pdf_worker_writes_what_this_process_writes(
    digits_run: RunFolder, copy_of, tmp_path: Path
) -> None:
    from auditor.report.pdf import write_pdf
    from auditor.report.pdf_worker import PdfWorker

    folder = copy_of(digits_run)
    figure = next((folder.path / "figures").rglob("*.png")).relative_to(folder.path)
    html = (
        "<html><head><title>t</title></head><body><h1>Worker</h1><p>One page, "
        f"one figure.</p><img src='{figure.as_posix()}' width='100' height='50'></body></html>"
    )
    with PdfWorker.start() or pytest.skip("one CPU: no worker") as worker:
        worker.submit(folder.path, html)
        pdf = worker.result()
        assert not worker.fell_back
    here = write_pdf(folder, html)
    assert pdf.startswith(b"%PDF-") and len(PdfReader(io.BytesIO(pdf)).pages) == 1
    assert "One page, one figure." in _text(pdf, tmp_path)
    assert _text(pdf, tmp_path) == _text(here, tmp_path)
    assert len(PdfReader(io.BytesIO(pdf)).pages[0].images) == 1
    assert sorted(PdfReader(io.BytesIO(pdf)).attachments) == ["results.json", "spec.yaml"]


def test_the_pdf_worker_raises_a_refused_fetch(digits_run: RunFolder) -> None:
    from auditor.report.pdf import RefusedFetch
    from auditor.report.pdf_worker import PdfWorker

    outside = "<html><body><img src='file:///etc/hostname'></body></html>"
    with PdfWorker.start() or pytest.skip("one CPU: no worker") as worker:
        worker.submit(digits_run.path, outside)
        with pytest.raises(RefusedFetch, match="outside its folders"):
            worker.result()
        assert not worker.fell_back


def test_the_pdf_worker_waits_for_a_figure_until_files_are_done(
    digits_run: RunFolder, copy_of, tmp_path: Path
) -> None:
    from auditor.report.pdf import RefusedFetch
    from auditor.report.pdf_worker import PdfWorker

    folder = copy_of(digits_run)
    figure = next((folder.path / "figures").rglob("*.png"))
    data = figure.read_bytes()
    figure.unlink()
    name = figure.relative_to(folder.path).as_posix()
    html = f"<html><body><p>Late figure.</p><img src='{name}' width='80' height='40'></body></html>"
    with PdfWorker.start() or pytest.skip("one CPU: no worker") as worker:
        worker.submit(folder.path, html)
        time.sleep(1.0)  # the child is waiting for the file by now
        folder.write_bytes(name, data)
        worker.files_done()
        pdf = worker.result()
    assert len(PdfReader(io.BytesIO(pdf)).pages[0].images) == 1
    missing = html.replace(name, "figures/never-drawn.png")
    with PdfWorker.start() or pytest.skip("one CPU: no worker") as worker:
        worker.submit(folder.path, missing)
        worker.files_done()
        with pytest.raises(RefusedFetch):
            worker.result()


def test_a_deferring_canvas_sizes_figures_as_drawn_and_removes_the_old_file(
    digits_run: RunFolder, copy_of
) -> None:
    from matplotlib.figure import Figure

    from auditor.report.canvas import Canvas

    folder = copy_of(digits_run)
    old = folder.path / "figures" / "late.png"
    old.write_bytes(b"an earlier render's figure")

    def figure() -> Figure:
        fig = Figure(figsize=(3.33, 2.17))
        fig.add_subplot().plot([0, 1], [1, 0])
        return fig

    with Canvas(folder) as now:
        drawn = now.figure("late.png", figure())
    with Canvas(folder, defer_figures=True) as later:
        sized = later.figure("late.png", figure())
        assert not old.exists() and sized.data == b""
    assert (sized.width, sized.height) == (drawn.width, drawn.height)
    assert later.images["late.png"].data == drawn.data == old.read_bytes()


def test_one_cpu_renders_the_same_pdf_in_this_process(
    digits_run: RunFolder, copy_of, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditor.report import pdf_worker, render

    folder = copy_of(digits_run)
    (folder.path / "report.pdf").unlink()
    monkeypatch.setattr(pdf_worker, "cpus", lambda: 1)
    assert pdf_worker.PdfWorker.start() is None
    assert render(folder, ["pdf"]) == [folder.path / "report.pdf"]
    expected = (GOLDEN / "digits_report.pdf.txt").read_text(encoding="utf-8")
    assert pdf_text(folder) == mask(expected, folder)
