"""report.html: self-contained, escaped, and clean in a real headless browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageStat

from auditor.run_folder import RunFolder

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def html_of(folder: RunFolder) -> str:
    return (folder.path / "report.html").read_text(encoding="utf-8")


def test_html_is_self_contained(digits_run: RunFolder) -> None:
    html = html_of(digits_run)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    sources = re.findall(r'\ssrc="([^"]*)"', html)
    assert sources and all(
        s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for s in sources
    )
    for href in re.findall(r'\shref="([^"]*)"', html):
        assert href.startswith("#"), href  # in-page links only
    assert not re.search(r"url\((?!#)", html)  # no CSS resource either
    assert "@import" not in html


def test_html_shows_every_section_and_gallery_cell(digits_run: RunFolder) -> None:
    html = html_of(digits_run)
    ids = re.findall(r'<section id="([a-z]+)"', html)
    assert ids == [
        "summary",
        "model",
        "data",
        "rankings",
        "gallery",
        "surrogates",
        "quality",
        "failures",
        "appendix",
    ]
    # each gallery picture opens full size through an in-page anchor (no JavaScript)
    anchors = re.findall(r'<a class="open" href="#(full-[^"]+)">', html)
    assert len(anchors) == 6 * 3
    for anchor in anchors:
        assert f'<figure class="zoom" id="{anchor}">' in html
    assert ">PASS<" in html
    # the spec's description is data: escaped, not markup
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html and "<b>not bold</b>" not in html


def test_hostile_class_and_feature_names_are_text(hostile_run: RunFolder, hostile_names) -> None:
    evil_class, evil_feature = hostile_names
    html = html_of(hostile_run)
    assert evil_class not in html and evil_feature not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert "a&amp;b" in html


def _browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed ({CHROMIUM}); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    return sync_api.sync_playwright()


def _open(playwright, user_data: Path):
    return playwright.chromium.launch_persistent_context(
        str(user_data),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 900},
    )


def test_chromium_makes_no_request_and_renders(digits_run: RunFolder, tmp_path: Path) -> None:
    report = digits_run.path / "report.html"
    with _browser() as p:
        context = _open(p, tmp_path / "profile")
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(report.as_uri(), wait_until="load")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        # the full-size view of a gallery picture is one click away
        first = page.locator("a.open").first
        anchor = first.get_attribute("href")
        first.click()
        zoom = page.locator(f"figure{anchor}")
        box = zoom.bounding_box()
        zoomed = tmp_path / "zoom.png"
        page.screenshot(path=str(zoomed))
        context.close()
    assert [u for u in requests if not u.startswith("data:")] == [report.as_uri()]
    assert dialogs == []
    image = Image.open(shot).convert("L")
    assert image.size[0] == 1400 and image.size[1] > 3000  # a long page, every section
    stats = ImageStat.Stat(image)
    assert stats.stddev[0] > 20  # not blank: text, tables and figures
    assert box is not None and box["width"] >= 1400 * 0.99  # the overlay covers the window
    pixels = np.asarray(Image.open(zoomed).convert("L"), dtype=np.float64)
    assert pixels.mean() < 100  # the dark backdrop of the full-size view


def test_chromium_shows_hostile_names_as_text(
    hostile_run: RunFolder, hostile_names, tmp_path: Path
) -> None:
    report = hostile_run.path / "report.html"
    with _browser() as p:
        context = _open(p, tmp_path / "profile")
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(report.as_uri(), wait_until="load")
        text = page.inner_text("body")
        injected = page.locator('img[src="x"], script').count()
        context.close()
    assert dialogs == [] and injected == 0
    assert hostile_names[0] in text and hostile_names[1] in text
