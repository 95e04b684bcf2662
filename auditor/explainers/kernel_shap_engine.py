"""A batched KernelSHAP estimator: shap's KernelExplainer, many samples at once.

Lundberg, Lee 2017, "A Unified Approach to Interpreting Model Predictions",
https://arxiv.org/abs/1705.07874. The estimator is the one of ``shap.KernelExplainer``
(shap 0.51, ``shap/explainers/_kernel.py``), step for step:

- players are the features (or given groups of columns) whose value differs from some
  background row (``numpy.isclose``); the others get 0 and take no part;
- coalitions of the M players get the Shapley kernel weight of their size,
  ``(M - 1) / (s (M - s))``, a size and its complement counted together; whole sizes are
  enumerated, smallest first, while the budget ``nsamples`` allows, the rest drawn in
  complementary pairs from the remaining sizes with numpy's legacy generator seeded with
  the run's seed (the same draws as shap under ``np.random.seed(seed)``), a repeated
  coalition adding to its weight;
- ``E[f(x_S, background)]`` is the background-weighted mean output of each coalition;
- a weighted least squares fit, with the efficiency constraint ``sum(phi) = f(x) -
  E[f(background)]`` imposed exactly by eliminating the last player; optionally on the
  ``max_features`` players a LARS path picks first (shap's ``l1_reg="num_features(r)"``).

What differs is only the work: the coalitions of a player count are drawn once and shared
by every sample with that count, the model sees rows of many samples per call
(``batch_size``), and the regression is solved once per player count with one right-hand
side per sample. A sample's values therefore do not depend on the batch it came in.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from scipy.special import binom

#: ``f(rows, owner) -> outputs``: the explained output of each row, ``rows`` float32
#: ``(R, P)``, ``owner`` the index of the sample each row belongs to, result ``(R,)``.
OutputFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def default_nsamples(players: int) -> int:
    """The coalition budget when the spec gives none, sized from the number of players M.

    shap's ``2 M + 2048`` up to 64 players (at most 2176: the tabular and text audits keep
    their budgets); above, ``max(2176, 4 M)``: at least 4 coalitions per player. The cost is
    linear in the budget (budget x background rows model evaluations per sample), the
    error falls about as ``1 / sqrt(budget - M)``. Measured on a 500-feature MLP like bench
    ``case_wide``'s against a 40,000-coalition estimate (6 samples, median per-sample
    Spearman / relative L2 error): 2 M + 12 = 1012: 0.76 / 0.60; 3 M: 0.96 / 0.17;
    2048: 0.974 / 0.13; shap's 3048: 0.985 / 0.095; 4512: 0.991 / 0.07. At M = 500 the
    default, 2176, costs 0.71x shap's; for more accuracy set ``nsamples`` or use groups.
    """
    if players <= 64:
        return 2 * players + 2048
    return max(2176, 4 * players)


def default_batch_rows(width: int, text: bool = False) -> int:
    """Rows per model call: 4096 for text (a transformer's activations grow with each
    row's length), else as many as hold 2**24 values, between 4096 and 65536. Fewer, larger
    calls matter on a shared CPU: a 500-wide MLP ran at 3.3 us a row in calls of 65,536
    rows and 19.6 us in calls of 4096 with 2 torch threads while other jobs ran."""
    if text:
        return 4096
    return int(min(65536, max(4096, 2**24 // max(width, 1))))


@dataclass(frozen=True)
class Coalitions:
    """Coalition masks over M players (1 = the sample's value) and their kernel weights."""

    masks: np.ndarray  # (K, M) float64 in {0, 1}
    weights: np.ndarray  # (K,) float64
    enumerated: bool  # every coalition size was enumerated (the values are exact)
    #: Products that depend only on the coalitions, kept for the next batch.
    cache: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def masks32(self) -> np.ndarray:
        """The masks as float32, the dtype of the model's rows."""
        if "masks32" not in self.cache:
            self.cache["masks32"] = self.masks.astype(np.float32)
        return self.cache["masks32"]

    def normal_equations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, W X, X' W X)`` of the constrained fit (the last player eliminated)."""
        if "normal" not in self.cache:
            design = self.masks[:, :-1] - self.masks[:, -1:]
            weighted = self.weights[:, None] * design
            self.cache.update(design=design, weighted=weighted, normal=design.T @ weighted)
        return self.cache["design"], self.cache["weighted"], self.cache["normal"]


@lru_cache(maxsize=16)
def shap_coalitions(players: int, nsamples: int, seed: int) -> Coalitions:
    """shap's KernelExplainer coalitions for ``players`` players, replicated draw for draw.

    ``nsamples`` is capped at ``2**M - 2`` (every coalition but the empty and full ones).
    The random part draws from ``numpy.random.RandomState(seed)``: the same numbers shap
    draws from numpy's global generator after ``np.random.seed(seed)``.
    """
    m = players
    if m <= 30:
        nsamples = min(nsamples, 2**m - 2)
    num_sizes = math.ceil((m - 1) / 2.0)
    num_paired = math.floor((m - 1) / 2.0)
    weight_vector = np.array([(m - 1.0) / (i * (m - i)) for i in range(1, num_sizes + 1)])
    weight_vector[:num_paired] *= 2
    weight_vector /= np.sum(weight_vector)

    masks: list[np.ndarray] = []
    weights: list[float] = []
    num_full = 0
    left = float(nsamples)
    remaining = weight_vector.copy()
    for size in range(1, num_sizes + 1):
        nsubsets = binom(m, size) * (2 if size <= num_paired else 1)
        if left * remaining[size - 1] / nsubsets < 1.0 - 1e-8:
            break
        num_full += 1
        left -= nsubsets
        if remaining[size - 1] < 1.0:
            remaining /= 1 - remaining[size - 1]
        w = weight_vector[size - 1] / binom(m, size) / (2.0 if size <= num_paired else 1.0)
        for inds in itertools.combinations(range(m), size):
            mask = np.zeros(m)
            mask[list(inds)] = 1.0
            masks.append(mask)
            weights.append(w)
            if size <= num_paired:
                masks.append(1.0 - mask)
                weights.append(w)

    fixed = len(masks)
    samples_left = nsamples - fixed
    if num_full != num_sizes:
        draw_weights = weight_vector.copy()
        draw_weights[:num_paired] /= 2  # each draw below adds a pair
        draw_weights = draw_weights[num_full:]
        draw_weights /= np.sum(draw_weights)
        rng = np.random.RandomState(seed % 2**32)
        sizes = rng.choice(len(draw_weights), 4 * samples_left, p=draw_weights)
        used: dict[bytes, int] = {}
        position = 0
        mask = np.zeros(m)
        while samples_left > 0 and position < len(sizes):
            mask.fill(0.0)
            size = int(sizes[position]) + num_full + 1
            position += 1
            mask[rng.permutation(m)[:size]] = 1.0
            key = mask.tobytes()
            new = key not in used
            if new:
                used[key] = len(masks)
                samples_left -= 1
                masks.append(mask.copy())
                weights.append(1.0)
            else:
                weights[used[key]] += 1.0
            if samples_left > 0 and size <= num_paired:
                if new:
                    samples_left -= 1
                    masks.append(1.0 - mask)
                    weights.append(1.0)
                else:
                    weights[used[key] + 1] += 1.0
        drawn = np.asarray(weights[fixed:])
        if drawn.size:
            weights[fixed:] = list(drawn * (np.sum(weight_vector[num_full:]) / drawn.sum()))
    result = Coalitions(
        np.asarray(masks, dtype=np.float64).reshape(-1, m),
        np.asarray(weights, dtype=np.float64),
        num_full == num_sizes,
    )
    result.masks.flags.writeable = False
    result.weights.flags.writeable = False
    return result


@dataclass
class KernelShapValues:
    """Per sample: the players' values, the outputs, and the coalitions it cost."""

    values: np.ndarray  # (S, G) float64, one column per player (feature or group)
    fx: np.ndarray  # (S,) the explained output at the sample
    expected: np.ndarray  # (S,) its background-weighted mean E[f(background)]
    coalitions: np.ndarray  # (S,) coalitions evaluated for the sample
    enumerated: np.ndarray  # (S,) bool: every coalition evaluated, the values exact
    warnings: list[str] = field(default_factory=list)


def kernel_shap_values(
    f: OutputFunction,
    x: np.ndarray,
    background: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    nsamples: int | None = None,
    seed: int = 0,
    groups: Sequence[Sequence[int]] | None = None,
    max_features: int | None = None,
    batch_size: int = 4096,
) -> KernelShapValues:
    """KernelSHAP values of ``S`` samples ``x`` ``(S, P)`` against a background.

    ``background`` is ``(B, P)``, shared by every sample, or ``(S, B, P)``, one per
    sample (text: the sample with its tokens removed); ``weights`` ``(B,)`` its rows'
    weights (k-means cluster sizes), normalized here. ``groups`` are players made of
    several columns (lists of column indices, each column in exactly one); by default
    every column is a player. ``nsamples`` is the coalition budget per sample, by default
    ``default_nsamples(M)``.
    """
    x = np.asarray(x, dtype=np.float64)
    n, width = x.shape
    background = np.asarray(background, dtype=np.float64)
    shared = background.ndim == 2
    bg = background[None] if shared else background
    rows_per = bg.shape[1]
    w_bg = np.ones(rows_per) if weights is None else np.asarray(weights, dtype=np.float64)
    w_bg = w_bg / w_bg.sum()
    players = player_columns(groups, width)

    # Which players vary (shap's varying_groups: some background row differs from x).
    varying = np.zeros((n, len(players)), dtype=bool)
    for s in range(n):
        close = np.isclose(
            x[s][None, :], bg[0 if shared else s], rtol=1e-5, atol=1e-8, equal_nan=True
        )
        same = close.all(0)
        varying[s] = ~same if groups is None else [not same[c].all() for c in players]

    fx, expected = _outputs_at_ends(f, x, bg, w_bg, batch_size)
    values = np.zeros((n, len(players)))
    counts = varying.sum(1)
    designs = {
        int(m): shap_coalitions(int(m), nsamples or default_nsamples(int(m)), seed)
        for m in np.unique(counts)
        if m >= 2
    }
    outputs = _coalition_outputs(f, x, bg, w_bg, players, varying, designs, batch_size)
    notes: list[str] = []
    for m in np.unique(counts).tolist():
        members = np.flatnonzero(counts == m)
        total = fx[members] - expected[members]
        if m == 1:
            values[members, np.argmax(varying[members], axis=1)] = total
        if m < 2:
            continue
        design = designs[m]
        ey_adj = np.stack([outputs[s] for s in members], axis=1) - expected[members][None, :]
        if max_features is None:
            phi, note = constrained_fit(design.masks, design.weights, ey_adj, total, design)
        else:
            phi, note = selected_fit(design.masks, design.weights, ey_adj, total, max_features)
        notes += [note] if note else []
        for row, s in enumerate(members):
            values[s, np.flatnonzero(varying[s])] = phi[row]
    coalitions = np.array([len(designs[c].masks) if c >= 2 else 0 for c in counts])
    enumerated = np.array([c < 2 or designs[c].enumerated for c in counts])
    return KernelShapValues(values, fx, expected, coalitions, enumerated, sorted(set(notes)))


def player_columns(groups: Sequence[Sequence[int]] | None, width: int) -> list[np.ndarray]:
    """The columns of each player: one per column, or the given groups, which must split
    the columns (each column in exactly one group: a column left out would still move
    ``f(x)`` without being any player's)."""
    if groups is None:
        return [np.array([j]) for j in range(width)]
    players = [np.asarray(list(g), dtype=np.int64) for g in groups]
    if any(len(g) == 0 for g in players):
        raise ValueError("every group of columns needs at least one column")
    seen = np.sort(np.concatenate(players))
    if not np.array_equal(seen, np.arange(width)):
        raise ValueError(f"groups must split the columns 0..{width - 1}: each in exactly one")
    return players


@torch.no_grad()
def _outputs_at_ends(
    f: OutputFunction, x: np.ndarray, bg: np.ndarray, w_bg: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """``f(x)`` per sample and ``E[f(background)]`` (weighted) per sample."""
    n = len(x)
    owner = torch.arange(n)
    fx = _call(f, torch.as_tensor(x, dtype=torch.float32), owner, batch_size)
    per_sample = np.broadcast_to(bg, (n, *bg.shape[1:])).reshape(-1, bg.shape[-1])
    rows = torch.from_numpy(np.ascontiguousarray(per_sample, dtype=np.float32))
    out = _call(f, rows, owner.repeat_interleave(bg.shape[1]), batch_size)
    expected = out.reshape(n, -1) @ w_bg
    return fx, expected


def _call(f: OutputFunction, rows: torch.Tensor, owner: torch.Tensor, batch: int) -> np.ndarray:
    outs = [f(rows[s : s + batch], owner[s : s + batch]) for s in range(0, len(rows), batch)]
    return torch.cat(outs).to(torch.float64).numpy() if outs else np.zeros(0)


@torch.no_grad()
def _coalition_outputs(
    f: OutputFunction,
    x: np.ndarray,
    bg: np.ndarray,
    w_bg: np.ndarray,
    players: list[np.ndarray],
    varying: np.ndarray,
    designs: dict[int, Coalitions],
    batch_size: int,
) -> dict[int, np.ndarray]:
    """``E_background[f(x_S, background_rest)]`` for each sample's coalitions, ``(K,)``.

    Rows of several samples share a model call: pieces of at most ``batch_size`` rows
    (whole coalitions, each with every background row) are packed in sample order.
    """
    n, width = x.shape
    rows_per = bg.shape[1]
    per_call = max(1, batch_size // rows_per)
    xs = torch.as_tensor(x, dtype=torch.float32)
    bgs = torch.as_tensor(bg, dtype=torch.float32)
    column_player = np.full(width, -1)
    outputs: dict[int, np.ndarray] = {}
    pieces: list[tuple[int, torch.Tensor, int]] = []  # (sample, column masks, first coalition)

    buffer = torch.empty(max(batch_size, rows_per), width)

    def flush() -> None:
        if not pieces:
            return
        start = 0
        for s, mask, _ in pieces:  # rows built in place: x where the coalition holds it
            block = buffer[start : start + len(mask) * rows_per].view(len(mask), rows_per, width)
            # lerp with weights 0 and 1 is exact (torch computes end - diff * 0 at 1) and
            # several times faster than torch.where with a broadcast mask.
            start_rows = bgs[0 if len(bgs) == 1 else s]
            torch.lerp(start_rows, xs[s].expand_as(start_rows), mask[:, None, :], out=block)
            start += len(mask) * rows_per
        owner = torch.cat([torch.full((len(mask) * rows_per,), s) for s, mask, _ in pieces])
        out = f(buffer[:start], owner).to(torch.float64).numpy()
        start = 0
        for s, mask, first in pieces:
            count = len(mask)
            block_out = out[start : start + count * rows_per].reshape(count, rows_per)
            outputs[s][first : first + count] = block_out @ w_bg
            start += count * rows_per
        pieces.clear()

    queued = 0
    for s in range(n):
        m = int(varying[s].sum())
        if m < 2:
            continue
        design = designs[m]
        column_player.fill(-1)
        for index, player in enumerate(np.flatnonzero(varying[s])):
            column_player[players[player]] = index
        active = column_player >= 0
        # (K, P): the sample's value where the coalition holds the column's player.
        if active.all() and np.array_equal(column_player, np.arange(width)):
            columns = design.masks32()  # every column its own varying player, in order
        else:
            columns = np.zeros((len(design.masks), width), dtype=np.float32)
            columns[:, active] = design.masks32()[:, column_player[active]]
        column_masks = torch.as_tensor(columns)
        outputs[s] = np.zeros(len(design.masks))
        for first in range(0, len(columns), per_call):
            piece = column_masks[first : first + per_call]
            if queued and queued + len(piece) * rows_per > batch_size:
                flush()
                queued = 0
            pieces.append((s, piece, first))
            queued += len(piece) * rows_per
    flush()
    return outputs


def constrained_fit(
    masks: np.ndarray,
    weights: np.ndarray,
    ey_adj: np.ndarray,
    total: np.ndarray,
    prepared: Coalitions | None = None,
) -> tuple[np.ndarray, str]:
    """Weighted least squares with ``sum(phi) = total``, for many samples at once.

    ``ey_adj`` ``(K, S)`` is each coalition's mean output minus ``E[f(background)]``,
    ``total`` ``(S,)`` is ``f(x) - E[f(background)]``. The last player is eliminated by the
    constraint (shap's ``KernelExplainer.solve``); returns ``(S, M)`` and a note when the
    normal equations were singular and least squares was used instead. ``prepared``: the
    coalitions ``masks`` and ``weights`` come from, whose normal matrix is reused.
    """
    last = masks[:, -1]
    y = ey_adj - last[:, None] * total[None, :]
    if prepared is None:
        design = masks[:, :-1] - last[:, None]
        weighted = weights[:, None] * design
        normal = design.T @ weighted
    else:
        design, weighted, normal = prepared.normal_equations()
    w, note = np.zeros((0, len(total))), ""
    if design.shape[1]:
        w, note = _normal_solve(design, weights, weighted, normal, y)
    phi = np.empty((len(total), masks.shape[1]))
    phi[:, :-1] = w.T
    phi[:, -1] = total - w.sum(0)
    phi[np.abs(phi) < 1e-10] = 0.0
    return phi, note


def _normal_solve(
    design: np.ndarray,
    weights: np.ndarray,
    weighted: np.ndarray,
    normal: np.ndarray,
    y: np.ndarray,
) -> tuple[np.ndarray, str]:
    """``argmin_w ||W^(1/2) (y - X w)||`` by the normal equations (lstsq if singular)."""
    note = ""
    try:
        w = np.linalg.solve(normal, weighted.T @ y)
    except np.linalg.LinAlgError:
        note = (
            "the weighted least squares problem was singular (too few coalitions for the "
            "number of features); least squares was used: raise nsamples or group features"
        )
        root = np.sqrt(weights)[:, None]
        w = np.linalg.lstsq(root * design, root * y, rcond=None)[0]
    return w, note


def selected_fit(
    masks: np.ndarray,
    weights: np.ndarray,
    ey_adj: np.ndarray,
    total: np.ndarray,
    max_features: int,
) -> tuple[np.ndarray, str]:
    """shap's ``l1_reg="num_features(r)"``: per sample, a LARS path (Efron et al. 2004)
    on the augmented problem picks at most ``r`` players, then the constrained fit runs
    on them alone; the others get 0."""
    from sklearn.linear_model import lars_path

    size = masks.sum(1)
    m = masks.shape[1]
    root = np.sqrt(np.hstack((weights * (m - size), weights * size)))
    design = root[:, None] * np.vstack((masks, masks - 1))
    phi = np.zeros((len(total), m))
    notes = set()
    for s in range(len(total)):
        target = np.hstack((ey_adj[:, s], ey_adj[:, s] - total[s])) * root
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chosen = np.asarray(lars_path(design, target, max_iter=max_features)[1], dtype=int)
        if len(chosen) == 0:
            continue
        fit, note = constrained_fit(
            masks[:, chosen], weights, ey_adj[:, s : s + 1], total[s : s + 1]
        )
        phi[s, chosen] = fit[0]
        notes.add(note)
    return phi, "; ".join(sorted(n for n in notes if n))
