"""auditor: a declarative, YAML-driven batch auditor for PyTorch models."""

__version__ = "0.1.0"
