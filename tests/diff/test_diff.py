"""``auditor diff`` on real run folders of the breast-cancer audit (issue 15).

Four small runs (64 test patients, saliency and integrated gradients): the committed
weights, an identical rerun, the first layer's weights perturbed, and another audit
(other name, other slice, other explainers); and two of the digits CNN (16 digits,
saliency) with its committed and its perturbed weights.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from pypdf import PdfReader
from safetensors.torch import load_file, save_file

from auditor.cli import cli
from auditor.diff import compare_runs
from auditor.diff.figures import changed_pictures
from auditor.diff.noise import ci_test, wilcoxon_paired
from auditor.diff.rankings import per_sample_similarity, rank_biased_overlap
from auditor.metrics.similarity import spearman
from auditor.runner import RunOptions, run

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "audits" / "breast_cancer_mlp.yaml"
SMALL = (
    "data.slice.stop=64",
    "explainers=[{type: saliency}, {type: integrated_gradients, params: {n_steps: 16}}]",
    "report.formats=[]",
)


def perturbed_weights(folder: Path) -> Path:
    """``folder/perturbed.safetensors``: the breast-cancer MLP with its first layer's weights
    moved by half their standard deviation of seeded noise (another model, same shapes)."""
    weights = load_file(str(ROOT / "models" / "breast_cancer_mlp.safetensors"))
    layer = weights["layers.0.weight"]
    noise = torch.randn(layer.shape, generator=torch.Generator().manual_seed(0))
    weights["layers.0.weight"] = layer + 0.5 * float(layer.std()) * noise
    path = folder / "perturbed.safetensors"
    save_file(weights, str(path))
    return path


@dataclass(frozen=True)
class Runs:
    base: Path
    rerun: Path
    perturbed: Path
    other: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    tmp = tmp_path_factory.mktemp("diff")
    perturbed_weights(tmp)

    def audit(run_id: str, *extra: str) -> Path:
        options = RunOptions(
            out=tmp / "runs", run_id=run_id, progress="quiet", overrides=(*SMALL, *extra)
        )
        return run(SPEC, options).folder.path

    return Runs(
        base=audit("base"),
        rerun=audit("rerun"),
        perturbed=audit("perturbed", f"model.weights={tmp / 'perturbed.safetensors'}"),
        other=audit(
            "other",
            "name=other-audit",
            "data.slice.stop=32",
            "explainers=[{type: saliency}]",
            "checks=[]",
        ),
    )


def _diff(a: Path, b: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["diff", str(a), str(b), *extra])
    return result.exit_code, result.output


def test_changed_weights_show_hash_rankings_and_metric_deltas(runs: Runs) -> None:
    d = compare_runs(runs.base, runs.perturbed)
    changed = {i.field for i in d.changed_inputs}
    assert "weights sha256" in changed and "data sha256" not in changed
    assert d.same_data and d.same_audit and not d.not_compared
    by_id = {r.explainer: r for r in d.rankings}
    assert set(by_id) == {"saliency", "integrated_gradients"}
    ig = by_id["integrated_gradients"]
    assert 0.3 < ig.kendall_tau < 0.95 and ig.shared_features == 30 and ig.k == 10
    assert ig.entered and ig.left and len(ig.entered) == len(ig.left)
    assert ig.top_k_overlap == pytest.approx(1 - len(ig.left) / 10)
    assert ig.rbo < 1
    assert ig.per_sample is not None and ig.per_sample.n == 64
    assert 0.5 < ig.per_sample.mean_spearman < 0.99
    worst = ig.per_sample.changed_most
    assert len(worst) == 5 and [s.spearman for s in worst] == sorted(s.spearman for s in worst)
    # the listed Spearman is the one of similarity.spearman on |attribution| of that row
    a = np.load(runs.base / "attributions" / "integrated_gradients.npy")
    b = np.load(runs.perturbed / "attributions" / "integrated_gradients.npy")
    row = worst[0].position
    assert worst[0].spearman == pytest.approx(spearman(np.abs(a[row]), np.abs(b[row])))
    names = json.loads((runs.base / "results.json").read_text())["data"]["feature_names"]
    assert worst[0].top_before == [names[j] for j in np.argsort(-np.abs(a[row]))[:3]]
    assert worst[0].top_after == [names[j] for j in np.argsort(-np.abs(b[row]))[:3]]
    metrics = {m.name: m for m in d.metrics}
    assert {"saliency.deletion", "model.accuracy", "agreement"} <= set(metrics)
    ce = metrics["integrated_gradients.completeness_error"]
    assert ce.difference is not None and ce.difference != 0
    assert ce.test.method == "wilcoxon" and ce.test.pairs == 64
    assert all(m.difference is not None for m in d.metrics)
    # a check that went from pass to fail comes first
    flips = [i for i, c in enumerate(d.checks) if c.change.endswith("-> fail")]
    assert flips == list(range(len(flips)))


def test_cli_writes_json_html_and_pdf_with_both_results(runs: Runs, tmp_path: Path) -> None:
    code, output = _diff(runs.base, runs.perturbed)
    folder = runs.perturbed.parent / "diff-base-perturbed"
    assert code == 0, output
    for name in ("diff.json", "diff.html", "diff.pdf"):
        assert str(folder / name) in output
    data = json.loads((folder / "diff.json").read_text())
    weights = next(i for i in data["inputs"] if i["field"] == "weights sha256")
    assert weights["changed"] and weights["before"] != weights["after"]
    html = (folder / "diff.html").read_text()
    assert (
        "weights sha256" in html and "Kendall tau" in html and "http" not in html.split("<body")[0]
    )
    reader = PdfReader(folder / "diff.pdf")
    attached = reader.attachments
    assert attached["before-results.json"] == [(runs.base / "results.json").read_bytes()]
    assert attached["after-results.json"] == [(runs.perturbed / "results.json").read_bytes()]
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="3" pdfaid:conformance="B"' in xmp
    code, _ = _diff(runs.base, runs.perturbed, "--out", str(tmp_path / "d"))
    assert code == 0 and (tmp_path / "d" / "diff.pdf").is_file()


def test_a_results_json_linked_out_of_its_run_folder_is_not_attached(
    runs: Runs, tmp_path: Path
) -> None:
    """diff.pdf reads each attachment only from inside its run folder, even when the
    results.json became a link out of it after the runs were compared."""
    from auditor.diff.render import write_diff
    from auditor.report.pdf import RefusedFetch

    linked = tmp_path / "linked"
    shutil.copytree(runs.rerun, linked)
    (linked / "results.json").unlink()
    (linked / "results.json").symlink_to(runs.rerun / "results.json")
    d = compare_runs(runs.base, runs.rerun)
    d = replace(d, after=replace(d.after, path=str(linked)))
    with pytest.raises(RefusedFetch, match=re.escape(f"{linked.as_uri()}/results.json")):
        write_diff(d, tmp_path / "out", ("pdf",))
    assert not (tmp_path / "out" / "diff.pdf").exists()


def test_identical_rerun_shows_no_change(runs: Runs) -> None:
    d = compare_runs(runs.base, runs.rerun)
    assert d.changed_inputs == [] and d.spec_diff == "" and not d.verdict_changed
    assert all(c.change == "same" for c in d.checks) and d.checks
    for r in d.rankings:
        assert r.kendall_tau == 1.0 and r.rbo == pytest.approx(1.0) and r.top_k_overlap == 1.0
        assert r.entered == [] and r.left == []
        assert r.per_sample is not None and r.per_sample.mean_spearman == pytest.approx(1.0)
    assert d.metrics and all(m.difference == 0 for m in d.metrics)
    assert all(m.assessment == "within noise" for m in d.metrics)
    assert d.only_before == [] and d.only_after == []


def test_different_audits_compare_what_they_can(runs: Runs, tmp_path: Path) -> None:
    code, output = _diff(runs.base, runs.other, "--out", str(tmp_path))
    assert code == 0 and "Traceback" not in output, output
    d = compare_runs(runs.base, runs.other)
    assert not d.same_audit and not d.same_data
    assert any("different audits" in n for n in d.not_compared)
    assert any("data slices differ" in n for n in d.not_compared)
    (saliency,) = d.rankings
    assert saliency.per_sample is None and "not possible" in saliency.per_sample_note
    assert math.isfinite(saliency.kendall_tau)
    assert "explainer integrated_gradients" in d.only_before
    assert all(m.test.method in ("ci95", "none") for m in d.metrics)
    assert [c.change for c in d.checks] == ["removed"] * len(d.checks)


def test_a_folder_that_is_not_a_finished_run_is_a_usage_error(runs: Runs, tmp_path: Path) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "spec.yaml").write_bytes((runs.base / "spec.yaml").read_bytes())
    code, output = _diff(unfinished, runs.base)
    assert code == 2 and "has no results.json: the run did not finish" in output
    code, output = _diff(runs.base, tmp_path)
    assert code == 2 and "is not a run folder" in output and "Traceback" not in output


@pytest.fixture(scope="module")
def digit_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The digits CNN on 16 test digits, with its committed and its perturbed weights."""
    tmp = tmp_path_factory.mktemp("digits")
    weights = load_file(str(ROOT / "models" / "digits_cnn.safetensors"))
    layer = weights["features.0.weight"]
    noise = torch.randn(layer.shape, generator=torch.Generator().manual_seed(0))
    weights["features.0.weight"] = layer + 0.5 * float(layer.std()) * noise
    save_file(weights, str(tmp / "perturbed.safetensors"))
    small = (
        "data.slice.stop=16",
        "explainers=[{type: saliency}]",
        "metrics=[{type: deletion}]",
        "checks=[]",
        "report.formats=[]",
    )

    def audit(run_id: str, *extra: str) -> Path:
        options = RunOptions(
            out=tmp / "runs", run_id=run_id, progress="quiet", overrides=(*small, *extra)
        )
        return run(ROOT / "audits" / "digits_cnn.yaml", options).folder.path

    perturbed = f"model.weights={tmp / 'perturbed.safetensors'}"
    return audit("base"), audit("perturbed", perturbed)


