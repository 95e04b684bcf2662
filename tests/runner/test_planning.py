"""Planning: problems that need the data's shape or the model are spec errors (exit 2) found
before any explainer runs and before the run folder exists, every one at once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import run_cli
from torch import nn

sys.path.insert(0, str(Path(__file__).parents[1] / "explainers"))

from tiny import digits_batch

from auditor import registries
from auditor.errors import SpecError
from auditor.explainers.base import ExplainContext
from auditor.metrics.deletion import Deletion
from auditor.planning import plan_issues
from auditor.spec.model import AuditSpec
from examples.models import DigitsCNN

ROOT = Path(__file__).resolve().parents[2]

DIGITS = f"""\
version: 1
name: planned
model:
  source: python
  class: examples.models:DigitsCNN
  pythonpath: [{ROOT}]
  init: {{num_classes: 10}}
  weights: {ROOT}/models/digits_cnn.safetensors
data:
  source: sklearn
  name: digits
  slice: {{start: 0, stop: 16}}
output: runs
"""

#: The digits from a .pt file: their shape is known only once the file is loaded, so the run's
#: plan stage (not the spec's validation) finds the problems, the model's included.
DIGITS_PT = f"""\
version: 1
name: planned
model:
  source: python
  class: examples.models:DigitsCNN
  pythonpath: [{ROOT}]
  init: {{num_classes: 10}}
  weights: {ROOT}/models/digits_cnn.safetensors
data:
  source: tensors
  path: digits.pt
  slice: {{start: 0, stop: 16}}
output: runs
"""


def save_digits(folder: Path) -> None:
    inputs, labels = digits_batch(32)
    torch.save({"inputs": inputs, "labels": labels}, folder / "digits.pt")


CANCER = f"""\
version: 1
name: planned
model:
  source: python
  class: examples.models:TabularMLP
  pythonpath: [{ROOT}]
  init: {{in_features: 30, num_classes: 2}}
  weights: {ROOT}/models/breast_cancer_mlp.safetensors
data:
  source: sklearn
  name: breast_cancer
  slice: {{start: 0, stop: 16}}
output: runs
"""


def run_spec(tmp_path: Path, text: str) -> tuple[int, list[str], str, Path]:
    """``auditor run`` on ``text`` (written to tmp_path/spec.yaml): exit code, the error
    lines, all of stderr and the spec's path."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    proc = run_cli("run", str(spec))
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    return proc.returncode, errors, proc.stderr, spec


def assert_nothing_ran_or_was_written(stderr: str, tmp_path: Path) -> None:
    stages = [line.split("] ", 1)[1] for line in stderr.splitlines() if line.startswith("[")]
    assert set(stages) <= {"load model ...", "load data ...", "plan ..."}
    assert "Traceback" not in stderr
    assert not (tmp_path / "runs").exists()


def test_an_occlusion_window_larger_than_the_digits_is_a_spec_error(tmp_path: Path) -> None:
    code, errors, stderr, spec = run_spec(
        tmp_path,
        DIGITS
        + """\
explainers:
  - type: saliency
  - type: occlusion
    params: {window: [16, 16]}
""",
    )
    assert code == 2
    assert errors == [
        f"error: {spec}:17:22 explainers[1].params.window: window [16, 16] is larger than "
        "the input's image size [8, 8]"
    ]
    assert_nothing_ran_or_was_written(stderr, tmp_path)


def test_every_shape_problem_and_a_layer_typo_are_reported_at_once(tmp_path: Path) -> None:
    save_digits(tmp_path)
    code, errors, stderr, spec = run_spec(
        tmp_path,
        DIGITS_PT
        + """\
explainers:
  - type: gradcam
    params: {layer: features.33}
  - type: occlusion
    params: {window: 3, stride: [1, 9]}
  - type: lime
    params: {cell: 9}
  - type: permutation_importance
    params: {grid: [9, 2]}
metrics:
  - type: deletion
    params: {patch: 12}
  - type: insertion
    params: {patch: 8}
""",
    )
    assert code == 2
    layers = (
        "features, features.0, features.1, features.2, features.3, features.4, classifier, "
        "classifier.0, classifier.1, classifier.2, classifier.3"
    )
    assert errors == [
        f"error: {spec}:16:21 explainers[0].params.layer: unknown layer 'features.33'. "
        f"Did you mean: features.3? Layers: {layers}",
        f"error: {spec}:18:33 explainers[1].params.stride: stride [1, 9] is larger than the "
        "input's image size [8, 8]",
        f"error: {spec}:20:20 explainers[2].params.cell: cell 9 is larger than the images' "
        "8x8 pixels: expected at most 8",
        f"error: {spec}:22:20 explainers[3].params.grid: grid 9x2 does not fit images of 8x8 "
        "pixels: expected at most 8 rows and 8 columns",
        f"error: {spec}:25:21 metrics[0].params.patch: patch 12 is larger than the images' "
        "8x8 pixels: expected at most 8",
    ]
    assert_nothing_ran_or_was_written(stderr, tmp_path)
    assert "plan ..." in stderr  # found by the run's plan stage, with the model loaded


