"""What the report's imports of ``auditor.spec`` load: its settings and the spec document,
not the plugin registries (``auditor.spec`` loads its names on first use)."""

from __future__ import annotations

import subprocess
import sys


def loaded_after(code: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` are in ``sys.modules`` after ``code`` ran in a fresh interpreter."""
    probe = f"import sys\n{code}\nprint(sorted(n for n in {names!r} if n in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return eval(out.stdout.strip())  # a list of str printed by the probe itself


def test_the_spec_modules_the_report_reads_do_not_load_the_registries() -> None:
    code = "import auditor.spec.model, auditor.spec.document, auditor.spec.overrides"
    assert loaded_after(code, ("auditor.registries", "auditor.spec.load")) == []


def test_the_spec_document_alone_does_not_import_torch() -> None:
    assert loaded_after("from auditor.spec import load_document", ("torch",)) == []


def test_auditor_spec_still_offers_every_name() -> None:
    import auditor.spec
    from auditor.spec import AuditSpec, SpecDocument, ValidatedSpec, load_document, load_spec
    from auditor.spec.document import SpecDocument as Document
    from auditor.spec.load import ValidatedSpec as Validated
    from auditor.spec.load import load_spec as loader
    from auditor.spec.model import AuditSpec as Spec

    assert (AuditSpec, SpecDocument, ValidatedSpec, load_spec) == (
        Spec,
        Document,
        Validated,
        loader,
    )
    assert load_document.__module__ == "auditor.spec.document"
    assert set(auditor.spec.__all__) <= set(dir(auditor.spec))
