"""The view model, read without rendering: what each section of the report will show."""

from __future__ import annotations

import numpy as np

from auditor.report.scales import colour_scale
from auditor.report.sections.data import describe_slice
from auditor.report.sections.quality import curve_series
from auditor.report.source import ReportSource
from auditor.report.view import build_view
from auditor.run_folder import RunFolder


def view_of(folder: RunFolder):
    src = ReportSource.open(folder)
    return build_view(src), src


def test_verdict_and_headline(digits_run: RunFolder) -> None:
    view, src = view_of(digits_run)
    assert src.results.status == "passed"
    # a depth-3 tree on 48 digits mimics the CNN poorly: a health warning, not plain green
    assert (view.meta.verdict, view.meta.verdict_class) == ("PASS WITH WARNINGS", "warn")
    assert view.summary.reasons == [
        "All 1 checks passed and every explainer finished",
        "Health warning: surrogate_tree: held-out fidelity (accuracy) is 0.250, below 0.5",
    ]
    assert [c.name for c in view.summary.checks] == ["model.accuracy"]
    assert view.summary.checks[0].status == "PASS"
    facts = {f.label: f.value for f in view.summary.facts}
    assert facts["Slice"] == "64 samples"
    assert facts["Explainers"] == "4 of 4 ran"
    assert facts["Accuracy on the slice"] == f"{src.results.predictions.accuracy:.3g}"
    assert [n.title for n in view.nav] == [
        "Summary",
        "Model",
        "Data slice",
        "Importance rankings",
        "Saliency galleries",
        "Global surrogates",
        "Explanation quality",
        "Failures",
        "Appendix",
    ]
    assert view.meta.header.startswith("report-digits · run r · ")


def test_failed_check_and_failed_explainer_set_the_verdict(digits_run, copy_of) -> None:
    def fail(raw: dict) -> None:
        raw["status"], raw["exit_code"] = "failed", 1
        raw["checks"][0].update(status="fail", value=0.4, reason="0.4 is below the minimum 0.5")

    view, _ = view_of(copy_of(digits_run, fail))
    assert (view.meta.verdict, view.meta.verdict_class) == ("FAIL", "fail")
    assert view.summary.reasons == [
        "Check model.accuracy failed: 0.4 is below the minimum 0.5",
        "Health warning: surrogate_tree: held-out fidelity (accuracy) is 0.250, below 0.5",
    ]

    def crash(raw: dict) -> None:
        raw["status"], raw["exit_code"] = "error", 3
        raw["explainers"]["gradcam"].update(status="failed", error="RuntimeError: boom <x>")

    view, _ = view_of(copy_of(digits_run, crash))
    assert view.meta.verdict == "ERROR"
    assert "Explainer gradcam failed: RuntimeError: boom <x>" in view.summary.reasons
    assert [(f.kind, f.name, f.message) for f in view.failures.items] == [
        ("explainer", "gradcam (gradcam)", "RuntimeError: boom <x>")
    ]
    # a failed explainer has no ranking card and no gallery column
    assert "gradcam" not in [c.id for c in view.rankings.cards]
    assert "gradcam" not in [c.id for c in view.gallery.columns]


def test_top_features_follow_the_stored_ranking(digits_run: RunFolder) -> None:
    view, src = view_of(digits_run)
    assert view.rankings.top_k == 5  # report.top_k of the spec
    cards = {c.id: c for c in view.rankings.cards}
    # most faithful first (issue 15): the two with a deletion gain, larger first, then the
    # unmeasured ones in spec order
    assert list(cards) == ["integrated_gradients", "gradcam", "saliency", "surrogate_tree"]
    gains = [
        src.results.explainers[i].metrics["deletion"]["values"]["gain"] for i in list(cards)[:2]
    ]
    assert gains[0] > gains[1] > 0
    for explainer_id, card in cards.items():
        stored = src.results.explainers[explainer_id].ranking
        assert [f.name for f in card.features] == [r.feature for r in stored[:5]]
        assert [f.rank for f in card.features] == [1, 2, 3, 4, 5]
        importance = [f.importance for f in card.features]
        assert importance == sorted(importance, reverse=True)
    # images: local explainers get an importance map and one map per explained class
    ig = cards["integrated_gradients"]
    assert ig.map_tile is not None and ig.map_tile.values.shape == (8, 8)
    explained = {int(k) for k in np.argmax(np.load(digits_run.path / "predictions.npy"), 1)}
    assert len(ig.class_tiles) == len(explained)
    # the tree surrogate ranks 4x4 grid cells
    assert all(f.name.startswith("r") and "c" in f.name for f in cards["surrogate_tree"].features)


