"""Compare two finished run folders into a ``DiffResult`` (plain data for diff.json/html/pdf).

Everything comes from the two folders: results.json (read as stored, so that runs of
older or newer schemas still compare), spec.yaml, the per-sample files under
attributions/ and metrics/, and predictions.npy. Whatever cannot be compared (another
audit, another data slice, another input shape, a failed explainer) is compared as far as
it means something and the rest is named in ``DiffResult.not_compared``; nothing raises
for a difference between the runs.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from auditor.diff.noise import NoiseTest, ci_test, wilcoxon_paired
from auditor.diff.rankings import (
    RBO_P,
    per_sample_similarity,
    rank_biased_overlap,
    shared_kendall,
)
from auditor.run_folder import RunFolder

DEFAULT_TOP_K = 10
#: Samples listed as "changed most" per explainer.
CHANGED_MOST = 5


@dataclass(frozen=True)
class RunInfo:
    path: str
    run_id: str
    name: str
    title: str
    status: str
    started: str
    modality: str
    n: int | None
    input_shape: list[int] | None


@dataclass(frozen=True)
class CheckChange:
    name: str
    before: str | None  # pass / fail / error; None: the run has no such check
    after: str | None
    value_before: Any
    value_after: Any
    threshold: str
    change: str  # "pass -> fail", "fail -> pass", "new", "removed", "value", "same"


@dataclass(frozen=True)
class InputChange:
    field: str
    before: str | None
    after: str | None
    changed: bool


@dataclass(frozen=True)
class SampleChange:
    position: int  # row of the slice (same in both runs)
    spearman: float
    ssim: float | None
    predicted_before: str | None
    predicted_after: str | None
    #: Tabular and text runs: the sample's top features (tokens) in each run, by |attribution|.
    top_before: list[str] = field(default_factory=list)
    top_after: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PerSample:
    n: int
    mean_spearman: float
    median_spearman: float
    mean_ssim: float | None
    changed_most: list[SampleChange]
    files: tuple[str, str] = ("", "")  # the two attribution files, relative to their runs


@dataclass(frozen=True)
class RankingDiff:
    explainer: str
    scope: str
    shared_features: int
    kendall_tau: float
    k: int
    top_k_overlap: float
    rbo: float
    entered: list[str]  # in the top k of the second run, not of the first
    left: list[str]
    top_before: list[str]
    top_after: list[str]
    per_sample: PerSample | None
    per_sample_note: str


@dataclass(frozen=True)
class MetricDiff:
    name: str  # "<explainer>.<metric>", "model.<metric>" or a cross metric's name
    direction: str | None  # "higher" or "lower" is better
    before: float | None
    after: float | None
    ci_before: tuple[float | None, float | None]
    ci_after: tuple[float | None, float | None]
    n_before: int | None
    n_after: int | None
    difference: float | None
    test: NoiseTest
    assessment: str  # "better", "worse", "changed", "within noise", "undecided"


@dataclass
class DiffResult:
    """What changed from run ``before`` (RUN_A) to run ``after`` (RUN_B)."""

    before: RunInfo
    after: RunInfo
    same_audit: bool
    same_data: bool
    checks: list[CheckChange]
    inputs: list[InputChange]
    spec_diff: str  # unified diff of the two spec.yaml files ("" when equal)
    rankings: list[RankingDiff]
    metrics: list[MetricDiff]
    only_before: list[str]
    only_after: list[str]
    not_compared: list[str] = field(default_factory=list)
    top_k: int = DEFAULT_TOP_K
    rbo_p: float = RBO_P

    @property
    def verdict_changed(self) -> bool:
        return self.before.status != self.after.status

    @property
    def changed_inputs(self) -> list[InputChange]:
        return [i for i in self.inputs if i.changed]


@dataclass
class _Run:
    folder: RunFolder
    raw: dict[str, Any]

    @property
    def explainers(self) -> dict[str, dict[str, Any]]:
        return _dict(self.raw.get("explainers"))

    @property
    def provenance(self) -> dict[str, Any]:
        return _dict(self.raw.get("provenance"))

    @property
    def data(self) -> dict[str, Any]:
        return _dict(self.raw.get("data"))

    @property
    def modality(self) -> str:
        return str(self.data.get("modality") or "tabular")

    @property
    def input_shape(self) -> list[int] | None:
        shape = self.data.get("input_shape")
        return list(shape) if isinstance(shape, list) else None

    def info(self) -> RunInfo:
        return RunInfo(
            path=str(self.folder.path),
            run_id=str(self.raw.get("run_id") or self.folder.run_id),
            name=str(self.raw.get("name") or "?"),
            title=str(self.raw.get("title") or self.raw.get("name") or "?"),
            status=str(self.raw.get("status") or "?"),
            started=str(self.provenance.get("started") or ""),
            modality=self.modality,
            n=self.data.get("n"),
            input_shape=self.input_shape,
        )

    def spec_text(self) -> str:
        path = self.folder.path / "spec.yaml"
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""

    def array(self, relative: str | None) -> np.ndarray | None:
        """A .npy file of the run (memory-mapped), or None when missing or unreadable."""
        if not relative:
            return None
        try:
            path = self.folder.file(relative)
            return np.load(path, mmap_mode="r", allow_pickle=False) if path.is_file() else None
        except (OSError, ValueError):
            return None

    def tokens(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """A text run's token count and token strings per sample (tokens.npz), if stored."""
        path = self.folder.path / "tokens.npz"
        if not path.is_file():
            return None, None
        try:
            with np.load(path, allow_pickle=False) as data:
                if "lengths" not in data.files or "pieces" not in data.files:
                    return None, None
                return np.asarray(data["lengths"]), np.asarray(data["pieces"])
        except (OSError, ValueError):
            return None, None

    def top_k_option(self) -> int:
        options = _dict(self.raw.get("report_options"))
        k = options.get("top_k")
        return int(k) if isinstance(k, int) and k > 0 else DEFAULT_TOP_K

    def predicted(self) -> list[str] | None:
        """The predicted class name of each sample (predictions.npy holds probabilities)."""
        probs = self.array("predictions.npy")
        if probs is None or probs.ndim != 2:
            return None
        names = list(self.data.get("class_names") or [])
        classes = np.asarray(probs).argmax(axis=1)
        return [names[c] if c < len(names) else str(int(c)) for c in classes]

    def metric_records(self) -> dict[str, dict[str, Any]]:
        """Every metric of the run by display name: explainer metrics, model, cross."""
        out: dict[str, dict[str, Any]] = {}
        for eid, record in self.explainers.items():
            for name, metric in _dict(_dict(record).get("metrics")).items():
                out[f"{eid}.{name}"] = _dict(metric)
                out[f"{eid}.{name}"].setdefault("file", f"metrics/{eid}.{name}.npy")
        for name, metric in _dict(self.raw.get("model_metrics")).items():
            out[f"model.{name}"] = _dict(metric)
        for name, metric in _dict(self.raw.get("cross_metrics")).items():
            out[name] = _dict(metric)
        return out


