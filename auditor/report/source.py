"""What a report is made from: the run folder's files, read once (nothing is recomputed).

``ReportSource`` holds the validated results.json, the report options of the spec as run
(``results.report_options``; for run folders from before it was stored, read again from
the spec.yaml copy with the ``--set`` overrides recorded in provenance), the report's view
of the modality (``auditor.report.modalities``), the gallery samples (gallery.npz), the
tokens of a text slice (tokens.npz), lazy access to rankings and attribution memory maps,
and the explainers' measured faithfulness (``trust``), which orders them everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from auditor.report.modalities import ReportModality, view_for
from auditor.report.scales import ColourScale, colour_scale
from auditor.report.tokens import SliceTokens, TokenRankings
from auditor.report.trust import Assessment, assess
from auditor.results import ExplainerResult, Results
from auditor.run_folder import RunFolder
from auditor.spec.model import ReportSpec


@dataclass(frozen=True)
class GallerySamples:
    """The samples the runner chose for the gallery (see auditor.gallery)."""

    positions: np.ndarray  # positions in the slice (rows of the attribution files)
    indices: np.ndarray  # indices in the dataset
    inputs: np.ndarray  # (n, *input_shape) float32
    labels: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray
    targets: np.ndarray
    values: np.ndarray | None = None  # tabular inputs in the data's own units, if they differ

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def shown(self) -> np.ndarray:
        """What a table shows of each input: the data's own units where stored."""
        return self.values if self.values is not None else self.inputs

    @classmethod
    def empty(cls, input_shape: list[int]) -> GallerySamples:
        none = np.zeros(0, dtype=np.int64)
        return cls(
            none,
            none,
            np.zeros((0, *input_shape), np.float32),
            none,
            none,
            np.zeros(0, np.float32),
            none,
        )

    @classmethod
    def load(cls, path: Path, input_shape: list[int]) -> GallerySamples:
        if not path.is_file():
            return cls.empty(input_shape)
        with np.load(path, allow_pickle=False) as data:
            fields = [name for name in cls.__dataclass_fields__ if name in data.files]
            return cls(**{name: np.asarray(data[name]) for name in fields})


@dataclass
class ReportSource:
    """A run folder opened for reporting."""

    folder: RunFolder
    results: Results
    raw: dict[str, Any]  # results.json as stored (keys newer than this schema stay readable)
    options: ReportSpec
    spec_text: str
    _scales: dict[str, ColourScale] = field(default_factory=dict, repr=False)
    _memmaps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, folder: RunFolder) -> ReportSource:
        raw = folder.read_json("results.json")
        results = Results.model_validate(raw)
        spec_text = folder.file("spec.yaml").read_text(encoding="utf-8", errors="replace")
        if results.report_options is not None:
            options = ReportSpec.model_validate(results.report_options)
        else:  # a run folder from before results.json kept the report options
            options = report_options(spec_text, results.provenance.overrides)
        return cls(folder, results, raw, options, spec_text)

    @property
    def modality(self) -> str:
        return self.results.data.modality

    @cached_property
    def view(self) -> ReportModality:
        """What the report draws for this modality (chosen once, from results.json)."""
        return view_for(self.modality)

    @cached_property
    def local_names(self) -> list[str] | None:
        """Names of a local explainer's ranked features: ``data.ranked_features`` as stored
        by the run, else as the modality names them (None for text: tokens per sample)."""
        d = self.results.data
        if d.ranked_features is not None:
            return list(d.ranked_features)
        return self.view.local_names(d.input_shape, d.feature_names)

    @cached_property
    def tokens(self) -> SliceTokens | None:
        """The slice's tokens (text runs: tokens.npz), None where the run has none."""
        path = self.folder.file("tokens.npz")
        return SliceTokens.load(path) if path.is_file() else None

    def token_rankings(self, explainer_id: str) -> TokenRankings | None:
        """Top tokens overall and per class of a text explainer (rankings/<id>.tokens.json)."""
        path = self.folder.file(f"rankings/{explainer_id}.tokens.json")
        return TokenRankings.load(path) if path.is_file() else None

    @property
    def class_names(self) -> list[str]:
        return self.results.data.class_names

    def class_name(self, k: int) -> str:
        names = self.class_names
        return names[k] if 0 <= k < len(names) else str(k)

    @cached_property
    def gallery(self) -> GallerySamples:
        return GallerySamples.load(self.folder.file("gallery.npz"), self.results.data.input_shape)

    @cached_property
    def trust(self) -> list[Assessment]:
        """Every finished explainer's measured faithfulness and verdict, most faithful first
        (``auditor.report.trust``)."""
        return assess(self.results)

    def ok(self, scope: str | None = None) -> list[ExplainerResult]:
        """Explainers that finished (optionally of one scope), most faithful first: the
        order of ``trust``, so that rankings and galleries lead with the explainer that
        deserves most belief (spec order where nothing was measured)."""
        explainers = self.results.explainers
        return [
            explainers[a.id] for a in self.trust if scope is None or explainers[a.id].scope == scope
        ]

    def attributions(self, result: ExplainerResult) -> np.ndarray | None:
        """The ``(N, *input_shape)`` memory map of a local explainer, if its file is there."""
        if result.id not in self._memmaps:
            if not result.attribution_file:
                return None
            path = self.folder.file(result.attribution_file)
            if not path.is_file():
                return None
            self._memmaps[result.id] = np.load(path, mmap_mode="r")
        return self._memmaps[result.id]

    def scale(self, result: ExplainerResult) -> ColourScale | None:
        """The explainer's colour scale over the slice (computed once, streaming)."""
        if result.id not in self._scales:
            if not result.attribution_file:
                return None
            path = self.folder.file(result.attribution_file)
            if not path.is_file():
                return None
            self._scales[result.id] = colour_scale(
                result.id, path, self.modality, keep=self.view.scale_mask(self)
            )
        return self._scales[result.id]

    def ranking_arrays(self, explainer_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(importance, spread) for every feature, in feature order, from rankings/<id>.npy."""
        path = self.folder.file(f"rankings/{explainer_id}.npy")
        if not path.is_file():
            return None
        data = np.load(path, allow_pickle=False)
        return np.asarray(data[0], np.float64), np.asarray(data[1], np.float64)

    def class_maps(self, explainer_id: str) -> np.ndarray | None:
        """(classes, features) mean signed attribution per target class, if stored."""
        path = self.folder.file(f"rankings/{explainer_id}.classmaps.npy")
        return np.load(path, allow_pickle=False) if path.is_file() else None


def report_options(spec_text: str, overrides: list[str]) -> ReportSpec:
    """The spec's ``report:`` block as run (overrides applied); defaults if unreadable.

    The spec was valid when the run started, so a failure here means the file was edited
    since; the report then falls back to defaults rather than failing.
    """
    from auditor.spec.document import parse_document
    from auditor.spec.overrides import apply_overrides

    try:
        doc = parse_document(spec_text, Path("spec.yaml"))
        data = apply_overrides(doc, overrides)
        return ReportSpec.model_validate(data.get("report") or {})
    except Exception:  # a report must still render from a damaged spec copy
        return ReportSpec()
