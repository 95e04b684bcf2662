"""Section: Appendix: provenance (hashes, versions, seed, device, times) and the spec as run."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.report.common import fmt_seconds
from auditor.report.sections.base import Section
from auditor.report.source import ReportSource


@dataclass(frozen=True)
class AppendixSection:
    provenance: list[tuple[str, str]]
    versions: list[tuple[str, str]]
    stages: list[tuple[str, str]]
    explainers: list[tuple[str, str, str, str]]  # id, seconds, attribution sha256, cache key
    overrides: list[str]
    spec_text: str
    attachments: list[str]


#: Files attached to the PDF (the complete machine-readable record).
ATTACHMENTS = ("results.json", "spec.yaml")


def build(src: ReportSource, attachments: list[str] | None = None) -> AppendixSection:
    r = src.results
    p = r.provenance
    provenance = [
        ("Audit", r.name),
        ("Run id", r.run_id),
        ("auditor", r.auditor_version),
        ("results.json schema", str(r.schema_version)),
        ("Spec sha256", p.spec_sha256),
        ("Weights sha256", p.weights_sha256 or "none (the model's own initialisation)"),
        ("Data slice sha256", p.data_sha256),
        ("Seed", str(p.seed)),
        ("Precision", p.precision),
        ("Inference", p.inference),
        ("Device", f"{p.device}, {p.threads} threads"),
        ("Host", p.hostname),
        ("Started", p.started),
        ("Finished", p.finished),
        ("Duration", fmt_seconds(p.seconds)),
        ("Exit code", str(r.exit_code)),
    ]
    explainers = [
        (
            e.id,
            fmt_seconds(e.seconds) if e.status == "ok" else e.status,
            e.attribution_sha256 or "—",
            e.cache_key or "—",
        )
        for e in r.explainers.values()
    ]
    return AppendixSection(
        provenance=provenance,
        versions=sorted(p.versions.items()),
        stages=[(name, fmt_seconds(s)) for name, s in p.stage_seconds.items()],
        explainers=explainers,
        overrides=list(p.overrides),
        spec_text=src.spec_text,
        attachments=list(ATTACHMENTS) if attachments is None else attachments,
    )


SECTION = Section("appendix", "Appendix", build)
