"""Invalid specs: each error's exact text, file, line and column (a contract)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.errors import SpecError
from auditor.spec import load_spec

BASE = """\
version: 1
name: t
model:
  source: python
  class: tiny:Net
  weights: w.safetensors
data:
  source: sklearn
  name: digits
  slice: {start: 0, stop: 32}
explainers:
  - type: integrated_gradients
    params: {n_steps: 8}
  - type: saliency
"""

# (case id, spec text, expected errors with {f} for the spec path)
CASES: list[tuple[str, str, list[str]]] = [
    (
        "negative-steps",
        BASE.replace("n_steps: 8", "n_steps: -3"),
        ["{f}:13:23 explainers[0].params.n_steps: Input should be greater than 0 (got -3)"],
    ),
    (
        "steps-not-int",
        BASE.replace("n_steps: 8", "n_steps: many"),
        [
            "{f}:13:23 explainers[0].params.n_steps: expected an integer or 'auto' (got 'many')"
        ],
    ),
    (
        "unknown-param",
        BASE.replace("n_steps: 8", "n_step: 8"),
        [
            "{f}:13:14 explainers[0].params.n_step: unknown explainer 'integrated_gradients' "
            "param 'n_step'. Did you mean: n_steps? Allowed: baseline, internal_batch_size, "
            "max_steps, method, min_steps, n_steps, tolerance"
        ],
    ),
    (
        "unknown-explainer",
        BASE.replace("type: integrated_gradients", "type: integrated_gradient"),
        [
            "{f}:12:11 explainers[0].type: Unknown explainer 'integrated_gradient'. "
            "Did you mean: integrated_gradients? Known: {explainers}"
        ],
    ),
    (
        "unknown-top-level-key",
        BASE + "seeds: 3\n",
        [
            "{f}:15:1 seeds: unknown key 'seeds'. Did you mean: seed? Allowed: baseline, "
            "checks, data, description, device, explainers, metrics, model, name, output, "
            "precision, report, runner, seed, targets, version"
        ],
    ),
    (
        "wrong-version",
        BASE.replace("version: 1", "version: 2"),
        ["{f}:1:10 version: Input should be 1 (got 2)"],
    ),
    (
        "missing-version",
        BASE.replace("version: 1\n", ""),
        ["{f}:1:1 version: required field is missing"],
    ),
    (
        "bad-name",
        BASE.replace("name: t", "name: ../../etc"),
        [
            "{f}:2:7 name: String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}$' "
            "(got '../../etc')"
        ],
    ),
    (
        "seed-negative",
        BASE + "seed: -1\n",
        ["{f}:15:7 seed: Input should be greater than or equal to 0 (got -1)"],
    ),
    (
        "seed-string",
        BASE + "seed: zero\n",
        [
            "{f}:15:7 seed: Input should be a valid integer, unable to parse string as an "
            "integer (got 'zero')"
        ],
    ),
    (
        "unknown-model-source",
        BASE.replace("source: python", "source: pyhton"),
        [
            "{f}:4:11 model.source: Unknown model source 'pyhton'. Did you mean: python? "
            "Known: python, torchscript, torchvision"
        ],
    ),
    (
        "unknown-data-source",
        BASE.replace("source: sklearn", "source: sklaern"),
        [
            "{f}:8:11 data.source: Unknown data source 'sklaern'. Did you mean: sklearn? "
            "Known: csv, image_folder, sklearn, tensors, text, torchvision"
        ],
    ),
    (
        "missing-weights-file",
        BASE.replace("w.safetensors", "missing.safetensors"),
        ["{f}:6:12 model.weights: file {d}/missing.safetensors does not exist"],
    ),
    (
        "unknown-model-key",
        BASE.replace("  weights: w.safetensors", "  weights: w.safetensors\n  wieghts: x"),
        [
            "{f}:7:3 model.wieghts: unknown model source 'python' param 'wieghts'. "
            "Did you mean: weights? Allowed: class, init, pythonpath, source, trust_pickle, "
            "weights"
        ],
    ),
    (
        "unknown-dataset-name",
        BASE.replace("name: digits", "name: digitz"),
        [
            "{f}:9:9 data.name: Input should be 'digits', 'breast_cancer', 'wine' or 'iris' "
            "(got 'digitz')"
        ],
    ),
    (
        "batch-size-zero",
        BASE.replace("  slice:", "  batch_size: 0\n  slice:"),
        ["{f}:10:15 data.batch_size: Input should be greater than or equal to 1 (got 0)"],
    ),
    (
        "empty-slice-range",
        BASE.replace("{start: 0, stop: 32}", "{start: 5, stop: 5}"),
        ["{f}:10:10 data.slice: start (5) must be less than stop (5)"],
    ),
    (
        "slice-negative-start",
        BASE.replace("{start: 0, stop: 32}", "{start: -1, stop: 32}"),
        ["{f}:10:18 data.slice.start: Input should be greater than or equal to 0 (got -1)"],
    ),
    (
        "slice-unknown-key",
        BASE.replace("{start: 0, stop: 32}", "{first: 0, stop: 32}"),
        [
            "{f}:10:11 data.slice.first: unknown key 'first'. Allowed: classes, indices, "
            "sample, seed, start, stop"
        ],
    ),
    (
        "python-tag",
        BASE.replace("name: t", "name: !!python/object/apply:os.system ['touch pwned']"),
        [
            "{f}:2:7 name: YAML tag '!!python/object/apply:os.system' is not allowed: a spec "
            "holds plain data only"
        ],
    ),
    (
        "custom-tag",
        BASE + "description: !include other.yaml\n",
        ["{f}:15:14 description: YAML tag '!include' is not allowed: a spec holds plain data only"],
    ),
    (
        "yaml-syntax-error",
        BASE.replace("{n_steps: 8}", "{n_steps: 8"),
        ["{f}:14:9 YAML syntax error: expected ',' or '}}', but got ':'"],
    ),
    (
        "duplicate-key",
        BASE + "name: u\n",
        ['{f}:15:1 YAML syntax error: found duplicate key "name"'],
    ),
    (
        "not-a-mapping",
        "- just\n- a list\n",
        ["{f}:1:1 the spec must be a mapping of keys to values"],
    ),
    (
        "empty-file",
        "",
        ["{f}:1:1 the spec file is empty"],
    ),
    (
        "explainers-not-list",
        BASE.split("explainers:")[0] + "explainers: saliency\n",
        ["{f}:11:13 explainers: expected a list, got a string"],
    ),
    (
        "params-not-mapping",
        BASE.replace("params: {n_steps: 8}", "params: 8"),
        ["{f}:13:13 explainers[0].params: expected a mapping, got int"],
    ),
    (
        "duplicate-explainer",
        BASE + "  - type: saliency\n",
        [
            "{f}:15:11 explainers[2].type: duplicate explainer id 'saliency': give each "
            "repeated type its own 'id'"
        ],
    ),
    (
        "check-unknown-explainer",
        BASE + "checks:\n  - metric: ig.completeness_error\n    max: 0.01\n",
        [
            "{f}:16:13 checks[0].metric: check names explainer 'ig', which this spec does not "
            "run. Explainers: integrated_gradients, saliency"
        ],
    ),
    (
        "check-unknown-metric",
        BASE + "checks:\n  - metric: integrated_gradients.completness_error\n    max: 0.01\n",
        [
            "{f}:16:13 checks[0].metric: no metric 'completness_error' is measured for "
            "explainer 'integrated_gradients'. Did you mean: completeness_error? "
            "Known: above_tolerance, completeness_error, convergence_delta, "
            "deletion, fidelity, infidelity, insertion, randomization_sanity, sensitivity_max, "
            "sparseness, stability, steps"
        ],
    ),
    (
        "check-unknown-model-metric",
        BASE + "checks:\n  - metric: model.acuracy\n    min: 0.9\n",
        [
            "{f}:16:13 checks[0].metric: no metric 'acuracy' is measured for the model. "
            "Did you mean: accuracy? Known: accuracy, mean_probability, per_class_accuracy"
        ],
    ),
    (
        "check-without-bounds",
        BASE + "checks:\n  - metric: model.accuracy\n",
        ["{f}:16:5 checks[0]: a metric check needs 'min', 'max' or both"],
    ),
    (
        "check-without-kind",
        BASE + "checks:\n  - max: 3\n",
        [
            "{f}:16:5 checks[0]: a check needs one of the keys 'metric', 'ranking', "
            "'ranking_stability', 'metric_change', 'model_unchanged', 'data_unchanged'."
        ],
    ),
    (
        "ranking-check-unknown-explainer",
        BASE + "checks:\n  - ranking: salency\n    must_not_include: [age]\n",
        [
            "{f}:16:14 checks[0].ranking: check names explainer 'salency', which this spec "
            "does not run. Did you mean: saliency? Explainers: integrated_gradients, saliency"
        ],
    ),
    (
        "bad-report-format",
        BASE + "report:\n  formats: [html, docx]\n",
        ["{f}:16:19 report.formats[1]: Input should be 'html' or 'pdf' (got 'docx')"],
    ),
    (
        "gallery-too-big",
        BASE + "report:\n  gallery: {samples: 100000}\n",
        [
            "{f}:16:22 report.gallery.samples: Input should be less than or equal to 1000 "
            "(got 100000)"
        ],
    ),
    (
        "bad-precision",
        BASE + "precision: float64\n",
        [
            "{f}:15:12 precision: Input should be 'float32', 'bfloat16' or 'float16' "
            "(got 'float64')"
        ],
    ),
    (
        "targets-list",
        BASE + "targets: [1, 2]\n",
        ["{f}:15:10 targets: targets must be 'predicted', 'label', a class index or a class name"],
    ),
    (
        "gradcam-missing-layer",
        BASE + "  - type: gradcam\n",
        ["{f}:15:5 explainers[2].params.layer: required field is missing"],
    ),
    (
        "bad-baseline",
        BASE.replace("{n_steps: 8}", "{n_steps: 8, baseline: black}"),
        [
            "{f}:13:36 explainers[0].params.baseline: Input should be 'zeros', 'mean', 'blur' "
            "or 'uniform' (got 'black')"
        ],
    ),
]


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    (tmp_path / "w.safetensors").write_bytes(b"")
    return tmp_path


def _errors(spec_dir: Path, text: str) -> list[str]:
    path = spec_dir / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return [str(issue) for issue in info.value.issues]


def test_at_least_25_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_spec(spec_dir: Path, text: str, expected: list[str]) -> None:
    from auditor import registries

    spec = spec_dir / "spec.yaml"
    fill = {
        "f": str(spec),
        "d": str(spec_dir),
        "explainers": ", ".join(registries.explainers.names()),
    }
    assert _errors(spec_dir, text) == [e.format(**fill) for e in expected]


def test_all_errors_reported_at_once(spec_dir: Path) -> None:
    text = (
        BASE.replace("n_steps: 8", "n_steps: 0")
        .replace("version: 1", "version: 3")
        .replace("name: digits", "name: digitz")
    ) + "seed: -5\n"
    errors = _errors(spec_dir, text)
    assert [e.split(" ", 2)[1] for e in errors] == [
        "version:",
        "data.name:",
        "explainers[0].params.n_steps:",
        "seed:",
    ]


def test_python_tag_never_runs(spec_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(spec_dir)
    text = BASE.replace("name: t", "name: !!python/object/apply:os.system ['touch pwned']")
    _errors(spec_dir, text)
    assert not (spec_dir / "pwned").exists()


def test_valid_base_spec(spec_dir: Path) -> None:
    path = spec_dir / "spec.yaml"
    path.write_text(BASE, encoding="utf-8")
    validated = load_spec(path)
    assert validated.spec.name == "t"
    assert validated.explainer_params["integrated_gradients"].n_steps == 8
    assert validated.model_params.weights == (spec_dir / "w.safetensors").resolve()
    assert validated.spec.output == (spec_dir / "runs").resolve()


def test_overrides(spec_dir: Path) -> None:
    path = spec_dir / "spec.yaml"
    path.write_text(BASE, encoding="utf-8")
    validated = load_spec(path, ["explainers[0].params.n_steps=16", "data.slice.stop=8"])
    assert validated.explainer_params["integrated_gradients"].n_steps == 16
    assert validated.spec.data.slice is not None and validated.spec.data.slice.stop == 8
    with pytest.raises(SpecError) as info:
        load_spec(path, ["explainers.0.params.n_steps=-1"])
    assert str(info.value) == (
        f"{path}:13:23 explainers[0].params.n_steps: Input should be greater than 0 (got -1) "
        "(value set with --set)"
    )


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"spec file .*nope.yaml does not exist"):
        load_spec(tmp_path / "nope.yaml")
