"""Helpers for end-to-end runs of the example specs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AUDITOR = Path(sys.executable).parent / "auditor"


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AUDITOR), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def read_results(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "results.json").read_text())


@pytest.fixture
def digits_spec() -> Path:
    return ROOT / "audits" / "digits_cnn.yaml"


@pytest.fixture
def cancer_spec() -> Path:
    return ROOT / "audits" / "breast_cancer_mlp.yaml"