def _r(value: float) -> float:
    """A similarity rounded to 12 decimals: identical runs read exactly 1, not 0.9999999."""
    return round(value, 12) if math.isfinite(value) else value


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _ci(value: Any) -> tuple[float | None, float | None]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return _float(value[0]), _float(value[1])
    return None, None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


# -- 1. checks ---------------------------------------------------------------------------
CHANGE_ORDER = {"pass -> fail": 0, "error": 1, "fail -> pass": 2, "new": 3, "removed": 4}


def compare_checks(a: _Run, b: _Run) -> list[CheckChange]:
    """Each check of either run; changed ones first, pass -> fail leading."""
    before = {str(c.get("name")): c for c in a.raw.get("checks") or [] if isinstance(c, dict)}
    after = {str(c.get("name")): c for c in b.raw.get("checks") or [] if isinstance(c, dict)}
    rows = []
    for name in list(before) + [n for n in after if n not in before]:
        x, y = before.get(name), after.get(name)
        s_a = str(x.get("status")) if x else None
        s_b = str(y.get("status")) if y else None
        if x is None:
            change = "new"
        elif y is None:
            change = "removed"
        elif s_a != s_b:
            if s_b == "fail":
                change = "pass -> fail" if s_a == "pass" else f"{s_a} -> fail"
            elif s_b == "error" or s_a == "error":
                change = "error"
            else:
                change = f"{s_a} -> {s_b}"
        elif x.get("value") != y.get("value"):
            change = "value"
        else:
            change = "same"
        rows.append(
            CheckChange(
                name=name,
                before=s_a,
                after=s_b,
                value_before=x.get("value") if x else None,
                value_after=y.get("value") if y else None,
                threshold=str((y or x or {}).get("threshold") or ""),
                change=change,
            )
        )

    def order(row: CheckChange) -> int:
        if row.change.endswith("-> fail"):
            return 0
        if "->" in row.change:
            return 2
        return CHANGE_ORDER.get(row.change, 6 if row.change == "same" else 5)

    return sorted(rows, key=order)


