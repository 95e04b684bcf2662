"""auditor installs beside the user's torch; this repository tests exact versions.

pyproject.toml declares ranges (a pin of torch==X made auditor impossible to install into an
environment with any other torch); constraints.txt pins what CI tests, and the Makefile's
install step, which `make test` and `make demo` run, installs through it.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            pins[name.strip()] = pinned.strip()
    return pins


def test_torch_and_torchvision_are_declared_as_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {Requirement(d).name: Requirement(d) for d in project["dependencies"]}
    for name, lowest in (("torch", "2.4"), ("torchvision", "0.19")):
        spec = declared[name].specifier
        assert str(spec) == f">={lowest}", (name, str(spec))
    assert not any("==" in str(r.specifier) for r in declared.values())


def test_every_declared_dependency_has_a_tested_pin() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {Requirement(d).name.lower() for d in project["dependencies"]}
    for extra in ("dev", "ray"):  # make test installs both
        names |= {Requirement(d).name.lower() for d in project["optional-dependencies"][extra]}
    pinned = {n.lower() for n in constraints()}
    assert sorted(names - pinned - {"setuptools"}) == []


def test_the_environment_holds_the_pinned_versions() -> None:
    for name, pinned in constraints().items():
        assert version(name) == pinned, f"{name}: installed {version(name)}, pinned {pinned}"


def test_make_installs_through_the_constraints_file() -> None:
    makefile = (ROOT / "Makefile").read_text()
    install = re.search(r"^\$\(STAMP\):(.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert install is not None
    assert "constraints.txt" in install.group(1)  # a changed pin reinstalls
    assert "pip install --quiet -c constraints.txt -e '.[dev,ray]'" in install.group(2)
    for target in ("test", "demo"):
        assert re.search(rf"^{target}: install\b", makefile, re.M), target
