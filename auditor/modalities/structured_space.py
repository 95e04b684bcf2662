"""Gradient methods on structured rows, in a mixed space (Captum's layer attribution style).

The space's sample is one flat float vector: in row order, every dense column's value and
every categorical column's embedding output (``D`` values), then, last, the categorical
ids as extra channels. The model as a function of it (``_Mixed``) rebuilds the row (dense
values from the vector, ids from the channels or from the one sample being explained) and
replaces each embedding call's output with the vector's part, so gradients flow to dense
values and embedding outputs alone, as in Captum's ``LayerIntegratedGradients`` over the
embedding layers and the dense input (Sundararajan et al. 2017). A column's attribution is
the sum over its part (so Integrated Gradients stays complete); the id channels are dropped.
Path methods keep the id channels exact (the baseline has the sample's ids); noise methods
(SmoothGrad) perturb them too, so they are rounded and clamped into each column's table:
for a model that uses a column's ids only through its embedding the ids do not matter.

Baseline: a categorical column's reference embedding (its ``baseline`` id's embedding; for
``marginal`` the mean embedding of the column's values in the background sample), dense
columns the explainer's own baseline as on tabular data (``zeros``, ``mean``, ``uniform``).
Methods that draw random numbers or references run one sample at a time with that sample's
ids; the reference-drawing ones get the background rows embedded as their background.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from auditor.data.structured_table import InputField
    from auditor.explainers.base import Explainer
    from auditor.modalities.structured import Site, StructuredFeed


@dataclass(frozen=True)
class Layout:
    """Where each column sits in the space's vector: ``(start, width)`` per row position."""

    parts: tuple[tuple[int, int], ...]  # per column of the row
    categorical: tuple[int, ...]  # row positions of categorical columns (id channels order)
    dense: tuple[int, ...]
    width: int  # the values, without the id channels

    @property
    def size(self) -> int:
        return self.width + len(self.categorical)


