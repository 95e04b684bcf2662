"""report.pdf laid out in a second process, so that weasyprint's set-up overlaps the drawing.

Importing weasyprint and its first document (fonts, cffi types, the user-agent stylesheet)
take a second or two of CPU that does not depend on the run. ``PdfWorker.start()`` launches
this module as a child process, before the report's figures are drawn; the child imports
weasyprint, lays out a small page with the report's own print stylesheet, and waits. The
parent sends the finished print HTML (``submit``) and goes on with report.html while the
child lays out and writes the PDF (``auditor.report.pdf.write_pdf``: PDF/A-3b, attachments,
the same fetcher that reads nothing outside the run folder); ``result()`` returns its bytes
or raises what the child raised (``RefusedFetch`` included).

Only where two or more CPUs are available: on one, the child would only compete with the
drawing. A child that dies without answering leaves the PDF to ``write_pdf`` in this
process, which gives the same document.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from pathlib import Path
from types import TracebackType

#: The folder that holds the ``auditor`` package, for the child's import path.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
LAUNCH = (
    "import sys; sys.path.append(sys.argv[1]); from auditor.report.pdf_worker import serve; serve()"
)


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class PdfWorker:
    """One child process that writes one PDF. Use as a context manager: leaving it stops
    a child that was never given (or never finished) its job."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self.fell_back = False  # the child gave no answer: result() wrote the PDF here
        self._root: Path | None = None
        self._html = ""

    @classmethod
    def start(cls) -> PdfWorker | None:
        """A started worker, or None where it would not pay (one CPU) or cannot start."""
        if cpus() < 2:
            return None
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", LAUNCH, str(PACKAGE_ROOT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # a failure shows again in this process
            )
        except OSError:
            return None
        return cls(process)

    def __enter__(self) -> PdfWorker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def submit(self, root: Path, html: str) -> None:
        """Send the job: the print HTML of the run folder ``root``."""
        self._root, self._html = root, html
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(pickle.dumps((str(root), html)))
            stdin.close()
        except OSError:  # the child is gone; result() writes the PDF here
            pass

    def result(self) -> bytes:
        """The PDF's bytes; raises what ``write_pdf`` raised in the child."""
        stdout = self._process.stdout
        assert stdout is not None and self._root is not None
        answer = stdout.read()
        self._process.wait()
        try:
            status, value = pickle.loads(answer)
        except Exception:  # no answer: the child died
            from auditor.report.pdf import write_pdf

            self.fell_back = True
            return write_pdf(self._root, self._html)
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()


def warm_up() -> None:
    """Lay out and write a page that uses the report's print stylesheet, in memory."""
    from weasyprint import HTML

    from auditor.report.render import stylesheet

    page = (
        f"<html lang='en'><head><style>{stylesheet(for_print=True)}</style></head>"
        "<body class='for-print'><nav class='toc'><ol><li><a href='#a'>1 Summary</a></li>"
        "</ol></nav><main><section class='section' id='a'><h2 class='section-title'>A</h2>"
        "<p>Text <b>bold</b> <code>code</code></p><table class='data'><thead><tr><th>x"
        "</th></tr></thead><tbody><tr><td class='num'>1.0</td></tr></tbody></table>"
        "<svg width='20' height='10'><text x='0' y='8'>a</text></svg></section></main>"
        "</body></html>"
    )
    HTML(string=page).render().write_pdf(pdf_variant="pdf/a-3b")


def serve() -> None:
    """The child: warm up, read one job from stdin, answer on stdout (pickled)."""
    answer_to = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, not into the answer
    from auditor.report.pdf import write_pdf

    with contextlib.suppress(Exception):  # a failed warm-up costs time only
        warm_up()
    job = sys.stdin.buffer.read()
    if not job:
        return
    root, html = pickle.loads(job)
    try:
        answer = pickle.dumps(("ok", write_pdf(Path(root), html)))
    except Exception as exc:
        try:
            answer = pickle.dumps(("error", exc))
        except Exception:
            answer = pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    answer_to.write(answer)
    answer_to.close()
