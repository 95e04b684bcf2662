"""Structured data: named input fields (``data.inputs``), dense and categorical columns.

A sample is one float32 row of every field's columns in field order (ids as exact floats),
so every stage sees one tensor as for tables; ``StructuredFeed`` splits a batch into the
fields and calls the model with them (``model(user=..., item=..., dense=...)`` or
positionally): a categorical field becomes int64, ``(N,)`` for one column, ``(N, k)`` for
several; a dense field float32 ``(N, k)``.

- Removing a feature (feature ablation, LIME, KernelSHAP, deletion, insertion, the
  references of completeness) sets a categorical column to its reference id (``baseline:``
  a value, the ``unknown`` value, or ``marginal``: one draw per sample from the column's
  values in the data other than the sample's own, in proportion to their counts, seeded by
  the run's seed and the sample) and a dense column to the background mean: never an average
  of ids or id 0 (``StructuredInputs.removed``).
- Gradient methods run in a mixed space (``auditor.modalities.structured_space``): dense
  columns as they are, every categorical column at its embedding's output, as Captum's
  ``LayerIntegratedGradients`` does; a column's attribution is the sum over the embedding
  dimension. The embedding of a column is ``embedding_layers[column]`` or found by one
  forward pass (``find_sites``); a categorical column without one is refused for gradient
  methods at planning time.
- Features are the columns, by name, across fields: rankings and checks name columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from auditor.errors import SpecError, SpecIssue
from auditor.modalities.feed import ModelFeed
from auditor.modalities.structured_modality import STRUCTURED as STRUCTURED  # re-exported
from auditor.modalities.structured_modality import (
    StructuredModality as StructuredModality,  # re-exported
)
from auditor.suggest import did_you_mean

if TYPE_CHECKING:
    from auditor.data.structured_table import InputField, StructuredDataset

#: Removed copies per sample where a method averages over marginal draws (feature ablation,
#: LIME; KernelSHAP's background): one draw is a one-sample estimate of the expectation.
DRAWS = 8
#: Rows of the forward pass that finds each categorical column's embedding.
PROBE_ROWS = 256
#: Explainers that remove features rather than differentiate: they work on every column.
PERTURBATION_EXPLAINERS = (
    "feature_ablation",
    "kernel_shap",
    "lime",
    "occlusion",
    "permutation_importance",
    "surrogate_tree",
    "surrogate_linear",
    "surrogate_forest",
)


# -- calling the model --------------------------------------------------------------------
class StructuredFeed(ModelFeed):
    """The model as a function of one row per sample ``(N, C)``: split into its fields,
    categorical ones as int64 (float ids are rounded); its layers under their own names
    (``user_emb``, not ``inner.user_emb``: ``ModelFeed``)."""

    def __init__(self, module: nn.Module, fields: list[InputField], keyword: bool) -> None:
        super().__init__(module)
        self.fields = list(fields)
        self.keyword = keyword

    def split(self, rows: torch.Tensor) -> list[torch.Tensor]:
        """One tensor per field: categorical ``(N,)``/``(N, k)`` int64, dense ``(N, k)``."""
        out = []
        for f in self.fields:
            part = rows[:, f.start : f.start + len(f.columns)]
            if f.categorical:
                part = part.detach().round().to(torch.long)
                if len(f.columns) == 1:
                    part = part[:, 0]
            out.append(part)
        return out

    def arguments(self, rows: torch.Tensor) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """The model's positional and keyword arguments for rows ``(N, C)``."""
        parts = self.split(rows)
        if self.keyword:
            return [], {f.name: part for f, part in zip(self.fields, parts, strict=True)}
        return parts, {}

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        args, kwargs = self.arguments(rows)
        return self.inner(*args, **kwargs)


# -- where each categorical column is embedded ----------------------------------------------
@dataclass(frozen=True)
class Site:
    """Where a categorical column enters an ``nn.Embedding``: the layer, which of its calls
    in one forward pass, the column's index in that call's ``(N, k)`` input (None: the input
    is the column alone, ``(N,)``), and the table's size."""

    layer: str
    call: int
    position: int | None
    rows: int
    dim: int


@dataclass(frozen=True)
class _Call:
    layer: str
    call: int
    ids: torch.Tensor
    rows: int
    dim: int


