"""Layer statistics on the audited slice: exact values on a model with known activations,
hooks removed, TorchScript skipped, the dead-unit warning end to end and the
``report.model.activations`` layer names checked at planning time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import ROOT, read_results
from layer_models import HalfDeadMLP

from auditor import runner
from auditor.cli import cli
from auditor.data.base import TensorDataset
from auditor.health import dead_unit_warnings
from auditor.layer_stats import layer_stats, map_layers
from auditor.results import LayerStat, results_schema
from auditor.spec import load_spec
from auditor.spec.model import ExplainerEntry
from examples.models import DigitsCNN

HERE = Path(__file__).parent


def _tabular(x: torch.Tensor) -> TensorDataset:
    labels = np.zeros(len(x), dtype=np.int64)
    return TensorDataset(x, labels, modality="tabular", class_names=["a", "b"])


def _x0() -> torch.Tensor:
    """Eight samples of 30 columns: column 0 is -1, 1, 2, -2 twice, the rest noise."""
    x = torch.randn(8, 30, generator=torch.Generator().manual_seed(0))
    x[:, 0] = torch.tensor([-1.0, 1.0, 2.0, -2.0] * 2)
    return x


def test_stats_of_a_model_with_known_activations_streamed_in_batches() -> None:
    x = _x0()
    rows = layer_stats(HalfDeadMLP(), _tabular(x), np.arange(8), batch_size=3)
    by_name = {r["name"]: r for r in rows}
    assert list(by_name) == ["hidden", "act", "out"]
    # hidden: six units at -1, one at +1, one copies column 0
    hidden = np.concatenate([-np.ones((8, 6)), np.ones((8, 1)), x[:, :1].numpy()], axis=1)
    act = np.maximum(hidden, 0)
    expected = {
        "hidden": ("Linear", hidden, 0.75, 8, 1.0),
        "act": ("ReLU", act, 0.75, 8, None),
        "out": ("Linear", np.stack([np.zeros(8), act[:, 7]], axis=1), 0.5, 2, 1.0),
    }
    for name, (kind, values, dead, units, norm) in expected.items():
        row = by_name[name]
        assert (row["type"], row["dead_fraction"], row["units"]) == (kind, dead, units)
        assert row["mean"] == pytest.approx(values.mean(), abs=1e-6)
        assert row["std"] == pytest.approx(values.std(), abs=1e-6)
        assert row["weight_norm"] == (None if norm is None else pytest.approx(norm))
        assert row["rectifier"] == (kind == "ReLU")
        LayerStat(**row)  # what results.json stores


def test_a_unit_of_a_conv_map_is_a_channel() -> None:
    model = DigitsCNN()
    with torch.no_grad():
        model.features[0].bias[:4] = -1e4  # 4 of 16 channels negative everywhere
        model.features[0].bias[4:] = 1e4  # the others positive: random weights kill none
    x = torch.rand(10, 1, 8, 8)
    rows = {r["name"]: r for r in layer_stats(model, _tabular(x), np.arange(10), 4)}
    assert (rows["features.1"]["units"], rows["features.1"]["dead_fraction"]) == (16, 0.25)
    assert rows["features.2"]["units"] == 32
    assert "classifier.0" not in rows  # Flatten only reshapes


def test_hooks_are_removed_even_when_the_forward_pass_fails() -> None:
    model = HalfDeadMLP(in_features=30)
    with pytest.raises(RuntimeError):
        layer_stats(model, _tabular(torch.zeros(4, 5)), np.arange(4), 2)  # wrong width
    assert all(not m._forward_hooks for m in model.modules())
    layer_stats(model, _tabular(_x0()), np.arange(8), 8)
    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torchscript_has_no_layer_stats() -> None:
    scripted = torch.jit.script(HalfDeadMLP())
    assert layer_stats(scripted, _tabular(_x0()), np.arange(8), 8) is None


def test_dead_unit_warning_rule() -> None:
    rows = layer_stats(HalfDeadMLP(hidden=8, dead=4), _tabular(_x0()), np.arange(8), 8)
    # exactly half dead is not "more than half"; the output Linear is no rectifier
    assert dead_unit_warnings(rows) == []
    rows = layer_stats(HalfDeadMLP(hidden=8, dead=5), _tabular(_x0()), np.arange(8), 8)
    [warning] = dead_unit_warnings(rows)
    assert (warning.code, warning.subject) == ("dead_units", "act")
    assert warning.message == "act: 62% of its 8 units never activate on the slice (dead ReLUs)"


def test_no_dead_unit_warning_on_the_example_digits_cnn() -> None:
    """The demo audit's model and slice (256 digits), loaded as ``auditor run`` does."""
    validated = load_spec(ROOT / "audits" / "digits_cnn.yaml")
    model = runner.load_model(validated).module
    dataset, indices = runner.load_data(validated)
    rows = layer_stats(model, dataset, indices, validated.spec.data.batch_size)
    assert dead_unit_warnings(rows) == []
    assert max(r["dead_fraction"] for r in rows if r["rectifier"]) < 0.5


