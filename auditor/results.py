"""results.json: the versioned, machine-readable outcome of a run (pydantic models).

``auditor schema --results`` prints the JSON Schema. Bump ``SCHEMA_VERSION`` on any
change that is not purely additive.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Summary(Record):
    """Mean, spread and a 95% confidence interval of a per-sample quantity."""

    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    ci95: tuple[float | None, float | None]
    n: int


class Provenance(Record):
    spec_sha256: str
    weights_sha256: str | None
    data_sha256: str
    versions: dict[str, str]
    seed: int
    precision: str
    #: How forward passes without gradients ran: a frozen TorchScript copy or the model.
    inference: str = "eager"
    #: ``cpu`` or ``cuda:N (device name)``.
    device: str
    #: What the device is (``auditor.device.describe_device``): name, memory, versions.
    device_info: dict[str, Any] = Field(default_factory=dict)
    #: Ops torch warned have no deterministic implementation on this device, by name.
    nondeterministic_ops: list[str] = Field(default_factory=list)
    threads: int
    hostname: str
    started: str
    finished: str
    seconds: float
    stage_seconds: dict[str, float]
    overrides: list[str] = Field(default_factory=list)
    #: Where local explainers ran: ``spec.runner`` when its backend is ray, else None.
    runner: dict[str, Any] | None = None


class DataSummary(Record):
    source: str
    description: str
    modality: Literal["image", "tabular", "text", "structured"]
    input_shape: list[int]
    class_names: list[str]
    feature_names: list[str] | None
    slice: str
    n: int
    batch_size: int
    class_counts: dict[str, int]
    #: Tabular data: mean, std, min and max of each feature over the slice.
    feature_summary: list[dict[str, Any]] | None = None
    ranked_features: list[str] | None = Field(
        None,
        description="Names of the features local rankings are over (columns, pixels, regions); "
        "null for text, whose features are each sample's tokens (tokens.npz).",
    )
    inputs: list[dict[str, Any]] | None = Field(
        None,
        description="Structured data: the input fields (name, columns, categorical, unknown, "
        "baseline, embedding layer per categorical column); null otherwise.",
    )


class PredictionSummary(Record):
    n: int
    accuracy: float
    per_class_accuracy: dict[str, float | None]
    confusion: list[list[int]]
    mean_probability: float | None
    targets: str
    finite: bool


class RankedFeature(Record):
    feature: str
    importance: float
    spread: float | None = None


class ExplainerResult(Record):
    id: str
    type: str
    scope: Literal["local", "global"]
    status: Literal["ok", "failed", "skipped"]
    seconds: float = 0.0
    seconds_per_sample: float | None = None
    error: str | None = None
    traceback: str | None = None
    reused: str | None = Field(None, description="Where a finished result was taken from.")
    cache_key: str | None = None
    attribution_file: str | None = None
    attribution_sha256: str | None = None
    ranking: list[RankedFeature] = Field(default_factory=list)
    group_ranking: list[RankedFeature] | None = Field(
        None,
        description="With data.groups: groups (and ungrouped columns) ranked by the sum of "
        "their columns' attributions (full ranking in rankings/<id>.groups.npy).",
    )
    stats: dict[str, Summary] = Field(default_factory=dict)
    fidelity: dict[str, float | None] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
    ranking_tied: bool = Field(
        False,
        description="The top of the ranking is one tie (e.g. every importance 0): which "
        "features are 'top' is arbitrary. A health warning 'ranking_tied' says why.",
    )


class CheckResult(Record):
    name: str
    kind: Literal[
        "metric",
        "ranking",
        "ranking_stability",
        "metric_change",
        "model_unchanged",
        "data_unchanged",
    ]
    severity: Literal["error", "warning"]
    status: Literal["pass", "fail", "error", "skipped"] = Field(
        description="skipped: a baseline check without a baseline run to compare with "
        "(the reason says why); it does not change the exit code."
    )
    value: Any = None
    threshold: str
    reason: str


class HealthWarning(Record):
    """A built-in warning that the audit may mean little, whatever its checks say."""

    code: Literal[
        "accuracy_at_chance",
        "attributions_nan",
        "attributions_zero",
        "attributions_constant",
        "attributions_uniform",
        "zero_features",
        "ranking_tied",
        "low_fidelity",
        "dead_units",
    ]
    subject: str = Field(
        description="What it is about: 'model', an explainer id or a layer (dead_units)."
    )
    message: str = Field(description="What was found.")
    action: str = Field(description="Why it matters and what to do.")
    features: list[str] = Field(default_factory=list, description="The features concerned.")


class LayerStat(Record):
    """One leaf layer's outputs over the slice (``model.layer_stats``)."""

    name: str = Field(description="Dotted module path, e.g. features.1.")
    type: str = Field(description="Module class, e.g. ReLU.")
    mean: float | None = Field(description="Mean of every output value over the slice.")
    std: float | None = Field(description="Standard deviation of the output values.")
    dead_fraction: float | None = Field(
        description="Share of units (channels of conv maps, features of linear outputs) "
        "whose output is <= 0 on every sample of the slice."
    )
    units: int | None = Field(description="Channels or features of the output.")
    weight_norm: float | None = Field(description="L2 norm of the layer's weight, if any.")
    rectifier: bool = Field(
        False, description="A ReLU-like layer: its never-active units are dead ReLUs."
    )


class BaselineInfo(Record):
    """The run this run was compared with (the spec's ``baseline:``)."""

    run_id: str
    path: str = Field(description="The baseline's run folder (absolute).")
    weights_sha256: str | None
    data_sha256: str | None
    spec_sha256: str | None
    diff: str | None = Field(
        description="The folder of the diff inside this run folder ('diff'), holding "
        "diff.json (and diff.html, diff.pdf as report.formats asks); null when the diff "
        "could not be made (see error)."
    )
    error: str | None = Field(None, description="Why the comparison failed, if it did.")


class Results(Record):
    schema_version: int = SCHEMA_VERSION
    auditor_version: str
    run_id: str
    name: str
    title: str
    description: str
    status: Literal["passed", "failed", "error"]
    exit_code: int
    provenance: Provenance
    model: dict[str, Any]
    data: DataSummary
    predictions: PredictionSummary
    explainers: dict[str, ExplainerResult]
    checks: list[CheckResult]
    model_metrics: dict[str, Any] = Field(default_factory=dict)
    cross_metrics: dict[str, Any] = Field(default_factory=dict)
    problems: list[str] = Field(default_factory=list)
    warnings: list[HealthWarning] = Field(
        default_factory=list,
        description="Health warnings; with --fail-on warning they fail the run (exit 1).",
    )
    report_options: dict[str, Any] | None = Field(
        None,
        description="The spec's report block as run (overrides applied, defaults filled in), "
        "so that rendering never re-reads spec.yaml; null in results of older runs.",
    )
    baseline: BaselineInfo | None = Field(
        None, description="The baseline run this run was compared with; null without one."
    )


def results_schema() -> dict[str, Any]:
    schema = Results.model_json_schema()
    # ``model`` stays an open object (layers, shapes, histograms); its layer table is typed.
    layer = LayerStat.model_json_schema()
    schema.setdefault("$defs", {})["LayerStat"] = layer
    schema["properties"]["model"]["properties"] = {
        "layer_stats": {
            "anyOf": [{"type": "array", "items": {"$ref": "#/$defs/LayerStat"}}, {"type": "null"}],
            "description": "Per leaf layer on the slice; null for TorchScript (no hooks).",
        },
        "layer_stats_note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"auditor results.json (schema version {SCHEMA_VERSION})"
    return schema
