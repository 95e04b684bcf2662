"""The run index (issue 15): index.jsonl appends under a lock, readers that skip deleted
runs and torn lines, ``previous`` read from the end, and ``auditor history``'s table.

Two tiny real audits (breast-cancer MLP, 16 samples, saliency and integrated gradients
with 8 and 64 steps) give the results.json files; each test copies their folders into an
audit folder of its own.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from auditor import history
from auditor.errors import UsageError
from auditor.history import IndexEntry

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "audits" / "breast_cancer_mlp.yaml"
COMPLETENESS = "integrated_gradients.completeness_error"


def _tiny(n_steps: int) -> tuple[str, ...]:
    return (
        "data.slice.stop=16",
        "explainers=[{type: saliency}, {type: integrated_gradients, "
        f"params: {{n_steps: {n_steps}, baseline: mean}}}}]",
        "metrics=[{type: deletion}]",
        "report.formats=[]",
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two finished run folders of the tiny audit: 8 IG steps (completeness check fails,
    exit 1), then 64 steps."""
    from auditor.runner import RunOptions, run

    out = tmp_path_factory.mktemp("runs")
    folders = []
    for run_id, steps in (("a8", 8), ("b64", 64)):
        options = RunOptions(out=out, run_id=run_id, progress="quiet", overrides=_tiny(steps))
        folders.append(run(SPEC, options).folder.path)
    return folders


def _results(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "results.json").read_text())


def _audit(tmp_path: Path, runs: list[Path], *, index: bool = True) -> Path:
    """A fresh audit folder with copies of the run folders (indexed in order if ``index``)."""
    audit = tmp_path / "breast-cancer-mlp"
    for folder in runs:
        shutil.copytree(folder, audit / folder.name)
        if index:
            history.record(audit / folder.name, _results(folder))
    return audit


def _entry(runs: list[Path], run_id: str, **update: Any) -> IndexEntry:
    entry = history.entry_from_results(runs[0], _results(runs[0]))
    return entry.model_copy(update={"run_id": run_id, "path": run_id, **update})


def _fake_run(audit: Path, source: Path, run_id: str) -> None:
    """A run folder holding a copy of a real run's spec.yaml and results.json."""
    (audit / run_id).mkdir(parents=True)
    for name in ("spec.yaml", "results.json"):
        shutil.copyfile(source / name, audit / run_id / name)


def _lines(audit: Path) -> list[bytes]:
    return (audit / history.INDEX).read_bytes().splitlines()


# -- entries ----------------------------------------------------------------------------
def test_entry_holds_verdict_hashes_checks_and_checked_metrics(runs: list[Path]) -> None:
    results = _results(runs[0])
    entry = history.entry_from_results(runs[0], results)
    assert (entry.run_id, entry.path) == ("a8", "a8")
    assert (entry.status, entry.exit_code) == ("failed", 1)
    assert entry.finished == results["provenance"]["finished"]
    assert entry.weights_sha256 == results["provenance"]["weights_sha256"]
    assert entry.data_sha256 == results["provenance"]["data_sha256"]
    assert entry.spec_sha256 == results["provenance"]["spec_sha256"]
    assert entry.checks == {
        "model.accuracy": "pass",
        "integrated_gradients top 5": "pass",
        COMPLETENESS: "fail",
    }
    # model.accuracy and the metric the completeness check names, valued as the checks read them
    assert list(entry.metrics) == ["model.accuracy", COMPLETENESS]
    assert entry.metrics["model.accuracy"] == results["predictions"]["accuracy"]
    metric = results["explainers"]["integrated_gradients"]["metrics"]["completeness_error"]
    assert entry.metrics[COMPLETENESS] == pytest.approx(metric["mean"])
    assert entry.metrics[COMPLETENESS] > 0.01  # 8 steps: the check failed on this value
    # one JSON line
    line = entry.line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert IndexEntry.model_validate_json(line) == entry


def test_entry_metrics_follow_the_runs_overrides(runs: list[Path]) -> None:
    """A check changed with --set names another metric: the entry follows the run's spec."""
    results = _results(runs[1])
    results["provenance"]["overrides"] = [
        *results["provenance"]["overrides"],
        "checks[2].metric=integrated_gradients.deletion",
    ]
    entry = history.entry_from_results(runs[1], results)
    deletion = results["explainers"]["integrated_gradients"]["metrics"]["deletion"]["mean"]
    assert entry.metrics == {
        "model.accuracy": results["predictions"]["accuracy"],
        "integrated_gradients.deletion": pytest.approx(deletion),
    }


def test_entry_refuses_a_path_outside_the_audit_folder(runs: list[Path]) -> None:
    with pytest.raises(ValueError, match="not inside the audit folder"):
        _entry(runs, "x").model_validate({**_entry(runs, "x").model_dump(), "path": "../x"})


