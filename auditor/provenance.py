"""What produced a run: package versions, machine, threads."""

from __future__ import annotations

import platform
import socket
from collections.abc import Sequence
from importlib import metadata

import torch

PACKAGES = ("auditor", "torch", "torchvision", "captum", "shap", "scikit-learn", "numpy")


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Python's version and each named distribution's ("not installed" when absent)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine() -> dict[str, str | int]:
    return {"hostname": socket.gethostname(), "threads": torch.get_num_threads(), "device": "cpu"}
