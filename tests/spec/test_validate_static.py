"""``validate`` finds, in one pass, what can be known without loading model or data.

Static data info (shape, modality, feature names from a table, a header or the first
image) feeds planning; metric bounds that can never be met; a torchvision root that is not
on disk; field paths in the user's words. Exact messages, as in test_invalid_specs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from auditor.cli import cli
from auditor.errors import SpecError
from auditor.spec import load_spec

HEAD = """\
version: 1
name: t
model:
  source: python
  class: tiny:Net
"""
DIGITS = HEAD + "data: {source: sklearn, name: digits}\n"
CANCER = HEAD + "data: {source: sklearn, name: breast_cancer}\n"
TABULAR_EXPLAINERS = (
    "deep_shap, deeplift, feature_ablation, gradient_shap, guided_backprop, input_x_gradient, "
    "integrated_gradients, kernel_shap, lime, occlusion, permutation_importance, saliency, "
    "shap_deep, shap_gradient, smoothgrad, surrogate_forest, surrogate_linear, surrogate_tree"
)

# (case id, spec text, expected errors with {f} for the spec path and {d} for its folder)
CASES: list[tuple[str, str, list[str]]] = [
    # -- field paths in the user's words (no union members, no constrained-int) --
    (
        "targets-negative",
        DIGITS + "targets: -1\n",
        ["{f}:7:10 targets: Input should be greater than or equal to 0 (got -1)"],
    ),
    (
        "window-item-zero",
        DIGITS + "explainers:\n  - type: saliency\n  - type: saliency\n    id: s2\n"
        "  - type: occlusion\n    params: {window: [0, 2]}\n",
        [
            "{f}:12:23 explainers[2].params.window[0]: Input should be greater than or equal "
            "to 1 (got 0)"
        ],
    ),
    (
        "window-wrong-type",
        DIGITS + "explainers:\n  - type: occlusion\n    params: {window: big}\n",
        ["{f}:9:22 explainers[0].params.window: expected an integer or a list (got 'big')"],
    ),
    (
        "window-negative",
        DIGITS + "explainers:\n  - type: occlusion\n    params: {window: -3}\n",
        [
            "{f}:9:22 explainers[0].params.window: Input should be greater than or equal to 1 "
            "(got -3)"
        ],
    ),
    (
        "check-min-not-a-number",
        DIGITS + "checks:\n  - metric: model.accuracy\n    min: high\n",
        [
            "{f}:9:10 checks[0].min: Input should be a valid number, unable to parse string as "
            "a number (got 'high')"
        ],
    ),
    (
        "slice-classes-item",
        HEAD + "data: {source: sklearn, name: digits, slice: {classes: [1.5, [2]]}}\n",
        [
            "{f}:6:57 data.slice.classes[0]: expected an integer or a string (got 1.5)",
            "{f}:6:62 data.slice.classes[1]: expected an integer or a string (got a list)",
        ],
    ),
    (
        "paths-and-fixed-size-lists",
        HEAD.replace("tiny:Net", "tiny:Net\n  weights: [w.pt]")
        + "data: {source: torchvision, dataset: FakeData, resize: [1, 2, 3], center_crop: [3]}\n",
        [
            "{f}:6:12 model.weights: expected a path, got a list",
            "{f}:7:56 data.resize: List should have at most 2 items, not 3",
            "{f}:7:80 data.center_crop: expected 2 items, got 1",
        ],
    ),
    # -- planning with the data's static info --
    (
        "occlusion-window-larger-than-digits",
        DIGITS + "explainers:\n  - type: occlusion\n    params: {window: [16, 16]}\n",
        [
            "{f}:9:22 explainers[0].params.window: window [16, 16] is larger than the input's "
            "image size [8, 8]"
        ],
    ),
    (
        "gradcam-on-tabular",
        CANCER + "explainers:\n  - type: gradcam\n    params: {layer: net.0}\n",
        [
            "{f}:8:11 explainers[0].type: explainer 'gradcam' works on image data; this data is "
            f"tabular. Explainers for tabular data: {TABULAR_EXPLAINERS}"
        ],
    ),
    (
        "deletion-patch-larger-than-digits",
        DIGITS + "metrics:\n  - type: deletion\n    params: {patch: 20}\n",
        [
            "{f}:9:21 metrics[0].params.patch: patch 20 is larger than the images' 8x8 pixels: "
            "expected at most 8"
        ],
    ),
    (
        "misspelled-feature",
        CANCER + "explainers:\n  - type: saliency\nchecks:\n  - ranking: saliency\n"
        "    must_not_include: [mean radius, worst aera]\n",
        [
            "{f}:11:37 checks[0].must_not_include[1]: unknown feature 'worst aera'. "
            "Did you mean: worst area?"
        ],
    ),
    # -- metric bounds that can never be met --
    (
        "accuracy-above-one",
        DIGITS + "checks:\n  - metric: model.accuracy\n    min: 1.2\n",
        ["{f}:9:10 checks[0].min: min 1.2 can never be met: accuracy is at most 1"],
    ),
    (
        "per-class-accuracy-above-one",
        DIGITS + "checks:\n  - metric: model.per_class_accuracy.3\n    min: 2\n",
        ["{f}:9:10 checks[0].min: min 2 can never be met: per_class_accuracy.3 is at most 1"],
    ),
    (
        "deletion-below-zero",
        DIGITS + "explainers:\n  - type: saliency\nchecks:\n  - metric: saliency.deletion\n"
        "    max: -0.1\n",
        ["{f}:11:10 checks[0].max: max -0.1 can never be met: deletion is at least 0"],
    ),
    (
        "sparseness-with-custom-id",
        DIGITS + "explainers:\n  - type: saliency\nmetrics:\n  - id: gini\n    type: sparseness\n"
        "checks:\n  - metric: saliency.gini\n    min: 1.01\n",
        ["{f}:14:10 checks[0].min: min 1.01 can never be met: gini is at most 1"],
    ),
]


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    return tmp_path


def _errors(spec_dir: Path, text: str) -> list[str]:
    path = spec_dir / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return [str(issue) for issue in info.value.issues]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_static_problem(spec_dir: Path, text: str, expected: list[str]) -> None:
    fill = {"f": str(spec_dir / "spec.yaml"), "d": str(spec_dir)}
    assert _errors(spec_dir, text) == [e.format(**fill) for e in expected]


def test_reachable_bounds_and_named_values_are_not_refused(spec_dir: Path) -> None:
    """Bounds inside the range pass; a metric's named values (deletion.gain) and explainer
    stats declare no range, so any bound on them is allowed."""
    text = DIGITS + (
        "explainers:\n  - type: integrated_gradients\n"
        "checks:\n"
        "  - {metric: model.accuracy, min: 1}\n"
        "  - {metric: integrated_gradients.deletion, max: 0}\n"
        "  - {metric: integrated_gradients.deletion.gain, min: 5}\n"
        "  - {metric: integrated_gradients.convergence_delta, max: -1}\n"
        "  - {metric: integrated_gradients.completeness_error, min: 100}\n"
    )
    path = spec_dir / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    assert len(load_spec(path).spec.checks) == 5


def test_image_rankings_are_checked_by_name_from_the_shape(spec_dir: Path) -> None:
    """The digits' 8x8 shape names saliency's pixels and permutation importance's grid cells:
    a misspelled one is a spec error of validate, each against its own explainer's names."""
    text = DIGITS + (
        "explainers:\n  - type: saliency\n  - type: permutation_importance\n"
        "    params: {grid: [2, 2]}\n"
        "checks:\n  - ranking: saliency\n    must_include: [r3c4, r3c9]\n"
        "  - ranking: permutation_importance\n    must_include: [r1c1, r3c4]\n"
    )
    path = spec_dir / "spec.yaml"
    assert _errors(spec_dir, text) == [
        f"{path}:13:26 checks[0].must_include[1]: unknown feature 'r3c9'. Did you mean: r3c7?",
        f"{path}:15:26 checks[1].must_include[1]: unknown feature 'r3c4'. Features: r0c0, "
        "r0c1, r1c0, r1c1",
    ]
    valid = text.replace("r3c9", "r3c7").replace("r1c1, r3c4", "r1c1, r0c0")
    path.write_text(valid, encoding="utf-8")
    assert len(load_spec(path).spec.checks) == 2


