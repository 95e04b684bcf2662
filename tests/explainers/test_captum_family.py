"""Captum-family explainers: analytic truth, agreement with the engines, hooks and seeds.

Covers input_x_gradient, smoothgrad, guided_backprop, occlusion, feature_ablation, lime,
gradcam_plus_plus and score_cam. The cross-explainer conformance suite lives elsewhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum._utils.models.linear_model import SkLearnLinearRegression
from captum.attr import FeatureAblation as CaptumFeatureAblation
from captum.attr import GuidedBackprop as CaptumGuidedBackprop
from captum.attr import InputXGradient as CaptumInputXGradient
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Saliency
from captum.attr import Lime as CaptumLime
from captum.attr import Occlusion as CaptumOcclusion
from pydantic import ValidationError
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from tiny import Linear, TinyCNN, digits_batch, digits_cnn, make_explainer

from auditor.errors import SpecError
from auditor.explainers.baselines import make_baseline
from auditor.explainers.gradcam_plus_plus import gradcam_pp_weights
from auditor.explainers.score_cam import normalize
from auditor.explainers.smoothgrad import sample_seed

FAMILY = {
    "input_x_gradient": {},
    "smoothgrad": {"nt_samples": 4},
    "guided_backprop": {},
    "occlusion": {},
    "feature_ablation": {},
    "lime": {"n_samples": 32},
    "gradcam_plus_plus": {"layer": "features.3"},
    "score_cam": {"layer": "features.3"},
}
TABULAR = ["input_x_gradient", "smoothgrad", "guided_backprop", "occlusion", "feature_ablation"]


@pytest.fixture(scope="module")
def digits() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    x, y = digits_batch(6)
    return digits_cnn(), x, y


@pytest.fixture(scope="module")
def linear() -> tuple[Linear, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The linear model, 5 tabular samples, their targets, W_t and the truth W_t * x."""
    model = Linear()
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0, 1, 2, 0, 1])
    w_t = model.fc.weight.detach()[t]
    return model, x, t, w_t, w_t * x


def tabular(name: str, model: nn.Module, params: dict | None = None, seed: int = 0):
    return make_explainer(name, model, params, modality="tabular", input_shape=(6,), seed=seed)


def hook_count(model: nn.Module) -> int:
    """Module hooks on ``model`` plus torch's global module hooks."""
    kinds = ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks", "_backward_pre_hooks")
    own = sum(len(getattr(m, kind)) for m in model.modules() for kind in kinds)
    g = torch.nn.modules.module
    return own + sum(
        len(d)
        for d in (
            g._global_forward_pre_hooks,
            g._global_forward_hooks,
            g._global_backward_hooks,
            g._global_backward_pre_hooks,
        )
    )


# --- analytic truth on f(x) = Wx + b --------------------------------------------------------


@pytest.mark.parametrize("name", ["input_x_gradient", "occlusion", "feature_ablation"])
def test_linear_model_gives_w_times_x(name, linear):
    model, x, t, _, truth = linear
    torch.testing.assert_close(tabular(name, model).explain(x, t), truth, atol=1e-5, rtol=0)


@pytest.mark.parametrize("stdevs", [0.0, 0.5])
def test_smoothgrad_saliency_on_linear_model_is_abs_w(linear, stdevs):
    # The gradient of a linear model is constant, so noise of any size changes nothing.
    model, x, t, w_t, _ = linear
    out = tabular("smoothgrad", model, {"stdevs": stdevs, "nt_samples": 8}).explain(x, t)
    torch.testing.assert_close(out, w_t.abs(), atol=1e-6, rtol=0)


def test_smoothgrad_ig_base_without_noise_is_w_times_x(linear):
    model, x, t, _, truth = linear
    params = {"base": "integrated_gradients", "stdevs": 0.0, "nt_samples": 2, "n_steps": 4}
    torch.testing.assert_close(
        tabular("smoothgrad", model, params).explain(x, t), truth, atol=1e-5, rtol=0
    )


def test_smoothgrad_vargrad_of_constant_gradient_is_zero(linear):
    model, x, t, _, _ = linear
    params = {"nt_type": "vargrad", "abs": False, "nt_samples": 8, "stdevs": 0.3}
    out = tabular("smoothgrad", model, params).explain(x, t)
    torch.testing.assert_close(out, torch.zeros_like(x), atol=1e-6, rtol=0)


