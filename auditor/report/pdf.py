"""report.pdf through weasyprint: PDF/A-3b with results.json and spec.yaml attached.

weasyprint reads only what is inside the run folder: ``RunFolderFetcher`` refuses every URL
that is not a ``data:`` URI or a ``file:`` path within the folder (no network, no other
files), and records what it refused.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from weasyprint import HTML, Attachment, URLFetcher

from auditor.run_folder import RunFolder

PDF_VARIANT = "pdf/a-3b"
ATTACHMENT_WORDS = {
    "results.json": ("Machine-readable results of this run (results.json)", "Data"),
    "spec.yaml": ("The audit spec as run, byte for byte (spec.yaml)", "Source"),
}


class RefusedFetch(ValueError):
    """A URL outside the run folder (or not a file) that weasyprint asked for."""


class RunFolderFetcher(URLFetcher):
    """A weasyprint URL fetcher that serves ``data:`` URIs and files in one folder only."""

    def __init__(self, root: Path) -> None:
        super().__init__(allowed_protocols={"file", "data"}, allow_redirects=False)
        self.root = Path(root).resolve()
        self.refused: list[str] = []

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme == "data":
            return True
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            return False
        path = Path(url2pathname(unquote(parts.path))).resolve()
        return path.is_relative_to(self.root) and path.is_file()

    def fetch(self, url: str, headers: dict | None = None):  # type: ignore[no-untyped-def]
        if not self.allows(url):
            self.refused.append(url)
            raise RefusedFetch(f"report fetch refused (outside the run folder): {url[:200]}")
        return super().fetch(url, headers)


def write_pdf(folder: RunFolder, html: str) -> bytes:
    """The PDF of ``html`` (relative URLs resolve inside ``folder``), with attachments."""
    fetcher = RunFolderFetcher(folder.path)
    base = folder.path.resolve().as_uri() + "/"
    attachments = [
        Attachment(
            url=base + name,
            url_fetcher=fetcher,
            name=name,
            description=ATTACHMENT_WORDS[name][0],
            relationship=ATTACHMENT_WORDS[name][1],
        )
        for name in ATTACHMENT_WORDS
        if (folder.path / name).is_file()
    ]
    # weasyprint logs each refused or broken resource as a warning; keep them off the console
    logger = logging.getLogger("weasyprint")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        document = HTML(string=html, base_url=base, url_fetcher=fetcher)
        pdf = document.write_pdf(pdf_variant=PDF_VARIANT, attachments=attachments)
    finally:
        logger.setLevel(level)
    if fetcher.refused:
        # the report inlines or links only run-folder files; anything else is a bug to see
        raise RefusedFetch(
            "report.pdf asked for files outside the run folder: " + ", ".join(fetcher.refused[:5])
        )
    return pdf
