"""Shared, session-wide fixtures of the metric tests: explained digits."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from metric_setup import Audit, digits_audit


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Audit:
    """48 held-out digits, the trained CNN, and the explainers most tests measure."""
    audit = digits_audit(tmp_path_factory.mktemp("digits"), n=48, batch_size=16)
    audit.explain("integrated_gradients", {"n_steps": 32})
    audit.explain("occlusion")
    audit.explain("saliency")
    audit.explain("guided_backprop")
    return audit
