"""Trend section (issue 15): the verdict and checked metrics over the audit's last runs, from
``<output>/<name>/index.jsonl``; real runs of the breast-cancer audit and generated indexes."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from auditor import history
from auditor.cli import cli
from auditor.report.canvas import Canvas
from auditor.report.sections import trend
from auditor.report.source import ReportSource
from auditor.report.view import open_view
from auditor.run_folder import RunFolder

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "audits" / "breast_cancer_mlp.yaml"
SMALL = ["data.slice={start: 0, stop: 48}", "report.formats=[html]"]


def run(out: Path, run_id: str, *sets: str) -> RunFolder:
    args = ["run", str(SPEC), "--out", str(out), "--run-id", run_id, "-q"]
    for s in [*SMALL, *sets]:
        args += ["--set", s]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 1), result.output
    return RunFolder(out / "breast-cancer-mlp" / run_id)


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> list[RunFolder]:
    """Two passing runs, then one whose accuracy check fails (min 0.999)."""
    out = tmp_path_factory.mktemp("trend")
    return [
        run(out, "t1"),
        run(out, "t2"),
        run(out, "t3", "checks.0.min=0.999"),
    ]


def test_one_run_has_no_trend_section(tmp_path: Path) -> None:
    folder = run(tmp_path, "only")
    view, _ = open_view(folder)
    assert "trend" not in [n.id for n in view.nav]
    assert '<section id="trend"' not in (folder.path / "report.html").read_text()
    assert not (folder.path / "figures" / "trend").exists()


def test_three_real_runs_draw_verdicts_and_checked_metrics(three_runs: list[RunFolder]) -> None:
    last = three_runs[-1]
    view, _ = open_view(last)
    t = view.trend
    assert [r.run_id for r in t.runs] == ["t1", "t2", "t3"]
    assert [r.verdict for r in t.runs] == ["passed", "passed", "failed"]
    assert t.runs[-1].current and t.counts == {"passed": 2, "failed": 1}
    index = {e.run_id: e for e in history.read(last.path.parent)}
    assert list(index) == ["t1", "t2", "t3"]
    by_name = {m.name: m for m in t.metrics}
    assert list(by_name) == ["model.accuracy", "integrated_gradients.completeness_error"]
    accuracy = by_name["model.accuracy"]
    assert accuracy.values == [index[i].metrics["model.accuracy"] for i in ("t1", "t2", "t3")]
    assert accuracy.statuses == ["pass", "pass", "fail"]
    assert accuracy.threshold == 0.999  # this run's threshold, dashed
    assert accuracy.failed_runs == 1 and accuracy.change == "no change"
    html = (last.path / "report.html").read_text()
    assert '<section id="trend"' in html
    assert html.index('<section id="summary"') < html.index('<section id="trend"')
    assert [n.id for n in view.nav][:2] == ["summary", "trend"]
    with Image.open(last.path / "figures" / "trend" / "trend.png") as png:
        width, height = png.size
    assert width > 800 and height > 300  # 6.8 in at 150 dpi; verdict + 2 metric panels


def test_a_report_rendered_again_leaves_out_later_runs(three_runs: list[RunFolder]) -> None:
    middle = three_runs[1]
    result = CliRunner().invoke(cli, ["render", str(middle.path), "--format", "html"])
    assert result.exit_code == 0, result.output
    view, _ = open_view(middle)
    assert [r.run_id for r in view.trend.runs] == ["t1", "t2"]
    assert [r.verdict for r in view.trend.runs] == ["passed", "passed"]


def _entry(i: int, when: datetime, status: str = "passed") -> history.IndexEntry:
    return history.IndexEntry(
        run_id=f"g{i:06d}",
        path=f"g{i:06d}",
        finished=when.isoformat(),
        status=status,
        exit_code=0 if status == "passed" else 1,
        checks={"model.accuracy": "pass" if status == "passed" else "fail"},
        metrics={"model.accuracy": 0.9 + (i % 10) / 100},
    )


def generated_audit(tmp: Path, source: RunFolder, lines: int, folders: int) -> RunFolder:
    """An audit folder with ``lines`` generated index lines (the last ``folders`` of them
    with a run folder) and a copy of a real run as the current one, finished after them."""
    audit = tmp / "breast-cancer-mlp"
    audit.mkdir()
    current = audit / "current"
    shutil.copytree(source.path, current)
    finished = datetime.fromisoformat(json.loads((current / "results.json").read_text())[
        "provenance"]["finished"])  # fmt: skip
    start = finished - timedelta(minutes=lines + 1)
    data = bytearray()
    for i in range(lines):
        entry = _entry(i, start + timedelta(minutes=i), "failed" if i % 7 == 0 else "passed")
        data += entry.line()
        if i >= lines - folders:
            (audit / entry.path).mkdir()
            (audit / entry.path / "results.json").write_text("{}")
    (audit / history.INDEX).write_bytes(bytes(data))
    return RunFolder(current)


def test_1000_runs_draw_only_the_last_20(
    three_runs: list[RunFolder], tmp_path: Path
) -> None:
    folder = generated_audit(tmp_path, three_runs[0], 1000, 1000)
    src = ReportSource.open(folder)
    view = trend.build(src)
    assert view is not None
    with Canvas(folder) as canvas:
        trend.draw(view, src, canvas)
    assert len(view.runs) == 20 == trend.DEFAULT_RUNS
    assert [r.run_id for r in view.runs] == [f"g{i:06d}" for i in range(981, 1000)] + ["t1"]
    assert view.runs[0].verdict == "passed" and view.runs[6].verdict == "failed"  # 987 % 7 == 0
    assert (folder.path / "figures" / "trend" / "trend.png").is_file()


def test_the_last_runs_of_a_long_history(
    three_runs: list[RunFolder], tmp_path: Path
) -> None:
    """100,000 index lines (only the last 30 runs still have a folder): the section's runs
    are the last ones (its time at 1,000 runs: bench/case_history.py, part d)."""
    folder = generated_audit(tmp_path, three_runs[0], 100_000, 30)
    current = history.entry_from_results(folder.path, folder.read_json("results.json"))
    runs = trend.recent_runs(folder.path.parent, current, 20)
    assert len(runs) == 20 and runs[-2].run_id == "g099999"


def test_index_tail_skips_deleted_torn_duplicate_and_later_runs(
    three_runs: list[RunFolder], tmp_path: Path
) -> None:
    folder = generated_audit(tmp_path, three_runs[0], 10, 10)
    audit = folder.path.parent
    shutil.rmtree(audit / "g000008")  # deleted run folder
    later = _entry(99, datetime.now(UTC) + timedelta(days=1))  # finished after this run
    (audit / later.path).mkdir()
    (audit / later.path / "results.json").write_text("{}")
    with open(audit / history.INDEX, "ab") as fh:
        fh.write(later.line())
        fh.write(_entry(5, datetime(2026, 1, 1, tzinfo=UTC), "failed").line())  # re-indexed
        fh.write(b'{"run_id": "torn", "pa')  # a killed writer's torn line
    current = history.entry_from_results(folder.path, folder.read_json("results.json"))
    runs = trend.recent_runs(audit, current, 6)
    # index order, as history.read: a run indexed twice sits at its last line, with its values
    assert [r.run_id for r in runs] == ["g000004", "g000006", "g000007", "g000009", "g000005", "t1"]
    assert runs[-2].status == "failed"
    assert trend.recent_runs(audit, current, 1) == [current]
