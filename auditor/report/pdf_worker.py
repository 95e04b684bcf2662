"""report.pdf laid out in a second process, so that weasyprint's set-up overlaps the drawing.

Importing weasyprint and its first document (fonts, cffi types, the user-agent stylesheet)
take a second or two of CPU that does not depend on the run. ``PdfWorker.start()`` launches
this module as a child process, before the report's figures are drawn; the child imports
weasyprint, lays out a small page with the report's own print stylesheet, and waits. The
parent sends the print HTML (``submit``) as soon as it knows every figure's size, before
drawing them: the child parses and styles the page meanwhile and waits for each figure
file it needs until the parent says they are all written (``files_done``). The parent goes
on with report.html while the child lays out and writes the PDF
(``auditor.report.pdf.write_pdf``: PDF/A-3b, attachments, the same fetcher that reads
nothing outside the run folder); ``result()`` returns its bytes or raises what the child
raised (``RefusedFetch`` included).

Only where two or more CPUs are available: on one, the child would only compete with the
drawing. A child that dies without answering leaves the PDF to ``write_pdf`` in this
process, which gives the same document.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import subprocess
import sys
import threading
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
        self._sender: threading.Thread | None = None
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
        """Send the job: the print HTML of the run folder ``root``. Returns at once (a
        thread writes it while the child may still be warming up). Until ``files_done()``,
        the child waits for files of ``root`` that are not there yet."""
        self._root, self._html = root, html
        job = pickle.dumps((str(root), html))
        self._sender = threading.Thread(
            target=self._send, args=(struct.pack("<Q", len(job)) + job,), daemon=True
        )
        self._sender.start()

    def _send(self, job: bytes) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        with contextlib.suppress(OSError):  # the child is gone; result() writes the PDF here
            stdin.write(job)
            stdin.flush()

    def files_done(self) -> None:
        """Every file the page links is in place (closing the child's stdin says so)."""
        if self._sender is not None:
            self._sender.join()
        stdin = self._process.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):
                stdin.close()

    def result(self) -> bytes:
        """The PDF's bytes; raises what ``write_pdf`` raised in the child."""
        stdout = self._process.stdout
        assert stdout is not None and self._root is not None
        self.files_done()
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
        self.files_done()
        if self._process.stdout is not None:
            self._process.stdout.close()


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
    """The child: warm up, read one job from stdin, answer on stdout (pickled). The end of
    stdin says that every file of the run folder is in place."""
    answer_to = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, not into the answer
    from auditor.report.pdf import write_pdf

    with contextlib.suppress(Exception):  # a failed warm-up costs time only
        warm_up()
    stdin = sys.stdin.buffer
    head = stdin.read(8)
    if len(head) < 8:
        return
    root, html = pickle.loads(stdin.read(struct.unpack("<Q", head)[0]))
    files_done = threading.Event()

    def wait_for_end() -> None:
        stdin.read()
        files_done.set()

    threading.Thread(target=wait_for_end, daemon=True).start()
    try:
        answer = pickle.dumps(("ok", write_pdf(Path(root), html, files_done=files_done)))
    except Exception as exc:
        try:
            answer = pickle.dumps(("error", exc))
        except Exception:
            answer = pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    answer_to.write(answer)
    answer_to.close()
