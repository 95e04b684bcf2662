"""The Model section's layers on the audited data: the per-layer table, the gallery
samples' feature maps and the first convolution's filters (image models), the table alone
for tabular models, and a note where the run has no layer statistics."""

from __future__ import annotations

import html
import re

import numpy as np

from auditor.report.sections.layers import IG_NOTE, LayerStatRow
from auditor.report.source import ReportSource
from auditor.report.view import build_view
from auditor.run_folder import RunFolder


def view_of(folder: RunFolder):
    src = ReportSource.open(folder)
    return build_view(src), src


def test_the_table_lists_every_leaf_layer_on_the_slice(digits_run: RunFolder) -> None:
    view, src = view_of(digits_run)
    section = view.layers
    assert section.note == ""
    assert [(r.name, r.type, r.units) for r in section.rows] == [
        ("features.0", "Conv2d", "16"),
        ("features.1", "ReLU", "16"),
        ("features.2", "Conv2d", "32"),
        ("features.3", "ReLU", "32"),
        ("features.4", "MaxPool2d", "32"),
        ("classifier.1", "Linear", "64"),
        ("classifier.2", "ReLU", "64"),
        ("classifier.3", "Linear", "10"),
    ]
    stored = {r["name"]: r for r in src.results.model["layer_stats"]}
    relu = next(r for r in section.rows if r.name == "features.1")
    assert relu.dead == f"{stored['features.1']['dead_fraction']:.0%}"
    assert (relu.weight_norm, relu.dead_class) == ("", "")  # a ReLU has no weight
    conv = section.rows[0]
    assert conv.weight_norm == f"{stored['features.0']['weight_norm']:.4g}"
    # the example CNN has no dead layer: no warning, nothing in red
    assert not any(r.dead_class for r in section.rows)
    assert not [w for w in src.results.warnings if w.code == "dead_units"]


def test_feature_maps_of_the_gradcam_layer_beside_the_gallery_inputs(
    digits_run: RunFolder,
) -> None:
    view, src = view_of(digits_run)
    section = view.layers
    assert section.maps_layers == ["features.3"]  # the gradcam explainer's layer
    [ref] = section.maps
    assert ref.name == "model/activations-1.png"
    assert ref.caption.startswith("features.3: the 8 most active channels")
    with np.load(digits_run.path / "layers.npz") as stored:
        maps, channels = stored["maps_0"], stored["channels_0"]
        assert maps.shape == (len(src.gallery), 8, 8, 8)
        # channels are ordered by their mean activation on each sample, highest first
        means = maps.astype(np.float64).mean(axis=(2, 3))
        assert (np.diff(means, axis=1) <= 1e-3).all()
        assert channels.shape == (len(src.gallery), 8)
    assert section.filters is not None
    assert section.filters.caption == (
        "The first convolution, features.0: its 16 3×3 filters; red positive, blue negative "
        "weights."
    )


def test_the_html_shows_the_table_and_the_pictures(digits_run: RunFolder) -> None:
    text = (digits_run.path / "report.html").read_text(encoding="utf-8")
    model = text[text.index('<section id="model"') : text.index('<section id="data"')]
    assert "<h3>Layers on the audited data</h3>" in model
    assert model.count('<table class="data layer-stats">') == 1
    rows = re.findall(r"<tr><td><code>([^<]+)</code></td><td>([^<]+)</td>", model)
    assert ("features.3", "ReLU") in rows and ("classifier.3", "Linear") in rows
    assert html.escape(IG_NOTE, quote=False).replace("'", "&#39;") in model
    assert 'alt="Feature maps of features.3 for 6 gallery samples"' in model
    assert 'alt="The 16 filters of features.0"' in model
    assert (digits_run.path / "figures" / "model" / "activations-1.png").is_file()
    assert (digits_run.path / "figures" / "model" / "filters.png").is_file()


def test_a_tabular_model_has_the_table_and_no_pictures(hostile_run: RunFolder) -> None:
    view, _ = view_of(hostile_run)
    section = view.layers
    assert [r.type for r in section.rows] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert section.maps == [] and section.filters is None


def test_a_run_without_layer_statistics_says_why(digits_run: RunFolder, copy_of) -> None:
    def torchscript(raw: dict) -> None:
        raw["model"]["layer_stats"] = None
        raw["model"]["layer_stats_note"] = "not available: the model is or holds TorchScript"

    def older(raw: dict) -> None:
        raw["model"].pop("layer_stats")
        raw["model"].pop("layer_stats_note")

    view, _ = view_of(copy_of(digits_run, torchscript))
    assert (view.layers.rows, view.layers.note) == (
        [],
        "not available: the model is or holds TorchScript",
    )
    view, _ = view_of(copy_of(digits_run, older))
    assert view.layers.note == (
        "Layer statistics were not recorded by the auditor version that made this run."
    )


def test_a_dead_relu_layer_is_marked_in_red(digits_run: RunFolder, copy_of) -> None:
    def dead(raw: dict) -> None:
        for row in raw["model"]["layer_stats"]:
            if row["name"] == "features.1":
                row["dead_fraction"] = 0.5625

    view, _ = view_of(copy_of(digits_run, dead))
    row = next(r for r in view.layers.rows if r.name == "features.1")
    assert row == LayerStatRow(
        name="features.1",
        type="ReLU",
        units="16",
        mean=row.mean,
        std=row.std,
        dead="56%",
        dead_class="fail",
        weight_norm="",
    )
