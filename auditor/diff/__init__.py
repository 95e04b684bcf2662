"""``auditor diff RUN_A RUN_B``: what changed between two finished runs (issue 15).

``compare_runs`` reads the two run folders alone (results.json, spec.yaml, rankings,
attributions and per-sample metric files) into a ``DiffResult``; ``write_diff`` writes
diff.json, diff.html and diff.pdf (PDF/A-3b with both results.json attached).
"""

from auditor.diff.compare import DiffResult, compare_runs, with_checks_again
from auditor.diff.render import write_diff

__all__ = ["DiffResult", "compare_runs", "with_checks_again", "write_diff"]
