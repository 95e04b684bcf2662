"""Where figures go: PNG (or JPEG) files under ``figures/``, written atomically, and their sizes.

Templates refer to figures by name; ``Canvas.images`` maps each name to an ``Image`` that
knows its display size and how to be inlined (HTML) or linked (PDF).
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
    data: bytes

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
    CPU). Use as a context manager, or call ``finish()``: it waits for every write and
    raises the first error.
    """

    def __init__(self, folder: RunFolder, writers: int = 8) -> None:
        self.folder = folder
        self.images: dict[str, Image] = {}
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
        self._pending.append(self._pool.submit(self.folder.write_bytes, f"figures/{name}", data))
        image = Image(name, mime, round(width), round(height), data)
        self.images[name] = image
        return image

    def figure(self, name: str, fig: Figure) -> Image:
        """Draw a matplotlib figure with Agg and save it as an RGB PNG (and clear it).

        Drawing on the canvas directly skips ``savefig``'s second pass; dropping the alpha
        channel (the figure is opaque white) spares weasyprint a soft mask per figure.
        """
        fig.set_dpi(DPI)
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