def embedding_modules(module: nn.Module) -> dict[str, nn.Embedding]:
    return {n: m for n, m in module.named_modules() if n and isinstance(m, nn.Embedding)}


def probe_calls(feed: StructuredFeed, rows: torch.Tensor, loc: tuple) -> list[_Call]:
    """Every ``nn.Embedding`` call of one forward pass on ``rows``, with its ids. Ids beyond
    a table are clamped for the pass (the range is checked afterwards, with names)."""
    calls: list[_Call] = []
    counts: dict[str, int] = {}
    handles = []

    def hook(name: str, layer: nn.Embedding) -> Any:
        def pre(_m: nn.Module, args: tuple) -> tuple:
            ids = args[0]
            calls.append(_Call(name, counts.get(name, 0), ids.detach().clone(), *_table(layer)))
            counts[name] = counts.get(name, 0) + 1
            return (ids.clamp(0, layer.num_embeddings - 1), *args[1:])

        return pre

    for name, layer in embedding_modules(feed).items():
        handles.append(layer.register_forward_pre_hook(hook(name, layer)))
    try:
        with torch.no_grad():
            feed(rows)
    except Exception as exc:  # the fields do not fit the model's forward
        args, kwargs = feed.arguments(rows[:2])
        shapes = [f"{tuple(a.shape)} {a.dtype}" for a in args] or [
            f"{k}={tuple(v.shape)} {v.dtype}" for k, v in kwargs.items()
        ]
        raise SpecError.at(
            loc,
            f"calling the model with the fields ({', '.join(shapes)}) failed: "
            f"{type(exc).__name__}: {exc}",
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _table(layer: nn.Embedding) -> tuple[int, int]:
    return int(layer.num_embeddings), int(layer.embedding_dim)


def find_sites(
    feed: StructuredFeed, dataset: StructuredDataset
) -> tuple[dict[str, Site], dict[str, str]]:
    """Each categorical column's embedding (``Site``), and for those without one why not.
    A column named in ``embedding_layers`` that the layer is not fed is a SpecError."""
    inputs = dataset.inputs
    chosen = np.unique(
        np.concatenate(
            [
                np.arange(min(PROBE_ROWS, len(inputs))),
                inputs[:, dataset.categorical].argmax(dim=0).numpy()
                if dataset.categorical
                else np.zeros(0, dtype=np.int64),
            ]
        )
    )
    rows = inputs[torch.as_tensor(chosen)]
    calls = probe_calls(feed, rows, ("data", "inputs"))
    modules = embedding_modules(feed)
    sites: dict[str, Site] = {}
    missing: dict[str, str] = {}
    for f in dataset.fields:
        if not f.categorical:
            continue
        field_ids = rows[:, f.start : f.start + len(f.columns)].round().to(torch.long)
        for j, column in enumerate(f.columns):
            found = [
                Site(c.layer, c.call, position, c.rows, c.dim)
                for c in calls
                for position in _positions(c.ids, field_ids, j)
            ]
            named = dataset.embedding_layers.get(column)
            if named is not None:
                found = _named_site(feed, modules, named, column, found)
                sites[column] = found
            elif len(found) == 1:
                sites[column] = found[0]
            elif not found:
                missing[column] = "no nn.Embedding of the model is fed it"
            else:
                layers = sorted({s.layer for s in found})
                missing[column] = (
                    f"it matches several embedding inputs ({', '.join(layers)}); name one in "
                    f"data.embedding_layers"
                )
    return sites, missing


def _positions(ids: torch.Tensor, field_ids: torch.Tensor, j: int) -> list[int | None]:
    """Whether an embedding call's ids are column ``j`` alone (None) or the whole field with
    the column at index ``j`` (j); empty if neither."""
    column = field_ids[:, j]
    if ids.dim() == 1 and ids.shape == column.shape and torch.equal(ids, column):
        return [None]
    if ids.dim() == 2 and ids.shape == field_ids.shape and torch.equal(ids, field_ids):
        return [j]
    return []


def _named_site(
    feed: StructuredFeed,
    modules: dict[str, nn.Embedding],
    named: str,
    column: str,
    found: list[Site],
) -> Site:
    loc = ("data", "embedding_layers", column)
    if named not in modules:
        every = [n for n, _ in feed.named_modules() if n]
        kind = (
            f" ({type(dict(feed.named_modules())[named]).__name__}, not an nn.Embedding)"
            if named in every
            else f".{did_you_mean(named, every)}"
        )
        raise SpecError.at(
            loc,
            f"the model has no embedding layer '{named}'{kind} Its nn.Embedding layers: "
            f"{', '.join(modules) or 'none'}",
        )
    mine = [s for s in found if s.layer == named]
    if len(mine) != 1:
        fed = sorted({s.layer for s in found})
        raise SpecError.at(
            loc,
            f"layer '{named}' is not fed column '{column}' in a forward pass"
            + (f"; column '{column}' feeds {', '.join(fed)}" if fed else ""),
        )
    return mine[0]


def range_issues(dataset: StructuredDataset, sites: dict[str, Site]) -> list[SpecIssue]:
    """A categorical column's largest id must be below its embedding's ``num_embeddings``."""
    issues = []
    for f in dataset.fields:
        for j, column in enumerate(f.columns):
            site = sites.get(column)
            if site is None:
                continue
            largest = int(dataset.inputs[:, f.start + j].max())
            if largest >= site.rows:
                issues.append(
                    SpecIssue(
                        f"field '{f.name}': column '{column}' has ids up to {largest}, but its "
                        f"embedding '{site.layer}' has {site.rows} rows (ids 0..{site.rows - 1}); "
                        "use the vocabulary the model was trained with",
                        f.loc or ("data", "inputs", f.name),
                    )
                )
    return issues


def _draw(rng: np.random.Generator, values: np.ndarray, counts: np.ndarray, own: float) -> int:
    """One id drawn from the column's values in the data, in proportion to their counts, other
    than the sample's own (removing a value must change it); the own id if it is the only one."""
    weights = np.where(values == round(own), 0, counts).astype(np.float64)
    if weights.sum() == 0:
        return round(own)
    return int(values[rng.choice(len(values), p=weights / weights.sum())])


# -- what a structured run needs -------------------------------------------------------------
@dataclass(frozen=True)
class StructuredInputs:
    """The model fed with rows, where gradient methods run, what removing a value means."""

    feed: StructuredFeed
    space: Any  # structured_space.StructuredSpace
    vocab: list[str]  # the column names (the run's feature names)
    fields: list[InputField]
    sites: dict[str, Site]
    missing: dict[str, str]
    references: dict[str, int | None]  # categorical column -> reference id, None: marginal
    #: categorical column -> its distinct ids in the data and how often each occurs
    marginals: dict[str, tuple[np.ndarray, np.ndarray]]
    vocabularies: dict[str, list[str]]
    dense_mean: torch.Tensor  # (C,) the mean row (background, once bound)
    seed: int = 0
    summary: list[dict[str, object]] = field(default_factory=list)

    @classmethod
    def build(cls, dataset: StructuredDataset, module: nn.Module) -> StructuredInputs:
        """From structured data and the loaded model: each categorical column's embedding,
        its ids within it; a SpecError (at ``data.inputs.<field>``) otherwise."""
        from auditor.modalities.structured_space import StructuredSpace

        feed = StructuredFeed(module, dataset.fields, dataset.keyword)
        sites, missing = find_sites(feed, dataset)
        issues = range_issues(dataset, sites)
        if issues:
            raise SpecError(issues)
        columns = list(dataset.feature_names or [])
        marginals = {
            c: np.unique(
                dataset.inputs[:, columns.index(c)].round().to(torch.long).numpy(),
                return_counts=True,
            )
            for c, ref in dataset.references.items()
            if ref is None
        }
        layers = {c: s.layer for c, s in sites.items()}
        space = StructuredSpace(
            fields=tuple(dataset.fields),
            sites=dict(sites),
            references=dict(dataset.references),
            columns=tuple(columns),
        )
        return cls(
            feed=feed,
            space=space,
            vocab=columns,
            fields=list(dataset.fields),
            sites=sites,
            missing=missing,
            references=dict(dataset.references),
            marginals=marginals,
            vocabularies=dict(dataset.vocabularies),
            dense_mean=dataset.inputs.mean(dim=0),
            summary=dataset.summary(layers),
        )

    def bind(self, background: torch.Tensor, seed: int) -> StructuredInputs:
        """The same with the run's background (dense columns' mean) and seed."""
        bound = replace(self, dense_mean=background.to(torch.float32).mean(dim=0), seed=int(seed))
        draws = bound.reference_draws if bound.marginals else None
        space = replace(self.space, background=background, draws=draws)
        return replace(bound, space=space)

    def removed(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` with every feature removed: categorical columns at their reference id
        (marginal: one seeded draw per sample and column), dense columns at the mean."""
        from auditor.explainers.base import sample_seed

        out = self.dense_mean.to(inputs.dtype).expand_as(inputs).clone()
        for f in self.fields:
            if not f.categorical:
                continue
            for j, column in enumerate(f.columns):
                i = f.start + j
                ref = self.references.get(column)
                if ref is not None:
                    out[..., i] = float(ref)
        marginal = [
            (f.start + j, c)
            for f in self.fields
            if f.categorical
            for j, c in enumerate(f.columns)
            if self.references.get(c) is None
        ]
        if marginal:
            flat = inputs.reshape(-1, inputs.shape[-1])
            drawn = out.reshape(-1, inputs.shape[-1])
            for r in range(len(flat)):
                rng = np.random.default_rng(sample_seed(self.seed, flat[r]))
                for i, column in marginal:
                    drawn[r, i] = float(_draw(rng, *self.marginals[column], float(flat[r, i])))
            out = drawn.reshape(inputs.shape)
        return out

    def reference_draws(self, inputs: torch.Tensor, k: int = DRAWS) -> torch.Tensor:
        """``(N, k, C)``: ``k`` removed copies of each sample, for a method that integrates a
        feature out over several references (KernelSHAP's background): the first is
        ``removed(inputs)``, the others further seeded draws for ``marginal`` columns (the same
        for fixed references and dense columns)."""
        from auditor.explainers.base import sample_seed

        first = self.removed(inputs)
        out = first.unsqueeze(1).repeat(1, k, 1)
        marginal = [
            (f.start + j, c)
            for f in self.fields
            if f.categorical
            for j, c in enumerate(f.columns)
            if self.references.get(c) is None
        ]
        for r in range(len(inputs)) if marginal else ():
            rng = np.random.default_rng(sample_seed(self.seed + 1, inputs[r]))
            for d in range(1, k):
                for i, column in marginal:
                    out[r, d, i] = float(_draw(rng, *self.marginals[column], float(inputs[r, i])))
        return out

    def explainer_issues(self, explainers: list[Any]) -> list[SpecIssue]:
        """A gradient explainer with a categorical column that has no embedding: refused."""
        if not self.missing:
            return []
        from auditor import registries

        issues = []
        for i, entry in enumerate(explainers):
            try:
                cls = registries.explainers.get(entry.type)
            except Exception:
                continue
            if not getattr(cls, "differentiable", False):
                continue
            why = "; ".join(f"'{c}': {reason}" for c, reason in self.missing.items())
            issues.append(
                SpecIssue(
                    f"explainer '{entry.type}' differentiates the model, which it can do for a "
                    f"categorical column only at its embedding's output, and {why}. Name the "
                    "layer in data.embedding_layers, or use an explainer that removes values: "
                    f"{', '.join(PERTURBATION_EXPLAINERS)}",
                    ("explainers", i, "type"),
                )
            )
        return issues

    def save(self, folder: Any, dataset: Any, indices: np.ndarray) -> None:
        """``categories.json``: the fields and each categorical column's values by id, so the
        report shows labels, not ids (data only)."""
        payload = {
            "fields": self.summary,
            "vocabularies": self.vocabularies,
            "references": self.references,
        }
        folder.write_text("categories.json", json.dumps(payload, indent=1))

    def save_fields(self, folder: Any, result: Any) -> None:
        """``attributions/<id>/<field>.npy`` ``(N, k)``: a local explainer's per-column
        attributions split by field (``attributions/<id>.npy`` stays ``(N, C)``)."""
        from auditor.run_folder import atomic_save_npy

        path = getattr(result, "attribution_file", None)
        if result.scope != "local" or not path:
            return
        attributions = np.load(folder.path / path, mmap_mode="r")
        for f in self.fields:
            part = np.ascontiguousarray(attributions[:, f.start : f.start + len(f.columns)])
            atomic_save_npy(folder.file(f"attributions/{result.id}/{f.name}.npy"), part)
