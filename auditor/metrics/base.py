"""Base class of metrics: what they measure, which way is better, what they need."""

from __future__ import annotations

from typing import ClassVar, Literal

from auditor.plugin import Plugin


class Metric(Plugin):
    """Base of every metric plugin."""

    kind: ClassVar[str] = "metric"
    direction: ClassVar[Literal["higher", "lower"]] = "higher"
    scope: ClassVar[Literal["explainer", "model"]] = "explainer"
    modalities: ClassVar[frozenset[str]] = frozenset({"image", "tabular"})
