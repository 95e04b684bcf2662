"""Fixtures shared by the whole suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/plugin_pkg pip-installed into a folder of its own (not into the venv).

    Put it on PYTHONPATH of a subprocess to have a third-party plugin package installed.
    """
    target = tmp_path_factory.mktemp("plugin") / "site"
    subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(ROOT / "tests" / "plugin_pkg"),
        ],
        check=True,
        capture_output=True,
    )
    return target
