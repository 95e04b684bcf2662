"""Planted truth on the shipped recommendation example (issue 14): the click depends on the
user's segment matching the item's category, and on price. On correctly predicted samples,
each explainer that sees the fields (integrated gradients at the embeddings, feature
ablation and KernelSHAP over marginal draws) puts one of the planted columns (user_id,
item_category, price) first for at least 95% of the samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from auditor.cli import cli

ROOT = Path(__file__).resolve().parents[2]
PLANTED = {"user_id", "item_category", "price"}


def test_planted_columns_come_first_on_the_recommendation_example(tmp_path: Path) -> None:
    sets = [
        "data.slice={start: 0, stop: 200}",
        "report.formats=[]",
        "explainers=[{type: integrated_gradients, params: {n_steps: 64, baseline: mean}}, "
        "{type: feature_ablation}, {type: kernel_shap}]",
        "metrics=[]",
        "checks=[]",
    ]
    args = ["run", str(ROOT / "audits" / "recommendation.yaml"), "-q"]
    args += ["--out", str(tmp_path), "--run-id", "r"]
    args += [a for value in sets for a in ("--set", value)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "recommendation" / "r"
    results = json.loads((folder / "results.json").read_text())
    names = results["data"]["feature_names"]
    logits = np.load(folder / "predictions.npy")
    labels = np.asarray(
        [
            line.split(",")[-1]
            for line in (ROOT / "data" / "interactions.csv").read_text().split()[1:201]
        ],
        dtype=float,
    )
    correct = logits.argmax(1) == labels
    assert correct.mean() > 0.8
    for explainer in ("integrated_gradients", "feature_ablation", "kernel_shap"):
        attributions = np.load(folder / "attributions" / f"{explainer}.npy")[correct]
        first = [names[i] for i in np.abs(attributions).argmax(1)]
        share = np.mean([name in PLANTED for name in first])
        assert share >= 0.95, (explainer, share)
