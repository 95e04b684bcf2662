"""Report layout on a model and images of realistic size: a random-init mobilenet_v3_small on a
folder of 64x64 PNGs. The architecture table fits a page, rankings are over named regions
with ties marked, the gallery takes classes in turn, and what belongs together stays in one
wrapper in the HTML (the print stylesheet keeps those wrappers on one page)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from auditor import gallery
from auditor.explain import feature_names
from auditor.explainers.base import Predictions
from auditor.explainers.ranking import tie_groups
from auditor.explainers.regions import image_feature_names
from auditor.report.render import render
from auditor.report.sections.rankings import local_names
from auditor.report.source import ReportSource
from auditor.report.view import build_view
from auditor.run_folder import RunFolder
from auditor.runner import RunOptions, run
from auditor.spec.model import GallerySpec

SPEC = """\
version: 1
name: layout-mobilenet
seed: 0
model:
  source: torchvision
  arch: mobilenet_v3_small
  num_classes: 3
data:
  source: image_folder
  root: {root}
  batch_size: 12
explainers:
  - type: saliency
  - type: permutation_importance
    params: {{n_repeats: 1, grid: [2, 2]}}
checks:
  - ranking: saliency
    top_k: 64
    must_include: ["rows 0-7, cols 8-15"]
  - ranking: permutation_importance
    top_k: 12
    must_include: ["ch0: rows 0-31, cols 0-31"]
report:
  formats: [html]
  top_k: 10
  gallery: {{samples: 6}}
