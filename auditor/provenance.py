"""What produced a run: package versions, machine, threads."""

from __future__ import annotations

import platform
import socket
from importlib import metadata

import torch

PACKAGES = ("auditor", "torch", "torchvision", "captum", "shap", "scikit-learn", "numpy")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine() -> dict[str, str | int]:
    return {"hostname": socket.gethostname(), "threads": torch.get_num_threads(), "device": "cpu"}