# -- 2. inputs ---------------------------------------------------------------------------
def compare_inputs(a: _Run, b: _Run) -> list[InputChange]:
    """What each run was made from: spec, weights, data, software, seed, precision, device."""
    pa, pb = a.provenance, b.provenance
    rows: list[tuple[str, Any, Any]] = [
        ("audit name", a.raw.get("name"), b.raw.get("name")),
        ("spec.yaml sha256", pa.get("spec_sha256"), pb.get("spec_sha256")),
        ("--set overrides", pa.get("overrides") or [], pb.get("overrides") or []),
        ("weights sha256", pa.get("weights_sha256"), pb.get("weights_sha256")),
        ("data sha256", pa.get("data_sha256"), pb.get("data_sha256")),
        ("data", a.data.get("description"), b.data.get("description")),
        ("data slice", a.data.get("slice"), b.data.get("slice")),
        ("samples", a.data.get("n"), b.data.get("n")),
        ("input shape", a.input_shape, b.input_shape),
        ("seed", pa.get("seed"), pb.get("seed")),
        ("precision", pa.get("precision"), pb.get("precision")),
        ("device", pa.get("device"), pb.get("device")),
        ("inference", pa.get("inference"), pb.get("inference")),
        ("auditor", a.raw.get("auditor_version"), b.raw.get("auditor_version")),
    ]
    va, vb = _dict(pa.get("versions")), _dict(pb.get("versions"))
    for package in list(va) + [p for p in vb if p not in va]:
        rows.append((f"version: {package}", va.get(package), vb.get(package)))
    out = []
    for name, x, y in rows:
        tx, ty = _text(x), _text(y)
        if name == "--set overrides":
            tx, ty = tx or "(none)", ty or "(none)"
        out.append(InputChange(name, tx, ty, x != y))
    return out


