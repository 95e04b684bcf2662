"""Every registered explainer against the same contract (design.md, "Explainer contract").

Local explainers: attributions have the input's shape and are float32; the same seed gives
identical tensors; a batch of 8 equals 8 batches of 1; the model keeps no hooks, its
state_dict and mode are unchanged, also when the explainer raises; inputs, targets and the
background are not mutated. Global explainers: an importance per named feature, finite
fidelity, JSON-serializable ``extra``, deterministic, the model left as it was.

Image explainers run on the trained digits CNN with 8 real digits; tabular ones on
``tiny.Linear`` (6 features); text ones on the planted-token classifier of
``tests/text/tiny_text.py`` (8 texts of different lengths, token ids in, gradient methods at
the embedding output). The table ``CHEAP`` keeps the expensive methods quick; keys a
plugin's Params do not have are dropped, so it also fits explainers written later.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "text"))

from tiny import ROOT, Linear, digits_batch, make_explainer
from tiny_text import PAD, SPECIALS, VOCAB, corpus, text_context, trained

from auditor import registries
from auditor.errors import PluginError
from auditor.explainers.base import ExplainContext, Explainer, Predictions
from auditor.modalities.text import Feed, TextFeed
from examples.models import DigitsCNN

BATCH = 8
LAYER = {"image": "features.3", "tabular": "fc", "text": "token"}
MODALITIES = ("image", "tabular", "text")
#: Cheap values for knobs that many explainers share (dropped where a Params lacks them).
CHEAP_COMMON: dict[str, Any] = {
    "n_steps": 8,
    "nt_samples": 4,
    "n_samples": 16,
    "nsamples": 32,
    "max_evals": 64,
    "n_background": 8,
    "background_size": 8,
    "n_repeats": 2,
    "n_estimators": 10,
}
#: Per-explainer overrides of ``CHEAP_COMMON``.
CHEAP: dict[str, dict[str, Any]] = {
    "lime": {"n_samples": 32},
    "kernel_shap": {"nsamples": 64, "n_samples": 64},
    "shap_gradient": {"nsamples": 16},
}


# -- models that count their forward calls and can be told to fail ----------------------------
class CountingDigitsCNN(DigitsCNN):
    """The trained digits CNN; ``fail_at`` makes its n-th forward call raise."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__(num_classes=10)
        self.load_state_dict(load_file(ROOT / "models" / "digits_cnn.safetensors"))
        self.eval()
        self.calls = 0
        self.fail_at = fail_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("forced failure in forward")
        return super().forward(x)


class CountingLinear(Linear):
    """``tiny.Linear`` (6 features, 3 classes); ``fail_at`` makes its n-th forward raise."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__(in_features=6, classes=3)
        self.eval()
        self.calls = 0
        self.fail_at = fail_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("forced failure in forward")
        return super().forward(x)


class CountingTextFeed(TextFeed):
    """The trained text classifier fed token ids; ``fail_at`` makes its n-th forward raise."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__(trained(), Feed(("input_ids", "attention_mask")), PAD)
        self.eval()
        self.calls = 0
        self.fail_at = fail_at

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("forced failure in forward")
        return super().forward(ids)


def make_model(modality: str, fail_at: int | None = None) -> nn.Module:
    if modality == "text":
        return CountingTextFeed(fail_at)
    return CountingDigitsCNN(fail_at) if modality == "image" else CountingLinear(fail_at)


@cache
def batch(modality: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, targets = the model's predictions, background) for a modality."""
    if modality == "image":
        inputs, _ = digits_batch(BATCH)
        background, _ = digits_batch(16, split="train")
    elif modality == "text":
        inputs, _, _ = corpus(BATCH, seed=3)
        background, _, _ = corpus(16, seed=4)
    else:
        gen = torch.Generator().manual_seed(1)
        inputs = torch.randn(BATCH, 6, generator=gen)
        background = torch.randn(16, 6, generator=gen)
    with torch.no_grad():
        targets = make_model(modality)(inputs).argmax(dim=1)
    return inputs, targets, background


# -- the model's state, hooks included ---------------------------------------------------------
HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)
GLOBAL_HOOKS = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)


def leftover_hooks(model: nn.Module) -> list[str]:
    """Every hook on a module, a parameter or globally registered, by where it is."""
    found = []
    for name, module in model.named_modules():
        for attr in HOOK_DICTS:
            if getattr(module, attr, None):
                found.append(f"{name or '<model>'}.{attr}")
    for name, param in model.named_parameters():
        if param._backward_hooks:
            found.append(f"{name}._backward_hooks (tensor)")
    module_globals = torch.nn.modules.module
    found += [f"torch global {a}" for a in GLOBAL_HOOKS if getattr(module_globals, a, None)]
    return found


