"""Validate a spec file completely (every error at once) without loading model or data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from auditor import registries
from auditor.baseline import reference_issues as baseline_reference_issues
from auditor.errors import Loc, SpecError, SpecIssue
from auditor.registry import Registry, UnknownPluginError
from auditor.spec.document import SpecDocument, load_document, parse_document
from auditor.spec.errors import issues_from
from auditor.spec.model import DATA_COMMON, AuditSpec, MetricCheck, RankingCheck
from auditor.spec.overrides import apply_overrides
from auditor.suggest import did_you_mean


@dataclass
class ValidatedSpec:
    """A spec that passed validation, with each plugin's params validated too."""

    doc: SpecDocument
    spec: AuditSpec
    model_params: BaseModel
    data_params: BaseModel
    explainer_params: dict[str, BaseModel] = field(default_factory=dict)
    metric_params: dict[str, BaseModel] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.doc.path

    @property
    def base_dir(self) -> Path:
        return self.doc.path.parent


def _plugin_params(
    doc: SpecDocument,
    registry: Registry[Any],
    name: Any,
    params: Any,
    *,
    name_loc: Loc,
    params_loc: Loc,
    common: tuple[str, ...] = (),
) -> tuple[BaseModel | None, list[SpecIssue]]:
    """Validate one plugin block's params with the plugin's own ``Params``."""
    if not isinstance(name, str):
        return None, []  # the structural validation reports it
    try:
        cls = registry.get(name)
    except UnknownPluginError as exc:
        return None, [doc.issue(name_loc, str(exc))]
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return None, []
    try:
        validated = cls.Params.model_validate(params, context={"base_dir": doc.path.parent})
    except ValidationError as exc:
        return None, issues_from(
            exc,
            doc,
            model=cls.Params,
            prefix=params_loc,
            extra_known=common,
            what=f"{registry.kind} '{name}' param",
        )
    return validated, []


def _unique_ids(doc: SpecDocument, entries: Any, what: str) -> tuple[list[str], list[SpecIssue]]:
    ids: list[str] = []
    issues = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict):
            continue
        key = entry.get("id") or entry.get("type")
        if not isinstance(key, str):
            continue
        if key in ids:
            issues.append(
                doc.issue(
                    (what, i, "id" if "id" in entry else "type"),
                    f"duplicate {what[:-1]} id '{key}': give each repeated type its own 'id'",
                )
            )
        ids.append(key)
    return ids, issues


def metric_reference_issue(spec: AuditSpec, value: str) -> str | None:
    """Why ``<explainer>.<metric>`` (or ``model.<metric>``) names nothing this spec
    measures, with a close match; None when it names something it does."""
    ids = [e.key for e in spec.explainers]
    owner, _, name = value.partition(".")
    if owner != "model" and owner not in ids:
        listed = ", ".join(ids) if ids else "none"
        return (
            f"check names explainer '{owner}', which this spec does not run."
            f"{did_you_mean(owner, [*ids, 'model'])} Explainers: {listed}"
        )
    known = _measurable(spec, owner)
    head = name.split(".", 1)[0]
    if known is not None and head not in known:
        what = "the model" if owner == "model" else f"explainer '{owner}'"
        return (
            f"no metric '{head}' is measured for {what}."
            f"{did_you_mean(head, sorted(known))} Known: {', '.join(sorted(known))}"
        )
    return None


def _check_references(doc: SpecDocument, spec: AuditSpec) -> list[SpecIssue]:
    """Checks may only name explainers the spec runs (or ``model``)."""
    ids = [e.key for e in spec.explainers]
    issues = []
    listed = ", ".join(ids) if ids else "none"
    for i, check in enumerate(spec.checks):
        if isinstance(check, MetricCheck):
            problem = metric_reference_issue(spec, check.metric)
            if problem is not None:
                issues.append(doc.issue(("checks", i, "metric"), problem))
        elif isinstance(check, RankingCheck) and check.ranking not in ids:
            issues.append(
                doc.issue(
                    ("checks", i, "ranking"),
                    f"check names explainer '{check.ranking}', which this spec does not run."
                    f"{did_you_mean(check.ranking, ids)} Explainers: {listed}",
                )
            )
    for i, metric in enumerate(spec.metrics):
        for j, target in enumerate(metric.explainers or []):
            if target not in ids:
                issues.append(
                    doc.issue(
                        ("metrics", i, "explainers", j),
                        f"metric names explainer '{target}', which this spec does not run."
                        f"{did_you_mean(target, ids)} Explainers: {listed}",
                    )
                )
    return issues


