"""The report's "Changes since <baseline run id>" section and skipped checks in the summary
(issue 15), on two real runs of the breast-cancer audit (64 patients, saliency and
integrated gradients, ``baseline: previous``): ``first`` has no earlier run (its baseline
checks are skipped), ``second`` has the first layer's weights perturbed and is compared
with ``first``; its accuracy check (min 0.93) goes from pass to fail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.report.common import fmt_num
from auditor.report.render import render
from auditor.report.source import ReportSource
from auditor.report.view import build_view
from auditor.run_folder import RunFolder
from auditor.runner import RunOptions, run
from tests.diff.test_diff import SMALL, SPEC, perturbed_weights

CHECKS = (
    "checks=[{metric: model.accuracy, min: 0.93}, "
    "{ranking_stability: integrated_gradients, min_kendall_tau: 0.9}, "
    "{model_unchanged: true}, {data_unchanged: true}]"
)


@dataclass(frozen=True)
class Pair:
    first: RunFolder
    second: RunFolder


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    tmp = tmp_path_factory.mktemp("changes")
    perturbed_weights(tmp)

    def audit(run_id: str, *extra: str) -> RunFolder:
        sets = (*SMALL, "baseline=previous", CHECKS, *extra)
        options = RunOptions(out=tmp / "runs", run_id=run_id, progress="quiet", overrides=sets)
        return run(SPEC, options).folder

    first = audit("first")
    second = audit(
        "second", f"model.weights={tmp / 'perturbed.safetensors'}", "report.formats=[html]"
    )
    return Pair(first, second)


def _view(folder: RunFolder) -> Any:
    return build_view(ReportSource.open(folder))


def _diff(folder: RunFolder) -> dict[str, Any]:
    return json.loads((folder.path / "diff" / "diff.json").read_text())


def _raw(folder: RunFolder) -> dict[str, Any]:
    return json.loads((folder.path / "results.json").read_text())


def test_a_run_without_a_baseline_has_no_changes_section(pair: Pair) -> None:
    view = _view(pair.first)
    assert _raw(pair.first)["baseline"] is None
    assert view.parts["changes"] is None
    assert "changes" not in [s.id for s in view.sections]
    assert "changes" not in [n.id for n in view.nav]


def test_the_section_shows_what_changed_since_the_baseline(pair: Pair) -> None:
    view = _view(pair.second)
    assert [n.id for n in view.nav][:3] == ["summary", "trend", "changes"]
    c = view.changes
    assert (c.baseline_id, c.error) == ("first", "")
    assert c.baseline_path == str(pair.first.path)
    # inputs: the weights hash changed, the data and spec.yaml did not
    rows = {r.name: r for r in c.inputs}
    before = _raw(pair.first)["provenance"]["weights_sha256"]
    after = _raw(pair.second)["provenance"]["weights_sha256"]
    assert rows["model weights"].changed
    assert (rows["model weights"].before, rows["model weights"].after) == (
        before[:12] + "…",
        after[:12] + "…",
    )
    assert not rows["data slice"].changed and not rows["spec.yaml"].changed
    assert [r.name for r in c.inputs][:3] == ["model weights", "data slice", "spec.yaml"]
    assert "8 package versions" in c.unchanged and "seed" in c.unchanged
    assert c.sentence.startswith("Changed since the baseline: model weights")
    assert "Verdict: passed then, failed now." in c.sentence
    # checks whose status changed, the ones now failing first (after: this run's results)
    assert [(k.name, k.before, k.after) for k in c.checks] == [
        ("model.accuracy", "pass", "fail"),
        ("integrated_gradients ranking stability", "skipped", "fail"),
        ("model unchanged", "skipped", "fail"),
        ("data unchanged", "skipped", "pass"),
    ]
    assert c.same_checks == 0
    assert [k.change_class for k in c.checks] == ["fail", "fail", "fail", ""]
    accuracy = [_raw(f)["predictions"]["accuracy"] for f in (pair.first, pair.second)]
    assert (c.checks[0].value_before, c.checks[0].value_after) == tuple(
        fmt_num(a) for a in accuracy
    )
    assert c.checks[2].value_after == after[:12] + "…"
    # rankings as diff.json has them: integrated gradients moved (tau < 1)
    diff = _diff(pair.second)
    ig = next(r for r in diff["rankings"] if r["explainer"] == "integrated_gradients")
    row = next(r for r in c.rankings if r.explainer == "integrated_gradients")
    assert ig["kendall_tau"] < 1 and row.changed
    assert row.kendall_tau == fmt_num(ig["kendall_tau"], 3)
    assert row.top_k == f"{round(ig['top_k_overlap'] * 10)} of 10" and c.top_k == 10
    assert row.entered == ", ".join(ig["entered"]) and row.left == ", ".join(ig["left"])
    assert row.per_sample.startswith("mean Spearman ") and row.per_sample.endswith(
        "over 64 samples"
    )
    # metrics: each of diff.json, none beyond noise on 64 patients
    assert {m.name for m in c.metrics} == {m["name"] for m in diff["metrics"]}
    acc = next(m for m in c.metrics if m.name == "model.accuracy")
    assert acc.difference == fmt_num(accuracy[1] - accuracy[0])
    assert acc.beyond_noise == "no" and acc.test.startswith("Wilcoxon p = ")
    assert (c.only_before, c.only_after, c.not_compared) == ("", "", [])
    assert (c.link, c.pdf) == ("diff/diff.html", "")  # report.formats: [html]
    assert (pair.second.path / c.link).is_file()
    nav = next(n for n in view.nav if n.id == "changes")
    assert (nav.title, nav.badge, nav.badge_class) == ("Changes since baseline", "4", "fail")


def test_the_html_links_the_diff_and_escapes_feature_names(pair: Pair, copy_of) -> None:
    html = (pair.second.path / "report.html").read_text()
    section = html[html.index('<section id="changes"') :]
    section = section[: section.index("</section>")]
    assert "Changes since first</h2>" in section
    assert '<a href="diff/diff.html">diff/diff.html</a>' in section
    # the report sits beside diff/: the link resolves from the report's folder
    assert (pair.second.path / "report.html").parent.joinpath("diff/diff.html").is_file()

    copy = copy_of(pair.second)
    path = copy.path / "diff" / "diff.json"
    diff = json.loads(path.read_text())
    diff["rankings"][0]["entered"] = ["<b>x</b>"]
    path.write_text(json.dumps(diff))
    render(copy, ["html"])
    html = (copy.path / "report.html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


def test_a_missing_diff_is_said_plainly_when_rendered_again(pair: Pair, copy_of) -> None:
    copy = copy_of(pair.second)
    (copy.path / "diff" / "diff.json").unlink()
    result = CliRunner().invoke(cli, ["render", str(copy.path), "--format", "html"])
    assert result.exit_code == 0, result.output
    view = _view(copy)
    assert view.changes.error == (
        "No changes can be shown: diff/diff.json is missing from the run folder; "
        f"`auditor diff {pair.first.path} {copy.path}` makes it again."
    )
    assert next(n for n in view.nav if n.id == "changes").badge == "error"
    html = (copy.path / "report.html").read_text()
    assert "diff/diff.json is missing from the run folder" in html
    assert "Traceback" not in html


@pytest.mark.parametrize("case", ["baseline error", "unreadable"])
def test_a_failed_comparison_shows_its_error(pair: Pair, copy_of, case: str) -> None:
    def failed(raw: dict[str, Any]) -> None:
        raw["baseline"].update(diff=None, error="the comparison with /old failed: boom <i>")

    copy = copy_of(pair.second, failed if case == "baseline error" else None)
    if case == "unreadable":
        (copy.path / "diff" / "diff.json").write_text("{not json")
    c = _view(copy).changes
    if case == "baseline error":
        assert c.error == "No changes can be shown: the comparison with /old failed: boom <i>."
    else:
        assert c.error.startswith(
            "No changes can be shown: diff/diff.json could not be read (JSONDecodeError: "
        )
    assert (c.checks, c.rankings, c.metrics, c.link) == ([], [], [], "")


def test_skipped_checks_are_not_failures_in_the_summary(pair: Pair) -> None:
    summary = _view(pair.first).summary
    assert summary.verdict == "PASS"
    where = pair.first.path.parent
    reason = f"no earlier finished run of 'breast-cancer-mlp' in {where}"
    assert summary.reasons == [
        "All 1 evaluated checks passed (3 skipped) and every explainer finished",
        f"Check integrated_gradients ranking stability skipped: {reason}",
        f"Check model unchanged skipped: {reason}",
        f"Check data unchanged skipped: {reason}",
    ]
    fact = next(f for f in summary.facts if f.label == "Checks")
    assert (fact.value, fact.detail, fact.status_class) == (
        "1 of 4 passed",
        "3 skipped (no baseline run)",
        "",
    )
    assert [(c.status, c.status_class) for c in summary.checks] == [
        ("PASS", "pass"),
        *[("SKIPPED", "muted")] * 3,
    ]


def test_a_failure_beside_skipped_checks_is_still_red(pair: Pair, copy_of) -> None:
    def fail(raw: dict[str, Any]) -> None:
        raw["status"], raw["exit_code"] = "failed", 1
        raw["checks"][0].update(status="fail", reason="0.9 is below the minimum 0.93")

    summary = _view(copy_of(pair.first, fail)).summary
    assert summary.verdict == "FAIL"
    assert summary.reasons[0] == "Check model.accuracy failed: 0.9 is below the minimum 0.93"
    assert [r.split(":")[0] for r in summary.reasons[1:]] == [
        "Check integrated_gradients ranking stability skipped",
        "Check model unchanged skipped",
        "Check data unchanged skipped",
    ]
    fact = next(f for f in summary.facts if f.label == "Checks")
    assert (fact.value, fact.detail, fact.status_class) == (
        "0 of 4 passed",
        "1 not passed, 3 skipped (no baseline run)",
        "fail",
    )


def test_all_checks_skipped(pair: Pair, copy_of) -> None:
    def only_skipped(raw: dict[str, Any]) -> None:
        raw["checks"] = raw["checks"][1:]

    summary = _view(copy_of(pair.first, only_skipped)).summary
    assert summary.reasons[0] == "Every explainer finished; all 3 checks were skipped"
    fact = next(f for f in summary.facts if f.label == "Checks")
    assert (fact.value, fact.status_class) == ("0 of 3 passed", "")


def test_hashes_are_short_in_the_summary_checks(pair: Pair) -> None:
    rows = {c.name: c for c in _view(pair.second).summary.checks}
    sha = _raw(pair.second)["provenance"]["weights_sha256"]
    assert rows["model unchanged"].value == sha[:12] + "…"
    assert rows["model.accuracy"].value == fmt_num(_raw(pair.second)["predictions"]["accuracy"])
