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


def device_text(device: str, info: dict, threads: int) -> str:
    """``cuda:0 (NVIDIA H200), 139.7 GiB, 138.8 GiB free at the start, CUDA 13.0,
    driver 580.159.03; 16 CPU threads`` or ``cpu (Intel Xeon ...), 2 threads``."""
    if info.get("type") == "cuda":
        parts = [device]
        if info.get("memory_total"):
            parts.append(f"{info['memory_total'] / 2**30:.1f} GiB")
        if info.get("memory_free"):
            parts.append(f"{info['memory_free'] / 2**30:.1f} GiB free at the start")
        if info.get("cuda"):
            parts.append(f"CUDA {info['cuda']}")
        if info.get("driver"):
            parts.append(f"driver {info['driver']}")
        return f"{', '.join(parts)}; {threads} CPU threads"
    name = info.get("name")
    return f"{device} ({name}), {threads} threads" if name else f"{device}, {threads} threads"


def runner_text(runner: dict) -> str:
    """``ray at auto, 2 workers of {CPU: 1}, shards of 256 samples``."""
    resources = ", ".join(f"{k}: {v:g}" for k, v in runner.get("resources_per_worker", {}).items())
    return (
        f"{runner.get('backend')} at {runner.get('address')}, {runner.get('workers')} workers "
        f"of {{{resources}}}, shards of {runner.get('shard_size')} samples"
    )


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
        ("Device", device_text(p.device, p.device_info, p.threads)),
        *(
            [("Nondeterministic ops", ", ".join(p.nondeterministic_ops))]
            if p.nondeterministic_ops
            else []
        ),
        *([("Runner", runner_text(p.runner))] if p.runner else []),
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
