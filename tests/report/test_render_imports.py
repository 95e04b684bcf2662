"""What the report's imports load: of ``auditor.spec`` its settings and the spec document,
not the plugin registries (``auditor.spec`` loads its names on first use); and ``auditor
render`` never torch (it reads stored arrays only; torch costs seconds to import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from text_run import build_text_run

from auditor.run_folder import RunFolder


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


#: ``auditor render`` as the command line runs it, then the modules it left loaded.
RENDER = """\
import sys
from auditor.cli import cli
cli(["render", "--format", "html", sys.argv[1]], standalone_mode=False)
print(sorted(n for n in ("torch", "auditor.modalities.text", "auditor.models.graph")
             if n in sys.modules))
"""


@pytest.mark.parametrize("kind", ["image", "tabular", "text"])
def test_auditor_render_does_not_import_torch(
    kind: str, digits_run: RunFolder, hostile_run: RunFolder, copy_of, tmp_path: Path
) -> None:
    if kind == "text":
        folder = build_text_run(tmp_path / "text").path
    else:
        folder = copy_of(digits_run if kind == "image" else hostile_run).path
    html = folder / "report.html"
    before = html.stat().st_mtime_ns if html.exists() else 0
    out = subprocess.run(
        [sys.executable, "-c", RENDER, str(folder)], check=True, capture_output=True, text=True
    )
    assert out.stdout.splitlines()[-1] == "[]"
    assert html.stat().st_mtime_ns > before  # it did render


def test_the_torch_free_modules_offer_the_same_objects_as_before() -> None:
    from auditor.explainers import grid, names
    from auditor.modalities import base, feed, structured, structured_modality, text, text_modality
    from auditor.models import graph, graph_model

    assert grid.tabular_names is names.tabular_names
    assert (graph.ModelGraph, graph.BlockGraph, graph.GraphNode) == (
        graph_model.ModelGraph,
        graph_model.BlockGraph,
        graph_model.GraphNode,
    )
    assert base.ModelFeed is feed.ModelFeed
    assert issubclass(text.TextFeed, base.ModelFeed)
    assert text.TextModality is text_modality.TextModality
    assert structured.StructuredModality is structured_modality.StructuredModality
    assert base.modality_of("text") is text.TEXT
    assert base.modality_of("structured") is structured.STRUCTURED
