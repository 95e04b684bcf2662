"""Health warnings: built-in signs that an audit means little, whatever its checks say.

They need no check in the spec. Each is computed in one cheap pass over what the run
folder already holds: the predictions summary, the attribution files (memory-mapped and
read in chunks), the full rankings (``rankings/<id>.npy``) and the surrogates' fidelity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from auditor.explainers.ranking import tied_top  # the report's rule: they agree
from auditor.modalities import modality_of
from auditor.results import DataSummary, ExplainerResult, HealthWarning, PredictionSummary
from auditor.run_folder import RunFolder

#: Explainers whose attribution of a feature is (a function of) the gradient there.
GRADIENT_METHODS = frozenset(
    {
        "saliency",
        "input_x_gradient",
        "integrated_gradients",
        "smoothgrad",
        "gradient_shap",
        "shap_gradient",
        "guided_backprop",
        "deeplift",
        "deep_shap",
        "shap_deep",
    }
)
MIN_FIDELITY = 0.5  # a surrogate below this on held-out data does not mimic the model
CHUNK_ELEMENTS = 2**22  # values read from an attribution file at a time (16 MB)
NAMES_SHOWN = 10  # features named in a message before "and N more"
MAX_DEAD = 0.5  # a rectifier layer with more than this share of units dead on the slice


@dataclass(frozen=True)
class AttributionScan:
    """What one pass over an attribution file found."""

    n: int
    non_finite_samples: int
    low: float  # over the finite values
    high: float
    zero_features: np.ndarray  # (F,) bool: exactly 0 on every sample (tabular; else empty)
    #: Samples whose nonzero values (two or more) are all equal, within ``UNIFORM_RTOL``:
    #: the attribution ranks none of the sample's own features (text tokens) above another.
    uniform_samples: int = 0


def assess(
    folder: RunFolder,
    data: DataSummary,
    predictions: PredictionSummary,
    explainers: dict[str, ExplainerResult],
    top_k: int = 10,
    layer_stats: list[dict[str, Any]] | None = None,
) -> list[HealthWarning]:
    """Every health warning of a run, the model's first (accuracy, then dead layers in
    ``layer_stats``, the runner's ``model.layer_stats``), then each explainer's in order."""
    warnings = accuracy_warnings(predictions, data, model_outputs(folder))
    warnings += dead_unit_warnings(layer_stats or [])
    for result in explainers.values():
        if result.status != "ok":
            continue
        found = []
        if result.scope == "local" and result.attribution_file:
            scan = scan_attributions(folder.path / result.attribution_file, data.modality)
            found = attribution_warnings(result, scan, data)
        ranking = folder.file(f"rankings/{result.id}.npy")
        degenerate = any(w.code != "zero_features" for w in found)  # its ranking says no more
        if ranking.is_file() and not degenerate:
            found += tie_warnings(result, np.load(ranking)[0], top_k)
        warnings += found + fidelity_warnings(result)
    return warnings


def model_outputs(folder: RunFolder) -> int | None:
    """How many classes the model scores (the columns of ``predictions.npy``), if stored."""
    path = folder.file("predictions.npy")
    if not path.is_file():
        return None
    logits = np.load(path, mmap_mode="r")  # only the header is read
    return int(logits.shape[1]) if logits.ndim == 2 else None


def accuracy_warnings(
    predictions: PredictionSummary, data: DataSummary, outputs: int | None = None
) -> list[HealthWarning]:
    """The model is no better than guessing on a labelled slice.

    Chance is one over the model's classes (``outputs``, its logits' width) where known:
    a slice may hold fewer classes than the model tells apart (labels 0-1 of a 10-class
    model), and guessing among 10 is right one time in 10, not in 2.
    """
    classes = outputs if outputs is not None and outputs >= 2 else len(data.class_names)
    accuracy = predictions.accuracy
    if classes < 2 or predictions.n == 0 or not math.isfinite(accuracy):
        return []
    chance = 1 / classes
    if accuracy > chance + 1e-12:
        return []
    return [
        HealthWarning(
            code="accuracy_at_chance",
            subject="model",
            message=(
                f"accuracy on the slice is {accuracy:.3f}, at or below chance "
                f"(1/{classes} = {chance:.3f})"
            ),
            action=(
                "explanations of a model that does not predict say nothing about it; check "
                "that the weights are the trained ones, that the inputs are preprocessed as in "
                "training and that the labels follow the model's class order (data.classes)"
            ),
        )
    ]


def dead_unit_warnings(layer_stats: list[dict[str, Any]]) -> list[HealthWarning]:
    """Rectifier layers (ReLU, ReLU6) with more than half of their units never > 0 on the
    slice: those units pass no signal and get no gradient."""
    out = []
    for row in layer_stats:
        dead, units = row.get("dead_fraction"), row.get("units")
        if not row.get("rectifier") or dead is None or not units or dead <= MAX_DEAD:
            continue
        name = row["name"]
        out.append(
            HealthWarning(
                code="dead_units",
                subject=name,
                message=(
                    f"{name}: {dead:.0%} of its {units} units never activate on the slice "
                    "(dead ReLUs)"
                ),
                action=(
                    "check the initialisation, learning rate or input scaling; the layer's "
                    "output is mostly zero"
                ),
            )
        )
    return out


def scan_attributions(path: Path, modality: str) -> AttributionScan:
    """NaNs, range and all-zero features of an attribution file, read a chunk at a time
    (about ``CHUNK_ELEMENTS`` values, so large images never load whole)."""
    array = np.load(path, mmap_mode="r")
    n = len(array)
    row = int(np.prod(array.shape[1:]))
    rows = max(1, CHUNK_ELEMENTS // max(row, 1))
    nonzero = np.zeros(row if modality_of(modality).fixed_features else 0, dtype=bool)
    bad, low, high, uniform = 0, math.inf, -math.inf, 0
    for start in range(0, n, rows):
        block = np.asarray(array[start : start + rows]).reshape(-1, row)
        finite = np.isfinite(block)
        if not finite.all():
            bad += int((~finite).any(axis=1).sum())
            block = np.where(finite, block, 0)  # NaN is no value, and not "zero" either
            nonzero |= (~finite).any(axis=0) if nonzero.size else nonzero
            values = block[finite]
        else:
            values = block
        if values.size:
            low, high = min(low, float(values.min())), max(high, float(values.max()))
        if nonzero.size:
            nonzero |= (block != 0).any(axis=0)
        if modality_of(modality).own_features:
            uniform += _uniform_rows(block)
    return AttributionScan(n, bad, low, high, ~nonzero, uniform)


#: Values this close, relative to the largest of the sample, are one value.
UNIFORM_RTOL = 1e-4


def _uniform_rows(block: np.ndarray) -> int:
    """Rows with two or more nonzero values, all equal within ``UNIFORM_RTOL``."""
    live = block != 0
    big = np.where(live, block, -np.inf).max(axis=1)
    small = np.where(live, block, np.inf).min(axis=1)
    scale = np.abs(block).max(axis=1)
    flat = (big - small) <= UNIFORM_RTOL * scale
    return int((flat & (live.sum(axis=1) >= 2)).sum())


def attribution_warnings(
    result: ExplainerResult, scan: AttributionScan, data: DataSummary
) -> list[HealthWarning]:
    """NaN, all-zero or constant attributions; features zero on every sample."""
    who = result.id
    if scan.n == 0:
        return []
    if scan.non_finite_samples:
        return [
            HealthWarning(
                code="attributions_nan",
                subject=who,
                message=(
                    f"{who}: attributions contain NaN or inf on {scan.non_finite_samples} of "
                    f"{scan.n} samples"
                ),
                action=(
                    "the explainer's numbers are not usable there; look for a division by zero "
                    "or overflow in the model (e.g. log of 0, softmax of huge logits) or try "
                    "another explainer"
                ),
            )
        ]
    if scan.low == scan.high == 0:
        return [
            HealthWarning(
                code="attributions_zero",
                subject=who,
                message=f"{who}: attributions are zero for every sample and feature",
                action=(
                    "the explainer sees no effect of any input on the output (a constant or "
                    "saturated model, or inputs the model reads as indices); check the model "
                    "or use a perturbation explainer (occlusion, feature_ablation, kernel_shap)"
                ),
            )
        ]
    if scan.low == scan.high:
        return [
            HealthWarning(
                code="attributions_constant",
                subject=who,
                message=(
                    f"{who}: attributions are one constant value ({scan.low:.4g}) for every "
                    "sample and feature"
                ),
                action=(
                    "a constant map ranks no feature above another; check the explainer's "
                    "params (baseline, layer) and the model"
                ),
            )
        ]
    return uniform_warnings(result, scan) + zero_feature_warnings(result, scan, data)


def uniform_warnings(result: ExplainerResult, scan: AttributionScan) -> list[HealthWarning]:
    """Most samples' features (a text's tokens) all get one value: no ranking within them."""
    if scan.uniform_samples * 2 <= scan.n:
        return []
    who = result.id
    share = scan.uniform_samples / scan.n
    return [
        HealthWarning(
            code="attributions_uniform",
            subject=who,
            message=(
                f"{who}: every token of a text gets the same attribution in {share:.0%} of the "
                "samples; within those texts no token ranks above another"
            ),
            action=(
                "a model that pools token embeddings (mean or sum) has the same gradient at "
                "every token, so gradient magnitudes (saliency, smoothgrad) cannot tell tokens "
                "apart; use integrated_gradients, input_x_gradient, occlusion or kernel_shap"
            ),
        )
    ]


def zero_feature_warnings(
    result: ExplainerResult, scan: AttributionScan, data: DataSummary
) -> list[HealthWarning]:
    """Tabular features that vary over the slice but get exactly 0 on every sample."""
    if not modality_of(data.modality).fixed_features or not scan.zero_features.any():
        return []
    summary = data.feature_summary or []
    names = data.feature_names or [f"x{i}" for i in range(len(scan.zero_features))]
    zero = [
        names[i]
        for i in np.flatnonzero(scan.zero_features)
        if i < len(summary) and (summary[i].get("std") or 0) > 0  # a constant column may be 0
    ]
    if not zero:
        return []
    listed = ", ".join(zero[:NAMES_SHOWN])
    if len(zero) > NAMES_SHOWN:
        listed += f" and {len(zero) - NAMES_SHOWN} more"
    if result.type in GRADIENT_METHODS:
        message = f"{result.id}: gradient is zero everywhere for {listed}"
        action = (
            "the model likely uses them as indices; use a perturbation explainer or declare "
            "them categorical"
        )
    else:
        message = f"{result.id}: attributions are exactly zero on every sample for {listed}"
        action = (
            "removing them never changes the output: the model ignores them on this slice; "
            "if they should matter, check how the model reads them"
        )
    return [
        HealthWarning(
            code="zero_features", subject=result.id, message=message, action=action, features=zero
        )
    ]


def tie_warnings(result: ExplainerResult, importance: np.ndarray, k: int) -> list[HealthWarning]:
    """A ranking whose top ``k`` is one tie: it names features for no reason."""
    tied = tied_top(importance, k)
    if not tied:
        return []
    value = float(np.abs(np.nan_to_num(importance)).max())
    n = len(importance)
    where = f"all {n} features" if tied == n else f"{tied} of {n} features"
    if result.type == "permutation_importance" and value == 0:
        message = (
            f"{result.id}: no feature changes the score when shuffled alone "
            f"({where} have importance 0)"
        )
        action = (
            "features may matter only together (correlated or redundant columns): shuffle them "
            "as feature groups, or use an attribution explainer; a top "
            f"{k} of this ranking would be arbitrary"
        )
    elif value == 0:
        message = f"{result.id}: no feature has any importance ({where} have importance 0)"
        action = (
            "the explainer found no dependence on any input, so the ranking says nothing; "
            "check the model's accuracy and the explainer's fit, or use another explainer"
        )
    else:
        message = f"{result.id}: the top of the ranking is a tie ({where} share {value:.4g})"
        action = (
            f"a top {k} chosen from a tie is arbitrary; rank feature groups or regions instead "
            "of single features, or use an explainer with finer resolution"
        )
    return [HealthWarning(code="ranking_tied", subject=result.id, message=message, action=action)]


def fidelity_warnings(result: ExplainerResult) -> list[HealthWarning]:
    """A global surrogate that does not mimic the model on held-out samples."""
    out = []
    for key, value in result.fidelity.items():
        if key.startswith("train_") or value is None or value >= MIN_FIDELITY:
            continue
        out.append(
            HealthWarning(
                code="low_fidelity",
                subject=result.id,
                message=(
                    f"{result.id}: held-out fidelity ({key}) is {value:.3f}, below {MIN_FIDELITY:g}"
                ),
                action=(
                    "the surrogate does not mimic the model, so its importances and rules say "
                    "little about it; give it more capacity (max_depth, surrogate_forest) or "
                    "fewer features, or do not rely on it"
                ),
            )
        )
    return out