# -- appending --------------------------------------------------------------------------
def _append_many(audit: str, source: str, prefix: str, n: int, start: Any) -> None:
    entry = history.entry_from_results(
        Path(source), json.loads(Path(source, "results.json").read_text())
    )
    start.wait()
    for i in range(n):
        name = f"{prefix}{i:03d}"
        history.append(Path(audit), entry.model_copy(update={"run_id": name, "path": name}))


def test_concurrent_appends_from_two_processes_lose_no_line(
    tmp_path: Path, runs: list[Path]
) -> None:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    workers = [
        ctx.Process(target=_append_many, args=(str(tmp_path), str(runs[0]), p, 200, start))
        for p in ("p", "q")
    ]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    lines = _lines(tmp_path)
    assert len(lines) == 400
    ids = [IndexEntry.model_validate_json(line).run_id for line in lines]  # every line parses
    assert sorted(ids) == sorted(f"{p}{i:03d}" for p in "pq" for i in range(200))
    for prefix in "pq":  # each writer's lines in its own order
        own = [i for i in ids if i.startswith(prefix)]
        assert own == sorted(own)


def test_append_waits_for_the_lock(tmp_path: Path, runs: list[Path]) -> None:
    """While another process holds the index lock, an append does not write."""
    history.append(tmp_path, _entry(runs, "first"))
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    child = ctx.Process(target=_append_many, args=(str(tmp_path), str(runs[0]), "w", 1, start))
    child.start()  # forked before the lock is taken: it must not inherit the locked descriptor
    fd = os.open(tmp_path / history.LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        start.set()
        time.sleep(1.0)
        assert child.is_alive()
        assert len(_lines(tmp_path)) == 1
    finally:
        os.close(fd)
        child.join(timeout=60)
        if child.exitcode is None:
            child.kill()
    assert child.exitcode == 0
    ids = [IndexEntry.model_validate_json(x).run_id for x in _lines(tmp_path)]
    assert ids == ["first", "w000"]


def test_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(
    tmp_path: Path, runs: list[Path]
) -> None:
    audit = _audit(tmp_path, runs)
    whole = _entry(runs, "torn").line()
    with open(audit / history.INDEX, "ab") as fh:  # a run killed in the middle of its line
        fh.write(whole[: len(whole) // 2])
    warned: list[str] = []
    assert [e.run_id for e in history.read(audit, warn=warned.append)] == ["a8", "b64"]
    assert len(warned) == 1 and "torn last line" in warned[0]
    assert history.previous(audit).run_id == "b64"

    _fake_run(audit, runs[0], "c")
    history.append(audit, _entry(runs, "c"))
    warned.clear()
    assert [e.run_id for e in history.read(audit, warn=warned.append)] == ["a8", "b64", "c"]
    assert len(warned) == 1 and "line 3 is not a valid run entry" in warned[0]
    assert history.previous(audit).run_id == "c"


# -- reading ----------------------------------------------------------------------------
def test_deleted_and_incomplete_runs_are_skipped_with_a_warning(
    tmp_path: Path, runs: list[Path]
) -> None:
    audit = _audit(tmp_path, runs)
    _fake_run(audit, runs[0], "c")
    history.append(audit, _entry(runs, "c"))
    shutil.rmtree(audit / "a8")
    (audit / "c" / "results.json").unlink()
    warned: list[str] = []
    assert [e.run_id for e in history.read(audit, warn=warned.append)] == ["b64"]
    assert len(warned) == 2
    assert "run a8" in warned[0] and "deleted" in warned[0]
    assert "run c" in warned[1] and "no results.json" in warned[1]


def test_a_run_indexed_twice_keeps_its_last_line(tmp_path: Path, runs: list[Path]) -> None:
    audit = _audit(tmp_path, runs)
    history.append(audit, _entry(runs, "a8", status="error", exit_code=3))
    entries = history.read(audit, warn=None)
    assert [(e.run_id, e.exit_code) for e in entries] == [("b64", 0), ("a8", 3)]
    # the run's last word is exit 3: previous does not fall back to its older line
    assert history.previous(audit).run_id == "b64"
    assert history.previous(audit, exclude="b64") is None


def test_previous_skips_deleted_incomplete_failed_and_excluded_runs(
    tmp_path: Path, runs: list[Path]
) -> None:
    audit = _audit(tmp_path, runs)
    assert history.previous(audit).run_id == "b64"
    assert history.previous(audit, exclude="b64").run_id == "a8"
    for name in ("crashed", "deleted", "incomplete"):
        _fake_run(audit, runs[0], name)
    history.append(audit, _entry(runs, "crashed", status="error", exit_code=3))
    history.append(audit, _entry(runs, "deleted"))
    history.append(audit, _entry(runs, "incomplete"))
    shutil.rmtree(audit / "deleted")
    (audit / "incomplete" / "results.json").unlink()
    warned: list[str] = []
    found = history.previous(audit, warn=warned.append)
    assert found is not None and found.run_id == "b64"
    assert [w.split(":")[0] for w in warned] == ["run incomplete", "run deleted"]
    assert history.previous(audit, exclude="b64").run_id == "a8"
    shutil.rmtree(audit / "a8")
    assert history.previous(audit, exclude="b64") is None


def test_previous_without_an_index_reads_the_run_folders(tmp_path: Path, runs: list[Path]) -> None:
    audit = _audit(tmp_path, runs, index=False)
    assert history.previous(audit).run_id == "b64"
    assert history.previous(audit, exclude="b64").run_id == "a8"
    assert history.previous(tmp_path / "nothing") is None


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 16])
def test_lines_backwards_gives_every_line_last_first(tmp_path: Path, block: int) -> None:
    path = tmp_path / "f"
    lines = [b"", b"a", b"bb" * 40, b"", b"ccc", b"torn"]
    path.write_bytes(b"\n".join(lines))
    assert list(history.lines_backwards(path, block)) == lines[::-1]


# -- auditor history --------------------------------------------------------------------
def test_history_table_lists_runs_newest_last(tmp_path: Path, runs: list[Path]) -> None:
    audit = _audit(tmp_path, runs)
    first, second = (history.entry_from_results(f, _results(f)) for f in runs)
    text = history.history_table(audit, as_json=False)
    header, rule, *rows = text.splitlines()
    assert header.split() == [
        "run", "id", "finished", "(UTC)", "verdict", "exit", "checks", "weights", "data",
        "model.accuracy", COMPLETENESS,
    ]  # fmt: skip
    assert set(rule.replace(" ", "")) == {"-"}
    assert [r.split()[0] for r in rows] == ["a8", "b64"]
    cells = rows[0].split()
    assert cells[3:6] == ["failed", "1", "2/3"]
    assert cells[7:9] == [first.weights_sha256[:8], first.data_sha256[:8]]
    assert cells[9:] == [
        f"{first.metrics['model.accuracy']:.4g}",
        f"{first.metrics[COMPLETENESS]:.4g}",
    ]
    assert rows[1].split()[3:6] == ["passed", "0", "3/3"]
    assert float(rows[1].split()[-1]) == pytest.approx(second.metrics[COMPLETENESS], rel=1e-3)
    assert second.metrics[COMPLETENESS] < first.metrics[COMPLETENESS]  # 64 steps beat 8
    assert "note:" not in text and "warning:" not in text

    data = json.loads(history.history_table(audit, as_json=True))
    assert data["index"] == str(audit / history.INDEX)
    assert [IndexEntry.model_validate(r) for r in data["runs"]] == [first, second]
    assert data["notes"] == [] and data["warnings"] == []


def test_history_reports_skipped_runs_and_runs_made_before_the_index(
    tmp_path: Path, runs: list[Path]
) -> None:
    audit = _audit(tmp_path, runs, index=False)
    text = history.history_table(audit, as_json=False)
    assert [line.split()[0] for line in text.splitlines()[2:4]] == ["a8", "b64"]
    assert "note: 2 run(s) made before index.jsonl existed: read from their results.json" in text

    history.record(audit / "b64", _results(audit / "b64"))  # the index starts at b64
    _fake_run(audit, runs[0], "gone")
    history.append(audit, _entry(runs, "gone"))
    shutil.rmtree(audit / "gone")
    (audit / "running").mkdir()  # a run still going: spec.yaml, no results.json
    shutil.copyfile(runs[0] / "spec.yaml", audit / "running" / "spec.yaml")
    warned: list[str] = []
    data = json.loads(history.history_table(audit, as_json=True, warn=warned.append))
    assert [r["run_id"] for r in data["runs"]] == ["a8", "b64"]
    assert data["notes"] == [
        f"1 run(s) not in {audit / 'index.jsonl'}: read from their results.json"
    ]
    assert warned == data["warnings"] and len(warned) == 2
    assert "run gone" in warned[0] and "deleted" in warned[0]
    assert "run running" in warned[1] and "no results.json" in warned[1]
    text = history.history_table(audit, as_json=False)
    assert text.count("warning: ") == 2


def test_history_of_a_folder_that_is_not_an_audit_is_a_usage_error(
    tmp_path: Path, runs: list[Path]
) -> None:
    with pytest.raises(UsageError, match=r"no index\.jsonl and no run folders") as err:
        history.history_table(tmp_path, as_json=False)
    assert err.value.exit_code == 2
    with pytest.raises(UsageError, match="does not exist"):
        history.history_table(tmp_path / "missing", as_json=False)
    audit = _audit(tmp_path, runs)
    with pytest.raises(UsageError, match=f"auditor history {audit}$"):
        history.history_table(audit / "a8", as_json=False)  # a run folder
    with pytest.raises(UsageError, match="holds the audits breast-cancer-mlp"):
        history.history_table(tmp_path, as_json=False)  # the output folder


def test_history_counts_skipped_checks_apart() -> None:
    """A baseline check without a baseline run is skipped: not counted as a failure."""
    assert history._checks_cell({"a": "pass", "b": "skipped", "c": "skipped"}) == (
        "1/1 pass, 2 skipped"
    )
    assert history._checks_cell({"a": "pass", "b": "fail"}) == "1/2 pass"
    assert history._checks_cell({}) == "0/0 pass"
