"""The audit spec, version 1 (design.md "Spec"), as pydantic models.

Plugin blocks are validated in two steps: these models check the common keys
(``source``/``type``, ``slice``, ``batch_size``, ...) and keep the plugin's own keys;
``auditor.spec.load`` then validates those with the plugin's ``Params``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from auditor.data.slicing import SliceSpec
from auditor.paths import ExistingDir, ExistingFile, SpecPath

#: Names used in folder names and result keys: no path separators, no leading dot.
SLUG = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
IDENT = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelBlock(BaseModel):
    """``model:``: ``source`` picks the model-source plugin; other keys are its params."""

    model_config = ConfigDict(extra="allow")
    source: str = Field(description="Model source plugin: python | torchvision | torchscript.")

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


DATA_COMMON = ("source", "slice", "batch_size", "groups")


class DataBlock(BaseModel):
    """``data:``: ``source`` picks the data-source plugin; ``slice`` and ``batch_size`` are
    common; other keys are the plugin's params."""

    model_config = ConfigDict(extra="allow")
    source: str = Field(description="Data source plugin: sklearn | image_folder | ...")
    slice: SliceSpec | None = Field(None, description="Which samples to audit.")
    batch_size: int = Field(64, ge=1, le=65536, description="Samples per batch.")
    groups: dict[str, list[str]] | ExistingFile | None = Field(
        None,
        description="Feature groups attributed and ranked as one unit: {name: [column, ...]} "
        "or a .json ({name: [columns]}) or .csv (group,column) file. Tabular and structured "
        "data; columns in no group stay their own unit.",
    )

    @field_validator("groups", mode="after")
    @classmethod
    def _read_groups(cls, value: Any) -> dict[str, list[str]] | None:
        from auditor.data.groups import read_groups

        return read_groups(value) if isinstance(value, Path) else value

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ExplainerEntry(Strict):
    """One explainer to run."""

    id: str | None = Field(None, pattern=IDENT, description="Defaults to type.")
    type: str = Field(description="Explainer plugin name.")
    params: dict[str, Any] = Field(default_factory=dict, description="The plugin's params.")

    @property
    def key(self) -> str:
        return self.id or self.type


class MetricEntry(Strict):
    """One quality metric to compute."""

    id: str | None = Field(None, pattern=IDENT, description="Defaults to type.")
    type: str = Field(description="Metric plugin name.")
    params: dict[str, Any] = Field(default_factory=dict, description="The plugin's params.")
    explainers: list[str] | None = Field(
        None, min_length=1, description="Explainer ids to measure (default: every one)."
    )

    @property
    def key(self) -> str:
        return self.id or self.type


Severity = Literal["error", "warning"]


class MetricCheck(Strict):
    """A bound on a metric: ``metric: <explainer_id>.<metric>`` or ``model.accuracy``."""

    metric: str = Field(pattern=r"^[A-Za-z_][\w]*\.[A-Za-z_][\w.]*$")
    min: float | None = None
    max: float | None = None
    severity: Severity = "error"
    name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _bounds(self) -> MetricCheck:
        if self.min is None and self.max is None:
            raise ValueError("a metric check needs 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min}) is greater than 'max' ({self.max})")
        return self


class RankingCheck(Strict):
    """A rule on an explainer's slice-level ranking of features."""

    ranking: str = Field(pattern=IDENT)
    top_k: int = Field(5, ge=1, le=100_000)
    must_include: list[str] = Field(default_factory=list)
    must_not_include: list[str] = Field(default_factory=list)
    severity: Severity = "error"
    name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _rules(self) -> RankingCheck:
        if not self.must_include and not self.must_not_include:
            raise ValueError("a ranking check needs 'must_include' or 'must_not_include'")
        return self


class RankingStabilityCheck(Strict):
    """A bound on how much an explainer's slice-level ranking moved since the baseline run:
    Kendall's tau over the features both runs rank, or the overlap of their top k."""

    ranking_stability: str = Field(pattern=IDENT, description="Explainer id.")
    min_kendall_tau: float | None = Field(None, ge=-1.0, le=1.0)
    min_top_k_overlap: float | None = Field(
        None, ge=0.0, le=1.0, description="Share of the top k (report.top_k) kept."
    )
    severity: Severity = "error"
    name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _bounds(self) -> RankingStabilityCheck:
        if self.min_kendall_tau is None and self.min_top_k_overlap is None:
            raise ValueError(
                "a ranking_stability check needs 'min_kendall_tau', 'min_top_k_overlap' or both"
            )
        return self


