"""DeepLIFT and the SHAP family: analytic truth, completeness, agreement between engines,
and DeepLIFT on real architectures through the torch.fx rewrite."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from captum.attr import GradientShap as CaptumGradientShap
from scipy.stats import spearmanr
from tiny import Linear, TinyCNN, digits_batch, digits_cnn, make_explainer
from torch import nn

from auditor.errors import RunError
from auditor.explainers import passes
from auditor.explainers.baselines import gaussian_blur
from auditor.explainers.fx_rewrite import NATIVE_NONLINEAR, UnsupportedModelError, deeplift_model

ALTERNATIVES = (
    "Explainers that work on this model: integrated_gradients, gradient_shap, shap_gradient, "
    "occlusion or feature_ablation."
)
RULES = (
    "DeepLIFT rules cover ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softplus, Softmax and max "
    "pooling (ReLU6, Hardtanh and clamp are rewritten as ReLUs)."
)


def target_outputs(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)[torch.arange(len(x)), targets]


def relative_gap(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    attributions: torch.Tensor,
    reference: torch.Tensor,
) -> torch.Tensor:
    """|sum(attr) - (f(x) - reference)| / |f(x)| per sample."""
    f_x = target_outputs(model, x, targets)
    return (attributions.flatten(1).sum(1) - (f_x - reference)).abs() / f_x.abs()


def hook_count(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(m._backward_pre_hooks)
        for m in model.modules()
    )


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_untouched(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    assert hook_count(model) == 0
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


# --- analytic truth on f(x) = W x + b ------------------------------------------------------


@pytest.fixture
def linear_case() -> tuple[Linear, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 6, generator=gen)
    background = torch.randn(8, 6, generator=gen)
    return Linear(), x, torch.tensor([0, 1, 2, 1, 0]), background


def test_deeplift_zero_baseline_on_linear_is_w_times_x(linear_case) -> None:
    model, x, targets, _ = linear_case
    explainer = make_explainer("deeplift", model, modality="tabular", input_shape=(6,))
    attributions = explainer.explain(x, targets)
    expected = model.fc.weight.detach()[targets] * x
    torch.testing.assert_close(attributions, expected, atol=1e-6, rtol=1e-5)
    assert max(abs(d) for d in explainer.sample_stats["convergence_delta"]) < 1e-5


EXACT_SHAP = {
    "deep_shap": {"n_background": 8},
    "shap_deep": {"n_background": 8},
    "kernel_shap": {"n_background": 8, "summary": "sample"},
}
SAMPLED_SHAP = {
    "gradient_shap": {"n_samples": 2000, "n_background": 8},
    "shap_gradient": {"nsamples": 2000, "n_background": 8},
}


@pytest.mark.parametrize("name", [*EXACT_SHAP, *SAMPLED_SHAP])
def test_shap_values_on_linear_are_w_times_x_minus_background_mean(linear_case, name) -> None:
    model, x, targets, background = linear_case
    params = {**EXACT_SHAP, **SAMPLED_SHAP}[name]
    explainer = make_explainer(
        name, model, params, modality="tabular", input_shape=(6,), background=background
    )
    attributions = explainer.explain(x, targets)
    w = model.fc.weight.detach()[targets]
    expected = w * (x - background.mean(0))
    if name in EXACT_SHAP:
        torch.testing.assert_close(attributions, expected, atol=1e-5, rtol=1e-5)
    else:
        # Expected gradients draw background rows: the error is W * (mean of the drawn rows
        # - mean of all rows), whose standard deviation is |W| * std / sqrt(draws).
        std_error = w.abs() * background.std(0, unbiased=False) / 2000**0.5
        assert ((attributions - expected).abs() <= 4 * std_error + 1e-6).all()


def test_kernel_shap_with_kmeans_summary_is_complete(linear_case) -> None:
    model, x, targets, background = linear_case
    explainer = make_explainer(
        "kernel_shap",
        model,
        {"n_background": 3},
        modality="tabular",
        input_shape=(6,),
        background=background,
    )
    explainer.explain(x, targets)
    assert max(abs(d) for d in explainer.sample_stats["convergence_delta"]) < 1e-5


def test_shap_partition_on_linear_image_model_is_w_times_x() -> None:
    model = Linear(in_features=16, classes=3)
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    targets = torch.tensor([2, 0])
    explainer = make_explainer(
        "shap_partition", model, {"mask": "zeros", "max_evals": 200}, input_shape=(1, 4, 4)
    )
    attributions = explainer.explain(x, targets)
    expected = model.fc.weight.detach()[targets].view(2, 1, 4, 4) * x
    torch.testing.assert_close(attributions, expected, atol=1e-5, rtol=1e-4)


def test_shap_partition_with_blur_mask_is_complete_on_tiny_cnn() -> None:
    model = TinyCNN().eval()
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    targets = torch.tensor([0, 1, 2])
    explainer = make_explainer("shap_partition", model, {"mask": "blur", "max_evals": 100})
    attributions = explainer.explain(x, targets)
    reference = target_outputs(model, gaussian_blur(x, 4.0), targets)
    assert (relative_gap(model, x, targets, attributions, reference) < 0.01).all()


# --- completeness and agreement on the example CNNs -------------------------------------------


@pytest.fixture(scope="module")
def digits() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    model = digits_cnn()
    x, _ = digits_batch(12)
    background, _ = digits_batch(16, split="train")
    with torch.no_grad():
        targets = model(x).argmax(1)
    return model, x, targets, background


@pytest.fixture(scope="module")
def tiny_cnn() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    model = TinyCNN().eval()
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(6, 1, 8, 8, generator=gen)
    background = torch.rand(10, 1, 8, 8, generator=gen)
    return model, x, torch.tensor([0, 1, 2, 0, 1, 2]), background


@pytest.mark.parametrize("case", ["digits", "tiny_cnn"])
@pytest.mark.parametrize("name", ["deeplift", "deep_shap", "shap_deep"])
def test_completeness_on_example_cnns(request, case, name) -> None:
    model, x, targets, background = request.getfixturevalue(case)
    explainer = make_explainer(
        name, model, {"n_background": 16} if name != "deeplift" else {}, background=background
    )
    attributions = explainer.explain(x, targets)
    if name == "deeplift":
        reference = target_outputs(model, torch.zeros_like(x), targets)
    else:
        with torch.no_grad():
            reference = model(background).mean(0)[targets]
    assert (relative_gap(model, x, targets, attributions, reference) < 0.01).all()
    assert len(explainer.sample_stats["convergence_delta"]) == len(x)


def test_deep_shap_and_shap_deep_agree_on_digits(digits) -> None:
    model, x, targets, background = digits
    captum = make_explainer("deep_shap", model, {"n_background": 16}, background=background)
    shap = make_explainer("shap_deep", model, {"n_background": 16}, background=background)
    difference = (captum.explain(x, targets) - shap.explain(x, targets)).abs().max()
    assert difference < 1e-4


def test_gradient_shap_and_shap_gradient_rank_pixels_alike_on_digits(digits) -> None:
    model, x, targets, background = digits
    captum = make_explainer("gradient_shap", model, {"n_samples": 200}, background=background)
    shap = make_explainer("shap_gradient", model, {"nsamples": 200}, background=background)
    a, b = captum.explain(x, targets), shap.explain(x, targets)
    rhos = [spearmanr(a[i].flatten(), b[i].flatten())[0] for i in range(len(x))]
    assert min(rhos) >= 0.9, rhos


def captum_gradient_shap_per_sample(model, x, targets, background, params, seed=0):
    """Captum's GradientShap one sample at a time, generators seeded before each call."""
    method = CaptumGradientShap(model)
    parts, deltas = [], []
    for i in range(len(x)):
        np.random.seed(seed)
        torch.manual_seed(seed)
        attributions, delta = method.attribute(
            x[i : i + 1].clone().requires_grad_(),
            baselines=background,
            n_samples=params["n_samples"],
            stdevs=params["stdevs"],
            target=targets[i : i + 1],
            return_convergence_delta=True,
        )
        parts.append(attributions.detach())
        deltas.append(float(delta.mean()))
    return torch.cat(parts), deltas


