"""Exact group values on a linear model (sklearn's breast_cancer table, 30 columns): feature
ablation with a zero baseline removes a group as one unit, so its drop is the sum over the
group's columns of ``W[t, c] * x[c]``, stored split evenly over those columns; permutation
importance shuffles the group's columns with one row permutation; checks name groups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from auditor.cli import cli
from auditor.runner import load_data
from auditor.spec import load_spec

MODEL = """
import torch
from torch import nn


class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(30, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)
"""

SPEC = """\
version: 1
name: lin
seed: 0
model:
  source: python
  class: linmodel:Linear
  pythonpath: [.]
  weights: lin.safetensors
data:
  source: sklearn
  name: breast_cancer
  slice: {stop: 40}
  groups:
    size: [mean radius, mean perimeter, mean area]
    texture: [mean texture, worst texture]
targets: predicted
explainers:
  - type: feature_ablation
  - type: permutation_importance
    params: {n_repeats: 2}
checks:
  - ranking: feature_ablation
    top_k: 3
    must_include: [size]
report:
  formats: [html]
"""


def test_linear_group_ablation_is_exact(tmp_path: Path) -> None:
    (tmp_path / "linmodel.py").write_text(MODEL)
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(2, 30, generator=generator) * 0.01
    weight[1, [0, 2, 3]], weight[0, [0, 2, 3]] = 1.0, -1.0  # the size columns decide
    save_file({"fc.weight": weight, "fc.bias": torch.zeros(2)}, tmp_path / "lin.safetensors")
    (tmp_path / "spec.yaml").write_text(SPEC)
    result = CliRunner().invoke(
        cli, ["run", str(tmp_path / "spec.yaml"), "--out", str(tmp_path), "--run-id", "r", "-q"]
    )
    run_dir = tmp_path / "lin" / "r"
    results = json.loads((run_dir / "results.json").read_text())
    names = results["data"]["feature_names"]
    dataset, indices = load_data(load_spec(tmp_path / "spec.yaml"))
    x = dataset.get(indices).double().numpy()  # as the model saw it (z-scored)
    logits = x @ weight.double().numpy().T
    targets = logits.argmax(axis=1)
    contribution = x * weight.double().numpy()[targets]  # (N, 30): W[t, c] * x[c]
    attributions = np.load(run_dir / "attributions" / "feature_ablation.npy")
    size = [names.index(c) for c in ("mean radius", "mean perimeter", "mean area")]
    expected = contribution[:, size].sum(axis=1)
    for c in size:  # the group's drop, split evenly over its three columns
        np.testing.assert_allclose(attributions[:, c], expected / 3, rtol=1e-4, atol=1e-5)
    alone = names.index("worst area")  # an ungrouped column is ablated by itself
    np.testing.assert_allclose(attributions[:, alone], contribution[:, alone], rtol=1e-4)
    units = {
        r["feature"]: r["importance"]
        for r in results["explainers"]["feature_ablation"]["group_ranking"]
    }
    assert len(units) == 30 - 5 + 2
    assert np.isclose(units["size"], np.abs(expected).mean(), rtol=1e-4)
    check = results["checks"][0]
    assert check["threshold"] == "top 3 groups includes size"
    top3 = sorted(units, key=lambda u: -units[u])[:3]
    assert check["value"] == top3
    assert top3[0] == "size" and check["status"] == "pass" and result.exit_code == 0
    pi = results["explainers"]["permutation_importance"]["group_ranking"]
    assert {r["feature"] for r in pi} == set(units)