class MetricChangeCheck(Strict):
    """A bound on how much a metric moved since the baseline run (after - before)."""

    metric_change: str = Field(
        pattern=r"^[A-Za-z_][\w]*\.[A-Za-z_][\w.]*$",
        description="<explainer_id>.<metric> or model.<metric>.",
    )
    max_increase: float | None = Field(None, ge=0.0)
    max_decrease: float | None = Field(None, ge=0.0)
    relative: bool = Field(
        False, description="Bounds are shares of the baseline's value (0.1 = 10%)."
    )
    severity: Severity = "error"
    name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _bounds(self) -> MetricChangeCheck:
        if self.max_increase is None and self.max_decrease is None:
            raise ValueError("a metric_change check needs 'max_increase', 'max_decrease' or both")
        return self


class ModelUnchangedCheck(Strict):
    """Fails when the model's weights (sha256) differ from the baseline run's."""

    model_unchanged: Literal[True]
    severity: Severity = "error"
    name: str | None = Field(None, max_length=200)


class DataUnchangedCheck(Strict):
    """Fails when the audited data slice (sha256) differs from the baseline run's."""

    data_unchanged: Literal[True]
    severity: Severity = "error"
    name: str | None = Field(None, max_length=200)


#: Checks that compare the run with its baseline run (``baseline:``).
BaselineCheck = RankingStabilityCheck | MetricChangeCheck | ModelUnchangedCheck | DataUnchangedCheck

#: The key that names each kind of check, and its discriminator tag.
CHECK_KEYS: dict[str, tuple[str, type[BaseModel]]] = {
    "metric": ("metric-check", MetricCheck),
    "ranking": ("ranking-check", RankingCheck),
    "ranking_stability": ("ranking-stability-check", RankingStabilityCheck),
    "metric_change": ("metric-change-check", MetricChangeCheck),
    "model_unchanged": ("model-unchanged-check", ModelUnchangedCheck),
    "data_unchanged": ("data-unchanged-check", DataUnchangedCheck),
}


class UnknownCheck(BaseModel):
    """A mapping in ``checks:`` without the key of any kind of check: refused with the kind
    its keys come closest to (not part of the JSON Schema)."""

    @model_validator(mode="before")
    @classmethod
    def _refuse(cls, value: Any) -> Any:
        from auditor.suggest import closest

        keys = ", ".join(f"'{key}'" for key in CHECK_KEYS)
        close = [closest(str(k), list(CHECK_KEYS)) for k in value]
        hint = next((f" Did you mean: {c}?" for c in close if c), "")
        raise ValueError(f"a check needs one of the keys {keys}.{hint}")


def _check_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, (tag, _) in CHECK_KEYS.items():
            if key in value:
                return tag
        return "unknown-check"
    for tag, cls in CHECK_KEYS.values():
        if isinstance(value, cls):
            return tag
    return None


Check = Annotated[
    Annotated[MetricCheck, Tag("metric-check")]
    | Annotated[RankingCheck, Tag("ranking-check")]
    | Annotated[RankingStabilityCheck, Tag("ranking-stability-check")]
    | Annotated[MetricChangeCheck, Tag("metric-change-check")]
    | Annotated[ModelUnchangedCheck, Tag("model-unchanged-check")]
    | Annotated[DataUnchangedCheck, Tag("data-unchanged-check")]
    | SkipJsonSchema[Annotated[UnknownCheck, Tag("unknown-check")]],
    Discriminator(
        _check_kind,
        custom_error_type="check_kind",
        custom_error_message="a check needs one of the keys "
        + ", ".join(f"'{key}'" for key in CHECK_KEYS),
    ),
]


class GallerySpec(Strict):
    """Which samples the saliency gallery shows."""

    samples: int = Field(12, ge=0, le=1000, description="How many samples.")
    misclassified_first: bool = Field(True, description="Show misclassified samples first.")
    per_class: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="At most this many samples of one class (true label); classes always "
        "take turns, so this only caps them (the gallery may then show fewer than samples).",
    )


class ModelViewSpec(Strict):
    """``report.model:``: what the Model section shows of the layers."""

    activations: list[str] | None = Field(
        None,
        min_length=1,
        description="Layers whose feature maps the report shows for the gallery samples "
        "(dotted module paths, e.g. features.3); default: the Grad-CAM layer(s).",
    )


