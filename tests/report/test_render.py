"""render(): which files a report writes, and that no format means no drawing at all."""

from __future__ import annotations

import shutil

from PIL import Image

from auditor.report import render
from auditor.report.common import bars
from auditor.run_folder import RunFolder


def test_no_format_draws_nothing(digits_run: RunFolder, copy_of) -> None:
    folder = copy_of(digits_run)
    shutil.rmtree(folder.path / "figures")
    (folder.path / "report.html").unlink()
    (folder.path / "report.pdf").unlink()
    assert render(folder, []) == []
    assert not (folder.path / "figures").exists()
    assert not (folder.path / "report.html").exists()
    assert not (folder.path / "report.pdf").exists()
    assert (folder.path / "results.json").is_file()  # the run itself is untouched


def test_rankings_draw_one_map_and_one_class_mosaic_per_local_explainer(
    digits_run: RunFolder, copy_of
) -> None:
    folder = copy_of(digits_run)
    shutil.rmtree(folder.path / "figures")
    assert render(folder, ["html"]) == [folder.path / "report.html"]
    names = sorted(p.name for p in (folder.path / "figures" / "rankings").iterdir())
    assert names == [
        "gradcam-classes.png",
        "gradcam-mean.png",
        "integrated_gradients-classes.png",
        "integrated_gradients-mean.png",
        "saliency-classes.png",
        "saliency-mean.png",
        "surrogate_tree-grid.png",
    ]
    # figures are RGB (no alpha channel for the PDF to split off), class maps 5 across
    for path in (folder.path / "figures").rglob("*.png"):
        assert Image.open(path).mode == "RGB", path
    mosaic = Image.open(folder.path / "figures" / "rankings" / "saliency-classes.png")
    assert mosaic.width == 5 * 128 + 4 * 20
    html = (folder.path / "report.html").read_text()
    assert html.count('class="hbar"') == 4 * 5 + 10  # top 5 of four explainers, ten classes
    assert '<table class="heat">' in html


def test_bars_share_one_scale() -> None:
    plain = bars([2.0, 1.0, 0.5], [1.0, None, 0.0])
    assert [(b.left, b.width) for b in plain] == [(0.0, 66.7), (0.0, 33.3), (0.0, 16.7)]
    assert (plain[0].whisker_left, plain[0].whisker_width) == (66.7, 33.3)
    assert plain[1].whisker_width == 0.0 and plain[0].zero is None
    signed = bars([1.0, -0.5])
    assert signed[0].zero == 50.0
    assert [(b.left, b.width) for b in signed] == [(50.0, 50.0), (25.0, 25.0)]
    assert bars([0.0, float("nan")])[1].width == 0.0


def test_a_re_render_removes_figures_it_no_longer_draws(digits_run: RunFolder, copy_of) -> None:
    folder = copy_of(digits_run)
    figures = folder.path / "figures"
    (figures / "rankings" / "saliency.png").write_bytes(b"an old layout's file")
    (figures / "gone").mkdir()
    (figures / "gone" / "old.png").write_bytes(b"old")
    before = {p for p in figures.rglob("*.png") if p.parent.name != "gone"} - {
        figures / "rankings" / "saliency.png"
    }
    render(folder, ["html"])
    after = set(figures.rglob("*.png"))
    assert after == before  # the same pictures as the first render, nothing else
    assert not (figures / "gone").exists()