#: Top-level keys whose errors do not stop the rest of a spec from being planned; a
#: valid stand-in replaces a wrong value (the error about it is reported already).
_SETTINGS: dict[str, Any] = {
    "version": 1,
    "name": "spec",
    "description": "",
    "seed": 0,
    "precision": "float32",
    "targets": "predicted",
    "report": {},
    "output": "runs",
    "baseline": "none",
}


def _without_settings_at_fault(
    data: dict[str, Any], exc: ValidationError, doc: SpecDocument
) -> AuditSpec | None:
    """The spec with stand-ins for its wrong scalar settings, or None when the errors are
    elsewhere (model, data, explainers, metrics, checks)."""
    errors = exc.errors()
    unknown = {e["loc"][0] for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1}
    at_fault = {e["loc"][0] if e["loc"] else None for e in errors} - unknown
    if not at_fault <= set(_SETTINGS):
        return None
    repaired = {k: v for k, v in data.items() if k not in unknown}
    repaired.update({key: _SETTINGS[key] for key in at_fault})
    try:
        return AuditSpec.model_validate(repaired, context={"base_dir": doc.path.parent})
    except ValidationError:
        return None


MODEL_VALUES = ("accuracy", "per_class_accuracy", "mean_probability")
#: What each of the model's own values can be (all are shares or probabilities).
MODEL_VALUE_RANGES = dict.fromkeys(MODEL_VALUES, (0.0, 1.0))


def _value_range(spec: AuditSpec, owner: str, name: str) -> tuple[float, float] | None:
    """The values a check's metric can take, where its metric declares them."""
    head, _, sub = name.partition(".")
    entry = next((m for m in spec.metrics if m.key == head), None)
    kind = entry.type if entry is not None else head
    if owner == "model" and entry is None and head in MODEL_VALUE_RANGES:
        return MODEL_VALUE_RANGES[head]
    if sub or kind not in registries.metrics.names():
        return None  # a named value of a metric, a stat, a fidelity: not declared
    try:
        return registries.metrics.get(kind).value_range
    except Exception:  # a broken plugin is reported where it is used
        return None


def _impossible_bounds(doc: SpecDocument, spec: AuditSpec) -> list[SpecIssue]:
    """Metric checks whose ``min`` is above what the metric can reach, or ``max`` below."""
    issues = []
    for i, check in enumerate(spec.checks):
        if not isinstance(check, MetricCheck):
            continue
        owner, _, name = check.metric.partition(".")
        bounds = _value_range(spec, owner, name)
        if bounds is None:
            continue
        low, high = bounds
        if check.min is not None and check.min > high:
            issues.append(
                doc.issue(
                    ("checks", i, "min"),
                    f"min {check.min:g} can never be met: {name} is at most {high:g}",
                )
            )
        if check.max is not None and check.max < low:
            issues.append(
                doc.issue(
                    ("checks", i, "max"),
                    f"max {check.max:g} can never be met: {name} is at least {low:g}",
                )
            )
    return issues


def _static_issues(
    doc: SpecDocument,
    spec: AuditSpec,
    data_params: BaseModel,
    validated: dict[str, dict[str, BaseModel]],
) -> list[SpecIssue]:
    """What planning finds with the data's modality, shape and names, where the data
    source knows them without loading the data (``DataSource.static_info``)."""
    try:
        source = registries.datasets.get(spec.data.source)
    except Exception:  # an unknown or broken plugin is reported where it is named
        return []
    try:
        info = source.static_info(data_params)
    except SpecError as exc:
        return doc.locate(exc).issues
    if info is None:
        return []
    data_issues = doc.locate(SpecError(info.issues)).issues if info.issues else []
    if spec.data.groups is not None:
        from auditor.data.groups import build_groups
        from auditor.planning import ranked_features

        names = ranked_features(info.modality, info.input_shape, info.feature_names) or []
        _, found_groups = build_groups(dict(spec.data.groups), names, info.modality)
        data_issues += [doc.issue(issue.loc, issue.message) for issue in found_groups]
    from auditor.planning import plan_issues  # imports no explainer engine

    found = plan_issues(
        spec,
        validated["explainers"],
        validated["metrics"],
        modality=info.modality,
        input_shape=info.input_shape,
        feature_names=info.feature_names,
    )
    return [*data_issues, *(doc.issue(issue.loc, issue.message) for issue in found)]


