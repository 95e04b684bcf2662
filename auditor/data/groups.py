"""Feature groups (``data.groups``): named sets of columns attributed and ranked as one unit.

The spec gives ``{group: [column, ...]}`` inline, or a path to a ``.json`` file holding that
mapping or a ``.csv`` file with two columns ``group,column`` (one row per column, a header row
first). Columns in no group stay their own unit, so a grouped ranking ranks groups and the
ungrouped columns together.

A group's attribution for a sample is the sum of its columns' attributions. Perturbation
explainers perturb a group as one unit and store its value split evenly over its columns, so
per-column files still sum to the group's value (``FeatureGroups.spread``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from auditor.errors import Loc, SpecIssue
from auditor.suggest import did_you_mean

#: Data modalities whose columns can be grouped.
GROUPABLE = frozenset({"tabular", "structured"})

LOC: Loc = ("data", "groups")


@dataclass(frozen=True)
class FeatureGroups:
    """Groups over ``C`` columns: ``unit_of[c]`` is the unit of column ``c``; units are the
    groups in spec order, then the ungrouped columns in column order."""

    names: list[str]  # one per unit
    unit_of: np.ndarray  # (C,) int64
    sizes: np.ndarray  # (units,) columns per unit
    n_groups: int  # the first n_groups units are groups

    @property
    def n_units(self) -> int:
        return len(self.names)

    @property
    def group_names(self) -> list[str]:
        return self.names[: self.n_groups]

    def mask(self) -> torch.Tensor:
        """``(C,)`` long: the unit of each column (Captum's ``feature_mask``)."""
        return torch.as_tensor(self.unit_of, dtype=torch.long)

    def sum_units(self, values: np.ndarray) -> np.ndarray:
        """``(..., C)`` -> ``(..., units)``: the sum of each unit's columns."""
        values = np.asarray(values, dtype=np.float64)
        out = np.zeros((*values.shape[:-1], self.n_units))
        for c, u in enumerate(self.unit_of):
            out[..., u] += values[..., c]
        return out

    def spread(self, unit_values: torch.Tensor) -> torch.Tensor:
        """``(..., units)`` -> ``(..., C)``: each unit's value split evenly over its columns."""
        idx = torch.as_tensor(self.unit_of, dtype=torch.long, device=unit_values.device)
        sizes = torch.as_tensor(self.sizes, dtype=unit_values.dtype, device=unit_values.device)
        return (unit_values / sizes)[..., idx]

    def per_column(self, column_values: torch.Tensor) -> torch.Tensor:
        """A unit's value repeated on each of its columns (Captum's masked output) -> split
        evenly, so that the columns of a unit sum to its value."""
        sizes = torch.as_tensor(self.sizes, dtype=column_values.dtype, device=column_values.device)
        idx = torch.as_tensor(self.unit_of, dtype=torch.long, device=column_values.device)
        return column_values / sizes[idx]

    def as_lists(self) -> list[list[int]]:
        """Column indices of every unit (groups first)."""
        return [np.flatnonzero(self.unit_of == u).tolist() for u in range(self.n_units)]


def _issue(loc: Loc, message: str) -> SpecIssue:
    return SpecIssue(message, loc)


GroupsParam = dict[str, list[str]] | str


def read_groups(path: Path) -> dict[str, list[str]]:
    """The mapping in a ``.json`` ``{group: [columns]}`` or ``.csv`` ``group,column`` file;
    ``ValueError`` naming the file (and line) when it is not one."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"groups file {path}: not JSON ({exc})") from exc
        if not isinstance(data, dict) or not all(
            isinstance(v, list) and all(isinstance(c, str) for c in v) for v in data.values()
        ):
            raise ValueError(f"groups file {path}: expected {{group: [column, ...]}}")
        return {str(k): list(v) for k, v in data.items()}
    if suffix == ".csv":
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        out: dict[str, list[str]] = {}
        for i, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            if len(row) != 2:
                raise ValueError(f"groups file {path}, line {i}: expected two fields group,column")
            out.setdefault(row[0].strip(), []).append(row[1].strip())
        return out
    raise ValueError(f"groups file {path}: use a .json or a .csv (group,column) file")


def build_groups(
    mapping: dict[str, list[str]], columns: list[str], modality: str
) -> tuple[FeatureGroups | None, list[SpecIssue]]:
    """Checked groups over ``columns``: every issue found (unknown column with a did-you-mean,
    a column in two groups, a group named like a column, an empty group, ungroupable data)."""
    if modality not in GROUPABLE:
        return None, [_issue(LOC, f"groups apply to tabular or structured data, not {modality}")]
    issues: list[SpecIssue] = []
    index = {c: i for i, c in enumerate(columns)}
    owner: dict[str, str] = {}
    for name, cols in mapping.items():
        loc: Loc = (*LOC, name)
        if not name:
            issues.append(_issue(LOC, "a group needs a name"))
        if name in index:
            issues.append(_issue(loc, f"group '{name}' has the name of a column; rename it"))
        if not cols:
            issues.append(_issue(loc, f"group '{name}' is empty"))
        for col in cols:
            if col not in index:
                hint = did_you_mean(col, columns)
                issues.append(_issue(loc, f"'{col}' is not a column.{hint}"))
            elif col in owner:
                issues.append(
                    _issue(loc, f"column '{col}' is in groups '{owner[col]}' and '{name}'")
                )
            else:
                owner[col] = name
    if issues:
        return None, issues
    names = list(mapping)
    unit_of = np.full(len(columns), -1, dtype=np.int64)
    for u, cols in enumerate(mapping.values()):
        unit_of[[index[c] for c in cols]] = u
    for c in np.flatnonzero(unit_of < 0):
        unit_of[c] = len(names)
        names.append(columns[c])
    sizes = np.bincount(unit_of, minlength=len(names))
    return FeatureGroups(names, unit_of, sizes, len(mapping)), []


def group_ranking_arrays(
    groups: FeatureGroups,
    attribution_file: Path | None,
    column_ranking: np.ndarray,
    chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """(importance, spread) per unit. Local explainers (``attribution_file`` of shape
    ``(N, C)``): mean and std over the slice of |sum of the unit's column attributions|.
    Global ones: the sum of the unit's column importances (and of their spreads)."""
    if attribution_file is None:
        return groups.sum_units(column_ranking[0]), groups.sum_units(column_ranking[1])
    array = np.load(attribution_file, mmap_mode="r")
    total = np.zeros(groups.n_units)
    total_sq = np.zeros(groups.n_units)
    for start in range(0, len(array), chunk):
        raw = np.asarray(array[start : start + chunk], dtype=np.float64).reshape(
            min(chunk, len(array) - start), -1
        )
        block = np.abs(groups.sum_units(raw))
        total += block.sum(axis=0)
        total_sq += (block**2).sum(axis=0)
    n = max(len(array), 1)
    mean = total / n
    return mean, np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))


