"""The batched KernelSHAP engine against shap.KernelExplainer and analytic values."""

from __future__ import annotations

import numpy as np
import pytest
import shap
import torch
from scipy import stats
from torch import nn

from auditor.explainers.kernel_shap_engine import default_nsamples, shap_coalitions
from examples.models import TabularMLP
from tests.explainers.tiny import make_explainer


def mlp(features: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return TabularMLP(features, (16,), 3).eval()


def data(features: int, samples: int, background: int, seed: int = 1) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, features, generator=generator)
    bg = torch.randn(background, features, generator=generator)
    return x, bg


def shap_reference(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    summary: object,
    seed: int = 0,
    **options: object,
) -> np.ndarray:
    """shap.KernelExplainer per sample on the target output, seeded as the explainer is."""
    out = []
    for i in range(len(x)):
        target = int(targets[i])

        def f(rows: np.ndarray, target: int = target) -> np.ndarray:
            with torch.no_grad():
                return model(torch.as_tensor(rows, dtype=torch.float32))[:, target].double().numpy()

        explainer = shap.KernelExplainer(f, summary)
        np.random.seed(seed)
        values = explainer.shap_values(x[i : i + 1].double().numpy(), silent=True, **options)
        out.append(np.asarray(values).reshape(-1))
    return np.stack(out)


def explain(model, x, targets, bg, **params):
    explainer = make_explainer(
        "kernel_shap", model, params, modality="tabular", input_shape=(x.shape[1],), background=bg
    )
    return explainer.explain(x, targets), explainer.sample_stats


@pytest.mark.parametrize("summary", ["sample", "kmeans"])
def test_full_enumeration_equals_shap(summary: str) -> None:
    model = mlp(8)
    x, bg = data(8, 5, 30)
    x[0, 2] = bg[:, 2] = 0.25  # a feature that never varies: 7 players for sample 0
    targets = torch.tensor([0, 1, 2, 1, 0])
    values, sample_stats = explain(model, x, targets, bg, n_background=6, summary=summary)
    explainer = make_explainer(
        "kernel_shap", model, {"n_background": 6, "summary": summary},
        modality="tabular", input_shape=(8,), background=bg,
    )  # fmt: skip
    reference = shap_reference(
        model, x, targets, explainer.background_summary((8,)), nsamples=1000, l1_reg=False
    )
    np.testing.assert_allclose(values.numpy(), reference, atol=1e-6, rtol=0)
    assert values[0, 2] == 0
    assert sample_stats["coalitions"] == [2**7 - 2] + [2**8 - 2] * 4
    assert max(abs(d) for d in sample_stats["convergence_delta"]) < 1e-5


@pytest.mark.parametrize("max_features", [None, 4])
def test_sampled_coalitions_are_shaps_draw_for_draw(max_features: int | None) -> None:
    model = mlp(30)
    x, bg = data(30, 4, 8)
    targets = torch.tensor([0, 2, 1, 1])
    params = {"n_background": 8, "nsamples": 300, "max_features": max_features}
    values, _ = explain(model, x, targets, bg, **params)
    l1 = False if max_features is None else f"num_features({max_features})"
    reference = shap_reference(model, x, targets, bg.double().numpy(), nsamples=300, l1_reg=l1)
    np.testing.assert_allclose(values.numpy(), reference, atol=1e-6, rtol=0)
    if max_features is not None:
        assert ((values != 0).sum(1) <= max_features).all()


