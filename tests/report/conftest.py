"""Run folders for the report tests, each audited once per session (small slices).

``digits_run``: the example digits CNN on 64 samples with three local explainers, a
decision-tree surrogate and the deletion metric; report in both formats.
``hostile_run``: a tabular audit whose class and feature names are HTML and script;
report.html only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from auditor.run_folder import RunFolder
from auditor.runner import RunOptions, run

ROOT = Path(__file__).resolve().parents[2]
EVIL_CLASS = "<img src=x onerror=alert(1)>"
EVIL_FEATURE = "<script>alert(2)</script>"

DIGITS_SPEC = f"""\
version: 1
name: report-digits
description: Report test audit of the digits CNN & friends <b>not bold</b>.
seed: 0
model:
  source: python
  class: examples.models:DigitsCNN
  pythonpath: [{ROOT}]
  init: {{num_classes: 10}}
  weights: {ROOT / "models" / "digits_cnn.safetensors"}
data:
  source: sklearn
  name: digits
  split: test
  slice: {{start: 0, stop: 64}}
  batch_size: 32
explainers:
  - type: saliency
  - type: integrated_gradients
    params: {{n_steps: 8}}
  - type: gradcam
    params: {{layer: features.3}}
  - type: surrogate_tree
    params: {{max_depth: 3}}
metrics:
  - type: deletion
    explainers: [integrated_gradients, gradcam]
checks:
  - metric: model.accuracy
    min: 0.5
report:
  title: Report test audit
  formats: [html, pdf]
  top_k: 5
  gallery: {{samples: 6}}
"""


def hostile_spec(data: Path) -> str:
    return f"""\
version: 1
name: report-hostile
seed: 0
model:
  source: python
  class: examples.models:TabularMLP
  pythonpath: [{ROOT}]
  init: {{in_features: 4, num_classes: 2}}
data:
  source: tensors
  path: {data}
  class_names: ["benign", "{EVIL_CLASS}"]
  feature_names: ["{EVIL_FEATURE}", "a&b", "plain", "it's \\"quoted\\""]
explainers:
  - type: saliency
  - type: surrogate_tree
report:
  title: "Hostile names {EVIL_CLASS}"
  formats: [html]
  gallery: {{samples: 4}}
"""


def _run(spec_text: str, tmp: Path) -> RunFolder:
    spec = tmp / "spec.yaml"
    spec.write_text(spec_text)
    outcome = run(spec, RunOptions(out=tmp / "runs", run_id="r", progress="quiet"))
    assert outcome.exit_code in (0, 1), outcome.results.problems
    return outcome.folder


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    return _run(DIGITS_SPEC, tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    tmp = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 2] > 0).astype(np.int64)
    np.savez(tmp / "data.npz", x=x, y=y)
    return _run(hostile_spec(tmp / "data.npz"), tmp)


@pytest.fixture
def hostile_names() -> tuple[str, str]:
    """The class name and feature name the hostile run was given."""
    return EVIL_CLASS, EVIL_FEATURE


@pytest.fixture
def copy_of(tmp_path: Path):
    """A writable copy of a run folder, with results.json edited by ``edit(raw)``."""

    count = iter(range(100))

    def make(folder: RunFolder, edit=None) -> RunFolder:
        target = tmp_path / f"copy{next(count)}" / folder.path.name
        shutil.copytree(folder.path, target)
        if edit is not None:
            path = target / "results.json"
            raw = json.loads(path.read_text())
            edit(raw)
            path.write_text(json.dumps(raw))
        return RunFolder.open(target)

    return make
