"""The built wheel carries the report templates, and an installed (not editable) copy renders.

Until the templates travelled inside the package, ``auditor`` found them next to its source
folder, which only an editable install has: ``pip install auditor`` ran audits but could not
write a report.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from auditor.run_folder import RunFolder

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(
    p.relative_to(ROOT / "templates").as_posix()
    for p in (ROOT / "templates").rglob("*")
    if p.suffix in (".html", ".css")  # what pyproject.toml's package-data names
)


def build_wheel(tmp: Path) -> Path:
    """Build from a copy of the tracked files: a build in the checkout would reuse its
    ``build/`` folder, whose stale files setuptools packs into the next wheel."""
    source = tmp / "source"
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for name in filter(None, listed):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target, follow_symlinks=False)  # auditor/templates: a link
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp / "dist"), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = (tmp / "dist").glob("auditor-*.whl")
    return wheel


def test_the_wheel_holds_every_template_byte_for_byte_and_renders(
    tmp_path: Path, digits_run: RunFolder, copy_of
) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        packed = {
            name.removeprefix("auditor/templates/"): archive.read(name)
            for name in archive.namelist()
            if name.startswith("auditor/templates/")
        }
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        requires = sorted(
            line.removeprefix("Requires-Dist: ")
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist: torch")
        )
    assert sorted(packed) == TEMPLATES
    # torch as a range, so that the wheel installs beside a user's own torch
    assert requires == ["torch>=2.4", "torchvision>=0.19"]
    for name in TEMPLATES:
        assert packed[name] == (ROOT / "templates" / name).read_bytes(), name

    # the installed copy, ahead of the editable one on sys.path, renders a run's report
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    folder = copy_of(digits_run)
    (folder.path / "report.html").unlink()
    script = (
        "import importlib, sys; from pathlib import Path; "
        "from auditor.run_folder import RunFolder; "
        "r = importlib.import_module('auditor.report.render'); "
        "print(Path(r.__file__).resolve()); "
        "print(r.render(RunFolder.open(Path(sys.argv[1])), ['html'])[0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder.path)],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    module, report = done.stdout.split()
    assert Path(module).is_relative_to(site)  # the wheel's code ran, not the checkout's
    html = Path(report).read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "Report test audit" in html