def with_group_ranking(result: Any, folder: Any, groups: FeatureGroups) -> Any:
    """``result`` (an ok ``ExplainerResult``) with its ``group_ranking``; the full ranking is
    saved as ``rankings/<id>.groups.npy`` (rows: importance, spread), the unit names as
    ``rankings/groups.json`` (``names``: groups, then ungrouped columns; ``groups``: how many
    of them are groups; ``unit_of``: each column's unit)."""
    from auditor.explain import top_features
    from auditor.run_folder import atomic_save_npy

    column = np.load(folder.file(f"rankings/{result.id}.npy"))
    file = folder.file(result.attribution_file) if result.scope == "local" else None
    if file is not None and np.load(file, mmap_mode="r")[0].size != len(groups.unit_of):
        return result  # attributions not per column (structured fields): no group ranking
    importance, spread = group_ranking_arrays(groups, file, column)
    folder.write_json(
        "rankings/groups.json",
        {"names": groups.names, "groups": groups.n_groups, "unit_of": groups.unit_of.tolist()},
    )
    atomic_save_npy(
        folder.file(f"rankings/{result.id}.groups.npy"),
        np.stack([importance, spread]).astype(np.float32),
    )
    ranking = top_features(importance, spread, groups.names)
    return result.model_copy(update={"group_ranking": ranking})


def group_tie_warnings(
    warnings: list[Any], explained: dict[str, Any], folder: Any, groups: FeatureGroups, k: int
) -> list[Any]:
    """Health warnings with groups: a column ranking whose tied top is exactly one group's
    evenly split value is not warned about (the group ranking is the readable unit), and a
    group ranking whose top ``k`` is one tie is (as a column ranking would be)."""
    from auditor.explainers.ranking import tie_groups, tied_top
    from auditor.results import HealthWarning

    out = []
    for warning in warnings:
        result = explained.get(warning.subject)
        if warning.code == "ranking_tied" and result is not None and result.group_ranking:
            column = np.load(folder.file(f"rankings/{result.id}.npy"))[0]
            order, starts = tie_groups(column)
            top = order[starts == 0]
            units = np.unique(groups.unit_of[top]) if len(column) == len(groups.unit_of) else []
            if len(units) == 1 and groups.sizes[units[0]] == len(top):
                continue  # one group's value split evenly over its columns
        out.append(warning)
    for key, result in explained.items():
        path = folder.file(f"rankings/{key}.groups.npy")
        if result.status != "ok" or not result.group_ranking or not path.is_file():
            continue
        importance = np.load(path)[0]
        tied = tied_top(importance, k)
        if tied:
            value = float(np.abs(importance).max())
            out.append(
                HealthWarning(
                    code="ranking_tied",
                    subject=key,
                    message=f"{key}: the top of the group ranking is a tie ({tied} of "
                    f"{len(importance)} groups and ungrouped columns share {value:.4g})",
                    action=f"a top {k} chosen from a tie is arbitrary; the groups may not "
                    "matter to the model, or the explainer cannot tell them apart",
                )
            )
    return out