def test_a_run_reports_shape_and_model_problems_in_one_round(tmp_path: Path) -> None:
    """sklearn digits' shape is known before loading; the run still plans once, with the
    model, so a window and a layer typo come together (validate alone cannot see the layer)."""
    code, errors, stderr, spec = run_spec(
        tmp_path,
        DIGITS
        + """\
explainers:
  - type: gradcam
    params: {layer: features.33}
  - type: occlusion
    params: {window: [16, 16]}
""",
    )
    assert code == 2
    assert [e.split(": ", 2)[1] for e in errors] == [
        f"{spec}:16:21 explainers[0].params.layer",
        f"{spec}:18:22 explainers[1].params.window",
    ]
    assert_nothing_ran_or_was_written(stderr, tmp_path)
    validated = run_cli("validate", str(spec))
    assert validated.returncode == 2
    assert [e.split(": ", 2)[1] for e in validated.stderr.splitlines()] == [
        f"{spec}:18:22 explainers[1].params.window"
    ]


def test_a_spec_error_found_on_loading_comes_with_the_static_plan(tmp_path: Path) -> None:
    """An unreachable bound stops the run before the model loads; what planning can tell
    from the data alone (gradcam on a table, a misspelled feature) comes in the same list."""
    code, errors, stderr, spec = run_spec(
        tmp_path,
        CANCER
        + """\
explainers:
  - type: saliency
  - type: gradcam
    params: {layer: fc}
checks:
  - metric: model.accuracy
    min: 1.5
  - ranking: saliency
    must_include: [mean radus]
""",
    )
    assert code == 2
    assert [e.split(": ", 2)[1] for e in errors] == [
        f"{spec}:16:11 explainers[1].type",
        f"{spec}:20:10 checks[0].min",
        f"{spec}:22:20 checks[1].must_include[0]",
    ]
    assert_nothing_ran_or_was_written(stderr, tmp_path)


def test_a_misspelled_feature_in_a_ranking_check_is_found_before_explaining(
    tmp_path: Path,
) -> None:
    code, errors, stderr, spec = run_spec(
        tmp_path,
        CANCER
        + """\
explainers:
  - type: saliency
  - type: gradcam
    params: {layer: fc}
checks:
  - ranking: saliency
    must_include: [worst area, mean radus]
    must_not_include: [mean fractal dimension, zzz]
""",
    )
    assert code == 2
    tabular = (
        "deep_shap, deeplift, feature_ablation, gradient_shap, guided_backprop, "
        "input_x_gradient, integrated_gradients, kernel_shap, lime, occlusion, "
        "permutation_importance, saliency, shap_deep, shap_gradient, smoothgrad, "
        "surrogate_forest, surrogate_linear, surrogate_tree"
    )
    assert errors == [
        f"error: {spec}:16:11 explainers[1].type: explainer 'gradcam' works on image data; "
        f"this data is tabular. Explainers for tabular data: {tabular}",
        f"error: {spec}:20:32 checks[0].must_include[1]: unknown feature 'mean radus'. "
        "Did you mean: mean radius?",
        f"error: {spec}:21:48 checks[0].must_not_include[1]: unknown feature 'zzz'. Features: "
        "mean radius, mean texture, mean perimeter, mean area, mean smoothness, "
        "mean compactness, mean concavity, mean concave points, mean symmetry, "
        "mean fractal dimension, ... (30 in all)",
    ]
    assert_nothing_ran_or_was_written(stderr, tmp_path)


def test_a_misspelled_pixel_in_an_image_ranking_check_is_found_before_explaining(
    tmp_path: Path,
) -> None:
    """Issue 12: unknown feature names in checks are exit 2 before anything runs, images
    included (saliency ranks the 8x8 pixels, permutation importance its 4x4 grid's cells)."""
    code, errors, stderr, spec = run_spec(
        tmp_path,
        DIGITS
        + """\
explainers:
  - type: saliency
  - type: permutation_importance
checks:
  - ranking: saliency
    must_include: [r3c4, r3c44]
  - ranking: permutation_importance
    must_not_include: [r3c3, r7c7]
""",
    )
    assert code == 2
    assert errors == [
        f"error: {spec}:19:26 checks[0].must_include[1]: unknown feature 'r3c44'. "
        "Did you mean: r3c4?",
        f"error: {spec}:21:30 checks[1].must_not_include[1]: unknown feature 'r7c7'. "
        "Features: r0c0, r0c1, r0c2, r0c3, r1c0, r1c1, r1c2, r1c3, r2c0, r2c1, ... (16 in all)",
    ]
    assert_nothing_ran_or_was_written(stderr, tmp_path)


