"""Images in class sub-folders (``<root>/<class>/<image>``), read from disk when asked for.

The sorted sub-folder names are the classes, so a folder named ``0_cat`` comes before
``1_dog``; a class's images may sit in nested folders. Pixels are decoded in ``get``.
When the params do not fix the output size (no ``center_crop``, no ``resize: [h, w]``),
loading reads every image's header to check that all come out at one size.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image
from pydantic import Field, field_validator

from auditor.data.base import AuditDataset, DataSource, StaticInfo
from auditor.data.transforms import Normalize, SizeParam, output_size, prepare
from auditor.errors import RunError, SpecError
from auditor.paths import ExistingDir
from auditor.plugin import Params

DEFAULT_EXTENSIONS = (
    ".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp",
)  # fmt: skip


class ImageFolderParams(Params):
    """Where the images are and how to prepare them."""

    root: ExistingDir = Field(
        description="Folder with one sub-folder of images per class; sorted names are the classes."
    )
    extensions: tuple[str, ...] = Field(
        default=DEFAULT_EXTENSIONS,
        min_length=1,
        max_length=64,
        description="File name endings that count as images (case does not matter).",
    )
    resize: SizeParam | None = Field(
        default=None,
        description="Resize first: an int sets the shorter side, [h, w] sets both.",
    )
    center_crop: SizeParam | None = Field(
        default=None, description="Then crop the center: an int for a square, or [h, w]."
    )
    grayscale: bool = Field(
        default=False, description="One channel (luminance) instead of three (RGB)."
    )
    normalize: Normalize | None = Field(
        default=None, description="Per-channel {mean: [...], std: [...]} after scaling to [0, 1]."
    )

    @field_validator("extensions")
    @classmethod
    def _dotted_lowercase(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for ext in value:
            ext = ext.strip().lower()
            if ext in ("", "."):
                raise ValueError("an extension must not be empty; write e.g. .png")
            out.append(ext if ext.startswith(".") else f".{ext}")
        return tuple(out)


class ImageFolderDataset(AuditDataset):
    """Image files with their class labels; ``get`` decodes and prepares them."""

    def __init__(
        self,
        files: list[Path],
        labels: np.ndarray,
        class_names: list[str],
        params: ImageFolderParams,
    ) -> None:
        self.files = files
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = class_names
        self.feature_names = None
        self.modality = "image"
        self.params = params
        self._mode = "L" if params.grayscale else "RGB"
        height, width = _final_size(files[0], params)
        self.input_shape = (1 if params.grayscale else 3, height, width)
        self.description = (
            f"image folder {params.root}: {len(files)} images in {len(class_names)} classes"
        )

    def get(self, indices: np.ndarray) -> torch.Tensor:
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) == 0:
            return torch.empty((0, *self.input_shape), dtype=torch.float32)
        batch = torch.stack([self._load(self.files[int(i)]) for i in indices])
        if self.params.normalize is not None:
            batch = self.params.normalize.apply(batch)
        return batch

    def _load(self, path: Path) -> torch.Tensor:
        try:
            with Image.open(path) as image:
                image = image.convert(self._mode)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise RunError(f"image {path} could not be read: {exc}") from exc
        tensor = prepare(image, self.params.resize, self.params.center_crop)
        if tuple(tensor.shape) != self.input_shape:
            # The folder changed since it was scanned (the scan checked every header).
            raise RunError(
                f"image {path} came out with shape {tuple(tensor.shape)}, expected "
                f"{self.input_shape}"
            )
        return tensor


class ImageFolderDataSource(DataSource):
    """Images in one sub-folder per class, read lazily with PIL."""

    name: ClassVar[str] = "image_folder"
    Params: ClassVar[type[ImageFolderParams]] = ImageFolderParams

    @classmethod
    def static_info(cls, params: ImageFolderParams) -> StaticInfo:  # type: ignore[override]
        """Classes from the sub-folder names, shape from the first image's header.

        Only the first class folder is searched (for its first image), so this stays cheap
        on large folders; ``load`` still checks every class and every image's size.
        """
        classes = _class_folders(params.root)
        first = _images_in(params.root / classes[0], params.extensions)
        if not first:
            raise SpecError.at(
                ("data", "root"),
                f"class folder {params.root / classes[0]} has no images (looked for "
                f"{', '.join(params.extensions)})",
            )
        channels = 1 if params.grayscale else 3
        if params.normalize is not None:
            params.normalize.check_channels(channels, ("data", "normalize"))
        height, width = _final_size(first[0], params)
        return StaticInfo("image", (channels, height, width), None, classes)

    def load(self, params: ImageFolderParams) -> ImageFolderDataset:  # type: ignore[override]
        class_names, files, labels = _scan(params.root, params.extensions)
        _check_one_size(files, params)
        if params.normalize is not None:
            params.normalize.check_channels(1 if params.grayscale else 3, ("data", "normalize"))
        return ImageFolderDataset(files, labels, class_names, params)


def _unreadable(folder: Path, exc: OSError) -> SpecError:
    """A folder of the user's that the OS would not list (permissions, a vanished disk)."""
    where = exc.filename or folder
    return SpecError.at(
        ("data", "root"), f"folder {where} could not be read: {exc.strerror or exc}"
    )