def _measurable(spec: AuditSpec, owner: str) -> set[str] | None:
    """Names a metric check may use after ``owner.``; None when that cannot be known."""
    metrics = set()
    for name in registries.metrics.names():
        try:
            scope = registries.metrics.get(name).scope
        except Exception:  # a broken plugin is reported where it is used
            return None
        if scope == ("model" if owner == "model" else "explainer"):
            metrics.add(name)
    metrics |= {m.key for m in spec.metrics}
    if owner == "model":
        return metrics | set(MODEL_VALUES)
    entry = next(e for e in spec.explainers if e.key == owner)
    try:
        cls = registries.explainers.get(entry.type)
    except Exception:
        return None
    return metrics | set(cls.stats) | set(cls.fidelity_keys)


def validate_document(doc: SpecDocument, *, plan: bool = True) -> ValidatedSpec:
    """Validate parsed spec data; raise one ``SpecError`` listing every problem.

    With ``plan`` the spec is also planned against what the data source knows without
    loading the data (``auditor validate``). ``auditor run`` leaves that out: its plan stage
    does the same with the loaded model as well, so that layer names, TorchScript and shape
    problems come in one list rather than in two rounds.
    """
    data = doc.data
    issues: list[SpecIssue] = []
    spec: AuditSpec | None = None
    # With errors only in scalar settings (seed, name, report, ...) the rest of the spec is
    # still planned, so that one pass reports every problem.
    planned: AuditSpec | None = None
    try:
        spec = planned = AuditSpec.model_validate(data, context={"base_dir": doc.path.parent})
    except ValidationError as exc:
        issues.extend(issues_from(exc, doc, model=AuditSpec))
        planned = _without_settings_at_fault(data, exc, doc)

    # Plugin params are validated from the raw data so that their errors are reported
    # even when other parts of the spec are invalid.
    model_raw = data.get("model") if isinstance(data.get("model"), dict) else {}
    data_raw = data.get("data") if isinstance(data.get("data"), dict) else {}
    model_params, found = _plugin_params(
        doc,
        registries.models,
        model_raw.get("source"),
        {k: v for k, v in model_raw.items() if k != "source"},
        name_loc=("model", "source"),
        params_loc=("model",),
        common=("source",),
    )
    issues.extend(found)
    data_params, found = _plugin_params(
        doc,
        registries.datasets,
        data_raw.get("source"),
        {k: v for k, v in data_raw.items() if k not in DATA_COMMON},
        name_loc=("data", "source"),
        params_loc=("data",),
        common=DATA_COMMON,
    )
    issues.extend(found)

    validated: dict[str, dict[str, BaseModel]] = {"explainers": {}, "metrics": {}}
    for section, registry in (
        ("explainers", registries.explainers),
        ("metrics", registries.metrics),
    ):
        entries = data.get(section)
        ids, found = _unique_ids(doc, entries, section)
        issues.extend(found)
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                continue
            params, found = _plugin_params(
                doc,
                registry,
                entry.get("type"),
                entry.get("params"),
                name_loc=(section, i, "type"),
                params_loc=(section, i, "params"),
            )
            issues.extend(found)
            if params is not None:
                validated[section][ids[i]] = params

    if planned is not None:
        issues.extend(_check_references(doc, planned))
        # Baseline checks name explainers and metrics the spec runs.
        issues.extend(doc.issue(i.loc, i.message) for i in baseline_reference_issues(planned))
        issues.extend(_impossible_bounds(doc, planned))
        # Without ``plan`` (auditor run) the plan stage checks the same with the model loaded;
        # a spec that fails here anyway still gets the static findings in the same list.
        if (plan or issues) and data_params is not None:
            issues.extend(_static_issues(doc, planned, data_params, validated))
    if issues or spec is None or model_params is None or data_params is None:
        raise SpecError(_sorted(issues))
    return ValidatedSpec(
        doc=doc,
        spec=spec,
        model_params=model_params,
        data_params=data_params,
        explainer_params=validated["explainers"],
        metric_params=validated["metrics"],
    )


def _sorted(issues: list[SpecIssue]) -> list[SpecIssue]:
    return sorted(issues, key=lambda i: (i.line or 0, i.col or 0))


def load_spec(
    path: Path | str, overrides: list[str] | tuple[str, ...] = (), *, plan: bool = True
) -> ValidatedSpec:
    """Read, override (``--set key.path=value``) and validate a spec file."""
    doc = load_document(Path(path))
    if overrides:
        doc.data = apply_overrides(doc, overrides)
    return validate_document(doc, plan=plan)


def validate_text(text: str, path: Path) -> ValidatedSpec:
    """Validate spec text as if it were the file at ``path`` (for tests and editors)."""
    return validate_document(parse_document(text, path))
