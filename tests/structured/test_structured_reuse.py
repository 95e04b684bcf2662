"""--reuse on structured data: a run whose fields or references differ does not reuse an
earlier run's attributions (they depend on what removing a value means)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from tiny_rec import interactions, spec

from auditor.cli import cli


def run(tmp_path: Path, run_id: str, baseline: int, *reuse: str) -> dict:
    body = spec(
        tmp_path, "  - type: feature_ablation\n", item_extra=f", baseline: {{item_id: {baseline}}}"
    )
    path = tmp_path / "rec.yaml"
    path.write_text(f"version: 1\nname: rec\nseed: 0\n{body}")
    out = tmp_path / "out"
    args = ["run", str(path), "--out", str(out), "--run-id", run_id, "-q", *reuse]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return json.loads((out / "rec" / run_id / "results.json").read_text())


def test_reuse_only_when_the_references_are_the_same(tmp_path: Path) -> None:
    interactions(tmp_path / "interactions.csv", n=30)
    first = run(tmp_path, "a", 1)
    earlier = str(tmp_path / "out" / "rec" / "a")
    same = run(tmp_path, "b", 1, "--reuse", earlier)
    other = run(tmp_path, "c", 2, "--reuse", earlier)
    assert same["explainers"]["feature_ablation"]["reused"] is not None
    assert other["explainers"]["feature_ablation"]["reused"] is None
    sha = first["explainers"]["feature_ablation"]["attribution_sha256"]
    assert same["explainers"]["feature_ablation"]["attribution_sha256"] == sha
    assert other["explainers"]["feature_ablation"]["attribution_sha256"] != sha