def model_snapshot(model: nn.Module) -> dict[str, Any]:
    """What an explainer must leave as it found it."""
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "modules": [(n, type(m).__name__, m.training) for n, m in model.named_modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
    }


def model_changes(model: nn.Module, before: dict[str, Any]) -> list[str]:
    """How the model differs from a snapshot (empty when it is unchanged)."""
    changes = [f"hook left: {h}" for h in leftover_hooks(model)]
    state = model.state_dict()
    if list(state) != list(before["state"]):
        changes.append(f"state_dict keys changed: {sorted(set(state) ^ set(before['state']))}")
    changes += [
        f"state_dict['{k}'] changed"
        for k, v in before["state"].items()
        if k in state and not torch.equal(state[k], v)
    ]
    if model_snapshot(model)["modules"] != before["modules"]:
        changes.append("modules or their train/eval mode changed")
    if [p.requires_grad for p in model.parameters()] != before["requires_grad"]:
        changes.append("requires_grad of parameters changed")
    changes += [f"gradient left on {n}" for n, p in model.named_parameters() if p.grad is not None]
    return changes


# -- which explainers, with which params -------------------------------------------------------
def load(name: str) -> type[Explainer] | PluginError:
    try:
        return registries.explainers.get(name)
    except PluginError as exc:  # a module still being written: its tests fail, loudly
        return exc


def params_for(name: str, cls: type[Explainer], modality: str) -> dict[str, Any]:
    fields = cls.Params.model_fields
    wanted = {**CHEAP_COMMON, **CHEAP.get(name, {}), "layer": LAYER[modality]}
    return {k: v for k, v in wanted.items() if k in fields}


def local_cases() -> list[Any]:
    cases = []
    for name in registries.explainers.names():
        cls = load(name)
        if isinstance(cls, PluginError) or cls.scope != "local":
            continue  # an unloadable one fails test_every_registered_explainer_loads
        cases += [
            pytest.param(name, modality, id=f"{name}-{modality}")
            for modality in MODALITIES
            if modality in cls.modalities
        ]
    return cases


def global_cases() -> list[Any]:
    names = [n for n in registries.explainers.names() if not isinstance(load(n), PluginError)]
    return [
        pytest.param(name, modality, id=f"{name}-{modality}")
        for name in names
        if registries.explainers.get(name).scope == "global"
        for modality in MODALITIES
        if modality in registries.explainers.get(name).modalities
    ]


def build(name: str, modality: str, model: nn.Module, seed: int = 0) -> Explainer:
    cls = registries.explainers.get(name)  # raises the import error of an unwritten module
    _, _, background = batch(modality)
    if modality == "text":
        context = replace(text_context(seed), background=background)
        return cls(model, cls.Params.model_validate(params_for(name, cls, modality)), context)
    return make_explainer(
        name,
        model,
        params_for(name, cls, modality),
        modality=modality,
        input_shape=(1, 8, 8) if modality == "image" else (6,),
        background=background,
        seed=seed,
    )


# -- one run per local case, shared by the tests below -----------------------------------------
@dataclass
class LocalRun:
    inputs: torch.Tensor
    output: torch.Tensor
    again: torch.Tensor  # the same explainer object, called a second time
    fresh: torch.Tensor  # a new explainer with the same seed
    singles: torch.Tensor  # sample by sample, concatenated
    changes: list[str]
    mutated: list[str]
    calls: int  # forward calls of one batch explanation


@cache
def local_run(name: str, modality: str) -> LocalRun:
    inputs, targets, background = batch(modality)
    kept = {"inputs": inputs.clone(), "targets": targets.clone(), "background": background.clone()}
    model = make_model(modality)
    before = model_snapshot(model)
    explainer = build(name, modality, model)
    output = explainer.explain(inputs, targets)
    calls = model.calls
    again = explainer.explain(inputs, targets)
    fresh = build(name, modality, model).explain(inputs, targets)
    one_by_one = build(name, modality, model)
    singles = torch.cat(
        [one_by_one.explain(inputs[i : i + 1], targets[i : i + 1]) for i in range(len(inputs))]
    )
    now = {"inputs": inputs, "targets": targets, "background": background}
    mutated = [k for k, v in kept.items() if not torch.equal(v, now[k])]
    mutated += [
        k for k in ("inputs", "background") if now[k].requires_grad or now[k].grad is not None
    ]
    changes = model_changes(model, before)
    return LocalRun(inputs, output, again, fresh, singles, changes, mutated, calls)


