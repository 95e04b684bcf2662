"""Per gene, permutation importance on the planted gene data is near zero: shuffling one
gene at a time costs at most a few samples' accuracy (one repeat, to keep 500 shuffles
quick), while pathway_a's 25 genes shuffled together cost about half of it
(test_gene_groups.py). The issue's point: groups are the readable unit here."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.groups.test_gene_groups import run, spec_text


def test_per_gene_permutation_importance_is_near_zero(tmp_path: Path) -> None:
    text = spec_text(False, "  - type: permutation_importance\n    params: {n_repeats: 1}\n")
    code, results, run_dir = run(tmp_path, text)
    assert code == 0
    pi = np.load(run_dir / "rankings" / "permutation_importance.npy")[0]
    assert np.abs(pi).max() < 0.1
    assert results["explainers"]["permutation_importance"].get("group_ranking") is None