# -- plan_issues itself (what `auditor validate` calls with static info) ---------------------
def spec_with(explainers: list[dict[str, Any]], **more: Any) -> AuditSpec:
    return AuditSpec.model_validate(
        {
            "version": 1,
            "name": "p",
            "model": {"source": "python"},
            "data": {"source": "sklearn"},
            "explainers": explainers,
            **more,
        }
    )


def params_of(spec: AuditSpec, section: str = "explainers") -> dict[str, Any]:
    registry = registries.explainers if section == "explainers" else registries.metrics
    return {
        e.key: registry.get(e.type).Params.model_validate(e.params) for e in getattr(spec, section)
    }


def test_without_a_shape_only_the_modality_is_checked() -> None:
    spec = spec_with(
        [{"type": "occlusion", "params": {"window": 99}}, {"type": "gradcam_plus_plus"}],
        metrics=[{"type": "deletion", "params": {"patch": 99}}],
    )
    issues = plan_issues(
        spec, {}, {}, modality="tabular", input_shape=None, feature_names=None, model=None
    )
    assert [i.loc for i in issues] == [("explainers", 1, "type")]
    assert issues[0].line is None and issues[0].file is None


def test_tabular_data_without_names_ranks_x0_x1() -> None:
    spec = spec_with(
        [{"type": "saliency"}],
        checks=[{"ranking": "saliency", "must_include": ["x3", "x30"]}],
    )
    issues = plan_issues(
        spec, params_of(spec), {}, modality="tabular", input_shape=(30,), feature_names=None
    )
    assert [(i.loc, i.message) for i in issues] == [
        (("checks", 0, "must_include", 1), "unknown feature 'x30'. Did you mean: x3?")
    ]


def test_image_rankings_are_checked_against_each_explainers_own_names() -> None:
    """A local explainer ranks the digits' pixels, permutation importance the cells of its
    own grid: each check is held to the names of the explainer it names, from the shape."""
    spec = spec_with(
        [
            {"type": "saliency"},
            {"type": "permutation_importance", "params": {"grid": [2, 2]}},
            {"id": "big", "type": "surrogate_tree", "params": {"grid": [9, 9]}},
        ],
        checks=[
            {"ranking": "saliency", "must_include": ["r3c4", "r99c99"]},
            {
                "ranking": "permutation_importance",
                "must_include": ["r1c1", "r3c4"],
                "must_not_include": ["r0c0"],
            },
            {"ranking": "big", "must_include": ["r8c8"]},  # its grid is the error
        ],
    )
    issues = plan_issues(
        spec, params_of(spec), {}, modality="image", input_shape=(1, 8, 8), feature_names=None
    )
    assert [(i.loc, i.message) for i in issues] == [
        (
            ("explainers", 2, "params", "grid"),
            "grid 9x9 does not fit images of 8x8 pixels: expected at most 8 rows and 8 columns",
        ),
        (
            ("checks", 0, "must_include", 1),
            "unknown feature 'r99c99'. Features: r0c0, r0c1, r0c2, r0c3, r0c4, r0c5, r0c6, "
            "r0c7, r1c0, r1c1, ... (64 in all)",
        ),
        (
            ("checks", 1, "must_include", 1),
            "unknown feature 'r3c4'. Features: r0c0, r0c1, r1c0, r1c1",
        ),
    ]