class ReportSpec(Strict):
    """``report:``"""

    title: str | None = Field(None, max_length=200)
    formats: list[Literal["html", "pdf"]] = Field(default_factory=lambda: ["html", "pdf"])
    gallery: GallerySpec = Field(default_factory=GallerySpec)
    top_k: int = Field(10, ge=1, le=1000, description="Features shown per ranking.")
    model: ModelViewSpec = Field(default_factory=ModelViewSpec)
    trend: int = Field(
        20,
        ge=0,
        le=1000,
        description="Runs of this audit drawn in the report's Trend section (the last N "
        "finished runs in <output>/<name>/index.jsonl, this one included); 0 leaves the "
        "section out. It is shown from two runs on.",
    )


class RunnerSpec(Strict):
    """``runner:`` where the local explainers run: this process, or shards of the slice on
    a Ray cluster (``pip install 'auditor[ray]'``)."""

    backend: Literal["local", "ray"] = Field(
        "local", description="local: this process; ray: shards of the slice on Ray workers."
    )
    address: str = Field(
        "auto",
        min_length=1,
        max_length=500,
        description="auto: the cluster in RAY_ADDRESS or one already running on this machine, "
        "else a new local one; local: always a new local one; or a Ray address "
        "(host:port, ray://host:10001).",
    )
    workers: int = Field(2, ge=1, le=4096, description="Ray actors, each holding the model.")
    shard_size: int = Field(
        256,
        ge=1,
        le=10_000_000,
        description="Samples per shard, rounded up to whole batches of data.batch_size.",
    )
    resources_per_worker: dict[str, float] = Field(
        default_factory=lambda: {"CPU": 1.0},
        description="Ray resources each worker reserves, e.g. {CPU: 4, GPU: 1}.",
    )
    working_dir: ExistingDir | None = Field(
        None,
        description="A folder (relative to the spec) Ray ships to a remote cluster's workers "
        "(runtime_env working_dir): it must hold the spec, the model's Python file and its "
        "weights at the same relative paths. Not needed on a local cluster.",
    )

    @field_validator("backend")
    @classmethod
    def _installed(cls, value: str) -> str:
        if value == "ray" and not module_installed("ray"):
            raise ValueError("Ray is not installed here: pip install 'auditor[ray]'")
        return value

    @field_validator("resources_per_worker")
    @classmethod
    def _resources(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if v < 0 or not k]
        if bad:
            raise ValueError(f"resources must be named and >= 0: {', '.join(bad)}")
        return value


def module_installed(name: str) -> bool:
    """Whether ``import name`` would find the module (without importing it)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    return importlib.util.find_spec(name) is not None


DEVICE = r"^(auto|cpu|cuda|cuda:[0-9]{1,2})$"


#: ``baseline:`` values that are not a run folder.
BASELINE_WORDS = ("previous", "none")

Targets = Literal["predicted", "label"] | Annotated[int, Field(ge=0, le=1_000_000)] | str


class AuditSpec(Strict):
    """An audit spec, version 1."""

    version: Literal[1] = Field(description="Spec format version.")
    name: str = Field(pattern=SLUG, description="Names the run folder <output>/<name>/.")
    description: str = Field("", max_length=10_000)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    precision: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = Field(
        "auto",
        pattern=DEVICE,
        description="auto (the first CUDA device when there is one, else the CPU), cpu, cuda "
        "or cuda:N: where the model, explainers and metrics run.",
    )
    runner: RunnerSpec = Field(default_factory=RunnerSpec)
    model: ModelBlock
    data: DataBlock
    targets: Targets = Field("predicted", description="predicted | label | class index or name")
    explainers: list[ExplainerEntry] = Field(default_factory=list)
    metrics: list[MetricEntry] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    report: ReportSpec = Field(default_factory=ReportSpec)
    output: SpecPath = Field(Path("runs"), validate_default=True)
    baseline: str = Field(
        "none",
        min_length=1,
        description="The run this run is compared with: previous (the last finished run of "
        "this audit under the output folder), none, or a finished run folder (relative to "
        "the spec file). Its diff goes to <run folder>/diff/; baseline checks need it.",
    )

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, value: str, info: ValidationInfo) -> str:
        if value in BASELINE_WORDS:
            return value
        base = (info.context or {}).get("base_dir")
        if base is None:
            return value
        from auditor.baseline import finished_run_folder

        return str(finished_run_folder(Path(base), value))

    @property
    def baseline_path(self) -> Path | None:
        """The baseline's run folder when the spec names one (not previous or none)."""
        return None if self.baseline in BASELINE_WORDS else Path(self.baseline)

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("targets must be 'predicted', 'label', a class index or a class name")
        return value
