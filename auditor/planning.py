"""Planning: every problem of a spec that needs the data's shape or the model, before any
explainer runs.

``auditor run`` plans after loading the model and the data and before opening the run
folder, so a bad window or a misspelled feature is a spec error (exit 2) with nothing
written, never a failed explainer (exit 3) or a failed check (exit 1) after a long run.
``auditor validate`` plans with what it knows without loading anything (``model=None``,
the shape when the data source can tell it cheaply).

What is checked, each issue at the spec path of the value at fault:

- an explainer that does not apply to the data's modality (``explainers[i].type``);
- params that depend on the input's shape, by each plugin's own rule
  (``Explainer.input_issues`` / ``Metric.input_issues``: occlusion's window and stride,
  the grid of global explainers, image cells and patches);
- what needs the model, when one is given (``Explainer.model_issues``): layer names, and
  for the CAMs that the layer runs once and outputs feature maps;
- explainers that hook the model's modules, on a model that is or holds TorchScript;
- layer names in ``report.model.activations`` (the feature maps the report shows);
- feature names in ranking checks, against the names the checked explainer ranks: tabular
  columns; image pixels or regions (local explainers); the cells of a global explainer's
  own grid (permutation importance, surrogates on images).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel

from auditor import registries
from auditor.errors import Loc, SpecIssue
from auditor.explainers.base import Explainer
from auditor.explainers.passes import contains_torchscript
from auditor.layer_stats import activation_issues
from auditor.modalities import modality_of
from auditor.spec.model import AuditSpec, RankingCheck
from auditor.suggest import did_you_mean, join_names

#: Names listed at most in a message; the count of the rest follows.
LISTED = 10


def plan_issues(
    spec: AuditSpec,
    explainer_params: dict[str, BaseModel],
    metric_params: dict[str, BaseModel],
    *,
    modality: str,
    input_shape: tuple[int, ...] | None,
    feature_names: list[str] | None,
    model: torch.nn.Module | None = None,
) -> list[SpecIssue]:
    """Every problem of ``spec`` with this data (and model, if given), in spec order.

    ``input_shape`` is one sample's shape (no batch dim), None when unknown; issues carry
    their spec path and no line (callers locate them with their ``SpecDocument``).
    """
    issues: list[SpecIssue] = []
    scripted = model is not None and contains_torchscript(model)
    for i, entry in enumerate(spec.explainers):
        cls = _plugin(registries.explainers, entry.type)
        if cls is None:
            continue  # an unknown or broken plugin is reported by validation
        at: Loc = ("explainers", i)
        if modality not in cls.modalities:
            issues.append(SpecIssue(_modality_message(entry.type, cls, modality), (*at, "type")))
            continue
        if scripted and _needs_hooks(cls, modality):
            issues.append(SpecIssue(_torchscript_message(entry.type, modality), (*at, "type")))
            continue
        params = explainer_params.get(entry.key)
        if params is None:
            continue
        if input_shape is not None:
            issues += _within(at, cls.input_issues(params, modality, tuple(input_shape)))
        if model is not None:
            shape = None if input_shape is None else tuple(input_shape)
            issues += _within(at, cls.model_issues(params, model, shape))
    for i, metric in enumerate(spec.metrics):
        metric_cls = _plugin(registries.metrics, metric.type)
        if metric_cls is not None and modality not in metric_cls.modalities:
            issues.append(
                SpecIssue(
                    _metric_message(metric.type, metric_cls, modality), ("metrics", i, "type")
                )
            )
    if input_shape is not None:
        for i, metric in enumerate(spec.metrics):
            metric_cls = _plugin(registries.metrics, metric.type)
            params = metric_params.get(metric.key)
            if metric_cls is not None and params is not None:
                found = metric_cls.input_issues(params, modality, tuple(input_shape))
                issues += _within(("metrics", i), found)
    issues += ranking_issues(
        spec,
        explainer_params,
        modality=modality,
        input_shape=input_shape,
        feature_names=feature_names,
    )
    if model is not None:
        issues += activation_issues(spec.report.model.activations, model)
    return issues


def ranked_features(
    modality: str, input_shape: tuple[int, ...] | None, feature_names: list[str] | None
) -> list[str] | None:
    """The names a local explainer's ranking has, or None where they are not known yet.

    Tabular data: the data set's feature names, or ``x0, x1, ...`` when it has none (as the
    explain stage names them). Images: pixels ``r{row}c{col}`` up to 32x32, regions
    ``rows 0-7, cols 8-15`` above (``auditor.explainers.regions``), from the shape alone.
    Text: the vocabulary (passed as ``feature_names``).
    """
    return modality_of(modality).ranked_features(input_shape, feature_names)


def explainer_features(
    cls: type[Explainer],
    params: BaseModel | None,
    modality: str,
    input_shape: tuple[int, ...] | None,
    feature_names: list[str] | None,
) -> list[str] | None:
    """The names of the features ``cls`` ranks with ``params`` on this data, or None when
    they cannot be known: a global explainer of images ranks the cells of its own grid
    (``Grid.feature_names``), every other explainer what ``ranked_features`` says."""
    if cls.scope == "global":
        grid = getattr(params, "grid", None)
        return modality_of(modality).global_features(grid, input_shape, feature_names)
    return ranked_features(modality, input_shape, feature_names)


def ranking_issues(
    spec: AuditSpec,
    explainer_params: dict[str, BaseModel],
    *,
    modality: str,
    input_shape: tuple[int, ...] | None,
    feature_names: list[str] | None,
) -> list[SpecIssue]:
    """Feature names in ranking checks that the checked explainer does not rank, with a close
    match: each check against the names of its own explainer."""
    entries = {entry.key: entry for entry in spec.explainers}
    issues = []
    for i, check in enumerate(spec.checks):
        if not isinstance(check, RankingCheck) or check.ranking not in entries:
            continue  # an unknown explainer is reported by validation
        entry = entries[check.ranking]
        cls = _plugin(registries.explainers, entry.type)
        if cls is None or modality not in cls.modalities:
            continue  # reported at the explainer
        params = explainer_params.get(entry.key)
        names = explainer_features(cls, params, modality, input_shape, feature_names)
        if names is None:
            continue
        known = set(names) | set(spec.data.groups or {})  # data.groups: groups rank too
        for key in ("must_include", "must_not_include"):
            for j, feature in enumerate(getattr(check, key)):
                if feature not in known:
                    issues.append(
                        SpecIssue(_feature_message(feature, names), ("checks", i, key, j))
                    )
    return issues


def _feature_message(feature: str, names: list[str]) -> str:
    hint = did_you_mean(feature, names)
    if hint:
        return f"unknown feature '{feature}'.{hint}"
    return f"unknown feature '{feature}'. Features: {join_names(names, LISTED)}"


def _modality_message(name: str, cls: type[Explainer], modality: str) -> str:
    works = " and ".join(sorted(cls.modalities))
    fitting = [n for n in _explainers() if modality in n[1].modalities]
    return (
        f"explainer '{name}' works on {works} data; this data is {modality}. "
        f"Explainers for {modality} data: {', '.join(n for n, _ in fitting) or 'none'}"
    )


def _metric_message(name: str, cls: type, modality: str) -> str:
    works = " and ".join(sorted(cls.modalities))
    fitting = [n for n in registries.metrics.names() if _fits(n, modality)]
    return (
        f"metric '{name}' works on {works} data; this data is {modality}. "
        f"Metrics for {modality} data: {', '.join(fitting) or 'none'}"
    )


def _fits(name: str, modality: str) -> bool:
    cls = _plugin(registries.metrics, name)
    return cls is not None and modality in cls.modalities


def _needs_hooks(cls: type[Explainer], modality: str) -> bool:
    """Whether ``cls`` hooks the model on this data (text: every gradient method does, at
    the embedding layer's output)."""
    return cls.needs_hooks or (cls.differentiable and modality_of(modality).gradients_hook)


def _torchscript_message(name: str, modality: str) -> str:
    fitting = [
        n for n, c in _explainers() if modality in c.modalities and not _needs_hooks(c, modality)
    ]
    return (
        f"explainer '{name}' needs hooks on the model's modules, which TorchScript models "
        f"do not support. Explainers that work on TorchScript models with {modality} data: "
        f"{', '.join(fitting) or 'none'}"
    )


def _explainers() -> list[tuple[str, type[Explainer]]]:
    """Every loadable explainer, by name."""
    found = [(name, _plugin(registries.explainers, name)) for name in registries.explainers.names()]
    return sorted((name, cls) for name, cls in found if cls is not None)


def _plugin(registry: Any, name: str) -> Any:
    try:
        return registry.get(name)
    except Exception:  # unknown or broken: validation reports it where it is named
        return None


def _within(at: Loc, issues: list[SpecIssue]) -> list[SpecIssue]:
    """Issues located relative to a spec entry, moved under ``at``."""
    return [SpecIssue(issue.message, (*at, *issue.loc)) for issue in issues]