def test_map_layers_from_the_cams_or_the_spec() -> None:
    entries = [
        ExplainerEntry(type="saliency"),
        ExplainerEntry(type="gradcam", params={"layer": "features.3"}),
        ExplainerEntry(id="g2", type="gradcam", params={"layer": "features.3"}),
        ExplainerEntry(type="score_cam", params={"layer": "features.1"}),
    ]
    assert map_layers(None, entries) == ["features.3", "features.1"]
    assert map_layers(["features.0"], entries) == ["features.0"]


def _audit(tmp_path: Path, body: str) -> tuple[int, Path, str]:
    spec = tmp_path / "layers.yaml"
    spec.write_text(f"version: 1\nname: layers\nseed: 0\n{body}")
    result = CliRunner().invoke(
        cli, ["run", str(spec), "--out", str(tmp_path / "out"), "--run-id", "r", "-q"]
    )
    return result.exit_code, tmp_path / "out" / "layers" / "r", result.output


DEAD_CNN = f"""\
model:
  source: python
  class: layer_models:DeadConvNet
  pythonpath: [{HERE}]
data:
  source: sklearn
  name: digits
  split: test
  slice: {{start: 0, stop: 48}}
  batch_size: 16
explainers:
  - type: saliency
report:
  formats: [html]
  gallery: {{samples: 3}}
  model: {{activations: [features.1]}}
"""


def test_the_dead_unit_warning_fires_on_a_model_built_with_a_dead_layer(tmp_path: Path) -> None:
    exit_code, folder, output = _audit(tmp_path, DEAD_CNN)
    assert exit_code == 0, output
    results = read_results(folder)
    dead = [w for w in results["warnings"] if w["code"] == "dead_units"]
    assert dead == [
        {
            "code": "dead_units",
            "subject": "features.1",
            "message": "features.1: 75% of its 16 units never activate on the slice (dead ReLUs)",
            "action": "check the initialisation, learning rate or input scaling; the layer's "
            "output is mostly zero",
            "features": [],
        }
    ]
    stats = {r["name"]: r for r in results["model"]["layer_stats"]}
    assert list(stats) == ["features.0", "features.1", "features.2", "features.3", "classifier.1"]
    assert (stats["features.1"]["dead_fraction"], stats["features.1"]["units"]) == (0.75, 16)
    with np.load(folder / "layers.npz") as layers:
        assert list(layers["layers"]) == ["features.1"]
        assert layers["maps_0"].shape == (3, 8, 8, 8)  # 3 samples, top 8 channels, 8x8
        assert layers["channels_0"].shape == (3, 8)
        # the top channels by mean activation are live ones (12 of 16 are dead)
        assert (layers["channels_0"] >= 12).sum(axis=1).tolist() == [4, 4, 4]
        assert layers["filters"].shape == (16, 1, 3, 3)
        assert str(layers["filters_layer"]) == "features.0"


def test_an_unknown_activations_layer_is_a_located_spec_error(tmp_path: Path) -> None:
    body = DEAD_CNN.replace("activations: [features.1]", "activations: [features.1, feature.3]")
    exit_code, folder, output = _audit(tmp_path, body)
    assert exit_code == 2, output
    assert (
        f"error: {tmp_path / 'layers.yaml'}:19:37 report.model.activations[1]: unknown layer "
        "'feature.3'. Did you mean: features.3? Layers: features, features.0, features.1, "
        "features.2, features.3, classifier, classifier.0, classifier.1" in output
    )
    assert not folder.exists()


def test_results_schema_declares_layer_stats() -> None:
    schema = results_schema()
    model = schema["properties"]["model"]
    assert model["properties"]["layer_stats"]["anyOf"][0]["items"] == {"$ref": "#/$defs/LayerStat"}
    assert set(schema["$defs"]["LayerStat"]["properties"]) == {
        "name",
        "type",
        "mean",
        "std",
        "dead_fraction",
        "units",
        "weight_norm",
        "rectifier",
    }
    assert "dead_units" in schema["$defs"]["HealthWarning"]["properties"]["code"]["enum"]