def test_large_image_rankings_are_checked_by_region_name() -> None:
    spec = spec_with(
        [{"type": "saliency"}, {"type": "permutation_importance"}],
        checks=[
            {"ranking": "saliency", "must_include": ["rows 0-7, cols 0-7", "rows 0-7, cols 0-8"]},
            {"ranking": "saliency", "must_not_include": ["r3c4"]},
            {"ranking": "permutation_importance", "must_include": ["ch1: rows 0-15, cols 0-15"]},
            {"ranking": "permutation_importance", "must_include": ["rows 0-15, cols 0-15"]},
        ],
    )
    issues = plan_issues(
        spec, params_of(spec), {}, modality="image", input_shape=(3, 64, 64), feature_names=None
    )
    assert [(i.loc, i.message) for i in issues] == [
        (
            ("checks", 0, "must_include", 1),
            "unknown feature 'rows 0-7, cols 0-8'. Did you mean: rows 0-7, cols 0-7?",
        ),
        (
            ("checks", 1, "must_not_include", 0),
            "unknown feature 'r3c4'. Features: rows 0-7, cols 0-7; rows 0-7, cols 8-15; "
            "rows 0-7, cols 16-23; rows 0-7, cols 24-31; rows 0-7, cols 32-39; "
            "rows 0-7, cols 40-47; rows 0-7, cols 48-55; rows 0-7, cols 56-63; "
            "rows 8-15, cols 0-7; rows 8-15, cols 8-15; ... (64 in all)",
        ),
        (
            ("checks", 3, "must_include", 0),
            "unknown feature 'rows 0-15, cols 0-15'. Did you mean: ch2: rows 0-15, cols 0-15?",
        ),
    ]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("occlusion", {"window": [16, 16]}),
        ("feature_ablation", {"cell": 9}),
        ("lime", {"cell": 9}),
        ("surrogate_tree", {"grid": [9, 2]}),
    ],
)
def test_planning_and_the_explainer_apply_the_same_rule(name: str, params: dict) -> None:
    """The message planning gives is the one the explainer itself raises when built."""
    cls = registries.explainers.get(name)
    validated = cls.Params.model_validate(params)
    spec = spec_with([{"type": name, "params": params}])
    issues = plan_issues(
        spec, {name: validated}, {}, modality="image", input_shape=(1, 8, 8), feature_names=None
    )
    context = ExplainContext(modality="image", input_shape=(1, 8, 8))
    with pytest.raises(SpecError) as raised:
        cls(None, validated, context)  # type: ignore[arg-type]
    assert [(i.loc, i.message) for i in issues] == [
        (("explainers", 0, *i.loc), i.message) for i in raised.value.issues
    ]


def test_a_metric_patch_is_checked_by_the_metric_itself() -> None:
    params = Deletion.Params.model_validate({"patch": 12})
    assert [(i.loc, i.message) for i in Deletion.input_issues(params, "image", (1, 8, 8))] == [
        (("params", "patch"), "patch 12 is larger than the images' 8x8 pixels: expected at most 8")
    ]
    assert Deletion.input_issues(params, "tabular", (30,)) == []
    assert Deletion.input_issues(params, "image", (3, 12, 10)) == []


class SharedConv(nn.Module):
    """One convolution applied twice: its output is ambiguous for a CAM."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(torch.relu(self.conv(x))))


def test_a_cam_layer_must_output_feature_maps_once() -> None:
    entries = [
        {"type": "gradcam", "params": {"layer": "classifier.1"}},
        {"type": "score_cam", "params": {"layer": "features.3"}},
        {"type": "gradcam_plus_plus", "params": {"layer": "classifier"}},
    ]
    spec = spec_with(entries)
    model = DigitsCNN(num_classes=10).eval()
    issues = plan_issues(
        spec,
        params_of(spec),
        {},
        modality="image",
        input_shape=(1, 8, 8),
        feature_names=None,
        model=model,
    )
    maps = "a class activation map needs a convolutional layer with output (N, C, H, W)"
    assert [(i.loc, i.message) for i in issues] == [
        (
            ("explainers", 0, "params", "layer"),
            f"layer 'classifier.1' outputs shape (1, 64); {maps}",
        ),
        (("explainers", 2, "params", "layer"), f"layer 'classifier' outputs shape (1, 10); {maps}"),
    ]
    assert not any(m._forward_hooks for m in model.modules())

    spec = spec_with([{"type": "gradcam", "params": {"layer": "conv"}}])
    issues = plan_issues(
        spec,
        params_of(spec),
        {},
        modality="image",
        input_shape=(1, 8, 8),
        feature_names=None,
        model=SharedConv().eval(),
    )
    assert [(i.loc, i.message) for i in issues] == [
        (
            ("explainers", 0, "params", "layer"),
            "layer 'conv' ran 2 times in one forward pass; a class activation map needs a "
            "layer that is called once and returns one tensor",
        )
    ]


def test_a_surrogate_class_index_is_checked_against_the_models_outputs() -> None:
    spec = spec_with(
        [
            {"type": "surrogate_linear", "params": {"class_index": 10}},
            {"id": "fine", "type": "surrogate_linear", "params": {"class_index": 9}},
        ]
    )
    issues = plan_issues(
        spec,
        params_of(spec),
        {},
        modality="image",
        input_shape=(1, 8, 8),
        feature_names=None,
        model=DigitsCNN(num_classes=10).eval(),
    )
    assert [(i.loc, i.message) for i in issues] == [
        (
            ("explainers", 0, "params", "class_index"),
            "class_index 10 is out of range: the model has 10 outputs (0 to 9)",
        )
    ]