def test_lime_least_squares_recovers_w_times_x_with_r2_one(linear):
    model, x, t, _, truth = linear
    explainer = tabular("lime", model, {"alpha": 0.0, "n_samples": 64})
    torch.testing.assert_close(explainer.explain(x, t), truth, atol=1e-4, rtol=0)
    assert len(explainer.sample_stats["r2"]) == 5
    assert min(explainer.sample_stats["r2"]) > 1 - 1e-9


def test_lime_ridge_is_proportional_to_w_times_x(linear):
    model, x, t, _, truth = linear
    explainer = tabular("lime", model)  # default ridge penalty shrinks, direction stays
    out = explainer.explain(x, t)
    cosine = F.cosine_similarity(out, truth, dim=1)
    assert cosine.min() > 0.999
    assert (out.norm(dim=1) <= truth.norm(dim=1) + 1e-6).all()  # shrunk, never inflated
    assert min(explainer.sample_stats["r2"]) > 0.99


def test_lime_probability_output_fits_the_softmax_of_the_target(linear):
    model, x, t, _, _ = linear
    params = {"n_samples": 48, "output": "probability"}
    ours = tabular("lime", model, params).explain(x, t)
    softmaxed = nn.Sequential(model, nn.Softmax(dim=1))
    expected = tabular("lime", softmaxed, {"n_samples": 48}).explain(x, t)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-5)
    assert ours.abs().max() < 1  # probabilities move by less than 1


def test_lime_r2_is_below_one_where_the_model_is_not_linear(digits):
    model, x, y = digits
    explainer = make_explainer("lime", model, {"n_samples": 64, "cell": 2})
    explainer.explain(x, y)
    r2 = explainer.sample_stats["r2"]
    assert len(r2) == len(x)
    assert all(0.0 < v < 1.0 for v in r2)


# --- agreement with the engines called directly --------------------------------------------


@pytest.mark.parametrize(
    ("method", "baseline", "internal"),
    [
        ("gausslegendre", "zeros", None),
        ("gausslegendre", "mean", 12),  # 2 steps of 6 samples per pass
        ("riemann_trapezoid", "zeros", 5),  # less than the batch: one step per pass
        ("riemann_left", "uniform", None),
        ("riemann_right", "zeros", None),
        ("riemann_middle", "mean", None),
    ],
)
def test_integrated_gradients_equals_captum(digits, method, baseline, internal):
    model, x, y = digits
    background = x.flip(0)
    params = {"n_steps": 7, "method": method, "baseline": baseline}
    explainer = make_explainer(
        "integrated_gradients", model, {**params, "internal_batch_size": internal},
        background=background,
    )  # fmt: skip
    ours = explainer.explain(x, y)
    start = make_baseline(baseline, x, background, seed=0)
    theirs, delta = IntegratedGradients(model).attribute(
        x.clone(), baselines=start, target=y, n_steps=7, method=method,
        return_convergence_delta=True,
    )  # fmt: skip
    torch.testing.assert_close(ours, theirs.detach(), atol=1e-6, rtol=1e-4)
    np.testing.assert_allclose(explainer.sample_stats["convergence_delta"], delta, atol=1e-5)
    assert ours.abs().max() > 0.01


@pytest.mark.parametrize(("relu", "mode"), [(True, "bilinear"), (False, "nearest")])
def test_gradcam_equals_captum(digits, relu, mode):
    model, x, y = digits
    params = {"layer": "features.3", "relu": relu, "interpolate": mode}
    ours = make_explainer("gradcam", model, params).explain(x, y)
    cam = LayerGradCam(model, model.features[3]).attribute(x, target=y, relu_attributions=relu)
    theirs = LayerAttribution.interpolate(cam, (8, 8), interpolate_mode=mode).expand_as(x)
    torch.testing.assert_close(ours, theirs.detach(), atol=1e-6, rtol=1e-5)
    assert ours.abs().max() > 0 and (relu or ours.min() < 0)


def test_input_x_gradient_equals_captum(digits):
    model, x, y = digits
    ours = make_explainer("input_x_gradient", model).explain(x, y)
    theirs = CaptumInputXGradient(model).attribute(x.clone().requires_grad_(), target=y)
    torch.testing.assert_close(ours, theirs.detach())


@pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")
def test_guided_backprop_equals_captum_and_differs_from_the_gradient(digits):
    model, x, y = digits
    ours = make_explainer("guided_backprop", model).explain(x, y)
    theirs = CaptumGuidedBackprop(model).attribute(x.clone().requires_grad_(), target=y)
    torch.testing.assert_close(ours, theirs.detach())
    gradient = Saliency(model).attribute(x.clone().requires_grad_(), target=y, abs=False)
    assert not torch.allclose(ours, gradient, atol=1e-4)


def test_occlusion_equals_captum(digits):
    model, x, y = digits
    params = {"window": [2, 3], "stride": [1, 2], "baseline": 0.5, "perturbations_per_eval": 5}
    ours = make_explainer("occlusion", model, params).explain(x, y)
    theirs = CaptumOcclusion(model).attribute(
        x, sliding_window_shapes=(1, 2, 3), strides=(1, 1, 2), baselines=0.5, target=y
    )
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_occlusion_image_defaults_are_an_eighth_of_the_side_with_half_stride(digits):
    model, x, y = digits
    assert make_explainer("occlusion", model).window == (1, 1, 1)  # 8x8 digits: pixels
    big = make_explainer("occlusion", model, input_shape=(3, 32, 20))
    assert (big.window, big.stride) == ((3, 4, 3), (3, 2, 1))
    ours = make_explainer("occlusion", model).explain(x, y)
    theirs = CaptumOcclusion(model).attribute(x, sliding_window_shapes=(1, 1, 1), target=y)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_feature_ablation_on_a_grid_equals_captum_with_that_mask(digits):
    model, x, y = digits
    ours = make_explainer("feature_ablation", model, {"cell": 3}).explain(x, y)
    rows, cols = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    mask = ((rows // 3) * 3 + cols // 3).view(1, 1, 8, 8)  # cells of 3, 3 and 2 pixels
    theirs = CaptumFeatureAblation(model).attribute(x, target=y, feature_mask=mask)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert ours[0, 0, :3, :3].unique().numel() == 1  # one value per cell


def test_feature_ablation_default_grid_is_8_by_8_cells():
    x = torch.rand(2, 3, 16, 16)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 2))
    out = make_explainer("feature_ablation", model, input_shape=(3, 16, 16)).explain(
        x, torch.tensor([0, 1])
    )
    # 2x2-pixel cells over all channels: each cell's value is the linear drop of its pixels.
    w = model[1].weight.detach().view(2, 3, 16, 16)
    expected = (w[[0, 1]] * x).view(2, 3, 8, 2, 8, 2).sum(dim=(1, 3, 5))
    expected = expected.repeat_interleave(2, 1).repeat_interleave(2, 2).unsqueeze(1)
    torch.testing.assert_close(out, expected.expand(2, 3, 16, 16), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("base", "nt_type", "chunk"),
    [
        ("saliency", "smoothgrad_sq", None),
        ("saliency", "smoothgrad", 2),
        ("saliency", "vargrad", None),
        ("integrated_gradients", "smoothgrad", None),
        ("integrated_gradients", "vargrad", 3),
    ],
)
def test_smoothgrad_equals_captum_noise_tunnel_seeded_per_sample(digits, base, nt_type, chunk):
    model, x, y = digits
    params = {"nt_samples": 5, "stdevs": 0.2, "nt_type": nt_type, "base": base, "n_steps": 4}
    params["nt_samples_batch_size"] = chunk
    ours = make_explainer("smoothgrad", model, params, seed=3).explain(x[:4], y[:4])
    method = Saliency(model) if base == "saliency" else IntegratedGradients(model)
    extra = {"abs": True} if base == "saliency" else {"n_steps": 4}
    for i in range(4):
        torch.manual_seed(sample_seed(3, x[i]))
        stdev = 0.2 * float(x[i].max() - x[i].min())
        theirs = NoiseTunnel(method).attribute(
            x[i : i + 1].clone().requires_grad_(),
            nt_type=nt_type,
            nt_samples=5,
            nt_samples_batch_size=chunk,
            stdevs=stdev,
            target=int(y[i]),
            **extra,
        )
        torch.testing.assert_close(ours[i : i + 1], theirs.detach(), atol=1e-6, rtol=1e-4)
    assert ours.abs().max() > 0