def test_agreement_matrix_is_spearman_of_the_importances(digits_run: RunFolder) -> None:
    from scipy.stats import spearmanr

    view, src = view_of(digits_run)
    a = view.rankings.agreement
    assert a is not None
    assert a.labels == ["integrated_gradients", "gradcam", "saliency", "surrogate_tree"]
    assert all(a.matrix[i][i] == 1.0 for i in range(4))
    sal, ig = (src.ranking_arrays(k)[0] for k in ("saliency", "integrated_gradients"))
    assert abs(a.matrix[2][0] - spearmanr(sal, ig).statistic) < 1e-12
    assert a.matrix[0][2] == a.matrix[2][0]


def test_gallery_follows_the_stored_choice(digits_run: RunFolder) -> None:
    view, src = view_of(digits_run)
    g = view.gallery
    stored = np.load(digits_run.path / "gallery.npz")
    assert len(g.rows) == 6 == len(stored["positions"])
    assert [r.position for r in g.rows] == stored["positions"].tolist()
    # the most faithful explainer leads (deletion gain), then the unmeasured saliency
    assert [c.id for c in g.columns] == ["integrated_gradients", "gradcam", "saliency"]
    assert all(len(r.cells) == 3 for r in g.rows)
    # misclassified samples come first and are marked
    correct = [r.correct for r in g.rows]
    assert correct == sorted(correct)
    for r, label, pred in zip(g.rows, stored["labels"], stored["predicted"], strict=True):
        assert r.correct == (label == pred)
        assert r.label == src.class_name(int(label))
    # one colour scale per explainer: saliency is a magnitude, IG is signed
    scales = {c.id: c.scale for c in g.columns}
    assert not scales["saliency"].signed and scales["integrated_gradients"].signed
    assert g.columns[0].range_text.endswith("(signed)")  # integrated_gradients


def test_colour_scale_is_the_99th_percentile_over_the_slice(digits_run: RunFolder) -> None:
    path = digits_run.path / "attributions" / "integrated_gradients.npy"
    scale = colour_scale("integrated_gradients", path, "image")
    values = np.abs(np.load(path).mean(axis=1)).ravel()
    assert scale.signed
    assert scale.n_values == values.size == 64 * 64
    assert abs(scale.scale - np.percentile(values.astype(np.float64), 99)) < 1e-9
    assert scale.maximum == values.max()


def test_colour_scale_streams_in_chunks(tmp_path, monkeypatch) -> None:
    from auditor.report import scales

    rng = np.random.default_rng(3)
    data = rng.standard_cauchy(size=(50, 2, 6, 5)).astype(np.float32)
    np.save(tmp_path / "a.npy", data)
    monkeypatch.setattr(scales, "CHUNK_VALUES", 70)  # one sample per chunk
    scale = colour_scale("a", tmp_path / "a.npy", "image", percentile=97.5)
    expected = np.percentile(np.abs(data.astype(np.float64).mean(axis=1)), 97.5)
    assert abs(scale.scale - expected) < 1e-9 and scale.signed
    positive = colour_scale("a", tmp_path / "a.npy", "tabular")
    assert positive.n_values == data.size


def test_model_and_data_sections(digits_run: RunFolder) -> None:
    view, _ = view_of(digits_run)
    m = view.model
    assert m.total_params == "38,282"
    assert [r.name for r in m.layers][:2] == ["features", "features.0"]
    assert m.layers[1].output_shape == "16 × 8 × 8" and m.layers[1].params == "160"
    assert m.layers[0].container and not m.layers[1].container
    assert [h.name for h in m.histograms] == [
        "features.0.weight",
        "features.2.weight",
        "classifier.1.weight",
        "classifier.3.weight",
    ]
    assert len(m.histogram_figures) == 1
    d = view.data
    assert d.selection == "positions 0 to 63: 64 samples"
    assert sum(c.count for c in d.classes) == 64
    assert len(d.thumbnails) == 6 and d.features == []