"""


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for k, name in enumerate(["cat", "dog", "fox"]):
        (root / name).mkdir()
        for i in range(8):
            pixels = (rng.random((64, 64, 3)) * 80).astype(np.uint8)
            pixels[16 * k : 16 * k + 24, 10:40, k] = 230
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def mobilenet_run(image_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    tmp = tmp_path_factory.mktemp("mobilenet")
    spec = tmp / "spec.yaml"
    spec.write_text(SPEC.format(root=image_folder))
    outcome = run(spec, RunOptions(out=tmp / "runs", run_id="r", progress="quiet"))
    assert outcome.exit_code in (0, 1), outcome.results.problems
    return outcome.folder


def view_of(folder: RunFolder):
    src = ReportSource.open(folder)
    return build_view(src), src


def test_architecture_fits_a_page_and_results_keep_every_module(mobilenet_run) -> None:
    view, src = view_of(mobilenet_run)
    m = view.model

    assert len(src.results.model["layers"]) == 208  # results.json: every module
    assert len(m.layers) <= 40
    assert m.layers_note == (
        f"{len(m.layers)} rows for the model's 208 modules: identical consecutive blocks share "
        "a row (×n), and a row marked “+n” holds n modules inside it (its parameters include "
        "theirs). results.json lists every module."
    )
    rows = {r.name: r for r in m.layers}
    assert rows["features.5–6"].type == "InvertedResidual ×2"
    assert rows["features.1"].folded == 14
    assert sum(r.own_params for r in m.layers) == src.results.model["total_params"]
    # two pages of weight histograms, not five
    assert len(src.results.model["weight_histograms"]) == 54
    assert len(m.histograms) == 24 and len(m.histogram_figures) == 2
    assert m.histograms[0].name == "features.0.0.weight"
    assert m.histograms[-1].name == "classifier.3.weight"
    assert m.histogram_figures[1].caption == (
        "Weight distributions of 24 of the 54 weight tensors, evenly spaced through the network "
        "(results.json has all); biases and norms left out (μ mean, σ standard deviation)."
    )


def test_a_64x64_image_is_ranked_by_named_regions(mobilenet_run) -> None:
    view, src = view_of(mobilenet_run)
    names = image_feature_names((3, 64, 64))

    assert len(names) == 64
    assert names[:2] == ["rows 0-7, cols 0-7", "rows 0-7, cols 8-15"]
    assert names[-1] == "rows 56-63, cols 56-63"
    assert local_names(src) == names  # the report names what the runner ranked
    saliency = src.results.explainers["saliency"]
    assert {r.feature for r in saliency.ranking} == set(names)
    assert np.load(mobilenet_run.path / "rankings" / "saliency.npy").shape == (2, 64)
    pixels = np.load(mobilenet_run.path / "rankings" / "saliency.pixels.npy")
    assert pixels.shape == (64 * 64,)  # the map is still drawn per pixel
    # the region's importance is the mean of its pixels'
    region = pixels.reshape(64, 64)[0:8, 8:16].mean()
    assert saliency.ranking[[r.feature for r in saliency.ranking].index(names[1])].importance == (
        pytest.approx(region, rel=1e-5)
    )
    # a ranking check names regions the same way, so it is evaluated, not "not a feature"
    check = src.results.checks[0]
    assert check.status == "pass", check.reason
    # and so does one on a global explainer's grid cells (all 12 are its top 12)
    check = src.results.checks[1]
    assert check.status == "pass", check.reason
    # permutation importance ranks its grid's cells under the same kind of name
    card = next(c for c in view.rankings.cards if c.id == "permutation_importance")
    names_pi = [f.name for f in card.features] or [card.tie_message]
    assert all(re.fullmatch(r"ch[012]: rows \d+-\d+, cols \d+-\d+", n) for n in names_pi), names_pi


def test_8x8_digits_stay_pixels() -> None:
    names = image_feature_names((1, 8, 8))
    assert names[:3] == ["r0c0", "r0c1", "r0c2"] and len(names) == 64


def test_ties_are_marked(mobilenet_run, copy_of) -> None:
    folder = copy_of(mobilenet_run)
    path = folder.path / "rankings" / "saliency.npy"
    ranking = np.load(path)
    ranking[0] = np.linspace(1.0, 0.1, 64)
    ranking[0, [1, 2, 3]] = 0.99  # ranks 2-4 tie
    np.save(path, ranking)

    view, _ = view_of(folder)
    card = next(c for c in view.rankings.cards if c.id == "saliency")

    assert [f.rank_text for f in card.features[:6]] == ["1", "=2", "=2", "=2", "5", "6"]
    assert card.has_ties and card.tie_message == ""
    order, starts = tie_groups(np.array([3.0, 1.0, 3.0, 2.0]))
    assert order.tolist() == [0, 2, 3, 1] and starts.tolist() == [0, 0, 2, 3]


def test_an_all_tied_top_k_is_shown_as_a_tie(mobilenet_run, copy_of) -> None:
    folder = copy_of(mobilenet_run)
    for explainer, value in (("saliency", 0.25), ("permutation_importance", 0.0)):
        path = folder.path / "rankings" / f"{explainer}.npy"
        ranking = np.load(path)
        ranking[0] = value
        np.save(path, ranking)

    view, _ = view_of(folder)
    cards = {c.id: c for c in view.rankings.cards}

    assert cards["saliency"].features == []
    assert cards["saliency"].tie_message == "all 64 features tie (value 0.25)"
    assert cards["permutation_importance"].tie_message == (
        "no feature changes the score when shuffled alone (all 12 features have importance 0)"
    )
    html = (render(folder, ["html"])[0]).read_text()
    assert "No top 10: all 64 features tie (value 0.25)." in html


def test_the_top_of_a_ranking_tied_past_k_is_shown_as_a_tie(mobilenet_run, copy_of) -> None:
    folder = copy_of(mobilenet_run)
    path = folder.path / "rankings" / "saliency.npy"
    ranking = np.load(path)
    ranking[0] = np.linspace(0.5, 0.1, 64)
    ranking[0, :12] = 0.75  # 12 regions tie at the top: any top 10 of them is arbitrary
    np.save(path, ranking)

    view, _ = view_of(folder)
    card = next(c for c in view.rankings.cards if c.id == "saliency")
    assert card.tie_message == (
        "the top 12 of 64 features tie (value 0.75); a top 10 of them would be an arbitrary pick"
    )


def _predictions(labels: list[int], predicted: list[int]) -> Predictions:
    logits = np.full((len(labels), 4), -5.0, dtype=np.float32)
    logits[np.arange(len(labels)), predicted] = 5.0
    return Predictions(logits=logits, labels=np.array(labels), targets=np.array(predicted))


def test_gallery_takes_classes_in_turn_misclassified_first() -> None:
    # a slice sorted by class, as image folders are: 0 0 0 0 1 1 1 1 2 2 2 2 3 3
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    predicted = list(labels)
    predicted[6], predicted[13] = 0, 2  # two mistakes

    chosen = gallery.choose(GallerySpec(samples=6), _predictions(labels, predicted), seed=0)
    # the mistakes (classes in turn), then one of each class, then the next of each
    assert chosen.tolist() == [6, 13, 0, 4, 8, 12]

    plain = GallerySpec(samples=6, misclassified_first=False)
    assert gallery.choose(plain, _predictions(labels, predicted), 0).tolist() == [
        0, 4, 8, 12, 1, 5,
    ]  # fmt: skip

    capped = GallerySpec(samples=12, per_class=1)
    assert gallery.choose(capped, _predictions(labels, predicted), 0).tolist() == [6, 13, 0, 8]


def test_feature_names_of_a_dataset_follow_its_image_size(image_folder: Path) -> None:
    from auditor.data.image_folder import ImageFolderDataSource, ImageFolderParams

    dataset = ImageFolderDataSource().load(ImageFolderParams(root=image_folder))
    assert feature_names(dataset) == image_feature_names((3, 64, 64))


class _Tree(HTMLParser):
    """Parent chain of every element, to ask what wraps what."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.found: list[list[tuple[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("img", "br", "meta", "wbr", "col", "input", "link"):
            self.found.append([*self.stack, (tag, dict(attrs).get("class") or "")])
            return
        self.stack.append((tag, dict(attrs).get("class") or ""))
        self.found.append(list(self.stack))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break


