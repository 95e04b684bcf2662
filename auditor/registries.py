"""The four registries (design.md "Plugins")."""

from __future__ import annotations

from auditor.data.base import DataSource
from auditor.explainers.base import Explainer
from auditor.metrics.base import Metric
from auditor.models.base import ModelSource
from auditor.registry import Registry

models: Registry[ModelSource] = Registry("model source", "auditor.models", ModelSource)
datasets: Registry[DataSource] = Registry("data source", "auditor.datasets", DataSource)
explainers: Registry[Explainer] = Registry("explainer", "auditor.explainers", Explainer)
metrics: Registry[Metric] = Registry("metric", "auditor.metrics", Metric)

ALL = {"models": models, "datasets": datasets, "explainers": explainers, "metrics": metrics}