def test_surrogate_and_quality_sections(digits_run: RunFolder) -> None:
    view, _ = view_of(digits_run)
    (tree,) = view.surrogates.cards
    assert tree.kind == "tree" and tree.tree_figure is not None
    assert [name for name, _, _ in tree.fidelity] == ["accuracy", "train_accuracy"]
    assert "class:" in tree.tree_text
    q = view.quality
    assert [(r.owner, r.metric) for r in q.rows] == [
        ("integrated_gradients", "deletion"),
        ("gradcam", "deletion"),
        ("model", "accuracy"),
    ]
    assert q.rows[0].arrow == "↓" and q.rows[0].direction == "lower is better"
    (curve,) = q.curves
    labels = [label for label, *_ in curve.series]
    assert labels == ["integrated_gradients", "random order", "gradcam"]  # one shared baseline


def test_appendix_keeps_provenance_and_the_spec(digits_run: RunFolder) -> None:
    view, src = view_of(digits_run)
    rows = dict(view.appendix.provenance)
    assert rows["Spec sha256"] == src.results.provenance.spec_sha256
    assert rows["Weights sha256"] == src.results.provenance.weights_sha256
    assert view.appendix.spec_text == (digits_run.path / "spec.yaml").read_text()
    assert view.appendix.attachments == ["results.json", "spec.yaml"]


def test_hostile_names_stay_plain_data(hostile_run: RunFolder) -> None:
    view, _ = view_of(hostile_run)
    names = [c.name for c in view.data.classes]
    assert names == ["benign", "<img src=x onerror=alert(1)>"]
    features = [f.name for f in view.data.features]
    assert features[0] == "<script>alert(2)</script>"
    # tabular galleries list signed contributions, bars within their half of the track
    row = view.gallery.rows[0]
    (cell,) = row.cells
    assert len(cell.contributions) == 4
    assert all(0 <= c.width <= 100 for c in cell.contributions)


def test_describe_slice() -> None:
    assert (
        describe_slice('{"start":0,"stop":256,"seed":0}', 256) == "positions 0 to 255: 256 samples"
    )
    assert describe_slice('{"sample":200,"seed":1}', 200) == (
        "a random sample of 200 (seed 1): 200 samples"
    )
    assert describe_slice('{"classes":[3,8],"seed":0}', 40) == "only classes 3, 8: 40 samples"
    assert describe_slice("all samples", 10) == "all samples: 10 samples"


def test_curve_layouts() -> None:
    deletion = curve_series(
        {"fraction": [0, 0.5, 1], "explainer": [1, 0.4, 0], "random": [1, 0.8, 0]}
    )
    assert [(n, d) for n, _, _, d in deletion.series] == [("explainer", False), ("random", True)]
    assert deletion.series[0][1].tolist() == [0, 0.5, 1]
    sanity = curve_series({"layers": ["fc", "conv"], "spearman": [0.5, 0.1], "ssim": [0.4, 0.2]})
    assert sanity.ticks == ["fc", "conv"]
    assert [n for n, *_ in sanity.series] == ["spearman", "ssim"]
    assert sanity.series[0][1].tolist() == [0, 1]
    nested = curve_series({"a": {"x": [0, 2], "y": [1, 3]}, "b": "not a curve"})
    assert len(nested.series) == 1 and nested.series[0][1].tolist() == [0, 2]


def test_agreement_cells_are_coloured_on_the_diverging_scale(digits_run: RunFolder) -> None:
    view, _ = view_of(digits_run)
    a = view.rankings.agreement
    assert a is not None
    diagonal = a.cells[0][0]
    assert (diagonal.text, diagonal.background, diagonal.dark) == ("1.00", "#B2182B", True)
    assert a.cells[0][1].text == f"{a.matrix[0][1]:.2f}"
    assert a.bar.ticks == ["−1", "0", "1"] and a.bar.signed


def test_class_counts_are_drawn_as_bars_on_one_scale(digits_run: RunFolder) -> None:
    view, _ = view_of(digits_run)
    classes = view.data.classes
    top = max(c.count for c in classes)
    for c in classes:
        assert c.bar.left == 0.0 and c.bar.width == round(100 * c.count / top, 1)