def test_html_keeps_captions_and_notes_with_what_they_describe(mobilenet_run, copy_of) -> None:
    folder = copy_of(mobilenet_run)
    html = render(folder, ["html"])[0].read_text()
    tree = _Tree()
    tree.feed(html)

    def chains(tag: str, cls: str) -> list[list[tuple[str, str]]]:
        return [c for c in tree.found if c[-1][0] == tag and cls in c[-1][1].split()]

    # every figure caption is inside its figure
    captions = [c for c in tree.found if c[-1][0] == "figcaption"]
    assert captions and all(any(tag == "figure" for tag, _ in c[:-1]) for c in captions)
    # a ranking table and its tie note share one keep-together wrapper
    tables = chains("table", "rank")
    assert tables and all(c[-2] == ("div", "keep") for c in tables)
    # the architecture heading and its note are one block kept with the table after it
    heads = [c for c in tree.found if c[-1][0] == "h3" and c[-2] == ("div", "keep-head")]
    assert heads
    # the checks table is there with its verdict column
    assert chains("table", "checks")
    assert json.loads((folder.path / "results.json").read_text())["checks"][0]["status"] == "pass"


CHECKS_SPEC = """\
version: 1
name: layout-checks
seed: 0
model:
  source: python
  class: examples.models:TabularMLP
  pythonpath: [{root}]
  init: {{in_features: 30, num_classes: 2}}
  weights: {root}/models/breast_cancer_mlp.safetensors
data:
  source: sklearn
  name: breast_cancer
  split: test
  slice: {{start: 0, stop: 32}}
explainers:
  - type: saliency
checks:
  - ranking: saliency
    name: the worst-case features decide
    top_k: 12
    must_include: [worst fractal dimension, worst symmetry, mean fractal dimension,
      fractal dimension error, symmetry error, smoothness error, worst compactness]
report:
  formats: []
"""


