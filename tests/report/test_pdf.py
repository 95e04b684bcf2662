"""report.pdf: pages that are not blank, the words that matter, the attached record,
PDF/A-3b, and a URL fetcher that reads nothing outside the run folder."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from auditor.report.pdf import RefusedFetch, RunFolderFetcher, write_pdf
from auditor.run_folder import RunFolder


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian poppler-utils; .ci/run installs it)")
    return path


def test_pages_are_not_blank(digits_run: RunFolder, tmp_path: Path) -> None:
    pdftoppm = need("pdftoppm")
    subprocess.run(
        [pdftoppm, "-r", "40", "-png", str(digits_run.path / "report.pdf"), str(tmp_path / "page")],
        check=True,
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 10  # cover, contents, nine sections
    for page in pages:
        pixels = np.asarray(Image.open(page).convert("L"), dtype=np.float64)
        assert pixels.std() > 5, f"{page.name} looks blank"
        assert pixels.mean() > 150, f"{page.name} is not a white page with content"


def test_text_names_the_audit_and_the_top_features(digits_run: RunFolder) -> None:
    reader = PdfReader(digits_run.path / "report.pdf")
    first = reader.pages[0].extract_text()
    assert "Report test audit" in first and "PASS" in first
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "report-digits" in text
    import json

    results = json.loads((digits_run.path / "results.json").read_text())
    for explainer in ("saliency", "integrated_gradients", "surrogate_tree"):
        for ranked in results["explainers"][explainer]["ranking"][:5]:
            assert ranked["feature"] in text
    # running header on inner pages, page numbers, contents with page numbers
    second = reader.pages[2].extract_text()
    assert "report-digits · run r ·" in second and f"Page 3 of {len(reader.pages)}" in second
    contents = reader.pages[1].extract_text()
    assert "Contents" in contents and "Saliency galleries" in contents


def test_results_and_spec_are_attached(digits_run: RunFolder) -> None:
    reader = PdfReader(digits_run.path / "report.pdf")
    attached = reader.attachments
    assert sorted(attached) == ["results.json", "spec.yaml"]
    assert attached["results.json"] == [(digits_run.path / "results.json").read_bytes()]
    assert attached["spec.yaml"] == [(digits_run.path / "spec.yaml").read_bytes()]


def test_pdf_declares_pdf_a_3b(digits_run: RunFolder) -> None:
    reader = PdfReader(digits_run.path / "report.pdf")
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="3" pdfaid:conformance="B"' in xmp
    assert "/OutputIntents" in reader.trailer["/Root"]
    relationships = {
        str(spec.get_object()["/AFRelationship"]) for spec in reader.trailer["/Root"]["/AF"]
    }
    assert relationships == {"/Data", "/Source"}


def test_fetcher_serves_only_the_run_folder(digits_run: RunFolder, tmp_path: Path) -> None:
    fetcher = RunFolderFetcher(digits_run.path)
    inside = (digits_run.path / "results.json").resolve().as_uri()
    assert fetcher.fetch(inside).read() == (digits_run.path / "results.json").read_bytes()
    assert fetcher.fetch("data:text/plain;base64,aGk=").read() == b"hi"
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    escape = digits_run.path.resolve().as_uri() + "/../../../../secret.txt"
    for url in (
        outside.as_uri(),
        escape,
        "file:///etc/hostname",
        "http://example.com/x.png",
        "https://example.com/x.css",
        "ftp://example.com/x",
    ):
        with pytest.raises(RefusedFetch):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 6


def test_a_report_asking_for_other_files_is_refused(digits_run: RunFolder, tmp_path: Path) -> None:
    html = (
        '<html><body><p>x</p><img src="file:///etc/hostname">'
        '<img src="http://127.0.0.1:9/x.png"><img src="figures/model/weights-1.png"></body></html>'
    )
    with pytest.raises(
        RefusedFetch, match=re.escape("file:///etc/hostname, http://127.0.0.1:9/x.png")
    ):
        write_pdf(digits_run, html)
