"""Unexpected exceptions: the traceback goes to a log file, the user gets one line.

``auditor run`` and ``auditor render`` wrap their work in ``internal_errors(folder)``: an
exception that is not one of ours (a bug in auditor, or in a plugin outside an explainer,
whose failures are recorded in results instead) becomes an ``InternalError`` whose
traceback is in ``<run folder>/error.log``. Where there is no run folder yet, the CLI
writes it to a temporary file instead (``write_error_log(exc, None)``).
"""

from __future__ import annotations

import os
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from auditor.errors import AuditorError, InternalError
from auditor.run_folder import atomic_write_text


def write_error_log(error: BaseException, folder: Path | None) -> Path:
    """Write the traceback of ``error`` to ``<folder>/error.log`` (or a temporary file)."""
    text = "".join(traceback.format_exception(error))
    if folder is not None:
        path = folder / "error.log"
        try:
            atomic_write_text(path, text)
            return path
        except OSError:
            pass  # a read-only or vanished folder: the temporary file below still works
    fd, name = tempfile.mkstemp(prefix="auditor-error-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(name)


def as_internal_error(error: Exception, folder: Path | None) -> InternalError:
    """``error`` as an ``InternalError`` whose traceback has been written down."""
    return InternalError(error, write_error_log(error, folder))


@contextmanager
def internal_errors(folder: Path | None) -> Iterator[None]:
    """Turn any exception that is not an ``AuditorError`` into an ``InternalError``."""
    try:
        yield
    except AuditorError:
        raise
    except Exception as exc:
        raise as_internal_error(exc, folder) from exc
