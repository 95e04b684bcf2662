"""Base classes of explainers.

Local contract: ``explain(inputs, targets) -> Tensor`` of the same shape as ``inputs``,
float32, on CPU; deterministic under the run's seed; leaves no hooks on the model and
does not mutate its inputs. The base class owns those guarantees so that a concrete
method only implements ``_attribute``. The model may be on a GPU (``auditor.device``):
a method marked ``on_device`` gets its inputs there, every other one on the CPU.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from auditor.data.base import Modality
from auditor.device import model_device
from auditor.errors import RunError, SpecError, SpecIssue
from auditor.explainers.gradients import SharedGradients, input_gradient
from auditor.explainers.layers import resolve_layer
from auditor.explainers.passes import contains_torchscript
from auditor.inference import FastInference
from auditor.plugin import Plugin


@dataclass
class ExplainContext:
    """What an explainer may know about the run besides its inputs."""

    modality: Modality
    input_shape: tuple[int, ...]
    seed: int = 0
    background: torch.Tensor | None = None  # samples from the slice, for baselines and SHAP
    feature_names: list[str] | None = None
    class_names: list[str] = field(default_factory=list)
    #: Input gradients shared by the run's explainers that read them (explain stage only).
    gradients: SharedGradients | None = None
    #: A faster copy of the run's model for forward passes without gradients.
    inference: FastInference | None = None
    #: Text: where gradient methods run (the embedding layer's output), else None.
    embedding: Any = None
    #: Where removing a feature is not one constant (text: the remove token, padding kept):
    #: ``removed(inputs)`` is ``inputs`` with every feature removed; perturbation methods and
    #: metrics use it instead of their ``baseline`` value. None: they use their params.
    removed: Callable[[torch.Tensor], torch.Tensor] | None = None
    #: ``data.groups`` (``auditor.data.groups.FeatureGroups``): perturbation explainers
    #: perturb a group as one unit and split its value evenly over its columns. None: none.
    groups: Any = None


@dataclass
class Predictions:
    """The model's outputs on the slice, computed once and shared by every stage."""

    logits: np.ndarray  # (N, K) float32
    labels: np.ndarray  # (N,) int64, from the data
    targets: np.ndarray  # (N,) int64, the class each explanation explains

    @property
    def probabilities(self) -> np.ndarray:
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    @property
    def predicted(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels


@dataclass
class GlobalExplanation:
    """One importance per feature for the slice, with a surrogate's fidelity if any."""

    importance: np.ndarray
    feature_names: list[str]
    spread: np.ndarray | None = None
    fidelity: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class Explainer(Plugin):
    """Base of every explainer plugin."""

    kind: ClassVar[str] = "explainer"
    scope: ClassVar[Literal["local", "global"]] = "local"
    modalities: ClassVar[frozenset[str]] = frozenset({"image", "tabular", "text", "structured"})
    #: Per-sample diagnostics it records (``self.record``), which checks may name.
    stats: ClassVar[tuple[str, ...]] = ()
    #: Fidelity numbers a global explainer reports, which checks may name.
    fidelity_keys: ClassVar[tuple[str, ...]] = ()
    #: True for methods that draw random numbers (noise, sampled baselines, coalitions).
    #: ``explain`` then calls ``_attribute`` one sample at a time, each under a seed made
    #: from the run's seed and the sample's bytes: a sample gets the same draws whatever
    #: batch it arrives in, so batched and unbatched results are equal.
    stochastic: ClassVar[bool] = False
    #: True for methods built on ``input_gradient``: the explain stage shares it among them.
    reads_input_gradient: ClassVar[bool] = False
    #: True for methods that hook the model's modules (forward or backward hooks, or a
    #: torch.fx rewrite of it): they cannot run on a TorchScript model, whose compiled code
    #: calls its submodules without Python, so planning refuses them there.
    needs_hooks: ClassVar[bool] = False
    #: True for methods that differentiate the model with respect to its input: on text they
    #: run at the embedding layer's output (``auditor.modalities.text.EmbeddingSpace``).
    differentiable: ClassVar[bool] = False
    #: True for methods that draw references from ``context.background`` (SHAP family).
    uses_background: ClassVar[bool] = False
    #: True for methods whose every tensor follows the device of their inputs (random
    #: draws made on the CPU from a seeded generator, then moved): ``explain`` hands them
    #: inputs and targets on the model's device (a GPU's passes stay there). Others get
    #: CPU tensors and the run's model moves each pass (``auditor.device.OnDevice``).
    on_device: ClassVar[bool] = False

    @classmethod
    def input_issues(
        cls, params: BaseModel, modality: str, input_shape: tuple[int, ...]
    ) -> list[SpecIssue]:
        """Problems of ``params`` with inputs of ``input_shape`` (one sample, no batch dim).

        Planning calls it for every explainer before any of them runs; a method whose params
        depend on the input's shape (a window, a grid) overrides it with the same rule its
        ``__init__`` applies. Issues are located relative to the entry: ``("params", "window")``.
        """
        return []

    @classmethod
    def model_issues(
        cls, params: BaseModel, model: nn.Module, input_shape: tuple[int, ...] | None
    ) -> list[SpecIssue]:
        """Problems of ``params`` with this model, checked in planning: by default, that a
        ``layer`` param names one of its modules. ``input_shape`` may be None (unknown)."""
        layer = getattr(params, "layer", None)
        if isinstance(layer, str):
            return issues_of(lambda: resolve_layer(model, layer))
        return []

    def __init__(self, model: nn.Module, params: BaseModel, context: ExplainContext) -> None:
        if self.needs_hooks and model is not None and contains_torchscript(model):
            # Planning refuses it first; a direct caller would get wrong maps, not an error
            # (traced modules never call hooks, guided backprop falls back to the gradient).
            raise RunError(
                f"explainer '{self.name}' needs hooks on the model's modules, which "
                "TorchScript models do not support"
            )
        # Planning checks the same rules first; kept here for callers that build one directly.
        issues = type(self).input_issues(params, context.modality, tuple(context.input_shape))
        if issues:
            raise SpecError(issues)
        self.model = model
        self.params = params
        self.context = context
        #: Per-sample diagnostics (e.g. IG's convergence delta), appended batch by batch.
        self.sample_stats: dict[str, list[float]] = defaultdict(list)

    def explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Attributions with the shape of ``inputs`` for the ``targets`` outputs."""
        if self.scope != "local":
            raise NotImplementedError(f"{self.name} is a global explainer")
        if len(inputs) == 0:
            return torch.zeros(inputs.shape, dtype=torch.float32)
        if self.differentiable and self.context.embedding is not None:
            return self.context.embedding.explain(self, inputs, torch.as_tensor(targets))
        return self.explain_dense(inputs, targets)

    def explain_dense(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``explain`` on inputs taken as float32 values (the explainer's own input space)."""
        x = inputs.detach().clone().to(torch.float32)
        t = torch.as_tensor(targets, dtype=torch.long).detach().clone()
        if self.on_device and self.model is not None:
            device = model_device(self.model)
            x, t = x.to(device), t.to(device)
        # Gradient methods need autograd even when the caller runs without it (Captum's
        # sensitivity_max explains under torch.no_grad): the result must not depend on it.
        with torch.enable_grad():
            result = self._seeded_attribute(x, t).detach().to("cpu", torch.float32)
        if result.shape != inputs.shape:
            raise RuntimeError(
                f"explainer '{self.name}' returned shape {tuple(result.shape)} "
                f"for inputs of shape {tuple(inputs.shape)}"
            )
        if self.context.removed is not None and self.context.embedding is not None:
            # Text, token ids in: a token whose removal changes nothing (padding) gets 0.
            # (Inside the embedding space the padding is zeroed after the sum over it.)
            result = result.masked_fill(self.context.removed(inputs) == inputs, 0.0)
        return result

    def _seeded_attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``_attribute`` under the run's seed; stochastic methods one sample at a time."""
        if not self.stochastic:
            with seeded(self.context.seed):
                return self._attribute(inputs, targets)
        parts = []
        for i in range(len(inputs)):
            with seeded(sample_seed(self.context.seed, inputs[i])):
                parts.append(self._attribute(inputs[i : i + 1], targets[i : i + 1]))
        return torch.cat(parts) if parts else torch.zeros_like(inputs)

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def forward_model(self) -> nn.Module:
        """The model for forward passes without gradients (the run's fast copy, if any)."""
        fast = self.context.inference
        return self.model if fast is None else fast.for_model(self.model)

    def input_gradient(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The gradient of each target output w.r.t. the input, shared within the run."""
        shared = self.context.gradients
        if shared is None:
            return input_gradient(self.model, inputs, targets)
        return shared.get(self.model, inputs, targets)

    def explain_global(self, inputs: torch.Tensor, predictions: Predictions) -> GlobalExplanation:
        """Importance per feature for the slice (global explainers only).

        ``inputs`` is the whole slice, ``(N, *input_shape)``; ``predictions`` the model's
        outputs on it. Everything in ``GlobalExplanation.extra`` must be JSON-serializable.
        """
        raise NotImplementedError(f"{self.name} is not a global explainer")

    def record(self, **values: torch.Tensor | np.ndarray) -> None:
        """Keep per-sample diagnostics of the current batch."""
        for key, value in values.items():
            array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
            self.sample_stats[key].extend(np.asarray(array, dtype=np.float64).ravel().tolist())


def issues_of(check: Callable[[], object]) -> list[SpecIssue]:
    """The issues of the ``SpecError`` that ``check()`` raises; none when it returns."""
    try:
        check()
    except SpecError as exc:
        return list(exc.issues)
    return []


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's and numpy's global generators for a block, and restore both after.

    Captum draws from both (NoiseTunnel from torch, GradientShap from numpy), shap from
    numpy; restoring keeps an explainer from changing the caller's random stream. While no
    accelerator is in use only the CPU generator is forked: ``torch.random.fork_rng`` and
    ``torch.manual_seed`` also ask every device backend (CUDA, XPU, MTIA) for its count
    and queue its seeding, 0.3 ms a call, more than a fast explainer's overhead budget.
    """
    state = np.random.get_state()
    if torch.cuda.is_initialized():
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            try:
                yield
            finally:
                np.random.set_state(state)
        return
    generator = torch.default_generator
    torch_state = generator.get_state()
    generator.manual_seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        generator.set_state(torch_state)
        np.random.set_state(state)


def sample_seed(seed: int, sample: torch.Tensor) -> int:
    """A seed for one sample's random draws, from the run's seed and the sample's bytes.

    Made from the content, not the position, so that it is the same in any batch.
    """
    digest = hashlib.blake2b(digest_size=8)
    digest.update(int(seed).to_bytes(8, "little", signed=True))
    digest.update(sample.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return int.from_bytes(digest.digest(), "little") >> 1  # torch seeds are < 2**63
