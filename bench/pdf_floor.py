"""The report's floor: one weasyprint process laying out and writing this run's PDF.

Usage: python bench/pdf_floor.py RUN_DIR OUT_JSON

Builds the print HTML of RUN_DIR's report as ``auditor render`` does (figures drawn, not
timed), then times, in this fresh process, the PDF worker's path step by step: importing
weasyprint, its warm-up page (fonts, cffi, the stylesheet; ``pdf_worker.warm_up``) and
``write_pdf`` of that HTML (parse, styles, layout, PDF/A-3b with attachments). Writes
``{"import_s", "warm_up_s", "write_pdf_s", "pages"}`` to OUT_JSON. With one weasyprint
process the report stage cannot finish faster than the sum, however the rest of the render
is arranged (the main process builds the page and draws the figures meanwhile).
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

from pypdf import PdfReader


def main() -> int:
    run_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    from auditor.report.canvas import Canvas
    from auditor.report.render import render_html
    from auditor.report.view import draw, open_view
    from auditor.run_folder import RunFolder

    folder = RunFolder.open_finished(run_dir)
    view, src = open_view(folder)
    with Canvas(folder, defer_figures=False) as canvas:
        draw(view, src, canvas)
    html = render_html(view, canvas.images, for_print=True)

    t0 = time.perf_counter()
    from auditor.report import pdf  # imports weasyprint
    from auditor.report.pdf_worker import warm_up

    t1 = time.perf_counter()
    warm_up()
    t2 = time.perf_counter()
    data = pdf.write_pdf(folder, html)
    t3 = time.perf_counter()
    pages = len(PdfReader(io.BytesIO(data)).pages)
    out.write_text(json.dumps({"import_s": t1 - t0, "warm_up_s": t2 - t1,
                               "write_pdf_s": t3 - t2, "pages": pages}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