class Linear(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        self.weight = nn.Parameter(torch.randn(2, features, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T


@pytest.mark.parametrize(("features", "nsamples"), [(6, None), (60, 400)])
def test_linear_model_gets_w_times_x_minus_the_background_mean(features, nsamples) -> None:
    """Exact even when sampled: a linear f is linear in the coalition mask."""
    model = Linear(features)
    x, bg = data(features, 4, 10, seed=5)
    targets = torch.tensor([0, 1, 1, 0])
    values, _ = explain(model, x, targets, bg, n_background=10, nsamples=nsamples)
    expected = model.weight.detach()[targets] * (x - bg.mean(0))
    torch.testing.assert_close(values, expected, atol=2e-5, rtol=1e-4)


def test_groups_are_players() -> None:
    model = Linear(12)
    x, bg = data(12, 3, 10, seed=6)
    targets = torch.tensor([0, 1, 0])
    explainer = make_explainer(
        "kernel_shap", model, {"n_background": 10}, modality="tabular", input_shape=(12,),
        background=bg,
    )  # fmt: skip
    groups = [[0, 1, 2], [5, 3, 4], [7], [8, 9, 10, 11], [6]]
    result = explainer.player_values(x, targets, groups)
    per_feature = (model.weight.detach()[targets] * (x - bg.mean(0))).double().numpy()
    expected = np.stack([per_feature[:, g].sum(1) for g in groups], axis=1)
    np.testing.assert_allclose(result.values, expected, atol=2e-5)
    assert result.coalitions.tolist() == [2**5 - 2] * 3
    with pytest.raises(ValueError, match="exactly one"):
        explainer.player_values(x, targets, groups[:-1])


def test_data_groups_split_each_groups_value_over_its_columns() -> None:
    from auditor.data.groups import build_groups

    model = Linear(6)
    x, bg = data(6, 3, 10, seed=9)
    targets = torch.tensor([1, 0, 1])
    names = [f"f{i}" for i in range(6)]
    groups, issues = build_groups({"a": ["f0", "f3"], "b": ["f1", "f2", "f5"]}, names, "tabular")
    assert groups is not None and not issues
    explainer = make_explainer(
        "kernel_shap", model, {"n_background": 10}, modality="tabular", input_shape=(6,),
        background=bg,
    )  # fmt: skip
    explainer.context.groups = groups
    values = explainer.explain(x, targets)
    per_feature = model.weight.detach()[targets] * (x - bg.mean(0))
    torch.testing.assert_close(values[:, 0], per_feature[:, [0, 3]].sum(1) / 2, atol=2e-5, rtol=0)
    torch.testing.assert_close(
        values[:, 5], per_feature[:, [1, 2, 5]].sum(1) / 3, atol=2e-5, rtol=0
    )
    torch.testing.assert_close(values[:, 4], per_feature[:, 4], atol=2e-5, rtol=0)
    assert explainer.sample_stats["coalitions"] == [2**3 - 2] * 3


def test_wide_sampled_values_rank_as_shaps_with_a_large_budget() -> None:
    model = mlp(200, seed=4)
    x, bg = data(200, 2, 40, seed=7)
    targets = torch.tensor([0, 2])
    values, sample_stats = explain(model, x, targets, bg, n_background=5)
    explainer = make_explainer(
        "kernel_shap", model, {"n_background": 5}, modality="tabular", input_shape=(200,),
        background=bg,
    )  # fmt: skip
    summary = explainer.background_summary((200,))
    reference = shap_reference(model, x, targets, summary, nsamples=10_000, l1_reg=False)
    rho = [stats.spearmanr(a, b).statistic for a, b in zip(values.numpy(), reference, strict=True)]
    assert np.mean(rho) >= 0.9, rho
    assert sample_stats["coalitions"] == [default_nsamples(200)] * 2
    assert max(abs(d) for d in sample_stats["convergence_delta"]) < 1e-5


def test_a_sample_gets_the_same_values_alone_or_in_a_batch_of_16() -> None:
    model = mlp(50, seed=2)
    x, bg = data(50, 16, 20, seed=8)
    targets = torch.arange(16) % 3
    explainer = make_explainer(
        "kernel_shap", model, {"nsamples": 300, "batch_size": 1000}, modality="tabular",
        input_shape=(50,), background=bg,
    )  # fmt: skip
    together = explainer.explain(x, targets)
    for i in (0, 7, 15):
        alone = explainer.explain(x[i : i + 1], targets[i : i + 1])
        torch.testing.assert_close(alone[0], together[i], atol=1e-6, rtol=0)


def test_coalitions_are_seeded_and_cover_the_budget() -> None:
    first, again = shap_coalitions(40, 500, 0), shap_coalitions(40, 500, 0)
    other = shap_coalitions(40, 500, 1)
    assert first is again
    assert len(first.masks) == 500 and not first.enumerated
    assert not np.array_equal(first.masks, other.masks)
    # every size-1 coalition and its complement are enumerated first, with equal weight
    np.testing.assert_array_equal(first.masks[:80].sum(1), np.tile([1, 39], 40))
    assert np.isclose(first.weights.sum(), 1.0)
    full = shap_coalitions(6, 10_000, 0)
    assert len(full.masks) == 2**6 - 2 and full.enumerated