def test_pdf_checks_table_wraps_a_long_ranking_and_keeps_the_verdict_on_the_page(
    tmp_path: Path,
) -> None:
    from weasyprint import HTML

    from auditor.report.canvas import Canvas
    from auditor.report.pdf import RunFolderFetcher
    from auditor.report.render import render_html
    from auditor.report.view import draw, open_view

    root = Path(__file__).resolve().parents[2]
    spec = tmp_path / "spec.yaml"
    spec.write_text(CHECKS_SPEC.format(root=root))
    outcome = run(spec, RunOptions(out=tmp_path / "runs", run_id="r", progress="quiet"))
    folder = outcome.folder
    assert outcome.results.checks[0].status == "fail"  # its value lists the top 12 features

    view, src = open_view(folder)
    with Canvas(folder) as canvas:
        draw(view, src, canvas)
    html = render_html(view, canvas.images, for_print=True)
    base = folder.path.resolve().as_uri() + "/"
    document = HTML(string=html, base_url=base, url_fetcher=RunFolderFetcher(folder.path)).render()

    summary = document.pages[2]  # cover, contents, summary
    page = summary._page_box
    right = page.margin_width() - page.margin_right
    words = [b for b in page.descendants() if hasattr(b, "text") and b.text]
    verdict = [b for b in words if b.text.strip() == "FAIL"]
    assert verdict, [b.text for b in words][:40]
    assert all(b.position_x + b.width <= right + 0.5 for b in verdict)
    # nothing of the table runs past the right margin
    assert max(b.position_x + b.width for b in words) <= right + 0.5


HEADINGS = {"h2", "h3", "h4"}


def stranded_headings(document) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """(page, text) of each heading that is the last thing begun on its page, alone or with
    only its lead-in note under it, while what it introduces went on to the next page."""
    from weasyprint.formatting_structure import boxes

    found = []
    for number, page in enumerate(document.pages, 1):
        blocks = [
            b
            for b in page._page_box.descendants()
            if isinstance(b, boxes.BlockBox | boxes.TableBox)
            and b.element_tag in {*HEADINGS, "p", "table", "figure", "pre", "img"}
        ]
        blocks.sort(key=lambda b: b.position_y)
        if not blocks:
            continue
        last, before = blocks[-1], blocks[-2] if len(blocks) > 1 else None
        lead_in = last.element_tag == "p" and "small" in (last.element.get("class") or "")
        for candidate in (last, before if lead_in else None):
            if candidate is not None and candidate.element_tag in HEADINGS:
                text = "".join(t.text for t in candidate.descendants() if hasattr(t, "text"))
                found.append((number, text.strip()))
    return found


def test_pdf_leaves_no_heading_alone_at_the_foot_of_a_page(tmp_path: Path) -> None:
    """A table too long for the rest of a page takes its heading and lead-in note along (the
    breast-cancer data section: 30-row feature summary after the confusion matrix)."""
    from weasyprint import HTML

    from auditor.report.canvas import Canvas
    from auditor.report.pdf import RunFolderFetcher
    from auditor.report.render import render_html
    from auditor.report.view import draw, open_view

    root = Path(__file__).resolve().parents[2]
    spec = tmp_path / "spec.yaml"
    spec.write_text(CHECKS_SPEC.format(root=root))
    folder = run(spec, RunOptions(out=tmp_path / "runs", run_id="r", progress="quiet")).folder
    view, src = open_view(folder)
    with Canvas(folder) as canvas:
        draw(view, src, canvas)
    html = render_html(view, canvas.images, for_print=True)
    base = folder.path.resolve().as_uri() + "/"
    document = HTML(string=html, base_url=base, url_fetcher=RunFolderFetcher(folder.path)).render()
    assert len(document.pages) > 5
    assert stranded_headings(document) == []