class _Mixed(nn.Module):
    """The model as a function of the space's vectors ``(B, size)``; ``ids`` ``(1, C)``: the
    one sample's row whose ids are used (else the id channels, rounded)."""

    def __init__(
        self,
        feed: StructuredFeed,
        layout: Layout,
        sites: dict[int, Site],
        columns: int,
        ids: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.feed = feed
        self.layout = layout
        self.sites = sites  # row position -> site
        self.columns = columns
        self.ids = ids

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lay, b = self.layout, x.shape[0]
        row = x.new_zeros(b, self.columns)
        if lay.dense:
            starts = [lay.parts[i][0] for i in lay.dense]
            row = row.index_copy(1, torch.tensor(lay.dense), x[:, starts])
        if lay.categorical:
            cat = torch.tensor(lay.categorical)
            if self.ids is not None:
                ids = self.ids[:, cat].expand(b, -1)
            else:  # noise methods perturb the channels too: rounded into each table
                ids = x[:, lay.width :].detach().round()
                top = torch.tensor([self.sites[i].rows - 1 for i in lay.categorical])
                ids = torch.minimum(ids.clamp_min(0), top.to(ids.dtype))
            row = row.index_copy(1, cat, ids.to(x.dtype))
        by_call: dict[tuple[str, int], list[tuple[int, Site]]] = {}
        for i, site in self.sites.items():
            by_call.setdefault((site.layer, site.call), []).append((i, site))
        modules = dict(self.feed.named_modules())
        counts: dict[str, int] = {}
        handles = []

        def hook(name: str) -> Any:
            def replace_output(_m: nn.Module, _i: Any, out: torch.Tensor) -> torch.Tensor:
                call = counts.get(name, 0)
                counts[name] = call + 1
                mine = by_call.get((name, call))
                if not mine:
                    return out
                if mine[0][1].position is None:
                    i, site = mine[0]
                    start, width = lay.parts[i]
                    return x[:, start : start + width].to(out.dtype)
                slots = list(out.unbind(dim=1))
                for i, site in mine:
                    start, width = lay.parts[i]
                    slots[site.position or 0] = x[:, start : start + width].to(out.dtype)
                return torch.stack(slots, dim=1)

            return replace_output

        for name in {site.layer for site in self.sites.values()}:
            handles.append(modules[name].register_forward_hook(hook(name)))
        try:
            return self.feed(row)
        finally:
            for handle in handles:
                handle.remove()


@dataclass(frozen=True)
class StructuredSpace:
    """Runs gradient explainers in the mixed space (module docstring); ``explain`` returns
    ``(N, C)`` float32 per-column attributions."""

    fields: tuple[InputField, ...]
    sites: dict[str, Site]
    references: dict[str, int | None]
    columns: tuple[str, ...]
    background: torch.Tensor | None = field(default=None, compare=False)
    #: ``draws(inputs, k=8)`` -> ``(N, k, C)`` removed copies of each sample (several marginal
    #: draws), for methods that average over references (feature ablation, LIME, KernelSHAP);
    #: None where no column is removed by a marginal draw.
    draws: Any = field(default=None, compare=False)

    def layout(self) -> Layout:
        parts, start = [], 0
        categorical, dense = [], []
        for f in self.fields:
            for column in f.columns:
                i = len(parts)
                if f.categorical:
                    site = self.sites.get(column)
                    if site is None:
                        raise RuntimeError(
                            f"categorical column '{column}' has no embedding to attribute at"
                        )
                    parts.append((start, site.dim))
                    start += site.dim
                    categorical.append(i)
                else:
                    parts.append((start, 1))
                    start += 1
                    dense.append(i)
        return Layout(tuple(parts), tuple(categorical), tuple(dense), start)

    def _row_sites(self) -> dict[int, Site]:
        return {self.columns.index(c): s for c, s in self.sites.items()}

    def embed(self, feed: StructuredFeed, rows: torch.Tensor) -> torch.Tensor:
        """Rows ``(N, C)`` as the space's vectors ``(N, size)``."""
        lay = self.layout()
        modules = dict(feed.named_modules())
        out = torch.zeros(len(rows), lay.size)
        with torch.no_grad():
            for i, (start, width) in enumerate(lay.parts):
                if i in lay.categorical:
                    site = self.sites[self.columns[i]]
                    ids = rows[:, i].round().to(torch.long)
                    out[:, start : start + width] = modules[site.layer](ids).to(torch.float32)
                else:
                    out[:, start] = rows[:, i].to(torch.float32)
            if lay.categorical:
                out[:, lay.width :] = rows[:, list(lay.categorical)].to(torch.float32)
        return out

    def reference(self, feed: StructuredFeed, kind: str | None, seed: int = 0) -> Any:
        """``reference(vectors)``: categorical parts at the reference embedding, dense values
        at the explainer's own baseline (``kind``), id channels kept."""
        lay = self.layout()
        modules = dict(feed.named_modules())
        background = self.background
        refs: dict[int, torch.Tensor] = {}
        with torch.no_grad():
            for i in lay.categorical:
                column = self.columns[i]
                site = self.sites[column]
                table = modules[site.layer]
                ref = self.references.get(column)
                if ref is not None:
                    refs[i] = table(torch.tensor([ref])).to(torch.float32)[0]
                else:
                    if background is None:
                        raise RuntimeError("a marginal reference needs the background sample")
                    ids = background[:, i].round().to(torch.long)
                    refs[i] = table(ids).to(torch.float32).mean(dim=0)
        dense_cols = list(lay.dense)
        dense_starts = [lay.parts[i][0] for i in dense_cols]
        dense_bg = None if background is None else background[:, dense_cols].to(torch.float32)

        def reference(x: torch.Tensor) -> torch.Tensor:
            out = x.detach().clone()
            for i, vector in refs.items():
                start, width = lay.parts[i]
                out[:, start : start + width] = vector
            if dense_cols:
                from auditor.explainers.baselines import make_baseline

                values = x[:, dense_starts].detach()
                usable = kind if kind in ("zeros", "mean", "uniform") else "zeros"
                if usable == "mean" and dense_bg is None:
                    usable = "zeros"
                out[:, dense_starts] = make_baseline(usable, values, dense_bg, seed=seed)  # type: ignore[arg-type]
            return out

        return reference

    def _reduce(self, attributions: torch.Tensor) -> torch.Tensor:
        lay = self.layout()
        columns = [attributions[:, s : s + w].sum(dim=1) for s, w in lay.parts]
        return torch.stack(columns, dim=1).to(torch.float32)

    def explain(
        self, explainer: Explainer, rows: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        from auditor.modalities.structured import StructuredFeed

        feed = explainer.model
        if not isinstance(feed, StructuredFeed):
            raise TypeError("a structured explainer's model must be a StructuredFeed")
        lay, sites = self.layout(), self._row_sites()
        embedded = self.embed(feed, rows)
        kind = getattr(explainer.params, "baseline", None)
        reference = self.reference(
            feed, kind if isinstance(kind, str) else None, explainer.context.seed
        )
        background = None if self.background is None else self.embed(feed, self.background)
        if explainer.stochastic or explainer.uses_background:
            parts = []
            for i in range(len(rows)):
                model = _Mixed(feed, lay, sites, len(self.columns), rows[i : i + 1])
                with _in_space(explainer, model, background, reference, lay.size):
                    parts.append(explainer.explain_dense(embedded[i : i + 1], targets[i : i + 1]))
            attr = torch.cat(parts)
        else:
            model = _Mixed(feed, lay, sites, len(self.columns))
            with _in_space(explainer, model, background, reference, lay.size):
                attr = explainer.explain_dense(embedded, targets)
        return self._reduce(attr)

    @torch.no_grad()
    def reference_outputs(
        self,
        feed: nn.Module,
        rows: torch.Tensor,
        kind: str | None = None,
        params: Any = None,
        seed: int = 0,
    ) -> torch.Tensor:
        """The model's outputs at a gradient method's baseline: categorical columns at their
        reference embeddings, dense columns at ``kind`` (or the ``baseline`` of the explainer's
        ``params``; default zeros), as ``explain`` integrates from."""
        if kind is None and isinstance(getattr(params, "baseline", None), str):
            kind = params.baseline
        from auditor.modalities.structured import StructuredFeed

        if not isinstance(feed, StructuredFeed):
            raise TypeError("a structured explainer's model must be a StructuredFeed")
        lay = self.layout()
        embedded = self.embed(feed, rows)
        model = _Mixed(feed, lay, self._row_sites(), len(self.columns))
        return model(self.reference(feed, kind, seed)(embedded))


@contextmanager
def _in_space(
    explainer: Explainer,
    model: nn.Module,
    background: torch.Tensor | None,
    reference: Any,
    size: int,
) -> Iterator[None]:
    """The explainer with ``model`` on the space's vectors, as on tabular data."""
    saved = explainer.model, explainer.context
    explainer.model = model
    explainer.context = replace(
        explainer.context,
        modality="tabular",
        input_shape=(size,),
        background=background,
        gradients=None,
        inference=None,
        embedding=None,
        removed=reference,
    )
    try:
        yield
    finally:
        explainer.model, explainer.context = saved
