"""What a modality decides about inputs, as one object per modality (a strategy).

A data source says which modality its data are (``AuditDataset.modality``); every stage
asks the modality object instead of branching on the name: what the features of a sample
are and how they are named, how an attribution map reduces to one value per feature, what
"remove a feature" means for perturbation methods and metrics, which cells and windows fit
the input, and what the report can draw. ``auditor.modalities.image``, ``.tabular`` and
``.text`` implement it; ``modality_of`` finds one by name.

Shapes: ``input_shape`` is one sample's shape without the batch dim; attributions have the
input's shape. A *unit* is what one attribution value per sample is kept for after the
reduction (``magnitude``): a pixel, a column, a token position.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # torch is imported where tensors are built: the report needs none
    import torch
    from torch import nn

    from auditor.explainers.grid import SliceFeatures
    from auditor.modalities.feed import ModelFeed


def __getattr__(name: str) -> type[ModelFeed]:
    """``ModelFeed`` (now in ``auditor.modalities.feed``), imported with torch on first use."""
    if name == "ModelFeed":
        from auditor.modalities.feed import ModelFeed

        return ModelFeed
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Modality(ABC):
    """The decisions about one kind of input (see the module docstring)."""

    name: ClassVar[str]
    #: Attribution maps are 2-D images per sample (SSIM, blur baselines, layer feature maps).
    spatial: ClassVar[bool] = False
    #: Features keep one identity over the slice (a column): per-feature summaries and the
    #: health check for features that vary but are never attributed apply.
    fixed_features: ClassVar[bool] = False
    #: Each sample has its own features (a text's tokens): whether an attribution ranks a
    #: sample's features at all is a health question of its own.
    own_features: ClassVar[bool] = False
    #: Gradient methods hook the model (text: at the embedding output), so a TorchScript
    #: model cannot run them.
    gradients_hook: ClassVar[bool] = False
    #: The spec's ``precision`` values a run of this modality supports.
    precisions: ClassVar[tuple[str, ...]] = ("float32", "bfloat16")

    # -- reduction of attributions to units ---------------------------------------------
    def magnitude(self, attributions: np.ndarray) -> np.ndarray:
        """``(N, *input_shape) -> (N, units)`` float64 absolute attribution per unit."""
        a = np.abs(np.asarray(attributions, dtype=np.float64))
        return a.reshape(len(a), -1)

    def signed(self, attributions: np.ndarray) -> np.ndarray:
        """``(N, *input_shape) -> (N, units)`` signed attribution per unit."""
        a = np.asarray(attributions)
        return a.reshape(len(a), -1)

    def sample_map(self, attribution: np.ndarray) -> np.ndarray:
        """One sample's ``|attribution|`` per unit, in the unit layout (pixels ``(H, W)``)."""
        return np.abs(np.asarray(attribution, dtype=np.float64)).reshape(-1)

    def unit_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The layout of one sample's units: ``(H, W)`` for images, ``(F,)`` otherwise."""
        return (math.prod(input_shape),)

    # -- names of ranked features -------------------------------------------------------
    @abstractmethod
    def ranked_features(
        self, input_shape: tuple[int, ...] | None, feature_names: list[str] | None
    ) -> list[str] | None:
        """Names of a local ranking's features, or None where they are not known (yet)."""

    def pool_units(self, magnitude: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
        """``(N, units) -> (N, ranked features)``: identity unless units are grouped."""
        return magnitude

    def ranks_regions(self, input_shape: tuple[int, ...]) -> bool:
        """Whether the ranked features are groups of units (regions of a large image)."""
        return False

    def global_features(
        self,
        grid: tuple[int, int] | None,
        input_shape: tuple[int, ...] | None,
        feature_names: list[str] | None,
    ) -> list[str] | None:
        """Names of a global explainer's features (with its ``grid`` param, if any)."""
        return self.ranked_features(input_shape, feature_names)

    # -- features of perturbation methods -----------------------------------------------
    def feature_mask(self, shape: tuple[int, ...], cell: int | None) -> torch.Tensor | None:
        """Feature index of every input element (no batch dim); None: each element is one."""
        return None

    def perturbation_groups(
        self, input_shape: tuple[int, ...], patch: int | None
    ) -> tuple[torch.Tensor, int]:
        """The group of each element that deletion/insertion remove together, and the count."""
        import torch

        n = math.prod(input_shape)
        return torch.arange(n).reshape(input_shape), n

    def group_label(self, input_shape: tuple[int, ...], patch: int | None) -> str:
        """What a perturbation group is, in the metric's note: ``features``."""
        return "features"

    def check_square(self, name: str, side: int | None, input_shape: tuple[int, ...]) -> None:
        """A SpecError at ``params.<name>`` if square cells of ``side`` do not fit."""
        return None

    def check_grid(self, input_shape: tuple[int, ...], grid: tuple[int, int]) -> None:
        """A SpecError if a global explainer's ``grid`` does not fit the input."""
        return None

    def window_dims(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The dims an occlusion window slides over (all of them; images: not channels)."""
        return tuple(input_shape)

    def default_window(self, dims: tuple[int, ...]) -> tuple[int, ...]:
        """Occlusion's window when the spec gives none: one element."""
        return (1,) * len(dims)

    def full_window(
        self, input_shape: tuple[int, ...], window: tuple[int, ...], stride: tuple[int, ...]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Captum's window and stride over every dim from those over ``window_dims``."""
        return window, stride

    size_word: ClassVar[str] = "feature count"

    # -- the model's inputs --------------------------------------------------------------
    def prepare(self, dataset: Any, module: nn.Module) -> Any:
        """What a run of this data needs besides the model and data (text: the model fed
        with token ids, the embedding layer, the remove token), or None. Problems with this
        model (an unknown layer) are raised as SpecError."""
        return None

    # -- features of global explainers --------------------------------------------------
    @abstractmethod
    def slice_features(
        self,
        inputs: torch.Tensor,
        feature_names: list[str] | None,
        grid: tuple[int, int],
        pad_id: int | None = None,
    ) -> SliceFeatures:
        """The slice as a table for scikit-learn (``auditor.explainers.grid``)."""


_REGISTRY: dict[str, Modality] = {}


def register(modality: Modality) -> Modality:
    _REGISTRY[modality.name] = modality
    return modality


def modality_of(name: str) -> Modality:
    """The modality object named ``name`` (``image``, ``tabular``, ``text``)."""
    import auditor.modalities  # noqa: F401  (registers every modality)

    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown modality {name!r}; known: {known}") from None
