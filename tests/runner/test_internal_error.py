"""An unexpected exception (a bug in auditor or in a plugin outside an explainer) exits 3
with one line on stderr, its traceback in the run folder's error.log: never exit 1 (a check
failed) and never a traceback on the terminal."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result
from conftest import ROOT, read_results

from auditor import registries
from auditor.cli import cli
from auditor.metrics.base import ExplainerRun, Metric, MetricContext, MetricOutput
from auditor.models.base import LoadedModel, ModelSource
from auditor.plugin import Params

TINY = f"""\
version: 1
name: tiny
seed: 0
model:
  source: python
  class: examples.models:DigitsCNN
  pythonpath: [{ROOT}]
  init: {{num_classes: 10}}
  weights: {ROOT}/models/digits_cnn.safetensors
data:
  source: sklearn
  name: digits
  split: test
  slice: {{start: 0, stop: 16}}
  batch_size: 8
explainers:
  - type: saliency
report:
  formats: []
output: out
"""


class BrokenApplies(Metric):
    """A metric whose ``applies_to`` has a bug: it raises outside ``measure``."""

    name: ClassVar[str] = "broken_applies_for_test"

    def applies_to(self, explainer: ExplainerRun, modality: str) -> bool:
        return 1 / 0 > 0

    def measure(self, ctx: MetricContext) -> MetricOutput:  # pragma: no cover - never reached
        return MetricOutput(values={"v": 0.0})


class BrokenSource(ModelSource):
    """A model source with a bug: raises before any run folder exists."""

    name: ClassVar[str] = "broken_source_for_test"

    class Params(Params):
        pass

    def load(self, params: Any) -> LoadedModel:
        raise KeyError("weights")


@pytest.fixture
def plugins() -> Iterator[None]:
    registries.metrics.register(BrokenApplies)
    registries.models.register(BrokenSource)
    yield
    registries.metrics.unregister(BrokenApplies.name)
    registries.models.unregister(BrokenSource.name)


def invoke(tmp_path: Path, *args: str, spec_text: str = TINY) -> Result:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(spec_text)
    return CliRunner().invoke(
        cli, ["run", str(spec), "--out", str(tmp_path / "out"), "--run-id", "r", "-q", *args]
    )


def assert_internal_error(result: Result, message: str, log: Path) -> str:
    """One line on stderr, ``message`` (a regular expression) and the log's path; the
    traceback only in the log. Returns the message as printed."""
    assert result.exit_code == 3, result.output
    match = re.fullmatch(rf"internal error: ({message}) \(traceback: (.+)\)\n", result.stderr)
    assert match, result.stderr
    assert match[2] == str(log)
    assert "Traceback" not in result.output
    text = log.read_text()
    assert text.startswith("Traceback (most recent call last):")
    assert text.rstrip().endswith(match[1])
    return match[1]


def test_a_metric_that_raises_outside_measure_is_an_internal_error(
    plugins: None, tmp_path: Path
) -> None:
    result = invoke(tmp_path, "--set", "metrics=[{type: broken_applies_for_test}]")
    folder = tmp_path / "out" / "tiny" / "r"
    assert_internal_error(result, "ZeroDivisionError: division by zero", folder / "error.log")
    assert "in applies_to" in (folder / "error.log").read_text()
    # no half-written results: no results.json, no report; finished attributions stay
    assert not (folder / "results.json").exists()
    assert not (folder / "junit.xml").exists()
    assert (folder / "attributions" / "saliency.npy").is_file()
    assert not list(folder.rglob("*.tmp"))


def test_a_report_that_cannot_be_written_is_an_internal_error(tmp_path: Path) -> None:
    first = invoke(tmp_path, spec_text=TINY.replace("formats: []", "formats: [html]"))
    assert first.exit_code == 0, first.output
    folder = tmp_path / "out" / "tiny" / "r"
    html = folder / "report.html"
    html.unlink()
    html.mkdir()  # the rename into place will fail
    resumed = CliRunner().invoke(cli, ["run", "--resume", str(folder), "-q"])
    log = folder / "error.log"
    message = assert_internal_error(
        resumed,
        rf"IsADirectoryError: \[Errno 21\] Is a directory: '.+' -> '{re.escape(str(html))}'",
        log,
    )
    assert "in render" in log.read_text()
    # results.json and junit.xml do not call the run passed
    results = read_results(folder)
    assert results["status"] == "error" and results["exit_code"] == 3
    assert results["problems"] == [f"the report was not rendered: {message} (traceback: {log})"]
    suite = ET.parse(folder / "junit.xml").getroot()
    assert suite.get("errors") == "1"
    assert suite.find("testcase[@name='run']/error").get("message") == results["problems"][0]
    assert not list(folder.glob(".report.html.*"))  # no temporary file left behind
    # fixed and resumed: a passed run keeps no traceback of the attempt before it
    html.rmdir()
    again = CliRunner().invoke(cli, ["run", "--resume", str(folder), "-q"])
    assert again.exit_code == 0, again.output
    assert html.is_file() and not log.exists()
    assert read_results(folder)["status"] == "passed"


def test_an_internal_error_before_the_run_folder_exists_logs_to_a_temporary_file(
    plugins: None, tmp_path: Path
) -> None:
    model = TINY[TINY.index("model:") : TINY.index("data:")]
    spec_text = TINY.replace(model, "model: {source: broken_source_for_test}\n")
    result = invoke(tmp_path, spec_text=spec_text)
    assert result.exit_code == 3, result.output
    match = re.fullmatch(
        r"internal error: KeyError: 'weights' \(traceback: (.+)\)\n", result.stderr
    )
    assert match, result.stderr
    log = Path(match[1])
    assert log.name.startswith("auditor-error-") and log.suffix == ".log"
    assert "in load" in log.read_text()
    log.unlink()
    assert not (tmp_path / "out").exists()


def test_render_of_a_broken_folder(tmp_path: Path) -> None:
    result = invoke(tmp_path)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / "tiny" / "r"
    runner = CliRunner()

    (folder / "attributions" / "saliency.npy").write_text("garbage\n")  # not an array
    broken = runner.invoke(cli, ["render", str(folder), "--format", "html"])
    assert_internal_error(broken, "ValueError: .+", folder / "error.log")
    assert not (folder / "report.html").exists()

    (folder / "results.json").write_text('{"status": ')  # cut short
    cut = runner.invoke(cli, ["render", str(folder)])
    assert cut.exit_code == 2
    assert cut.stderr == (
        f"error: {folder / 'results.json'} is not readable JSON "
        "(Expecting value: line 1 column 12 (char 11))\n"
    )

    (folder / "results.json").unlink()  # a run that was killed before it finished
    killed = runner.invoke(cli, ["render", str(folder)])
    assert killed.exit_code == 2
    assert killed.stderr == (
        f"error: {folder} has no results.json: the run did not finish; "
        f"finish it with: auditor run --resume {folder}\n"
    )
    assert json.loads((folder / "inputs.json").read_text())["spec"] == str(tmp_path / "tiny.yaml")