@pytest.mark.parametrize("stdevs", [0.0, 0.3])
def test_batched_gradient_shap_equals_captum_with_the_same_draws(digits, stdevs) -> None:
    model, x, targets, background = digits
    params = {"n_samples": 30, "stdevs": stdevs, "n_background": 16}
    explainer = make_explainer("gradient_shap", model, params, background=background)
    attributions = explainer.explain(x, targets)
    expected, deltas = captum_gradient_shap_per_sample(model, x, targets, background, params)
    assert attributions.abs().max() > 0.01
    torch.testing.assert_close(attributions, expected, atol=2e-6, rtol=1e-4)
    np.testing.assert_allclose(explainer.sample_stats["convergence_delta"], deltas, atol=1e-4)


def test_gradient_shap_chunks_of_rows_give_the_same_attributions(digits, monkeypatch) -> None:
    model, x, targets, background = digits
    params = {"n_samples": 12, "stdevs": 0.2}
    whole = make_explainer("gradient_shap", model, params, background=background)
    expected = whole.explain(x, targets)
    monkeypatch.setattr(passes, "ROW_ELEMENTS", 7 * 64)  # 7 rows: splits samples too
    chunked = make_explainer("gradient_shap", model, params, background=background)
    torch.testing.assert_close(chunked.explain(x, targets), expected, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(
        chunked.sample_stats["convergence_delta"],
        whole.sample_stats["convergence_delta"],
        atol=1e-5,
    )


def test_shap_gradient_results_do_not_depend_on_its_batch_size(digits) -> None:
    model, x, targets, background = digits
    params = {"nsamples": 40, "n_background": 16}
    whole = make_explainer("shap_gradient", model, params, background=background)
    small = make_explainer(
        "shap_gradient", model, {**params, "batch_size": 7}, background=background
    )
    torch.testing.assert_close(
        whole.explain(x, targets), small.explain(x, targets), atol=1e-6, rtol=1e-5
    )


def test_plain_captum_deeplift_loses_the_max_pool_rule_after_a_relu(digits) -> None:
    """Why the rewrite also runs on DigitsCNN: Captum saves the ReLU's output gradient
    before the next MaxPool's hook rescales it; a private copy in between fixes that."""
    model, x, targets, _ = digits
    reference = target_outputs(model, torch.zeros_like(x), targets)
    plain = make_explainer("deeplift", model, {"rewrite": False}).explain(x, targets)
    fixed = make_explainer("deeplift", model).explain(x, targets)
    assert relative_gap(model, x, targets, plain, reference).max() > 0.01
    assert relative_gap(model, x, targets, fixed, reference).max() < 1e-4


# --- batches, targets only ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("gradient_shap", {"n_samples": 20}),
        ("shap_gradient", {"nsamples": 20}),
        ("kernel_shap", {"nsamples": 30}),
    ],
)
def test_sampled_explainers_do_not_depend_on_the_batch(linear_case, name, params) -> None:
    model, x, targets, background = linear_case
    explainer = make_explainer(
        name, model, params, modality="tabular", input_shape=(6,), background=background
    )
    together = explainer.explain(x, targets)
    alone = torch.cat([explainer.explain(x[i : i + 1], targets[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=0)


class CountingLinear(Linear):
    """Linear that counts its forward calls."""

    def __init__(self, classes: int) -> None:
        super().__init__(in_features=6, classes=classes)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return super().forward(x)


@pytest.mark.parametrize(
    ("name", "params"),
    [("shap_gradient", {"nsamples": 20, "batch_size": 10}), ("kernel_shap", {"nsamples": 30})],
)
def test_cost_does_not_grow_with_the_number_of_classes(linear_case, name, params) -> None:
    _, x, targets, background = linear_case
    calls = []
    for classes in (3, 12):
        model = CountingLinear(classes)
        explainer = make_explainer(
            name, model, params, modality="tabular", input_shape=(6,), background=background
        )
        explainer.explain(x, targets)
        calls.append(model.calls)
    assert calls[0] == calls[1]
    if name == "shap_gradient":
        # one explainer per target class (3 distinct targets, one call each on the
        # background), 5 samples * 20 draws / 10 per pass, and 2 calls for the gap
        assert calls[0] == 3 + 5 * 2 + 2


# --- DeepLIFT on real architectures ------------------------------------------------------------


def calibrated(arch: str) -> nn.Module:
    """A torchvision model with random weights and batch-norm statistics of random images.

    Without calibration the eval-mode logits of a fresh mobilenet_v2 are ~1e-11, too small
    for a relative completeness check to mean anything.
    """
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=10)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the calibration batch
    model.train()
    with torch.no_grad():
        model(torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    return model.eval()


@pytest.fixture(scope="module", params=["resnet18", "mobilenet_v2"])
def architecture(request) -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(2, 3, 32, 32, generator=gen)
    background = torch.rand(3, 3, 32, 32, generator=gen)
    return calibrated(request.param), x, torch.tensor([3, 7]), background


@pytest.mark.parametrize("name", ["deeplift", "deep_shap", "shap_deep"])
def test_deeplift_family_is_complete_on_torchvision_architectures(architecture, name) -> None:
    model, x, targets, background = architecture
    before, x_before = snapshot(model), x.clone()
    explainer = make_explainer(
        name, model, {} if name == "deeplift" else {"n_background": 3}, background=background
    )
    attributions = explainer.explain(x, targets)
    if name == "deeplift":
        reference = target_outputs(model, torch.zeros_like(x), targets)
    else:
        with torch.no_grad():
            reference = model(background).mean(0)[targets]
    assert (relative_gap(model, x, targets, attributions, reference) < 0.01).all()
    assert_untouched(model, before)
    assert torch.equal(x, x_before)


def test_engines_fail_on_resnet18_without_the_rewrite() -> None:
    model = calibrated("resnet18")
    before = snapshot(model)
    x, targets = torch.rand(1, 3, 32, 32), torch.tensor([0])
    background = torch.rand(2, 3, 32, 32)
    captum = make_explainer("deeplift", model, {"rewrite": False})
    with pytest.raises(RuntimeError, match="used more than once in the network"):
        captum.explain(x, targets)
    shap = make_explainer("shap_deep", model, {"rewrite": False}, background=background)
    with pytest.raises(RuntimeError, match="is a view and is being modified inplace"):
        shap.explain(x, targets)
    assert_untouched(model, before)


def test_mobilenet_v2_relu6_gets_the_plain_gradient_without_the_rewrite() -> None:
    model = calibrated("mobilenet_v2")
    x, targets = torch.rand(2, 3, 32, 32), torch.tensor([1, 2])
    attributions = make_explainer("deeplift", model, {"rewrite": False}).explain(x, targets)
    reference = target_outputs(model, torch.zeros_like(x), targets)
    assert relative_gap(model, x, targets, attributions, reference).min() > 0.05


# --- the torch.fx rewrite ------------------------------------------------------------------------


class Functional(nn.Module):
    """Every pattern the rewrite handles: reused, in-place, functional, clamps, pools."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.six = nn.ReLU6(inplace=True)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv(x))
        y += self.act(self.conv(x * 2))  # a module used twice, an in-place add
        z = F.relu(y - 1, inplace=True).add_(0.5)
        w = torch.clamp(z, min=-0.2, max=0.9) + x.clamp(max=0.3) + F.hardtanh(z, -0.5, 0.5)
        v = self.pool(self.six(w * 4)) + F.max_pool2d(torch.sigmoid(w), 2).mean((1, 2, 3)).view(
            -1, 1, 1, 1
        )
        return torch.tanh(v).flatten(1)[:, :3] + F.leaky_relu(v, 0.1).flatten(1)[:, 3:6]


def test_rewrite_keeps_the_function_and_gives_each_call_its_own_module() -> None:
    torch.manual_seed(0)
    model = Functional().eval()
    x = torch.randn(3, 1, 6, 6)
    rewritten = deeplift_model(model, "deeplift")
    torch.testing.assert_close(rewritten(x), model(x.clone()), atol=1e-6, rtol=1e-6)
    calls = [n for n in rewritten.graph.nodes if n.op == "call_module"]
    nonlinear = [
        n for n in calls if isinstance(rewritten.get_submodule(n.target), NATIVE_NONLINEAR)
    ]
    assert len({n.target for n in nonlinear}) == len(nonlinear) > 10
    assert not any(getattr(m, "inplace", False) for m in rewritten.modules())
    assert not any(isinstance(m, (nn.ReLU6, nn.Hardtanh)) for m in rewritten.modules())
    assert not any(str(n.target).endswith("_") for n in rewritten.graph.nodes if n.op != "output")
    # the overlapping max pool became ReLUs; the 2x2 one stays a MaxPool2d
    pools = [m for m in rewritten.modules() if isinstance(m, nn.MaxPool2d)]
    assert [p.kernel_size for p in pools] == [2]


def test_rewrite_makes_deeplift_complete_on_the_functional_model() -> None:
    torch.manual_seed(0)
    model = Functional().eval()
    x, targets = torch.randn(4, 1, 6, 6), torch.tensor([0, 1, 2, 0])
    explainer = make_explainer("deeplift", model, input_shape=(1, 6, 6))
    attributions = explainer.explain(x, targets)
    reference = target_outputs(model, torch.zeros_like(x), targets)
    gap = attributions.flatten(1).sum(1) - (target_outputs(model, x, targets) - reference)
    assert gap.abs().max() < 1e-4


class Gate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.gate = Gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.fc(x))


class WithGelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 2)
        self.b = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) * torch.sigmoid(self.b(x))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            Untraceable(),
            "deep_shap cannot explain Untraceable: torch.fx cannot trace module 'gate' (Gate): "
            "symbolically traced variables cannot be used as inputs to control flow. DeepLIFT "
            "needs the traced graph to give every activation its own module. " + ALTERNATIVES,
        ),
        (
            WithGelu(),
            "deep_shap cannot explain WithGelu: module 'body.1' (GELU) has no DeepLIFT rule in "
            "Captum or shap and is not known to be linear. " + RULES + " " + ALTERNATIVES,
        ),
        (
            Gated(),
            "deep_shap cannot explain Gated: 'mul' in the forward of Gated multiplies two "
            "data-dependent tensors, which no DeepLIFT rule covers. " + ALTERNATIVES,
        ),
    ],
    ids=["untraceable", "gelu", "product"],
)
def test_unsupported_models_say_where_why_and_what_works(model, message) -> None:
    before = snapshot(model)
    explainer = make_explainer(
        "deep_shap", model, modality="tabular", input_shape=(4,), background=torch.rand(3, 4)
    )
    with pytest.raises(UnsupportedModelError) as error:
        explainer.explain(torch.rand(2, 4), torch.tensor([0, 1]))
    assert str(error.value) == message
    assert_untouched(model, before)


def test_background_is_required() -> None:
    explainer = make_explainer("deep_shap", Linear(), modality="tabular", input_shape=(6,))
    with pytest.raises(RunError) as error:
        explainer.explain(torch.rand(2, 6), torch.tensor([0, 1]))
    assert str(error.value) == (
        "deep_shap needs background samples from the data slice, but none were given"
    )


def test_deep_shap_internal_batches_change_nothing(digits) -> None:
    model, x, targets, background = digits
    whole = make_explainer("deep_shap", model, {"n_background": 16}, background=background)
    pieces = make_explainer(
        "deep_shap", model, {"n_background": 16, "internal_batch_size": 40}, background=background
    )
    torch.testing.assert_close(whole.explain(x, targets), pieces.explain(x, targets))
    assert pieces.sample_stats["convergence_delta"] == pytest.approx(
        whole.sample_stats["convergence_delta"], abs=1e-5
    )
