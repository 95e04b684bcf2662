"""JSON Schema of the spec, including every registered plugin's params (for editors)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from auditor import registries
from auditor.registry import Registry
from auditor.spec.model import DATA_COMMON, AuditSpec


def _params_schema(params: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    schema = params.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(schema.pop("$defs", {}))
    return schema


def _switch(registry: Registry[Any], key: str, target: str | None, defs: dict[str, Any]) -> list:
    """``if {key: const name} then {...params}`` for each plugin of a registry."""
    rules = []
    for name, cls in registry.all().items():
        params = _params_schema(cls.Params, defs)
        if target is None:  # flat block: params sit beside the key
            then = {
                "properties": params.get("properties", {}),
                "required": params.get("required", []),
            }
        else:
            then = {"properties": {target: params}}
        rules.append(
            {"if": {"properties": {key: {"const": name}}, "required": [key]}, "then": then}
        )
    return rules


def spec_schema() -> dict[str, Any]:
    """The spec's JSON Schema (draft 2020-12) with per-plugin params."""
    schema = AuditSpec.model_json_schema(ref_template="#/$defs/{model}")
    defs = schema.setdefault("$defs", {})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "auditor audit spec (version 1)"

    model_def = defs["ModelBlock"]
    model_def["properties"]["source"]["enum"] = registries.models.names()
    model_def["allOf"] = _switch(registries.models, "source", None, defs)

    data_def = defs["DataBlock"]
    data_def["properties"]["source"]["enum"] = registries.datasets.names()
    data_def["allOf"] = _switch(registries.datasets, "source", None, defs)
    for key in DATA_COMMON:
        data_def["properties"].setdefault(key, {})

    for section, registry in (
        ("ExplainerEntry", registries.explainers),
        ("MetricEntry", registries.metrics),
    ):
        entry = defs[section]
        entry["properties"]["type"]["enum"] = registry.names()
        entry["allOf"] = _switch(registry, "type", "params", defs)
    return schema
