"""Trust-first summary (issue 15): explainers ranked by measured faithfulness, "do not rely
on" with the reason, what drives the model, on real runs of the shipped audits."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from auditor.cli import cli
from auditor.report.drivers import cell_words, place
from auditor.report.trust import assess_one, perturbation, sanity
from auditor.report.view import open_view
from auditor.results import ExplainerResult
from auditor.run_folder import RunFolder

ROOT = Path(__file__).resolve().parents[2]


def run_cli(spec: Path, out: Path, run_id: str, *sets: str) -> RunFolder:
    args = ["run", str(spec), "--out", str(out), "--run-id", run_id, "-q"]
    for s in sets:
        args += ["--set", s]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 1), result.output
    return RunFolder(next(out.glob(f"*/{run_id}")))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    """The demo audit (audits/digits_cnn.yaml) on 64 digits, HTML and PDF."""
    out = tmp_path_factory.mktemp("demo")
    return run_cli(
        ROOT / "audits" / "digits_cnn.yaml",
        out,
        "demo",
        "data.slice.stop=64",
        "report.formats=[html, pdf]",
    )


def gain(folder: RunFolder, explainer: str, metric: str = "deletion") -> float:
    results = folder.read_json("results.json")
    return results["explainers"][explainer]["metrics"][metric]["values"]["gain"]


def test_demo_ranks_explainers_by_deletion_gain_and_shows_guided_backprop_sanity(
    demo: RunFolder,
) -> None:
    view, _ = open_view(demo)
    trust = view.summary.trust
    assert trust.measured
    ids = [r.id for r in trust.rows]
    local = ["saliency", "integrated_gradients", "gradcam", "occlusion", "guided_backprop"]
    measured = [i for i in ids if i in local]
    assert measured == sorted(local, key=lambda i: -gain(demo, i))  # most faithful first
    assert ids[5:] == ["surrogate_tree", "permutation_importance"]  # global: not measured
    rows = {r.id: r for r in trust.rows}
    assert all(rows[i].verdict == "not measured" for i in ids[5:])
    # deletion gains as stored, to 3 decimals
    for i in local:
        assert rows[i].deletion == f"{gain(demo, i):+.3f}"
    # guided backprop's randomization sanity result is shown with its Spearman
    gb = demo.read_json("results.json")["explainers"]["guided_backprop"]["metrics"]
    spearman = gb["randomization_sanity"]["values"]["spearman_final"]
    passed = gb["randomization_sanity"]["values"]["passed"] == 1.0
    assert rows["guided_backprop"].sanity == ("passed" if passed else "failed")
    assert rows["guided_backprop"].sanity_detail.startswith(f"Spearman {spearman:.2f} ")
    assert rows["guided_backprop"].sanity_detail.endswith(" 0.5")
    assert rows["occlusion"].sanity == rows["gradcam"].sanity == "not run"
    # insertion no better than random (the random AUC inside the 95% interval) -> with care
    ins = gb["insertion"]
    low = ins["ci95"][0]
    expected = "rely on with care" if low <= ins["values"]["random_auc"] else "rely on"
    assert rows["guided_backprop"].verdict == expected
    best = ids[0]
    assert trust.sentence.startswith(f"On this model and slice, {best} deserves most belief")
    assert "guided_backprop" in trust.sentence.split("sanity check passed for")[1]
    # rankings and galleries lead with the most faithful explainer
    assert view.rankings.cards[0].id == best
    assert [c.id for c in view.gallery.columns] == measured


def test_what_drives_the_model_counts_agreement_of_trusted_top_k(demo: RunFolder) -> None:
    view, src = open_view(demo)
    trust, drivers = view.summary.trust, view.summary.trust.drivers
    assert drivers is not None
    trusted = [r.id for r in trust.rows if r.verdict in ("rely on", "rely on with care")]
    assert drivers.compared == trusted
    k = src.options.top_k
    names = src.local_names
    tops = {}
    for i in trusted:
        importance = np.load(demo.path / "rankings" / f"{i}.npy")[0]
        tops[i] = {names[j] for j in np.argsort(-importance, kind="stable")[:k]}
    assert drivers.features
    for d in drivers.features:
        agreeing = [i for i in trusted if d.name in tops[i]]
        assert d.agree == len(agreeing) >= 2 and d.explainers == agreeing
        assert d.of == len(trusted)
    counts = [d.agree for d in drivers.features]
    assert counts == sorted(counts, reverse=True)
    first = drivers.features[0]
    assert f"{first.words} ({first.agree} of {first.of})" in drivers.sentence
    assert "pixels" in drivers.sentence


def test_demo_html_and_pdf_show_the_trust_table(demo: RunFolder) -> None:
    html = (demo.path / "report.html").read_text()
    assert "Which explainers to believe" in html and "What drives this model" in html
    table = html[html.index('<table class="data trust">') : html.index("What drives")]
    assert table.index("guided_<wbr>backprop") > 0 and "Spearman" in table
    assert html.index("Which explainers to believe") < html.index("<h3>Checks</h3>")
    text = "".join(p.extract_text() for p in PdfReader(demo.path / "report.pdf").pages[:4])
    assert "Which explainers to believe" in text and "What drives this model" in text
    assert "deserves most belief" in text


def test_failed_sanity_and_deletion_no_better_than_random_are_do_not_rely_on(
    demo: RunFolder,
) -> None:
    results = demo.read_json("results.json")
    saliency = ExplainerResult.model_validate(results["explainers"]["saliency"])
    assert assess_one(saliency).verdict == "rely"  # as run: passes everything
    broken = copy.deepcopy(results["explainers"]["saliency"])
    sanity_values = broken["metrics"]["randomization_sanity"]["values"]
    sanity_values["passed"], sanity_values["spearman_final"] = 0.0, 0.93
    deletion = broken["metrics"]["deletion"]
    # the explainer's AUC equal to the random order's: no gain
    deletion["values"]["auc"] = deletion["values"]["random_auc"]
    deletion["values"]["gain"] = 0.0
    a = assess_one(ExplainerResult.model_validate(broken))
    assert a.verdict == "avoid" and not a.trusted
    assert a.reasons[0].startswith("fails the randomization sanity check")
    assert "Spearman 0.93, not below 0.5" in a.reasons[0]
    assert a.reasons[1] == "does no better than a random order on deletion (gain +0.000)"


def test_a_positive_gain_within_the_interval_is_no_better_than_random() -> None:
    record = {
        "status": "ok",
        "mean": 0.45,
        "ci95": [0.40, 0.50],
        "values": {"auc": 0.45, "random_auc": 0.48, "gain": 0.03},
    }
    within = perturbation(record, lower_is_better=True)
    assert within is not None and within.gain == 0.03 and not within.beats_random
    record["ci95"] = [0.40, 0.47]
    clear = perturbation(record, lower_is_better=True)
    assert clear is not None and clear.beats_random and clear.how == "95% interval"
    del record["ci95"]
    assert perturbation(record, lower_is_better=True).how == "gain sign"
    assert perturbation({"status": "error"}, lower_is_better=True) is None
    assert sanity(None).status == "not run"
    assert sanity({"status": "error", "error": "boom"}).error == "boom"


def test_tabular_run_without_faithfulness_metrics_says_what_to_add(tmp_path: Path) -> None:
    folder = run_cli(
        ROOT / "audits" / "breast_cancer_mlp.yaml",
        tmp_path,
        "plain",
        "data.slice={start: 0, stop: 48}",
        "metrics=[]",
        "checks=[]",
        "report.formats=[html]",
    )
    view, _ = open_view(folder)
    trust = view.summary.trust
    assert not trust.measured and trust.rows == [] and trust.drivers is None
    assert "measured no faithfulness metric" in trust.sentence
    assert "- type: deletion" in trust.advice
    assert "explainers: [saliency, integrated_gradients, deep_shap]" in trust.advice
    html = (folder.path / "report.html").read_text()
    assert "measured no faithfulness metric" in html and "type: randomization_sanity" in html


def test_tabular_run_with_deletion_names_features_in_words(tmp_path: Path) -> None:
    folder = run_cli(
        ROOT / "audits" / "breast_cancer_mlp.yaml",
        tmp_path,
        "deletion",
        "data.slice={start: 0, stop: 48}",
        "report.formats=[html]",
    )
    view, src = open_view(folder)
    trust = view.summary.trust
    local = [r for r in trust.rows if r.verdict != "not measured"]
    gains = [gain(folder, r.id) for r in local]
    assert gains == sorted(gains, reverse=True) and len(local) == 3
    assert "No randomization sanity check was run" in trust.sentence
    drivers = trust.drivers
    assert drivers is not None and drivers.features
    features = set(src.results.data.feature_names or [])
    assert all(d.name in features and d.words == d.name for d in drivers.features)


def test_image_cells_in_words() -> None:
    assert cell_words("r3c4") == "row 3, column 4"
    assert cell_words("ch1_r0c2") == "channel 1, row 0, column 2"
    assert cell_words("mean radius") == "mean radius"
    grid = [f"r{r}c{c}" for r in range(8) for c in range(8)]
    assert place(["r3c3", "r4c4", "r3c4"], grid) == "in the centre of the image"
    assert place(["r0c0", "r1c1"], grid) == "in the upper left of the image"
    assert place(["r7c3", "r6c4"], grid) == "in the lower middle of the image"
    assert place(["r0c0", "r7c7"], grid) == "spread over the whole image"
    assert place(["mean radius"], ["mean radius"]) == ""
    assert place(["great"], []) == ""  # text: no names shared by every sample


def test_text_run_ranks_explainers_and_names_agreed_tokens(tmp_path: Path) -> None:
    """The text audit with three explainers: saliency's sanity Spearman is undefined there
    (NaN), so it fails the check and is "do not rely on"; the others agree on tokens."""
    folder = run_cli(
        ROOT / "audits" / "text_classifier.yaml",
        tmp_path,
        "text",
        "data.slice={start: 0, stop: 96}",
        "explainers=[{type: saliency}, {type: integrated_gradients, params: {n_steps: 16}}, "
        "{type: occlusion, params: {window: 1}}]",
        "checks=[]",
        "report.formats=[html]",
    )
    results = folder.read_json("results.json")
    view, src = open_view(folder)
    trust = view.summary.trust
    rows = {r.id: r for r in trust.rows}
    sal = results["explainers"]["saliency"]["metrics"]["randomization_sanity"]["values"]
    assert sal["passed"] == 0.0 and sal["spearman_final"] is None
    assert rows["saliency"].verdict == "do not rely on"
    assert rows["saliency"].sanity_detail == "Spearman undefined (NaN)"
    assert "Do not rely on saliency: it fails the randomization sanity check" in trust.sentence
    assert [r.id for r in trust.rows][-1] == "saliency"
    drivers = trust.drivers
    assert drivers is not None and drivers.compared == [r.id for r in trust.rows[:2]]
    tops = {i: {t.token for t in src.token_rankings(i).overall[:10]} for i in drivers.compared}
    for d in drivers.features:
        assert d.agree == sum(d.name in top for top in tops.values()) == 2
    assert "tokens" in drivers.sentence and "counted from 0" not in drivers.sentence
    assert view.gallery.columns[0].id == trust.rows[0].id
