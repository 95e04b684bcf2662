"""Where figures go: PNG (or JPEG) files under ``figures/``, written atomically, and their sizes.

Templates refer to figures by name; ``Canvas.images`` maps each name to an ``Image`` that
knows its display size and how to be inlined (HTML) or linked (PDF).

A canvas that defers figures (``Canvas(folder, defer_figures=True)``) only sizes each
matplotlib figure when it is handed over, and draws them all in ``finish()``: the page that
links them can be written, and laid out elsewhere, while they are drawn.
"""

from __future__ import annotations

import base64
import io
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image as PILImage

from auditor.run_folder import RunFolder

DPI = 150  # figure resolution; displayed at 96 CSS px per inch, so sharp on print and HiDPI
CSS_PER_PIXEL = 96 / DPI


@dataclass(frozen=True)
class Image:
    """One written figure: where it is, what type, its size in CSS pixels, its bytes."""

    name: str
    mime: str
    width: int  # CSS px
    height: int
    data: bytes  # empty while a deferred figure is not drawn yet

    @property
    def data_uri(self) -> str:
        return f"data:{self.mime};base64," + base64.b64encode(self.data).decode("ascii")

    @property
    def path(self) -> str:
        """The URL of the file relative to the run folder."""
        return f"figures/{self.name}"


class Canvas:
    """Writes figures into ``<run>/figures/`` and remembers them for the templates.

    Each file is written atomically (temp file, fsync, rename); a gallery has hundreds of
    small pictures, so the writes run on a few threads (fsync waits on the disk, not the
    CPU). Use as a context manager, or call ``finish()``: it draws the deferred figures,
    waits for every write and raises the first error.

    Deferring, a file about to be rewritten is removed at once, so that a reader waiting
    for it (the PDF worker) never reads the one an earlier render left.
    """

    def __init__(self, folder: RunFolder, writers: int = 8, *, defer_figures: bool = False) -> None:
        self.folder = folder
        self.images: dict[str, Image] = {}
        self.defer_figures = defer_figures
        self._deferred: list[tuple[str, Figure]] = []
        self._pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="figures")
        self._pending: list[Future[object]] = []

    def __enter__(self) -> Canvas:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.finish()
        else:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def finish(self) -> None:
        """Wait for every file to be in place; raise the first write error.

        Then remove what an earlier render left in ``figures/`` and this one did not draw
        (a re-render after a layout change would otherwise keep dead files).
        """
        try:
            deferred, self._deferred = self._deferred, []
            for name, fig in deferred:
                sized = self.images[name]
                drawn = self._draw(name, fig)
                if (drawn.width, drawn.height) != (sized.width, sized.height):
                    raise RuntimeError(f"figure {name} was sized {sized} but drawn {drawn}")
            for future in self._pending:
                future.result()
        finally:
            self._pending.clear()
            self._pool.shutdown(wait=True)
        self._remove_stale()

    def _remove_stale(self) -> None:
        root = self.folder.path / "figures"
        if not root.is_dir():
            return
        drawn = {root / name for name in self.images}
        for path in sorted(root.rglob("*"), reverse=True):  # files before their folders
            if path.is_file() and path not in drawn:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()

    def _store(self, name: str, data: bytes, mime: str, width: float, height: float) -> Image:
        if self.defer_figures:
            (self.folder.path / "figures" / name).unlink(missing_ok=True)
        self._pending.append(self._pool.submit(self.folder.write_bytes, f"figures/{name}", data))
        image = Image(name, mime, round(width), round(height), data)
        self.images[name] = image
        return image

    def figure(self, name: str, fig: Figure) -> Image:
        """Draw a matplotlib figure with Agg and save it as an RGB PNG (and clear it).

        Drawing on the canvas directly skips ``savefig``'s second pass; dropping the alpha
        channel (the figure is opaque white) spares weasyprint a soft mask per figure.
        Deferring, the figure is only sized here (Agg's buffer is the figure's size in pixels,
        truncated) and drawn by ``finish()``.
        """
        fig.set_dpi(DPI)
        if not self.defer_figures:
            return self._draw(name, fig)
        (self.folder.path / "figures" / name).unlink(missing_ok=True)
        w, h = FigureCanvasAgg(fig).get_width_height(physical=True)
        width = fig.get_figwidth() * 96
        mime = "image/jpeg" if name.endswith(".jpg") else "image/png"
        image = Image(name, mime, round(width), round(width * h / w), b"")
        self.images[name] = image
        self._deferred.append((name, fig))
        return image

    def _draw(self, name: str, fig: Figure) -> Image:
        agg = FigureCanvasAgg(fig)
        agg.draw()
        rgb = np.asarray(agg.buffer_rgba())[..., :3]
        width = fig.get_figwidth() * 96
        fig.clear()
        return self.array(name, rgb, display_width=width)

    def array(self, name: str, rgb: np.ndarray, display_width: float | None = None) -> Image:
        """Save an ``(H, W, 3)`` uint8 image; PNG when small or blocky, else JPEG (smaller)."""
        picture = PILImage.fromarray(np.ascontiguousarray(rgb), mode="RGB")
        buffer = io.BytesIO()
        if name.endswith(".jpg"):
            picture.save(buffer, format="JPEG", quality=88, optimize=True)
            mime = "image/jpeg"
        else:
            picture.save(buffer, format="PNG", optimize=False, compress_level=6)
            mime = "image/png"
        h, w = rgb.shape[:2]
        width = display_width or w
        return self._store(name, buffer.getvalue(), mime, width, width * h / w)