def spec_diff(a: _Run, b: _Run) -> str:
    lines = difflib.unified_diff(
        a.spec_text().splitlines(keepends=True),
        b.spec_text().splitlines(keepends=True),
        fromfile=f"{a.folder.run_id}/spec.yaml",
        tofile=f"{b.folder.run_id}/spec.yaml",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


# -- 3. rankings -------------------------------------------------------------------------
def _order(record: dict[str, Any]) -> dict[str, float]:
    """Feature -> importance from a results.json ranking list, most important first."""
    out: dict[str, float] = {}
    for row in record.get("ranking") or []:
        if isinstance(row, dict) and "feature" in row and str(row["feature"]) not in out:
            value = _float(row.get("importance"))
            out[str(row["feature"])] = value if value is not None else math.nan
    return out


def compare_ranking(
    eid: str, a: _Run, b: _Run, k: int, same_data: bool, predicted: tuple[Any, Any]
) -> RankingDiff:
    ra, rb = a.explainers[eid], b.explainers[eid]
    before, after = _order(ra), _order(rb)
    tau, shared = shared_kendall(before, after)
    order_a, order_b = list(before), list(after)
    top_a, top_b = order_a[:k], order_b[:k]
    overlap = len(set(top_a) & set(top_b)) / k if top_a and top_b else math.nan
    per_sample, note = _per_sample(eid, a, b, same_data, predicted)
    return RankingDiff(
        explainer=eid,
        scope=str(rb.get("scope") or ra.get("scope") or "local"),
        shared_features=shared,
        kendall_tau=_r(tau),
        k=k,
        top_k_overlap=overlap,
        rbo=_r(rank_biased_overlap(order_a, order_b)),
        entered=[f for f in top_b if f not in top_a],
        left=[f for f in top_a if f not in top_b],
        top_before=top_a,
        top_after=top_b,
        per_sample=per_sample,
        per_sample_note=note,
    )


def _per_sample(
    eid: str, a: _Run, b: _Run, same_data: bool, predicted: tuple[Any, Any]
) -> tuple[PerSample | None, str]:
    ra, rb = a.explainers[eid], b.explainers[eid]
    if (ra.get("scope") or "local") != "local" or (rb.get("scope") or "local") != "local":
        return None, "a global explainer: no per-sample attributions to compare"
    if not same_data:
        return None, "per-sample comparison is not possible: the runs saw different data slices"
    file_a = str(ra.get("attribution_file") or f"attributions/{eid}.npy")
    file_b = str(rb.get("attribution_file") or f"attributions/{eid}.npy")
    xa, xb = a.array(file_a), b.array(file_b)
    if xa is None or xb is None:
        return None, "per-sample comparison is not possible: an attribution file is missing"
    if xa.shape != xb.shape:
        return None, (
            f"per-sample comparison is not possible: attribution shapes differ "
            f"({tuple(xa.shape)} vs {tuple(xb.shape)})"
        )
    if a.modality != b.modality:
        return None, "per-sample comparison is not possible: the modalities differ"
    lengths, pieces = b.tokens() if b.modality == "text" else (None, None)
    if lengths is not None and len(lengths) != len(xa):
        lengths, pieces = None, None
    rho, structural = per_sample_similarity(xa, xb, b.modality, lengths)
    finite = np.isfinite(rho)
    order = np.argsort(np.where(finite, rho, np.inf), kind="stable")[
        : min(CHANGED_MOST, int(finite.sum()))
    ]
    pa, pb = predicted
    names = b.data.get("feature_names") if b.modality == "tabular" else None

    def top(row: np.ndarray, i: int) -> list[str]:
        if pieces is not None and lengths is not None:
            return _top_features(row[: int(lengths[i])], list(pieces[i][: int(lengths[i])]))
        return _top_features(row, names)

    changed = [
        SampleChange(
            position=int(i),
            spearman=_r(float(rho[i])),
            ssim=None if structural is None else _r(float(structural[i])),
            predicted_before=pa[i] if pa is not None and i < len(pa) else None,
            predicted_after=pb[i] if pb is not None and i < len(pb) else None,
            top_before=top(xa[i], int(i)),
            top_after=top(xb[i], int(i)),
        )
        for i in order
    ]
    mean_ssim = None
    if structural is not None and np.isfinite(structural).any():
        mean_ssim = _r(float(np.nanmean(structural)))
    summary = PerSample(
        n=len(rho),
        mean_spearman=_r(float(np.nanmean(rho))) if finite.any() else math.nan,
        median_spearman=_r(float(np.nanmedian(rho))) if finite.any() else math.nan,
        mean_ssim=mean_ssim,
        changed_most=changed,
        files=(file_a, file_b),
    )
    note = f"{len(rho)} samples present in both runs (same data slice)"
    if not finite.all():
        note += f"; {int((~finite).sum())} with a constant map have no Spearman"
    return summary, note


def _top_features(row: np.ndarray, names: Any, count: int = 3) -> list[str]:
    """The ``count`` features of largest |attribution| of one tabular sample."""
    values = np.abs(np.asarray(row, dtype=np.float64)).reshape(-1)
    if not isinstance(names, list) or len(names) != values.size:
        return []
    return [str(names[j]) for j in np.argsort(-values, kind="stable")[:count]]


# -- 4. metrics --------------------------------------------------------------------------
def compare_metric(
    name: str, ma: dict[str, Any], mb: dict[str, Any], a: _Run, b: _Run, same_data: bool
) -> MetricDiff:
    """Before, after, difference, and whether it is larger than the runs' noise (paired
    test on shared samples where possible, else the 95% intervals; none across modalities)."""
    mean_a, mean_b = _float(ma.get("mean")), _float(mb.get("mean"))
    ci_a, ci_b = _ci(ma.get("ci95")), _ci(mb.get("ci95"))
    difference = None if mean_a is None or mean_b is None else mean_b - mean_a
    test: NoiseTest | None = None
    if same_data:
        va, vb = a.array(ma.get("file")), b.array(mb.get("file"))
        if va is not None and vb is not None and len(va) == len(vb) and va.shape == vb.shape:
            test = wilcoxon_paired(np.asarray(va), np.asarray(vb))
            if test.significant is None:
                test = None
    if test is None and a.modality != b.modality:
        test = NoiseTest("none", None, note="different data modalities: not tested")
    if test is None:
        test = ci_test(ci_a, ci_b)
    direction = mb.get("direction") or ma.get("direction")
    direction = str(direction) if direction in ("higher", "lower") else None
    if difference is None or test.significant is None:
        assessment = "undecided"
    elif not test.significant or difference == 0:
        assessment = "within noise"
    elif direction is None:
        assessment = "changed"
    else:
        better = (difference > 0) == (direction == "higher")
        assessment = "better" if better else "worse"
    return MetricDiff(
        name=name,
        direction=direction,
        before=mean_a,
        after=mean_b,
        ci_before=ci_a,
        ci_after=ci_b,
        n_before=ma.get("n") if isinstance(ma.get("n"), int) else None,
        n_after=mb.get("n") if isinstance(mb.get("n"), int) else None,
        difference=difference,
        test=test,
        assessment=assessment,
    )


# -- the whole diff ----------------------------------------------------------------------
def with_checks_again(diff: DiffResult, run_a: Path, run_b: Path) -> DiffResult:
    """``diff`` with both runs' verdicts and checks read again: a run's baseline checks are
    evaluated from its diff, so its results.json changes after the diff was made."""
    a, b = _open(run_a), _open(run_b)
    return replace(diff, before=a.info(), after=b.info(), checks=compare_checks(a, b))


def compare_runs(run_a: Path, run_b: Path) -> DiffResult:
    """The diff from finished run ``run_a`` to finished run ``run_b`` (UsageError when
    either folder is not a finished run)."""
    a = _open(run_a)
    b = _open(run_b)
    not_compared: list[str] = []
    info_a, info_b = a.info(), b.info()
    same_audit = info_a.name == info_b.name
    if not same_audit:
        not_compared.append(
            f"different audits ({info_a.name!r} vs {info_b.name!r}): checks, explainers and "
            "metrics are compared by name only"
        )
    ha, hb = a.provenance.get("data_sha256"), b.provenance.get("data_sha256")
    same_shape = a.input_shape == b.input_shape
    same_data = bool(ha) and ha == hb and same_shape
    if not same_shape:
        not_compared.append(
            f"input shapes differ ({a.input_shape} vs {b.input_shape}): no per-sample "
            "attribution or paired metric comparison"
        )
    elif not same_data:
        not_compared.append(
            "the data slices differ (data sha256): per-sample comparison is not possible; "
            "metrics are compared by their 95% intervals"
        )

    k = b.top_k_option()
    predicted = (a.predicted(), b.predicted()) if same_data else (None, None)
    rankings = []
    ea, eb = a.explainers, b.explainers
    for eid in (e for e in eb if e in ea):
        sa, sb = _dict(ea[eid]).get("status"), _dict(eb[eid]).get("status")
        if sa != "ok" or sb != "ok":
            not_compared.append(f"explainer {eid}: status {sa} before, {sb} after")
            continue
        if not _order(ea[eid]) or not _order(eb[eid]):
            not_compared.append(f"explainer {eid}: a run has no ranking")
            continue
        if _dict(ea[eid]).get("type") != _dict(eb[eid]).get("type"):
            not_compared.append(
                f"explainer {eid}: type {ea[eid].get('type')} before, {eb[eid].get('type')} after"
            )
        diff = compare_ranking(eid, a, b, k, same_data, predicted)
        if diff.shared_features == 0:
            not_compared.append(f"explainer {eid}: the two rankings share no feature")
            continue
        rankings.append(diff)

    metrics = []
    ma, mb = a.metric_records(), b.metric_records()
    for name in (m for m in mb if m in ma):
        if ma[name].get("status", "ok") != "ok" or mb[name].get("status", "ok") != "ok":
            not_compared.append(
                f"metric {name}: status {ma[name].get('status')} before, "
                f"{mb[name].get('status')} after"
            )
            continue
        metrics.append(compare_metric(name, ma[name], mb[name], a, b, same_data))

    only_before = [f"explainer {e}" for e in ea if e not in eb]
    only_before += [f"metric {m}" for m in ma if m not in mb]
    only_after = [f"explainer {e}" for e in eb if e not in ea]
    only_after += [f"metric {m}" for m in mb if m not in ma]
    return DiffResult(
        before=info_a,
        after=info_b,
        same_audit=same_audit,
        same_data=same_data,
        checks=compare_checks(a, b),
        inputs=compare_inputs(a, b),
        spec_diff=spec_diff(a, b),
        rankings=rankings,
        metrics=metrics,
        only_before=only_before,
        only_after=only_after,
        not_compared=not_compared,
        top_k=k,
    )


def _open(path: Path) -> _Run:
    folder = RunFolder.open_finished(path)
    raw = folder.read_json("results.json")
    if not isinstance(raw, dict):
        from auditor.errors import UsageError

        raise UsageError(f"{folder.path / 'results.json'} is not a results object")
    return _Run(folder, raw)