def test_lime_agrees_with_captum_lime_on_the_linear_model(linear):
    model, x, t, _, truth = linear
    ours = tabular("lime", model, {"alpha": 0.0, "n_samples": 64}).explain(x, t)
    theirs = torch.cat(
        [
            CaptumLime(model, interpretable_model=SkLearnLinearRegression()).attribute(
                x[i : i + 1], target=int(t[i]), n_samples=64
            )
            for i in range(len(x))
        ]
    )
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
    torch.testing.assert_close(theirs, truth, atol=1e-4, rtol=0)


# --- Grad-CAM++ -----------------------------------------------------------------------------


class GapLinear(nn.Module):
    """ReLU feature maps, global average pool, linear: Grad-CAM++ has a closed form."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def test_gradcam_plus_plus_matches_the_closed_form_for_gap_linear():
    # Score S = sum_k W_tk mean(A_k) + b, so g = W_tk / (HW) at every pixel and
    # w_k = HW relu(g) / (2 + sum(A_k) g) = relu(W_tk) / (2 + mean(A_k) W_tk).
    model = GapLinear().eval()
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([0, 1, 2])
    out = make_explainer("gradcam_plus_plus", model, {"layer": "features.1"}).explain(x, t)
    with torch.no_grad():
        maps = model.features(x)
        w = model.head[2].weight[t]
        weights = F.relu(w) / (2 + maps.mean(dim=(2, 3)) * w)
        expected = F.relu((weights[:, :, None, None] * maps).sum(dim=1, keepdim=True))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_gradcam_plus_plus_weights_ignore_zero_and_negative_gradients():
    activations = torch.ones(1, 3, 2, 2)
    grads = torch.tensor([0.0, -1.0, 0.5]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    weights = gradcam_pp_weights(activations, grads)
    # Channel 2: alpha = 1 / (2 + 4 * 0.5) = 0.25 at each of 4 pixels, times relu(g) = 0.5.
    torch.testing.assert_close(weights, torch.tensor([[0.0, 0.0, 0.5]]))


class BlobDetector(nn.Module):
    """Channel 0 fires on bright pixels, channel 1 on dark ones; class k reads channel k.

    The weights make the blob image class 0 (p = 0.58) and a blank image class 1 (p = 0.73),
    so that Score-CAM's masked scores are contrastive too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
        with torch.no_grad():
            self.features[0].weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.features[0].bias.copy_(torch.tensor([-0.5, 0.5]))
            self.head[2].weight.copy_(torch.diag(torch.tensor([40.0, 2.0])))
            self.head[2].bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@pytest.mark.parametrize("name", ["gradcam_plus_plus", "score_cam"])
def test_cam_highlights_the_region_the_target_class_reads(name):
    image = torch.zeros(1, 1, 12, 12)
    image[..., 1:4, 7:10] = 1.0  # a bright blob at the top right
    x = image.expand(2, 1, 12, 12).contiguous()
    out = make_explainer(
        name, BlobDetector().eval(), {"layer": "features.1"}, input_shape=(1, 12, 12)
    ).explain(x, torch.tensor([0, 1]))
    blob = image[0, 0] > 0
    assert out.min() >= 0
    assert out[0, 0][blob].mean() > 1.5 * out[0, 0][~blob].mean()  # class 0: the blob
    assert out[1, 0][~blob].mean() > 1.5 * out[1, 0][blob].mean()  # class 1: the background
    assert out[0, 0].argmax() in torch.nonzero(blob.flatten())


def test_gradcam_plus_plus_upsamples_and_fills_every_channel():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    ).eval()
    x = torch.rand(2, 3, 16, 16)
    out = make_explainer(
        "gradcam_plus_plus", model, {"layer": "1"}, input_shape=(3, 16, 16)
    ).explain(x, torch.tensor([0, 1]))
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.min() >= 0
    torch.testing.assert_close(out[:, 0], out[:, 2])


