"""Names of tabular features, without torch (the report ranks stored attributions by them).

``auditor.explainers.grid`` re-exports ``tabular_names``.
"""

from __future__ import annotations


def tabular_names(n_features: int, feature_names: list[str] | None) -> list[str]:
    """The dataset's names, or ``x0, x1, ...``; a ValueError if the count is wrong."""
    if feature_names is None:
        return [f"x{i}" for i in range(n_features)]
    if len(feature_names) != n_features:
        raise ValueError(
            f"{len(feature_names)} feature names for {n_features} features: "
            f"{', '.join(feature_names[:10])}"
        )
    return [str(name) for name in feature_names]
