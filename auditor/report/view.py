"""The view model: what each report section shows, built from the run folder alone.

Tested without rendering; templates only lay it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditor.results import Results
from auditor.run_folder import RunFolder

VERDICT_COLOURS = {"passed": "pass", "failed": "fail", "error": "error"}


@dataclass
class View:
    title: str
    name: str
    run_id: str
    description: str
    verdict: str
    verdict_class: str
    started: str
    summary: list[tuple[str, str]]
    checks: list[dict[str, Any]]
    model: dict[str, Any]
    data: dict[str, Any]
    rankings: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    provenance: list[tuple[str, str]]
    spec_text: str
    figures: dict[str, str] = field(default_factory=dict)  # name -> path under figures/


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value[:10])
    return "" if value is None else str(value)


def build_view(folder: RunFolder, results: Results, top_k: int = 10) -> View:
    """Everything the templates show, as plain data."""
    p = results.provenance
    explainers = results.explainers.values()
    failed = [e for e in explainers if e.status != "ok"]
    summary = [
        ("Verdict", results.status.upper()),
        ("Slice", f"{results.data.n} samples ({results.data.slice})"),
        ("Accuracy on the slice", f"{results.predictions.accuracy:.4f}"),
        ("Explainers", f"{len(results.explainers) - len(failed)} ran, {len(failed)} failed or skipped"),
        ("Run time", f"{p.seconds:.1f} s"),
        ("Precision", p.precision),
    ]
    checks = [
        {
            "name": c.name,
            "value": _fmt(c.value),
            "threshold": c.threshold,
            "status": c.status,
            "severity": c.severity,
            "reason": c.reason,
        }
        for c in results.checks
    ]
    rankings = [
        {
            "id": e.id,
            "type": e.type,
            "scope": e.scope,
            "seconds": e.seconds,
            "features": [
                {"feature": r.feature, "importance": r.importance, "spread": r.spread}
                for r in e.ranking[:top_k]
            ],
            "fidelity": e.fidelity,
        }
        for e in explainers
        if e.status == "ok"
    ]
    failures = [{"id": e.id, "type": e.type, "status": e.status, "error": e.error or ""} for e in failed]
    provenance = [
        ("Run id", results.run_id),
        ("Spec sha256", p.spec_sha256),
        ("Weights sha256", p.weights_sha256 or "none (random initialisation)"),
        ("Data slice sha256", p.data_sha256),
        ("Seed", str(p.seed)),
        ("Device", f"{p.device}, {p.threads} threads"),
        ("Host", p.hostname),
        ("Started", p.started),
        ("Finished", p.finished),
        *[(f"{k} version", v) for k, v in p.versions.items()],
    ]
    if p.overrides:
        provenance.append(("Overrides", " ".join(p.overrides)))
    model = {
        "class_name": results.model.get("class_name"),
        "total_params": results.model.get("total_params"),
        "weights_sha256": results.model.get("weights_sha256"),
        "layers": results.model.get("layers", []),
    }
    data = {
        "description": results.data.description,
        "modality": results.data.modality,
        "input_shape": results.data.input_shape,
        "class_counts": results.data.class_counts,
    }
    return View(
        title=results.title,
        name=results.name,
        run_id=results.run_id,
        description=results.description,
        verdict=results.status.upper(),
        verdict_class=VERDICT_COLOURS[results.status],
        started=p.started,
        summary=summary,
        checks=checks,
        model=model,
        data=data,
        rankings=rankings,
        failures=failures,
        provenance=provenance,
        spec_text=(folder.path / "spec.yaml").read_text(encoding="utf-8", errors="replace"),
    )
