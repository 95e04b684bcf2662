"""`auditor run` appends each finished run to <output>/<name>/index.jsonl, and `auditor
history` lists them (a deleted run is skipped with a warning; a wrong folder is exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import ROOT, run_cli

SPEC = ROOT / "audits" / "breast_cancer_mlp.yaml"
CHEAP = (
    "--set", "data.slice.stop=16",
    "--set", "explainers=[{type: saliency}]",
    "--set", "metrics=[]",
    "--set", "checks=[{metric: model.accuracy, min: 0.5}]",
    "--set", "report.formats=[]",
)  # fmt: skip


def test_runs_are_indexed_and_listed(tmp_path: Path) -> None:
    for run_id in ("first", "second", "third"):
        done = run_cli("run", str(SPEC), "--out", str(tmp_path), "--run-id", run_id, "-q", *CHEAP)
        assert done.returncode == 0, done.stderr[-2000:]
    audit = tmp_path / "breast-cancer-mlp"
    lines = (audit / "index.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["run_id"] for e in entries] == ["first", "second", "third"]
    assert all(e["status"] == "passed" and e["metrics"]["model.accuracy"] > 0.5 for e in entries)
    shutil.rmtree(audit / "second")
    shown = run_cli("history", str(audit))
    assert shown.returncode == 0, shown.stderr
    rows = [line.split()[0] for line in shown.stdout.splitlines()[2:] if line.strip()]
    assert rows == ["first", "third"]
    assert "warning:" in shown.stderr and "second" in shown.stderr
    as_json = json.loads(run_cli("history", str(audit), "--json").stdout)
    assert [r["run_id"] for r in as_json["runs"]] == ["first", "third"]
    wrong = run_cli("history", str(tmp_path))
    assert wrong.returncode == 2
    assert f"auditor history {audit}" in wrong.stderr
