"""``data.groups`` on structured data (the recommendation example, model(user, item, dense)):
groups span columns of different fields; perturbation explainers remove a group as one unit
and every explainer ranks groups. On the planted data the click follows the user's segment,
the item's category and the price; age_days and hour are noise, so the ``context`` group
(age_days, hour) ranks last for every explainer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from auditor.cli import cli

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "audits" / "recommendation.yaml").read_text()


def test_groups_across_fields(tmp_path: Path) -> None:
    text = SPEC.replace("pythonpath: [..]", f"pythonpath: [{ROOT}]")
    text = text.replace("../models", str(ROOT / "models")).replace("../data", str(ROOT / "data"))
    text = text.replace(
        "  batch_size: 256\n",
        "  batch_size: 256\n  slice: {stop: 200}\n"
        "  groups: {item_side: [item_id, item_category], context: [age_days, hour]}\n",
    )
    start = text.index("explainers:")
    text = (
        text[:start] + "explainers:\n  - type: integrated_gradients\n    params: {n_steps: 16}\n"
        "  - type: feature_ablation\n  - type: permutation_importance\n"
        "checks:\n  - ranking: feature_ablation\n    top_k: 1\n    must_include: [item_side]\n"
        + "report:\n  formats: [html]\n"
    )
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["run", str(tmp_path / "spec.yaml"), "--out", str(tmp_path), "--run-id", "r", "-q"]
    )
    run_dir = tmp_path / "recommendation" / "r"
    results = json.loads((run_dir / "results.json").read_text())
    assert result.exit_code == 0, results["checks"]
    for key in ("integrated_gradients", "feature_ablation", "permutation_importance"):
        ranking = [r["feature"] for r in results["explainers"][key]["group_ranking"]]
        assert sorted(ranking) == ["context", "item_side", "price", "user_id"]
        assert ranking[-1] == "context", (key, ranking)
    # feature ablation removes item_id and item_category together and splits the drop
    columns = np.load(run_dir / "rankings" / "feature_ablation.npy")[0]
    names = results["data"]["feature_names"]
    item = columns[[names.index("item_id"), names.index("item_category")]]
    assert item[0] == item[1]
    group = results["explainers"]["feature_ablation"]["group_ranking"][0]
    assert group["feature"] == "item_side"