LOCAL = local_cases()


@pytest.mark.parametrize("name", registries.explainers.names())
def test_every_registered_explainer_loads(name: str) -> None:
    cls = registries.explainers.get(name)
    assert cls.scope in ("local", "global")
    assert cls.modalities and cls.modalities <= {"image", "tabular", "text", "structured"}
    method = "_attribute" if cls.scope == "local" else "explain_global"
    assert getattr(cls, method) is not getattr(Explainer, method), f"{name} lacks {method}"


@pytest.mark.parametrize(("name", "modality"), LOCAL)
def test_attributions_have_the_input_shape_and_float32(name: str, modality: str) -> None:
    run = local_run(name, modality)
    assert run.output.shape == run.inputs.shape
    assert run.output.dtype == torch.float32
    assert run.output.device.type == "cpu"
    assert torch.isfinite(run.output).all()
    assert run.output.abs().sum() > 0, "all-zero attributions explain nothing"


@pytest.mark.parametrize(("name", "modality"), LOCAL)
def test_same_seed_gives_identical_attributions(name: str, modality: str) -> None:
    run = local_run(name, modality)
    assert torch.equal(run.output, run.again), "a second call on the same explainer differs"
    assert torch.equal(run.output, run.fresh), "a new explainer with the same seed differs"


@pytest.mark.parametrize(("name", "modality"), LOCAL)
def test_batch_of_8_equals_8_batches_of_1(name: str, modality: str) -> None:
    run = local_run(name, modality)
    # 1e-5 relative to the largest attribution: batched and single float32 kernels round
    # differently, far below any difference that would change a ranking.
    scale = max(1.0, float(run.output.abs().max()))
    diff = float((run.output - run.singles).abs().max())
    if diff > 1e-5 * scale:
        inputs, targets, _ = batch(modality)
        other_seed = build(name, modality, make_model(modality), seed=1).explain(inputs, targets)
        hint = (
            " (the method is stochastic: its draws must be seeded per sample, not per batch)"
            if not torch.equal(run.output, other_seed)
            else ""
        )
        pytest.fail(f"max difference {diff:.3g} at scale {scale:.3g}{hint}")


@pytest.mark.parametrize(("name", "modality"), LOCAL)
def test_model_is_left_unchanged(name: str, modality: str) -> None:
    assert local_run(name, modality).changes == []


@pytest.mark.parametrize(("name", "modality"), LOCAL)
def test_inputs_targets_and_background_are_not_mutated(name: str, modality: str) -> None:
    assert local_run(name, modality).mutated == []


@pytest.mark.parametrize("failure", ["target_out_of_range", "first_forward", "last_forward"])
@pytest.mark.parametrize(("name", "modality"), LOCAL)
def test_model_is_left_unchanged_when_the_explainer_raises(
    name: str, modality: str, failure: str
) -> None:
    inputs, targets, _ = batch(modality)
    if failure == "target_out_of_range":
        model = make_model(modality)
        targets = torch.full_like(targets, 13 if modality == "image" else 7)
    else:
        # The last forward call of a normal run: engines have set up their hooks by then.
        calls = local_run(name, modality).calls
        model = make_model(modality, fail_at=1 if failure == "first_forward" else max(1, calls))
    before = model_snapshot(model)
    explainer = build(name, modality, model)
    with pytest.raises(Exception):  # noqa: B017 - any error; what matters is what is left
        explainer.explain(inputs, targets)
    assert model_changes(model, before) == []


# -- global explainers -------------------------------------------------------------------------
GLOBAL = global_cases()
GLOBAL_N = 64


@cache
def global_slice(modality: str) -> tuple[torch.Tensor, Predictions]:
    if modality == "image":
        inputs, labels = digits_batch(GLOBAL_N)
    elif modality == "text":
        inputs, labels, _ = corpus(GLOBAL_N, seed=5)
    else:
        inputs = torch.randn(GLOBAL_N, 6, generator=torch.Generator().manual_seed(2))
        labels = torch.zeros(GLOBAL_N, dtype=torch.long)
    with torch.no_grad():
        logits = make_model(modality)(inputs).numpy()
    predictions = Predictions(
        logits=logits, labels=labels.numpy(), targets=logits.argmax(axis=1).astype(np.int64)
    )
    return inputs, predictions


