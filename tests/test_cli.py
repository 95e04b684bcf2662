"""The command line: validate, plugins, schema, and usage errors (in-process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from auditor import registries
from auditor.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_example_specs() -> None:
    code, out, err = invoke(
        "validate",
        str(ROOT / "audits/digits_cnn.yaml"),
        str(ROOT / "audits/breast_cancer_mlp.yaml"),
    )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{ROOT / 'audits/digits_cnn.yaml'}: valid",
        f"{ROOT / 'audits/breast_cancer_mlp.yaml'}: valid",
    ]


ENGINES = ("captum", "shap", "sklearn", "scipy", "matplotlib", "weasyprint")


def test_validate_imports_no_engine() -> None:
    """Validating a spec loads its plugins' params, not Captum, shap or scikit-learn."""
    specs = [str(ROOT / "audits" / name) for name in ("digits_cnn.yaml", "breast_cancer_mlp.yaml")]
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from auditor.cli import cli\n"
        f"result = CliRunner().invoke(cli, ['validate', *{specs!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        f"print(sorted(m for m in {ENGINES!r} if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_validate_cifar_spec_names_the_missing_weights(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    code, out, err = invoke("validate", "audits/cifar10_resnet18.yaml", "audits/digits_cnn.yaml")
    assert code == 2
    assert out == "audits/digits_cnn.yaml: valid\n"
    assert err == (
        "error: audits/cifar10_resnet18.yaml:15:12 model.weights: file "
        f"{ROOT}/models/cifar10_resnet18.safetensors does not exist\n"
        f"error: audits/cifar10_resnet18.yaml:19:9 data.root: folder {ROOT}/data/cifar10 does "
        "not exist; torchvision CIFAR10 expects <root>/cifar-10-batches-py/data_batch_1 ... "
        "data_batch_5, test_batch, batches.meta (the unpacked cifar-10-python.tar.gz). "
        "Nothing is downloaded\n"
    )


def test_validate_needs_a_spec() -> None:
    code, _, err = invoke("validate")
    assert code == 2 and "Missing argument 'SPECS...'" in err


def test_plugins_lists_every_plugin_with_params() -> None:
    code, out, _ = invoke("plugins", "--json")
    assert code == 0
    listing = json.loads(out)
    for kind, registry in registries.ALL.items():
        assert [row["name"] for row in listing[kind]] == registry.names()
    ig = next(r for r in listing["explainers"] if r["name"] == "integrated_gradients")
    assert ig["scope"] == "local" and ig["modalities"] == ["image", "structured", "tabular", "text"]
    steps = next(p for p in ig["params"] if p["name"] == "n_steps")
    assert steps == {
        "name": "n_steps",
        "type": "int | 'auto'",
        "default": 32,
        "description": "Integration steps, or 'auto': per sample, nested midpoint rules until "
        "the attributions add up to f(x) - f(baseline) within tolerance.",
    }
    deletion = next(r for r in listing["metrics"] if r["name"] == "deletion")
    assert deletion["direction"] == "lower"
    code, text, _ = invoke("plugins", "--kind", "metrics")
    assert code == 0 and "randomization_sanity" in text and "integrated_gradients" not in text


def test_plugins_table_shows_what_each_param_does() -> None:
    result = CliRunner().invoke(cli, ["plugins", "--kind", "datasets"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())  # the table wraps cells over lines
    assert "resize: int | tuple[int, int] | None = None" in text
    # brackets in a description are text, not rich markup
    assert "Resize first: an int sets the shorter side, [h, w] sets both." in text
    assert "Per-channel {mean: [...], std: [...]} after scaling to [0, 1]." in text
    code, out, _ = invoke("plugins", "--kind", "explainers")
    assert code == 0 and "Integration steps, or" in " ".join(out.split())


def test_plugins_kind_is_plural_or_singular() -> None:
    for plural, registry in registries.ALL.items():
        for kind in (plural, plural.removesuffix("s"), plural.upper()):
            code, out, err = invoke("plugins", "--kind", kind, "--json")
            assert (code, err) == (0, ""), kind
            assert list(json.loads(out)) == [plural]
            assert [r["name"] for r in json.loads(out)[plural]] == registry.names()
    code, out, _ = invoke("plugins", "--kind", "metric")
    assert code == 0 and out.startswith(f"metrics ({len(registries.metrics.names())})")
    code, _, err = invoke("plugins", "--kind", "explainerz")
    assert code == 2
    assert (
        "Invalid value for '--kind': 'explainerz' is not one of 'models', 'datasets', "
        "'explainers', 'metrics', 'model', 'dataset', 'explainer', 'metric'." in err
    )


def test_schema_covers_plugin_params() -> None:
    code, out, _ = invoke("schema")
    assert code == 0
    schema = json.loads(out)
    entry = schema["$defs"]["ExplainerEntry"]
    assert entry["properties"]["type"]["enum"] == registries.explainers.names()
    rule = next(
        r
        for r in entry["allOf"]
        if r["if"]["properties"]["type"]["const"] == "integrated_gradients"
    )
    steps = rule["then"]["properties"]["params"]["properties"]["n_steps"]
    integer, auto = steps["anyOf"]
    assert integer["exclusiveMinimum"] == 0 and steps["default"] == 32
    assert auto == {"const": "auto", "type": "string"}
    model = schema["$defs"]["ModelBlock"]
    python_rule = next(
        r for r in model["allOf"] if r["if"]["properties"]["source"]["const"] == "python"
    )
    assert "class" in python_rule["then"]["properties"]


def test_schema_validates_the_example_specs() -> None:
    """The schema accepts the example specs and rejects a bad param (as an editor would)."""
    import jsonschema  # shipped with the dev tools? skip when absent
    from ruamel.yaml import YAML

    _, out, _ = invoke("schema")
    validator = jsonschema.Draft202012Validator(json.loads(out))
    for name in ("digits_cnn.yaml", "breast_cancer_mlp.yaml"):
        data = YAML(typ="safe").load((ROOT / "audits" / name).read_text())
        assert list(validator.iter_errors(data)) == []
    data["explainers"][1]["params"]["n_steps"] = -1
    assert [e.message for e in validator.iter_errors(data)] == [
        "-1 is not valid under any of the given schemas"
    ]
    data["explainers"][1]["params"]["n_steps"] = "auto"
    assert list(validator.iter_errors(data)) == []


def test_results_schema() -> None:
    code, out, _ = invoke("schema", "--results")
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "auditor results.json (schema version 1)"
    assert {"provenance", "explainers", "checks", "schema_version"} <= set(schema["properties"])


def test_resume_with_out_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = invoke(
        "run", str(ROOT / "audits/digits_cnn.yaml"), "--resume", str(tmp_path), "--out", "x"
    )
    assert code == 2
    assert err == (
        "error: --resume takes the run folder itself; do not combine it with --out or --run-id\n"
    )


def test_bad_run_id_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = invoke(
        "run",
        str(ROOT / "audits/digits_cnn.yaml"),
        "--out",
        str(tmp_path),
        "--run-id",
        "../x",
        "-q",
    )
    assert code == 2
    assert err.startswith("error: --run-id '../x': use letters, digits")
    assert not any(tmp_path.iterdir())


def test_schema_covers_the_csv_sources_new_keys() -> None:
    """classes, exclude and each form of standardize validate in an editor as in auditor."""
    import jsonschema

    _, out, _ = invoke("schema")
    validator = jsonschema.Draft202012Validator(json.loads(out))
    spec: dict = {
        "version": 1,
        "name": "csv",
        "model": {"source": "python", "class": "m:M"},
        "data": {
            "source": "csv",
            "path": "t.csv",
            "label": "subtype",
            "classes": ["luminal", "basal", "her2"],
            "exclude": ["sample_id"],
        },
        "report": {"gallery": {"per_class": 2}},
    }
    for form in (True, "stats.json", {"mean": [0.0, 1.0], "std": [1.0, 2.0]}):
        spec["data"]["standardize"] = form
        assert list(validator.iter_errors(spec)) == [], form
    spec["data"]["exclude"] = "sample_id"
    assert list(validator.iter_errors(spec)) != []  # a list of names, not one name


def test_results_schema_has_the_health_warnings() -> None:
    _, out, _ = invoke("schema", "--results")
    schema = json.loads(out)
    assert "warnings" in schema["properties"]
    assert "ranking_tied" in schema["$defs"]["ExplainerResult"]["properties"]