def test_image_runs_compare_maps_by_ssim_and_draw_them(
    digit_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    base, perturbed = digit_runs
    d = compare_runs(base, perturbed)
    (saliency,) = d.rankings
    summary = saliency.per_sample
    assert summary is not None and summary.n == 16
    assert summary.mean_ssim is not None and 0 < summary.mean_ssim < 1
    assert all(s.ssim is not None and s.top_before == [] for s in summary.changed_most)
    assert "saliency" in changed_pictures(d)
    code, output = _diff(base, perturbed, "--out", str(tmp_path))
    assert code == 0, output
    assert (
        'alt="|attribution| of the samples that changed most'
        in (tmp_path / "diff.html").read_text()
    )


def test_an_image_and_a_tabular_run_compare_without_a_traceback(
    runs: Runs, digit_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    code, output = _diff(runs.base, digit_runs[0], "--out", str(tmp_path))
    assert code == 0 and "Traceback" not in output, output
    d = compare_runs(runs.base, digit_runs[0])
    assert d.rankings == []
    assert "explainer saliency: the two rankings share no feature" in d.not_compared
    assert any("input shapes differ" in n for n in d.not_compared)
    deletion = next(m for m in d.metrics if m.name == "saliency.deletion")
    assert deletion.test.method == "none" and deletion.assessment == "undecided"


def test_text_runs_compare_token_rankings_and_each_texts_tokens(tmp_path: Path) -> None:
    weights = load_file(str(ROOT / "models" / "text_classifier.safetensors"))
    table = weights["embedding.weight"]
    noise = torch.randn(table.shape, generator=torch.Generator().manual_seed(0))
    weights["embedding.weight"] = table + 0.5 * float(table.std()) * noise
    save_file(weights, str(tmp_path / "perturbed.safetensors"))
    small = (
        "data.slice.stop=32",
        "explainers=[{type: integrated_gradients, params: {n_steps: 8}}]",
        "metrics=[]",
        "checks=[]",
        "report.formats=[]",
    )
    spec = ROOT / "audits" / "text_classifier.yaml"
    base = run(spec, RunOptions(out=tmp_path, run_id="a", progress="quiet", overrides=small))
    perturbed = run(
        spec,
        RunOptions(
            out=tmp_path,
            run_id="b",
            progress="quiet",
            overrides=(*small, f"model.weights={tmp_path / 'perturbed.safetensors'}"),
        ),
    )
    d = compare_runs(base.folder.path, perturbed.folder.path)
    (ig,) = d.rankings
    assert ig.shared_features > 12 and ig.kendall_tau < 1
    assert ig.per_sample is not None and ig.per_sample.n == 32
    worst = ig.per_sample.changed_most[0]
    with np.load(base.folder.path / "tokens.npz") as tokens:
        length = int(tokens["lengths"][worst.position])
        pieces = list(tokens["pieces"][worst.position][:length])
    a = np.load(base.folder.path / "attributions" / "integrated_gradients.npy")[worst.position]
    b = np.load(perturbed.folder.path / "attributions" / "integrated_gradients.npy")
    b = b[worst.position]
    # over the text's own tokens, not its padding
    assert worst.spearman == pytest.approx(spearman(np.abs(a[:length]), np.abs(b[:length])))
    assert worst.top_before == [pieces[j] for j in np.argsort(-np.abs(a[:length]))[:3]]


def test_rank_biased_overlap_values() -> None:
    assert rank_biased_overlap(["a", "b", "c"], ["a", "b", "c"]) == pytest.approx(1.0)
    assert rank_biased_overlap(["a", "b"], ["c", "d"]) == 0.0
    # depth 1: no overlap; depth 2: both; 2/2*0.81 + (0.1/0.9)*(0 + 2/2*0.81) = 0.9
    assert rank_biased_overlap(["a", "b"], ["b", "a"]) == pytest.approx(0.9)
    assert math.isnan(rank_biased_overlap([], ["a"]))


def test_per_sample_ssim_for_image_maps() -> None:
    rng = np.random.default_rng(0)
    maps = rng.random((3, 1, 8, 8)).astype(np.float32)
    rho, structural = per_sample_similarity(maps, maps.copy(), "image")
    assert structural is not None
    assert np.allclose(rho, 1.0) and np.allclose(structural, 1.0)
    other = maps + 0.5 * rng.random(maps.shape).astype(np.float32)
    rho, structural = per_sample_similarity(maps, other, "image")
    assert structural is not None and np.all(rho < 1) and np.all(structural < 1)


def test_noise_tests() -> None:
    same = np.linspace(0, 1, 20)
    assert wilcoxon_paired(same, same).significant is False
    assert wilcoxon_paired(same, same + 0.1).significant is True
    assert ci_test((0.0, 1.0), (0.5, 2.0)).significant is False
    assert ci_test((0.0, 1.0), (1.5, 2.0)).significant is True
    assert ci_test((None, 1.0), (1.5, 2.0)).significant is None