def test_breast_cancer_spec_gets_every_error_in_one_validate(
    spec_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's example: Grad-CAM on tabular data, a misspelled feature and a fidelity
    bound above 1 are three errors of one `auditor validate` call, exit 2."""
    text = CANCER + (
        "explainers:\n"
        "  - type: integrated_gradients\n"
        "  - type: gradcam\n"
        "    params: {layer: net.0}\n"
        "  - type: surrogate_tree\n"
        "metrics:\n"
        "  - type: fidelity\n"
        "checks:\n"
        "  - ranking: integrated_gradients\n"
        "    must_include: [mean radus]\n"
        "  - metric: surrogate_tree.fidelity\n"
        "    min: 1.5\n"
    )
    (spec_dir / "spec.yaml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(spec_dir)
    result = CliRunner().invoke(cli, ["validate", "spec.yaml"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: spec.yaml:9:11 explainers[1].type: explainer 'gradcam' works on image data; "
        f"this data is tabular. Explainers for tabular data: {TABULAR_EXPLAINERS}",
        "error: spec.yaml:16:20 checks[0].must_include[0]: unknown feature 'mean radus'. "
        "Did you mean: mean radius?",
        "error: spec.yaml:18:10 checks[1].min: min 1.5 can never be met: fidelity is at most 1",
    ]


def test_structural_and_static_errors_together(spec_dir: Path) -> None:
    """Static checks run beside the structural ones, not after they all pass."""
    text = DIGITS + (
        "seed: -1\nseeds: 3\n"
        "explainers:\n  - type: occlusion\n    params: {window: [16, 16]}\n"
        "  - type: integrated_gradients\n    params: {n_steps: 0}\n"
    )
    errors = _errors(spec_dir, text)
    assert [e.split(" ", 2)[1] for e in errors] == [
        "seed:",
        "seeds:",
        "explainers[0].params.window:",
        "explainers[1].params.n_steps:",
    ]


def test_image_folder_first_image_gives_the_shape(spec_dir: Path) -> None:
    for name in ("cat", "dog"):
        (spec_dir / "imgs" / name).mkdir(parents=True)
        Image.new("RGB", (6, 6)).save(spec_dir / "imgs" / name / "0.png")
    text = HEAD + (
        "data: {source: image_folder, root: imgs}\n"
        "explainers:\n  - type: occlusion\n    params: {window: 7}\n"
    )
    assert _errors(spec_dir, text) == [
        f"{spec_dir / 'spec.yaml'}:9:22 explainers[0].params.window: window [7, 7] is larger "
        "than the input's image size [6, 6]"
    ]


def test_tensors_header_gives_feature_count(spec_dir: Path) -> None:
    np.save(spec_dir / "x.npy", np.zeros((4, 3), dtype=np.float32))
    np.save(spec_dir / "y.npy", np.zeros(4, dtype=np.int64))
    text = HEAD + (
        "data: {source: tensors, path: x.npy, labels: y.npy}\n"
        "explainers:\n  - type: saliency\n"
        "checks:\n  - ranking: saliency\n    must_include: [x1, x10]\n"
    )
    assert _errors(spec_dir, text) == [
        f"{spec_dir / 'spec.yaml'}:11:24 checks[0].must_include[1]: unknown feature 'x10'. "
        "Did you mean: x1?"
    ]


TORCHVISION = HEAD + "data:\n  source: torchvision\n  dataset: {dataset}\n{root}"
CIFAR_LAYOUT = (
    "<root>/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta "
    "(the unpacked cifar-10-python.tar.gz)"
)


def test_torchvision_root_that_does_not_exist(spec_dir: Path) -> None:
    text = TORCHVISION.format(dataset="CIFAR10", root="  root: data/cifar\n")
    assert _errors(spec_dir, text) == [
        f"{spec_dir / 'spec.yaml'}:9:9 data.root: folder {spec_dir / 'data' / 'cifar'} does "
        f"not exist; torchvision CIFAR10 expects {CIFAR_LAYOUT}. Nothing is downloaded"
    ]


def test_torchvision_root_missing_or_a_file(spec_dir: Path) -> None:
    assert _errors(spec_dir, TORCHVISION.format(dataset="CIFAR10", root="")) == [
        f"{spec_dir / 'spec.yaml'}:7:3 data.root: torchvision CIFAR10 needs root: a folder "
        f"with {CIFAR_LAYOUT}"
    ]
    (spec_dir / "file").write_text("x")
    text = TORCHVISION.format(dataset="CIFAR10", root="  root: file\n")
    assert _errors(spec_dir, text) == [
        f"{spec_dir / 'spec.yaml'}:9:9 data.root: folder {spec_dir / 'file'} is a file, not a "
        f"folder; torchvision CIFAR10 expects {CIFAR_LAYOUT}. Nothing is downloaded"
    ]


def test_torchvision_unknown_dataset_and_kwargs(spec_dir: Path) -> None:
    errors = _errors(spec_dir, TORCHVISION.format(dataset="CIFAR11", root="  root: .\n"))
    assert len(errors) == 1
    assert errors[0].startswith(
        f"{spec_dir / 'spec.yaml'}:8:12 data.dataset: unknown torchvision dataset 'CIFAR11'. "
        "Did you mean: CIFAR10? Known: "
    )
    text = TORCHVISION.format(dataset="FakeData", root="  kwargs: {download: true}\n")
    assert _errors(spec_dir, text) == [
        f"{spec_dir / 'spec.yaml'}:9:22 data.kwargs.download: download is not allowed: the "
        "auditor never downloads; put the dataset's files under root first"
    ]


def test_torchvision_shape_reaches_planning(spec_dir: Path) -> None:
    (spec_dir / "mnist").mkdir()
    text = TORCHVISION.format(dataset="MNIST", root="  root: mnist\n") + (
        "explainers:\n  - type: occlusion\n    params: {window: 30}\n"
    )
    assert _errors(spec_dir, text) == [
        f"{spec_dir / 'spec.yaml'}:12:22 explainers[0].params.window: window [30, 30] is larger "
        "than the input's image size [28, 28]"
    ]
