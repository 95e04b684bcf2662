"""What the report does differently per modality, as one small object each (a strategy).

The report picks one view from ``results.data.modality`` (``view_for``) and asks it instead
of branching on the name: how attributions reduce to the values a colour scale is taken over
(image channels averaged; text: real tokens only, pads and special tokens left out), how a
local explainer's features are named, how a gallery sample is drawn (a picture, feature
bars or highlighted text), whether rankings get pixel maps, and which optional sections
(``auditor.report.sections``) apply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from auditor.explainers.ranking import ranking_names
from auditor.explainers.regions import image_regions
from auditor.report.common import fmt_num

if TYPE_CHECKING:
    from auditor.report.source import ReportSource

GalleryKind = Literal["pictures", "bars", "text"]


@dataclass(frozen=True)
class ReportModality:
    """The report's decisions for one modality (see the module docstring)."""

    name: ClassVar[str]
    #: How a gallery sample is drawn: pictures with overlays, feature bars, highlighted text.
    gallery: ClassVar[GalleryKind]
    #: Rankings get attribution maps over the input (pixels) and the data section thumbnails.
    pictures: ClassVar[bool] = False
    #: The data section lists each feature's mean, std, min and max.
    feature_table: ClassVar[bool] = False
    #: What a ranked feature is called in the rankings' lead ("features", "tokens").
    features_word: ClassVar[str] = "features"
    #: Added to the gallery's note (how to read a sample of this modality).
    gallery_note: ClassVar[str] = ""
    #: Optional sections (by id) that only this modality shows.
    extra_sections: ClassVar[frozenset[str]] = frozenset()

    def reduce(self, block: np.ndarray) -> np.ndarray:
        """A block of attributions ``(B, *input_shape)`` -> the values colours are taken of."""
        return block

    def scale_mask(self, src: ReportSource) -> np.ndarray | None:
        """Which reduced attribution values a colour scale is taken over (None: all)."""
        return None

    def local_names(
        self, input_shape: list[int], feature_names: list[str] | None
    ) -> list[str] | None:
        """Names of a local explainer's ranked features (None: they differ per sample)."""
        n = int(np.prod(input_shape))
        return list(feature_names) if feature_names else [f"x{i}" for i in range(n)]

    def ranks_regions(self, input_shape: list[int]) -> bool:
        """Local rankings are over regions of the input (large images), not single units."""
        return False

    def shows(self, section: str) -> bool:
        """Whether an optional section applies to this modality."""
        return section in self.extra_sections

    def value_text(self, src: ReportSource, feature: int, value: float) -> str:
        """A sample's value of feature ``feature`` as the gallery shows it."""
        return fmt_num(value, 3)


@dataclass(frozen=True)
class ImageView(ReportModality):
    """Images: overlays in the gallery, pixel (or region) maps in the rankings."""

    name: ClassVar[str] = "image"
    gallery: ClassVar[GalleryKind] = "pictures"
    pictures: ClassVar[bool] = True

    def reduce(self, block: np.ndarray) -> np.ndarray:
        """``(B, C, H, W)`` -> ``(B, H, W)``: channels averaged, as in the rankings."""
        return block.mean(axis=1) if block.ndim == 4 else block

    def local_names(
        self, input_shape: list[int], feature_names: list[str] | None
    ) -> list[str] | None:
        return ranking_names("image", tuple(input_shape))

    def ranks_regions(self, input_shape: list[int]) -> bool:
        return image_regions(tuple(input_shape)) is not None


@dataclass(frozen=True)
class TabularView(ReportModality):
    """Tables: top signed contributions as bars, a per-feature summary."""

    name: ClassVar[str] = "tabular"
    gallery: ClassVar[GalleryKind] = "bars"
    feature_table: ClassVar[bool] = True


@dataclass(frozen=True)
class TextView(ReportModality):
    """Text: highlighted sentences, top tokens per class; a sample's features are its tokens."""

    name: ClassVar[str] = "text"
    gallery: ClassVar[GalleryKind] = "text"
    features_word: ClassVar[str] = "tokens"
    gallery_note: ClassVar[str] = (
        " Pads and special tokens are left out of the scale and the text. A word's colour "
        "is the sum of its pieces' attributions (on a signed scale red raises the explained "
        "class, blue lowers it); its tooltip and the table below each sample give every "
        "piece's value."
    )
    extra_sections: ClassVar[frozenset[str]] = frozenset({"tokens"})

    def local_names(
        self, input_shape: list[int], feature_names: list[str] | None
    ) -> list[str] | None:
        return None  # token positions mean different tokens in each sample

    def scale_mask(self, src: ReportSource) -> np.ndarray | None:
        """Real tokens only: pads (exactly 0) and special tokens would pull the percentile."""
        return None if src.tokens is None else src.tokens.real


@dataclass(frozen=True)
class StructuredView(TabularView):
    """Structured data (named fields): as tables, with categorical values shown by their
    labels from the run's ``categories.json`` ("item_category = books", not 3.0) and ids as
    integers; no per-feature mean/std table (a mean of ids means nothing)."""

    name: ClassVar[str] = "structured"
    feature_table: ClassVar[bool] = False
    gallery_note: ClassVar[str] = (
        " Categorical values are shown by their labels; a categorical column's attribution "
        "is its embedding's (gradient methods) or its removal's to the reference value."
    )

    def value_text(self, src: ReportSource, feature: int, value: float) -> str:
        names = src.results.data.feature_names or []
        name = names[feature] if feature < len(names) else ""
        labels, categorical = categories(src.folder.path)
        if name in labels:
            vocab, i = labels[name], round(value)
            return vocab[i] if 0 <= i < len(vocab) else f"#{i}"
        if name in categorical:
            return str(round(value))
        return fmt_num(value, 3)


@lru_cache(maxsize=8)
def categories(folder: Path) -> tuple[dict[str, list[str]], frozenset[str]]:
    """A run folder's vocabularies by column and its categorical columns (categories.json)."""
    path = folder / "categories.json"
    if not path.is_file():
        return {}, frozenset()
    stored = json.loads(path.read_text(encoding="utf-8"))
    columns = {c for f in stored.get("fields", []) if f.get("categorical") for c in f["columns"]}
    return dict(stored.get("vocabularies", {})), frozenset(columns)


VIEWS: dict[str, ReportModality] = {
    v.name: v for v in (ImageView(), TabularView(), TextView(), StructuredView())
}


def view_for(modality: str) -> ReportModality:
    """The report view of ``modality`` (a name from ``results.data.modality``)."""
    try:
        return VIEWS[modality]
    except KeyError:
        raise ValueError(
            f"the report cannot draw modality {modality!r}; it knows {', '.join(VIEWS)}"
        ) from None
