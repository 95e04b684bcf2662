"""report.pdf (and diff.pdf) through weasyprint: PDF/A-3b with files attached (for a run
report its results.json and spec.yaml).

weasyprint reads only what is inside the run folder (an attachment: inside its own folder):
``RunFolderFetcher`` refuses every URL that is not a ``data:`` URI or a ``file:`` path within
the folder (no network, no other files), and records what it refused. Given a
``files_done`` event, it waits for a file of the folder that is not there yet until the
event is set (the PDF worker lays out the page while the figures are still being drawn).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
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

    def __init__(self, root: Path, files_done: threading.Event | None = None) -> None:
        super().__init__(allowed_protocols={"file", "data"}, allow_redirects=False)
        self.root = Path(root).resolve()
        self.files_done = files_done
        self.refused: list[str] = []

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme == "data":
            return True
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            return False
        path = Path(url2pathname(unquote(parts.path))).resolve()
        if not path.is_relative_to(self.root):
            return False
        if self.files_done is not None:
            while not path.is_file() and not self.files_done.wait(0.005):
                pass
        return path.is_file()

    def fetch(self, url: str, headers: dict | None = None):  # type: ignore[no-untyped-def]
        if not self.allows(url):
            self.refused.append(url)
            raise RefusedFetch(f"report fetch refused (outside the run folder): {url[:200]}")
        return super().fetch(url, headers)


@dataclass(frozen=True)
class PdfAttachment:
    """A file embedded in the PDF as a PDF/A-3 associated file.

    The file is ``folder / file``, read through a ``RunFolderFetcher`` of ``folder``: a link
    that leads out of the folder, or a missing file, is refused (``RefusedFetch``).
    """

    folder: Path
    file: str  # the file's path inside ``folder``
    name: str  # its name in the PDF
    description: str
    relationship: str = "Source"  # the PDF/A-3 AFRelationship: Source, Data, ...


def run_attachments(folder: Path) -> list[PdfAttachment]:
    """What report.pdf attaches: results.json and spec.yaml, those of them in ``folder``."""
    return [
        PdfAttachment(folder, name, name, description, relationship)
        for name, (description, relationship) in ATTACHMENT_WORDS.items()
        if (Path(folder) / name).is_file()
    ]


def write_pdf(
    folder: RunFolder | Path,
    html: str,
    attachments: Sequence[PdfAttachment] | None = None,
    *,
    files_done: threading.Event | None = None,
) -> bytes:
    """The PDF/A-3b of ``html`` (relative URLs resolve inside ``folder``, nothing is read
    outside it) with ``attachments`` embedded; by default the run folder's
    (``run_attachments``). Raises ``RefusedFetch`` when the page or an attachment asked for
    a file outside its folder. ``files_done``: files of ``folder`` may still appear until
    it is set (``RunFolderFetcher``)."""
    root = folder.path if isinstance(folder, RunFolder) else Path(folder)
    if attachments is None:
        attachments = run_attachments(root)
    page_fetcher = RunFolderFetcher(root, files_done)
    fetchers: dict[Path, RunFolderFetcher] = {root.resolve(): page_fetcher}

    def fetcher_of(path: Path) -> RunFolderFetcher:
        return fetchers.setdefault(path.resolve(), RunFolderFetcher(path))

    base = root.resolve().as_uri() + "/"
    embedded = [
        Attachment(
            url=(a.folder.resolve() / a.file).as_uri(),
            url_fetcher=fetcher_of(a.folder),
            name=a.name,
            description=a.description,
            relationship=a.relationship,
        )
        for a in attachments
    ]
    # weasyprint logs each refused or broken resource as a warning; keep them off the console
    logger = logging.getLogger("weasyprint")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        document = HTML(string=html, base_url=base, url_fetcher=page_fetcher)
        pdf = document.write_pdf(pdf_variant=PDF_VARIANT, attachments=embedded)
    finally:
        logger.setLevel(level)
    refused = [url for f in fetchers.values() for url in f.refused]
    if refused:
        # the page inlines or links only files of its folder; anything else is a bug to see
        raise RefusedFetch("the PDF asked for files outside its folders: " + ", ".join(refused[:5]))
    return pdf
