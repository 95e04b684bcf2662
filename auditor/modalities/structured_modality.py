"""The structured modality's decisions (``StructuredModality``), without torch: a table's
(what the report and the rankings ask). How the model is fed and explained, with torch, is
``auditor.modalities.structured`` (which re-exports these names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from auditor.modalities.base import register
from auditor.modalities.tabular import TabularModality

if TYPE_CHECKING:
    from torch import nn

    from auditor.modalities.structured import StructuredInputs


class StructuredModality(TabularModality):
    """Decisions for structured rows: the columns (across fields) are the features, as in a
    table (a categorical column as its ids); what differs is how the model is fed and where
    gradient methods run (``prepare``)."""

    name: ClassVar[str] = "structured"
    gradients_hook: ClassVar[bool] = True
    precisions: ClassVar[tuple[str, ...]] = ("float32",)

    def prepare(self, dataset: Any, module: nn.Module) -> StructuredInputs:
        from auditor.modalities.structured import StructuredInputs

        return StructuredInputs.build(dataset, module)


STRUCTURED = register(StructuredModality())