@pytest.mark.parametrize("name", ["gradcam_plus_plus", "score_cam"])
def test_cam_on_a_non_convolutional_layer_is_a_spec_error(name, digits):
    model, x, y = digits
    with pytest.raises(SpecError) as err:
        make_explainer(name, model, {"layer": "classifier.1"}).explain(x, y)
    assert err.value.issues[0].loc == ("params", "layer")
    assert err.value.issues[0].message == (
        "layer 'classifier.1' outputs shape (6, 64); a class activation map needs a "
        "convolutional layer with output (N, C, H, W)"
    )
    assert hook_count(model) == 0


# --- Score-CAM ------------------------------------------------------------------------------


def score_cam_reference(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """Score-CAM of one digit at ``features`` (4x4 maps), written as a plain loop."""
    with torch.no_grad():
        maps = F.interpolate(model.features(x[None]), size=(8, 8), mode="bilinear")[0]
        cam = torch.zeros(8, 8)
        for a in maps:
            if a.max() == a.min():
                continue
            mask = (a - a.min()) / (a.max() - a.min())
            score = model(x[None] * mask).softmax(dim=1)[0, target]
            cam += score * a
    return F.relu(cam)


def test_score_cam_equals_the_reference_loop_for_the_target_only(digits):
    model, x, y = digits
    targets = torch.tensor([int(y[0]), (int(y[0]) + 1) % 10, int(y[2])])
    for batch_size in (7, 1000):  # batching of masked inputs changes nothing
        params = {"layer": "features", "batch_size": batch_size}
        out = make_explainer("score_cam", model, params).explain(x[[0, 0, 2]], targets)
        for i, (sample, target) in enumerate(zip(x[[0, 0, 2]], targets.tolist(), strict=True)):
            expected = score_cam_reference(model, sample, target)
            torch.testing.assert_close(out[i, 0], expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(out[0], out[1])  # another target, another map
    assert out.shape == (3, 1, 8, 8) and out.min() >= 0


def test_score_cam_gives_constant_maps_no_weight():
    maps = torch.stack([torch.zeros(4, 4), torch.arange(16.0).view(4, 4)]).unsqueeze(0)
    masks, usable = normalize(maps)
    torch.testing.assert_close(usable, torch.tensor([[0.0, 1.0]]))
    assert torch.isfinite(masks).all()
    assert masks[0, 1].min() == 0 and masks[0, 1].max() == 1


# --- hooks, failures, inputs, seeds ---------------------------------------------------------


class Exploding(nn.Module):
    """The digits CNN, raising after its features (so hooks are already registered)."""

    def __init__(self) -> None:
        super().__init__()
        inner = digits_cnn()
        self.features, self.classifier = inner.features, inner.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.features(x)
        raise RuntimeError("boom")


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_no_hooks_and_no_changes_after_success(name, digits):
    model, x, y = digits
    before_x = x.clone()
    before_state = {k: v.clone() for k, v in model.state_dict().items()}
    out = make_explainer(name, model, FAMILY[name]).explain(x, y)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert hook_count(model) == 0
    assert torch.equal(x, before_x)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before_state[key]), key


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_hooks_the_caller_put_on_the_model_stay(name, digits):
    model, x, y = digits
    calls: list[int] = []
    handles = [
        model.features[3].register_forward_hook(lambda *_: calls.append(1)),
        model.features[1].register_full_backward_hook(lambda *_: None),
    ]
    try:
        make_explainer(name, model, FAMILY[name]).explain(x, y)
        assert hook_count(model) == 2
        assert calls  # the caller's hook still ran
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_no_hooks_after_the_model_raises(name, digits):
    _, x, y = digits
    model = Exploding().eval()
    with pytest.raises(RuntimeError, match="boom"):
        make_explainer(name, model, FAMILY[name]).explain(x, y)
    assert hook_count(model) == 0


class SharedConv(nn.Module):
    """One convolution applied twice: its output is ambiguous for a CAM."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(torch.relu(self.conv(x))))


@pytest.mark.parametrize("name", ["gradcam_plus_plus", "score_cam"])
def test_cam_at_a_layer_called_twice_fails_clearly(name, digits):
    _, x, y = digits
    model = SharedConv().eval()
    with pytest.raises(RuntimeError) as err:
        make_explainer(name, model, {"layer": "conv"}).explain(x, y % 2)
    assert str(err.value) == (
        "layer 'conv' ran 2 times in one forward pass; a class activation map needs a "
        "layer that is called once and returns one tensor"
    )
    assert hook_count(model) == 0


@pytest.mark.parametrize("name", ["gradcam_plus_plus", "score_cam"])
def test_unknown_layer_is_a_spec_error_listing_layers(name, digits):
    model, x, y = digits
    with pytest.raises(SpecError) as err:
        make_explainer(name, model, {"layer": "features.9"}).explain(x, y)
    message = err.value.issues[0].message
    assert message.startswith("unknown layer 'features.9'.")
    assert "features.3" in message
    assert hook_count(model) == 0


@pytest.mark.parametrize("name", [*TABULAR, "lime"])
def test_tabular_inputs_are_not_mutated(name, linear):
    model, x, t, _, _ = linear
    before = x.clone()
    out = tabular(name, model, FAMILY[name]).explain(x, t)
    assert out.shape == x.shape
    assert torch.equal(x, before)
    assert hook_count(model) == 0


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("smoothgrad", {"nt_samples": 4}),
        ("smoothgrad", {"base": "integrated_gradients", "nt_samples": 3, "n_steps": 4}),
        ("lime", {"n_samples": 32}),
    ],
)
def test_seeded_methods_are_deterministic_and_batch_invariant(name, params, digits):
    model, x, y = digits
    first = make_explainer(name, model, params, seed=7).explain(x, y)
    again = make_explainer(name, model, params, seed=7).explain(x, y)
    other = make_explainer(name, model, params, seed=8).explain(x, y)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    one_by_one = torch.cat(
        [
            make_explainer(name, model, params, seed=7).explain(x[i : i + 1], y[i : i + 1])
            for i in range(len(x))
        ]
    )
    torch.testing.assert_close(first, one_by_one, atol=1e-6, rtol=1e-6)


def test_smoothgrad_noise_is_relative_to_the_sample_range_or_absolute():
    model = TinyCNN().eval()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0, 2])
    relative = make_explainer("smoothgrad", model, {"stdevs": 0.1}).explain(x * 10, t)
    absolute = make_explainer(
        "smoothgrad", model, {"stdevs": 0.1, "stdevs_mode": "absolute"}
    ).explain(x * 10, t)
    span = float((x[0] * 10).max() - (x[0] * 10).min())
    scaled = make_explainer(
        "smoothgrad", model, {"stdevs": 0.1 * span, "stdevs_mode": "absolute"}
    ).explain(x[:1] * 10, t[:1])
    torch.testing.assert_close(relative[:1], scaled)
    assert not torch.allclose(relative, absolute)


# --- params -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        (
            {"window": [3]},
            "window",
            "window needs an int or 2 value(s) (input shape [8, 8]), got [3]",
        ),
        ({"window": 9}, "window", "window [9, 9] is larger than the input's image size [8, 8]"),
        (
            {"window": 2, "stride": [1, 9]},
            "stride",
            "stride [1, 9] is larger than the input's image size [8, 8]",
        ),
    ],
)
def test_occlusion_rejects_windows_that_do_not_fit(params, field, message, digits):
    model, _, _ = digits
    with pytest.raises(SpecError) as err:
        make_explainer("occlusion", model, params)
    assert err.value.issues[0].loc == ("params", field)
    assert err.value.issues[0].message == message


def test_occlusion_tabular_window_of_two_features(linear):
    model, x, t, w_t, _ = linear
    out = tabular("occlusion", model, {"window": 2, "stride": 2}).explain(x, t)
    pairs = (w_t * x).view(5, 3, 2).sum(dim=2).repeat_interleave(2, dim=1)
    torch.testing.assert_close(out, pairs, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("smoothgrad", {"nt_samples": 0}),
        ("smoothgrad", {"stdevs": -0.1}),
        ("smoothgrad", {"base": "deeplift"}),
        ("occlusion", {"window": 0}),
        ("lime", {"kernel_width": 0}),
        ("lime", {"n_samples": 1}),
        ("score_cam", {"layer": "features", "batch_size": 0}),
        ("gradcam_plus_plus", {}),
        ("input_x_gradient", {"abs": True}),
    ],
)
def test_params_are_bounded_and_closed(name, params):
    from auditor import registries

    with pytest.raises(ValidationError):
        registries.explainers.get(name).Params.model_validate(params)