def expected_names(modality: str) -> list[str]:
    if modality == "image":
        return [f"r{i}c{j}" for i in range(4) for j in range(4)]
    if modality == "text":  # a bag of the words that occur, in vocabulary order
        ids = sorted(set(global_slice("text")[0].flatten().tolist()) - {PAD})
        return [VOCAB[i] for i in ids if i >= len(SPECIALS)]
    return ["age", "bmi", "bp", "s1", "s2", "s3"]


def run_global(name: str, modality: str, model: nn.Module, seed: int = 0) -> Any:
    inputs, predictions = global_slice(modality)
    explainer = build(name, modality, model, seed=seed)
    if modality == "tabular":
        explainer.context.feature_names = expected_names(modality)
    return explainer.explain_global(inputs, predictions)


@pytest.mark.parametrize(("name", "modality"), GLOBAL)
def test_global_explanation_names_every_feature(name: str, modality: str) -> None:
    inputs, _ = global_slice(modality)
    kept = inputs.clone()
    model = make_model(modality)
    before = model_snapshot(model)
    result = run_global(name, modality, model)
    names = expected_names(modality)
    assert result.feature_names == names
    assert result.importance.shape == (len(names),)
    assert np.isfinite(result.importance).all()
    if result.spread is not None:
        assert result.spread.shape == (len(names),)
        assert (result.spread >= 0).all()
    assert all(isinstance(v, float) and np.isfinite(v) for v in result.fidelity.values())
    json.dumps(result.extra, allow_nan=False)
    assert torch.equal(inputs, kept)
    assert model_changes(model, before) == []


@pytest.mark.parametrize(("name", "modality"), GLOBAL)
def test_global_explanation_is_deterministic(name: str, modality: str) -> None:
    first = run_global(name, modality, make_model(modality))
    second = run_global(name, modality, make_model(modality))
    assert np.array_equal(first.importance, second.importance)
    assert first.fidelity == second.fidelity
    assert json.dumps(first.extra) == json.dumps(second.extra)


@pytest.mark.parametrize(("name", "modality"), GLOBAL)
def test_global_model_is_left_unchanged_when_the_model_raises(name: str, modality: str) -> None:
    inputs, predictions = global_slice(modality)
    model = make_model(modality, fail_at=1)
    before = model_snapshot(model)
    try:
        build(name, modality, model).explain_global(inputs, predictions)
    except RuntimeError as exc:
        assert str(exc) == "forced failure in forward"
    else:  # surrogates learn from the predictions alone and never call the model
        assert model.calls == 0
    assert model_changes(model, before) == []


# -- the checks above catch what they are meant to catch ---------------------------------------
def test_model_changes_reports_hooks_grads_weights_and_mode() -> None:
    model = make_model("image")
    before = model_snapshot(model)
    model.features[3].register_forward_hook(lambda *args: None)
    model.classifier[1].register_full_backward_hook(lambda *args: None)
    model.features[0].weight.register_hook(lambda grad: grad)
    model.features[0].bias.grad = torch.zeros(16)
    with torch.no_grad():
        model.classifier[3].bias.add_(1.0)
    model.classifier.train()
    assert model_changes(model, before) == [
        "hook left: features.3._forward_hooks",
        "hook left: classifier.1._backward_hooks",
        "hook left: features.0.weight._backward_hooks (tensor)",
        "state_dict['classifier.3.bias'] changed",
        "modules or their train/eval mode changed",
        "gradient left on features.0.bias",
    ]


class PerBatchNoise(Explainer):
    """Draws its noise for the whole batch at once: not batch-invariant."""

    name = "per_batch_noise"

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return inputs + torch.randn_like(inputs)


def test_noise_drawn_per_batch_breaks_batch_invariance() -> None:
    # Why stochastic explainers must seed each sample's draws (smoothgrad and lime do):
    # the base seeds once per explain() call, so sample i of a batch gets other noise than
    # sample i explained alone, although each call alone is deterministic.
    inputs, targets, _ = batch("image")
    explainer = make_explainer_direct(PerBatchNoise)
    batched = explainer.explain(inputs, targets)
    assert torch.equal(batched, explainer.explain(inputs, targets))
    singles = torch.cat(
        [explainer.explain(inputs[i : i + 1], targets[i : i + 1]) for i in range(8)]
    )
    assert float((batched - singles).abs().max()) > 0.1


def make_explainer_direct(cls: type[Explainer]) -> Explainer:
    context = ExplainContext(modality="image", input_shape=(1, 8, 8), seed=0)
    return cls(make_model("image"), cls.Params(), context)