def _class_folders(root: Path) -> list[str]:
    """Sorted names of the class sub-folders of ``root`` (hidden ones left out)."""
    try:
        entries = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError as exc:
        raise _unreadable(root, exc) from exc
    classes = sorted(p.name for p in entries)
    if not classes:
        raise SpecError.at(
            ("data", "root"),
            f"folder {root} has no class sub-folders; expected one folder of images per class, "
            f"e.g. {root / 'cat' / '0001.png'}",
        )
    return classes


def _images_in(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    """Image files anywhere below ``folder``, sorted, hidden files and folders left out."""
    try:
        return sorted(
            p
            for p in folder.rglob("*")
            if p.suffix.lower() in extensions
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
    except OSError as exc:
        raise _unreadable(folder, exc) from exc


def _scan(root: Path, extensions: tuple[str, ...]) -> tuple[list[str], list[Path], np.ndarray]:
    """Class names, image files (sorted within each class) and their labels."""
    loc = ("data", "root")
    classes = _class_folders(root)
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        folder = root / name
        found = _images_in(folder, extensions)
        if not found:
            raise SpecError.at(
                loc, f"class folder {folder} has no images (looked for {', '.join(extensions)})"
            )
        files.extend(found)
        labels.extend([label] * len(found))
    return classes, files, np.asarray(labels, dtype=np.int64)


def _final_size(path: Path, params: ImageFolderParams) -> tuple[int, int]:
    """``(h, w)`` the image at ``path`` will have, read from its header."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        # OSError covers unknown formats and truncated files; a corrupt header can raise
        # ValueError ("Truncated IHDR chunk"); DecompressionBombError is no OSError.
        raise SpecError.at(("data", "root"), f"{path} is not a readable image: {exc}") from exc
    return output_size(height, width, params.resize, params.center_crop)


def _check_one_size(files: list[Path], params: ImageFolderParams) -> None:
    """Every image must come out at one size, or the batch cannot be stacked."""
    if params.center_crop is not None or isinstance(params.resize, tuple):
        return  # the params alone fix the size: no need to open every file now
    first = _final_size(files[0], params)
    for path in files[1:]:
        size = _final_size(path, params)
        if size != first:
            done = "after resize and crop " if params.resize or params.center_crop else ""
            raise SpecError.at(
                ("data", "resize"),
                f"images differ in size {done}(height x width): {files[0]} is "
                f"{first[0]}x{first[1]} but {path} is {size[0]}x{size[1]}; set resize: [h, w] "
                "or center_crop so that every image has one size",
            )
