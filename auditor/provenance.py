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


def machine(device: torch.device | None = None) -> dict[str, str | int]:
    """Host name, torch's CPU threads and the run's device (``cpu`` or ``cuda:0 (name)``)."""
    from auditor.device import device_label

    return {
        "hostname": socket.gethostname(),
        "threads": torch.get_num_threads(),
        "device": device_label(device or torch.device("cpu")),
    }
