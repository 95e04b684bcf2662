"""Ranking checks on real runs: a tie across position ``top_k`` leaves the check undecided
(status error, never an arbitrary pass or fail), and each check is held to the features of
its own explainer (a local explainer's pixels, a global explainer's grid cells)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from click.testing import CliRunner

from auditor.checks import evaluate_ranking, stored_rankings
from auditor.cli import cli
from auditor.explainers.regions import image_feature_names
from auditor.results import ExplainerResult
from auditor.run_folder import RunFolder
from auditor.spec.model import RankingCheck

HERE = Path(__file__).resolve().parent


def audit(tmp_path: Path, body: str) -> tuple[int, Path, str]:
    """Run a spec (``body``: model, data and the rest) -> exit code, run folder, output."""
    spec = tmp_path / "ties.yaml"
    spec.write_text(f"version: 1\nname: ties\nseed: 0\n{body}")
    result = CliRunner().invoke(
        cli, ["run", str(spec), "--out", str(tmp_path / "out"), "--run-id", "r", "-q"]
    )
    return result.exit_code, tmp_path / "out" / "ties" / "r", result.output


def read_checks(folder: Path) -> list[dict]:
    return json.loads((folder / "results.json").read_text())["checks"]


TABULAR = f"""\
model:
  source: python
  class: tie_models:FirstColumns
  pythonpath: [{HERE}]
data:
  source: tensors
  path: table.pt
  feature_names: [a, b, c, d, e, f]
explainers:
  - type: saliency
checks:
  - {{ranking: saliency, top_k: 3, must_include: [a, b]}}
  - {{ranking: saliency, top_k: 3, must_include: [c]}}
  - {{ranking: saliency, top_k: 3, must_not_include: [f]}}
  - {{ranking: saliency, top_k: 3, must_include: [d], must_not_include: [b]}}
  - {{ranking: saliency, top_k: 2, must_not_include: [c]}}
  - {{ranking: saliency, top_k: 6, must_include: [f]}}
report:
  formats: []
"""


def test_a_tie_across_the_top_k_leaves_a_ranking_check_undecided(tmp_path: Path) -> None:
    """The model reads columns a (weight 2) and b (weight 1): saliency ranks a, b, then c, d,
    e, f tied at exactly 0. A top 3 of it holds a, b and an arbitrary one of the four."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(40, 6, generator=generator)
    torch.save({"inputs": inputs, "labels": torch.arange(40) % 2}, tmp_path / "table.pt")
    code, folder, output = audit(tmp_path, TABULAR)
    assert code == 1, output
    tie = "the ranking ties at position 3 (features c, d, e, f share 0): the top 3 is not decided"
    assert [(c["status"], c["reason"]) for c in read_checks(folder)] == [
        ("pass", "the ranking obeys the rule"),  # a and b rank wholly above the tie
        ("error", f"{tie} for c"),  # was a pass: c happened to come first in the tie
        ("error", f"{tie} for f"),  # was a pass: f happened to come last
        ("fail", "b is ranked 2 (within the top 3)"),  # decided whatever the tie's order
        ("pass", "the ranking obeys the rule"),  # a top 2 ends before the tie
        ("pass", "the ranking obeys the rule"),  # a top 6 holds the whole tie
    ]


IMAGES = f"""\
model:
  source: python
  class: tie_models:FlatLinear
  pythonpath: [{HERE}]
  init: {{in_features: 192, classes: 2}}
data:
  source: tensors
  path: images.pt
explainers:
  - type: saliency
  - type: permutation_importance
    params: {{grid: [2, 2], n_repeats: 1}}
checks:
  - {{ranking: permutation_importance, top_k: 12, must_include: [ch0_r0c0]}}
report:
  formats: []
"""


def test_each_ranking_check_is_held_to_its_own_explainers_features(tmp_path: Path) -> None:
    """3x8x8 images: saliency ranks the 64 pixels r0c0..r7c7, permutation importance the 12
    cells ch0_r0c0..ch2_r1c1 of its grid. A cell named in a check on saliency is not one of
    its features (it was 'not in the top 5' when every explainer's names were one list)."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(24, 3, 8, 8, generator=generator)
    torch.save({"inputs": inputs, "labels": torch.arange(24) % 2}, tmp_path / "images.pt")
    code, folder, output = audit(tmp_path, IMAGES)
    assert code == 0, output
    assert [c["status"] for c in read_checks(folder)] == ["pass"]

    results = json.loads((folder / "results.json").read_text())
    explained = {k: ExplainerResult.model_validate(v) for k, v in results["explainers"].items()}
    ranked = stored_rankings(RunFolder(folder), explained, image_feature_names((3, 8, 8)))
    assert ranked["saliency"].names == image_feature_names((3, 8, 8))
    assert ranked["permutation_importance"].names[:5] == [
        "ch0_r0c0",
        "ch0_r0c1",
        "ch0_r1c0",
        "ch0_r1c1",
        "ch1_r0c0",
    ]
    assert len(ranked["saliency"].importance) == 64  # type: ignore[arg-type]

    def check(ranking: str, top_k: int, feature: str) -> tuple[str, str]:
        rule = RankingCheck(ranking=ranking, top_k=top_k, must_include=[feature])
        result = evaluate_ranking(rule, explained, ranked[ranking])
        return result.status, result.reason

    assert check("saliency", 5, "ch0_r0c0") == (
        "error",
        "not a feature 'saliency' ranks: 'ch0_r0c0' Did you mean: r0c0?",
    )
    assert check("permutation_importance", 12, "r7c7") == (
        "error",
        "not a feature 'permutation_importance' ranks: 'r7c7'",
    )
    assert check("permutation_importance", 12, "ch2_r1c1") == (
        "pass",
        "the ranking obeys the rule",
    )
