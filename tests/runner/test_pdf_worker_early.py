"""``auditor run`` starts the PDF worker before it computes (weasyprint imports and warms up
while the explainers run), uses it for the report, and leaves no worker behind, also when
the run is interrupted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from conftest import ROOT
from pypdf import PdfReader

from auditor import registries
from auditor.explainers.base import Explainer
from auditor.runner import RunOptions, run


def pdf_workers() -> list[int]:
    """Child processes of this process that run auditor's PDF worker (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"pdf_worker" in cmdline and b"<defunct>" not in cmdline:
            found.append(int(entry.name))
    return found


class WatchingExplainer(Explainer):
    """An identity map (no gradients) that notes, per batch, how many PDF workers are alive."""

    name: ClassVar[str] = "watch_pdf_worker_for_test"
    seen: ClassVar[list[int]] = []
    fail: ClassVar[bool] = False

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        type(self).seen.append(len(pdf_workers()))
        if self.fail:
            raise KeyboardInterrupt  # as Ctrl-C: not caught as an explainer's failure
        return inputs.clone()


@pytest.fixture
def watching() -> Any:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux /proc")
    registries.explainers.register(WatchingExplainer)
    WatchingExplainer.seen = []
    WatchingExplainer.fail = False
    yield WatchingExplainer
    registries.explainers.unregister(WatchingExplainer.name)


def _spec(tmp_path: Path, formats: str) -> Path:
    spec = tmp_path / "watch.yaml"
    spec.write_text(
        f"""\
version: 1
name: watch
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
  slice: {{start: 0, stop: 32}}
  batch_size: 16
explainers:
  - type: watch_pdf_worker_for_test
report:
  formats: {formats}
  gallery: {{samples: 4}}
"""
    )
    return spec


def test_a_pdf_run_warms_its_worker_while_it_explains(watching: Any, tmp_path: Path) -> None:
    if (os.cpu_count() or 1) < 2 or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: no worker")
    outcome = run(_spec(tmp_path, "[pdf]"), RunOptions(out=tmp_path / "out", run_id="r"))
    assert outcome.exit_code == 0
    assert watching.seen == [1, 1]  # one worker, alive during both batches of the explainer
    pdf = outcome.folder.path / "report.pdf"
    reader = PdfReader(pdf)
    assert len(reader.pages) > 1 and sorted(reader.attachments) == ["results.json", "spec.yaml"]
    assert pdf_workers() == []


def test_no_worker_without_a_pdf(watching: Any, tmp_path: Path) -> None:
    outcome = run(_spec(tmp_path, "[html]"), RunOptions(out=tmp_path / "out", run_id="r"))
    assert outcome.exit_code == 0
    assert watching.seen == [0, 0]
    assert (outcome.folder.path / "report.html").is_file()
    assert not (outcome.folder.path / "report.pdf").exists()


def test_an_interrupted_run_leaves_no_worker(watching: Any, tmp_path: Path) -> None:
    watching.fail = True
    with pytest.raises(KeyboardInterrupt):
        run(_spec(tmp_path, "[html, pdf]"), RunOptions(out=tmp_path / "out", run_id="r"))
    assert watching.seen == [1 if len(os.sched_getaffinity(0)) > 1 else 0]
    assert pdf_workers() == []
    assert not list((tmp_path / "out").rglob("report.*"))
