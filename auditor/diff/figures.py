"""Pictures of the samples whose attribution maps changed most, both runs side by side.

Image runs only: for each listed sample, ``|attribution|`` (channels averaged) of the first
run and of the second, tiled by the report's ``map_mosaic`` on ONE sequential colour scale
(up to the 99th percentile of every map of the picture), so that darker means larger in
both runs alike. The pictures are PNG data URIs: diff.html and diff.pdf load no file.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np

from auditor.diff.compare import DiffResult, RankingDiff
from auditor.metrics.similarity import feature_map

TILE = 112  # pixels per map


def _load(run: str, relative: str) -> np.ndarray | None:
    root = Path(run).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return np.load(path, mmap_mode="r", allow_pickle=False)


def changed_picture(result: DiffResult, ranking: RankingDiff) -> tuple[str, float] | None:
    """A PNG data URI of the changed-most samples of one explainer, and its scale's top."""
    from PIL import Image

    from auditor.report.overlay import map_mosaic

    summary = ranking.per_sample
    if result.after.modality != "image" or summary is None or not summary.changed_most:
        return None
    before = _load(result.before.path, summary.files[0])
    after = _load(result.after.path, summary.files[1])
    if before is None or after is None:
        return None
    maps: list[tuple[str, np.ndarray]] = []
    for s in summary.changed_most:
        for run, array in ((result.before, before), (result.after, after)):
            values = feature_map(np.asarray(array[s.position]), "image")
            if values.ndim != 2:
                return None
            maps.append((f"#{s.position} {run.run_id}", values))
    # the 99th percentile of every shown value: one hot pixel does not wash the rest out
    scale = float(np.nanpercentile(np.concatenate([m.ravel() for _, m in maps]), 99))
    scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    picture = map_mosaic(maps, scale, signed=False, cols=4, tile=TILE, title=14)
    buffer = io.BytesIO()
    Image.fromarray(picture, mode="RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), scale


def changed_pictures(result: DiffResult) -> dict[str, tuple[str, float]]:
    """Explainer id -> (picture, scale) for every explainer that has one."""
    out = {}
    for ranking in result.rankings:
        picture = changed_picture(result, ranking)
        if picture is not None:
            out[ranking.explainer] = picture
    return out
