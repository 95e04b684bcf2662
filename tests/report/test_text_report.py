"""Text reports: highlighted samples, top tokens per class, token rankings and agreement,
escaping of user text in HTML and PDF, report options from results.json (and the spec.yaml
fallback for older run folders), the section registry and the per-modality report views.

The run folder is written by ``text_run.build_text_run`` from a real bag-of-tokens model.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader
from text_run import CLASSES, HOSTILE, build_text_run, text_run_arrays

from auditor.report import render
from auditor.report.modalities import ImageView, TabularView, TextView, view_for
from auditor.report.sections import SECTIONS
from auditor.report.sections.rankings import global_names
from auditor.report.source import ReportSource
from auditor.report.tokens import SliceTokens, slice_scores
from auditor.report.view import build_view
from auditor.results import ExplainerResult
from auditor.run_folder import RunFolder

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    folder = build_text_run(tmp_path_factory.mktemp("text") / "r")
    render(folder, ["html", "pdf"])
    return folder


def _view(folder: RunFolder):
    src = ReportSource.open(folder)
    return build_view(src), src


def test_sections_come_from_one_list_and_text_adds_top_tokens(text_run: RunFolder) -> None:
    view, _ = _view(text_run)
    assert [s.id for s in SECTIONS] == [
        "summary", "trend", "changes", "model", "layers", "data", "rankings", "gallery", "tokens",
        "surrogates", "quality", "failures", "appendix",
    ]  # fmt: skip
    # one run of the audit: no trend section, and the contents are numbered without it
    assert [(n.number, n.id) for n in view.nav] == list(
        enumerate(
            ["summary", "model", "data", "rankings", "gallery", "tokens", "surrogates",
             "quality", "failures", "appendix"],
            start=1,
        )
    )  # fmt: skip
    assert view.item("tokens").title == "Top tokens per class"
    assert view.item("tokens").badge == "2"  # two explainers with token rankings
    html = (text_run.path / "report.html").read_text()
    ids = [i for i in ("gallery", "tokens", "surrogates") if f'<section id="{i}"' in html]
    assert ids == ["gallery", "tokens", "surrogates"]
    assert html.index('<section id="gallery"') < html.index('<section id="tokens"')


def test_modality_views_are_chosen_once_by_name() -> None:
    assert isinstance(view_for("image"), ImageView) and view_for("image").pictures
    assert view_for("tabular").gallery == "bars" and view_for("tabular").feature_table
    text = view_for("text")
    assert isinstance(text, TextView) and text.gallery == "text" and text.shows("tokens")
    assert not ImageView().shows("tokens") and not TabularView().shows("tokens")
    assert text.local_names([12], None) is None  # tokens differ per sample
    assert TabularView().local_names([3], None) == ["x0", "x1", "x2"]
    block = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    assert np.array_equal(ImageView().reduce(block), block.mean(axis=1))
    with pytest.raises(ValueError, match="cannot draw modality 'audio'"):
        view_for("audio")


def test_report_options_come_from_results_json(text_run: RunFolder) -> None:
    src = ReportSource.open(text_run)
    assert src.results.report_options is not None
    assert src.options.top_k == 5  # results.json says 5, the spec.yaml copy says 3
    view, _ = _view(text_run)
    assert all(len(card.tokens) == 5 for card in view.rankings.cards)
    assert (
        "The 5 most important tokens of each explainer"
        in (text_run.path / "report.html").read_text()
    )


def test_old_run_folders_fall_back_to_the_spec_copy(tmp_path: Path) -> None:
    folder = build_text_run(tmp_path / "r", report_options=False)
    assert ReportSource.open(folder).options.top_k == 3  # from spec.yaml
    raw = json.loads((folder.path / "results.json").read_text())
    raw["provenance"]["overrides"] = ["report.top_k=4"]
    (folder.path / "results.json").write_text(json.dumps(raw))
    assert ReportSource.open(folder).options.top_k == 4  # --set overrides applied


def test_colour_scale_counts_real_tokens_only(text_run: RunFolder) -> None:
    src = ReportSource.open(text_run)
    tokens = text_run_arrays(text_run)
    real = tokens["word_ids"] >= 0
    occlusion = np.load(text_run.path / "attributions" / "occlusion.npy")
    scale = src.scale(src.results.explainers["occlusion"])
    assert scale is not None and scale.signed
    assert scale.n_values == int(real.sum()) < occlusion.size  # no pads, no [CLS]/[SEP]
    assert scale.scale == pytest.approx(np.percentile(np.abs(occlusion[real]), 99), rel=1e-9)
    saliency = src.scale(src.results.explainers["saliency"])
    assert saliency is not None and not saliency.signed


def test_gallery_shows_words_with_summed_pieces(text_run: RunFolder) -> None:
    view, _ = _view(text_run)
    g = view.gallery
    assert g.kind == "text" and [c.id for c in g.columns] == ["occlusion", "saliency"]
    rows = {r.position: r for r in g.rows}
    correct = [r.correct for r in g.rows]
    assert correct == sorted(correct)  # misclassified first
    assert not rows[5].correct and rows[5].label == "positive"  # "not bad at all"
    occlusion = np.load(text_run.path / "attributions" / "occlusion.npy")
    # sample 2, "good good wonderful": "wonderful" is one word of two pieces
    words = rows[2].cells[0].words
    assert [w.text for w in words] == ["good", "good", "wonderful"]
    assert [w.before for w in words] == ["", " ", " "]
    assert words[2].value == pytest.approx(float(occlusion[2, 3] + occlusion[2, 4]))
    assert words[2].title.startswith("wond ") and " · ##erful " in words[2].title
    assert words[0].value == pytest.approx(2.0)  # the planted weight of "good"
    assert words[0].background == "#B2182B"  # beyond the scale: the end of the red side
    # the pieces table lists the largest pieces (relative to each scale), in text order
    assert [p.position for p in rows[2].pieces] == [1, 2, 3, 4]
    assert rows[2].pieces[0].values == ["+2", "+2"]
    # hostile text keeps its characters (escaping is the template's job)
    assert rows[0].cells[0].words[3].text == "<script>alert(1)</script>"


def test_truncated_texts_are_marked_with_their_unseen_rest(text_run: RunFolder) -> None:
    view, _ = _view(text_run)
    row = next(r for r in view.gallery.rows if r.position == 7)
    assert row.truncated and row.rest == " the twelve token limit and is good"  # the gap kept
    assert all(not r.truncated and r.rest == "" for r in view.gallery.rows if r.position != 7)
    html = (text_run.path / "report.html").read_text()
    assert html.count('<span class="tag warn">truncated</span>') == 1
    assert html.count('<span class="rest" title="not seen by the model') == 2  # per explainer


def test_rankings_show_top_tokens_and_agreement_over_every_token(text_run: RunFolder) -> None:
    view, _ = _view(text_run)
    occlusion = np.load(text_run.path / "attributions" / "occlusion.npy")
    card = view.rankings.cards[0]
    assert card.id == "occlusion" and card.map_tile is None  # no pixel maps for text
    top = card.tokens[0]
    assert (top.token, top.count) == ("bad", 6)  # 6 occurrences of weight 2
    assert float(top.score) == pytest.approx(6 * 2.0 / (6 + 5), rel=1e-3)
    tokens = SliceTokens.load(text_run.path / "tokens.npz")
    vocab, scores = slice_scores(tokens, occlusion)
    assert scores[list(vocab).index("bad")] == pytest.approx(12 / 11)
    agreement = view.rankings.agreement
    assert agreement is not None and agreement.labels == ["occlusion", "saliency"]
    assert agreement.matrix[0][1] == pytest.approx(1.0)  # saliency is |occlusion|
    assert "every distinct token" in agreement.note


def test_top_tokens_per_class_are_signed(text_run: RunFolder) -> None:
    view, _ = _view(text_run)
    card = next(c for c in view.tokens.cards if c.id == "occlusion")
    assert [c.name for c in card.classes] == CLASSES
    negative = {t.token: t for t in card.classes[0].tokens}
    assert negative["bad"].mean == "2" and negative["bad"].positive
    assert negative["bad"].width == 100.0  # the largest |mean| fills half the track
    ranked = json.loads((text_run.path / "rankings" / "occlusion.tokens.json").read_text())
    first = ranked["by_class"]["negative"][0]
    assert first["token"] == "bad" and card.classes[0].tokens[0].token == "bad"
    signs = [t.positive for c in card.classes for t in c.tokens]
    assert True in signs and False in signs  # tokens that lower the class are shown too


def test_user_text_is_escaped_in_html_and_not_evaluated(text_run: RunFolder) -> None:
    html = (text_run.path / "report.html").read_text()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{ 7*7 }}" in html and "{% raw %}" in html  # shown as written, not evaluated
    assert "&amp;amp;" in html  # the text "&amp;" itself, escaped once
    assert 'title="&lt;scr +0.022 · ##ipt&gt;alert(1)&lt;/script&gt; −0.0219"' in html
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto((text_run.path / "report.html").as_uri(), wait_until="load")
        gallery = page.inner_text("#gallery")
        body = page.inner_text("body")
        scripts = page.locator("script").count()
        spans = page.locator("#gallery td.hl span.w").count()
        browser.close()
    assert dialogs == [] and scripts == 0
    for text in HOSTILE:
        assert text in body  # as written: in the gallery, the data section or token lists
    assert "<script>alert(1)</script>" in gallery and "{{ 7*7 }}" in gallery
    assert re.search(r"(?<![\d.])49(?![\d.])", body) is None  # {{ 7*7 }} never evaluated
    assert spans == 2 * sum(  # one span per word per explainer, in the six samples
        len(r.cells[0].words) for r in _view(text_run)[0].gallery.rows
    )


def test_pdf_shows_highlighted_text_and_hostile_text_as_text(text_run: RunFolder, tmp_path) -> None:
    reader = PdfReader(text_run.path / "report.pdf")
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Top tokens per class" in text and "truncated" in text
    for hostile in ("<script>alert(1)</script>", "{{ 7*7 }}", "{% raw %}", "&amp;"):
        assert hostile in text
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.skip("pdftoppm is not installed")
    page = next(i for i, p in enumerate(reader.pages) if "Sample #5" in p.extract_text())
    subprocess.run(
        [pdftoppm, "-r", "50", "-png", "-f", str(page + 1), "-l", str(page + 1),
         str(text_run.path / "report.pdf"), str(tmp_path / "p")],
        check=True,
    )  # fmt: skip
    pixels = np.asarray(Image.open(next(tmp_path.glob("p-*.png"))).convert("RGB"), np.int64)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 60) & (pixels[..., 2] < 80)
    assert red.sum() > 20  # the highlighted "bad" of sample 5 (#B2182B)


def test_broken_tokens_file_is_a_clear_error(text_run: RunFolder, tmp_path: Path) -> None:
    arrays = text_run_arrays(text_run)
    arrays["word_ids"] = arrays["word_ids"][:, :5]
    np.savez(tmp_path / "tokens.npz", **arrays)
    with pytest.raises(ValueError, match=r"word_ids has shape \(10, 5\), expected \(10, 12\)"):
        SliceTokens.load(tmp_path / "tokens.npz")
    del arrays["texts"]
    np.savez(tmp_path / "tokens.npz", **arrays)
    with pytest.raises(ValueError, match=r"tokens\.npz lacks texts"):
        SliceTokens.load(tmp_path / "tokens.npz")


def test_a_global_explainer_names_its_own_features(text_run: RunFolder) -> None:
    src = ReportSource.open(text_run)
    words = ExplainerResult(
        id="surrogate_linear",
        type="surrogate_linear",
        scope="global",
        status="ok",
        extra={"features": {"kind": "tokens", "names": ["good", "bad", "<b>"]}},
    )
    assert global_names(src, words, 3) == ["good", "bad", "<b>"]
    assert global_names(src, words, 4) == ["x0", "x1", "x2", "x3"]  # names of another size
