"""Reading a spec can neither crash, hang nor eat memory: every bad file is a located error.

Each case here raised a bare exception (traceback, exit 1) or grew without bound before:
alias bombs, control characters, bytes that are not UTF-8, deep nesting, huge numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.errors import SpecError
from auditor.spec import load_document, load_spec
from auditor.spec.document import safe_yaml
from auditor.spec.overrides import apply_overrides

BASE = """\
version: 1
name: t
model:
  source: python
  class: tiny:Net
data:
  source: sklearn
  name: breast_cancer
explainers:
  - type: integrated_gradients
"""


def _bomb(indent: str) -> str:
    """Anchors a..i, each a list of nine aliases of the one before: 9**9 strings expanded."""
    lines = [f"{indent}a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{indent}{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


BOMB_TOP = BASE + _bomb("")
BOMB_INIT = BASE.replace("  class: tiny:Net\n", "  class: tiny:Net\n  init:\n" + _bomb("    "))


def _errors(tmp_path: Path, content: str | bytes, name: str = "spec.yaml") -> list[str]:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return [str(issue) for issue in info.value.issues]


ALIAS_LIMIT = "YAML aliases repeat more than 10,000 values in all (*d stands for 7,381); " + (
    "write the values out instead"
)

# (case id, file content, expected errors with {f} for the spec path)
CASES: list[tuple[str, str | bytes, list[str]]] = [
    ("alias-bomb-top-level", BOMB_TOP, ["{f}:15:8 " + ALIAS_LIMIT]),
    ("alias-bomb-model-init", BOMB_INIT, ["{f}:11:12 " + ALIAS_LIMIT]),
    (
        "recursive-alias",
        BASE + "description: &r [x, *r]\n",
        [
            "{f}:11:21 alias *r is inside the value it names (a recursive structure); a spec "
            "holds plain data only"
        ],
    ),
    (
        "bel-character",
        BASE + 'description: "ring \a the bell"\n',
        [
            "{f}:11:20 the control character U+0007 is not allowed in YAML; delete it (inside "
            'double quotes it may be written as "\\x07")'
        ],
    ),
    (
        "nul-character",
        BASE.replace("name: t", "name: t\x00"),
        [
            "{f}:2:8 the control character U+0000 is not allowed in YAML; delete it (inside "
            'double quotes it may be written as "\\x00")'
        ],
    ),
    (
        "latin-1-byte",
        BASE.encode() + "description: Qualität café".encode() + b" \xe9t\xe9\n",
        [
            "{f}:11:28 the spec file is not UTF-8 text: byte 0xe9 (invalid continuation byte); "
            "save it as UTF-8"
        ],
    ),
    (
        "utf-16-file",
        BASE.encode("utf-16"),
        [
            "{f}:1:1 the spec file is not UTF-8 text: byte 0xff (invalid start byte); it looks "
            "like UTF-16; save it as UTF-8"
        ],
    ),
    (
        "nested-too-deep",
        BASE + "description: " + "[" * 150 + "]" * 150 + "\n",
        ["{f}:11:113 values are nested more than 100 levels deep"],
    ),
    (
        "integer-too-long",
        BASE + "seed: " + "9" * 5000 + "\n",
        ["{f}:11:7 a number of 5,000 characters is too long"],
    ),
    (
        "hex-integer-too-large",
        BASE + "seed: 0x" + "f" * 5000 + "\n",
        [
            "{f}:11:7 seed: Input should be less than or equal to 4294967295 (got an integer too "
            "large to show)"
        ],
    ),
    (
        "integer-key",
        BASE + "1: x\n",
        ["{f}:11:1 1: a key must be text, not a number; quote it"],
    ),
    (
        "null-key",
        BASE + "model_: {~: x}\n",
        [
            "{f}:11:1 model_: unknown key 'model_'. Did you mean: model? Allowed: baseline, "
            "checks, data, description, device, explainers, metrics, model, name, output, "
            "precision, report, runner, seed, targets, version"
        ],
    ),
]


@pytest.mark.parametrize(("content", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_file_is_a_located_error(
    tmp_path: Path, content: str | bytes, expected: list[str]
) -> None:
    assert _errors(tmp_path, content) == [e.format(f=tmp_path / "spec.yaml") for e in expected]


def test_small_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    text = BASE.replace(
        "  - type: integrated_gradients\n",
        "  - type: integrated_gradients\n    params: &p {n_steps: 8}\n"
        "  - id: ig2\n    type: integrated_gradients\n    params: {<<: *p, method: riemann_left}\n",
    )
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    validated = load_spec(path)
    assert validated.explainer_params["ig2"].n_steps == 8


def test_a_plain_date_is_text_not_a_refused_tag(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(BASE.replace("name: t\n", "name: t\ndescription: 2024-01-01\n"))
    assert load_spec(path).spec.description == "2024-01-01"


# Runs in a fresh interpreter: its peak RSS and CPU time are the cost of one validation.
_MEASURE = """
import json, resource, sys, time
from auditor.errors import SpecError
from auditor.spec import load_document, load_spec
from auditor.spec.document import safe_yaml
from auditor.spec.overrides import apply_overrides
before = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
try:
    load_spec(sys.argv[1])
    outcome = "valid"
except SpecError as exc:
    outcome = str(exc)
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
print(json.dumps({"outcome": outcome, "rss_kb": after.ru_maxrss, "cpu_s": cpu,
                  "wall_s": time.perf_counter() - start}))
"""


def _measure(paths: list[Path]) -> list[dict[str, object]]:
    """Validate each file in its own interpreter (all at once); their measurements."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _MEASURE, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in paths
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        out.append(json.loads(stdout))
    return out


def test_alias_bombs_cost_no_more_than_the_plain_spec(tmp_path: Path) -> None:
    """Within 1 s (CPU time) and 50 MB of peak RSS of validating the spec without a bomb."""
    paths = []
    for name, text in (("plain", BASE), ("top", BOMB_TOP), ("init", BOMB_INIT)):
        paths.append(tmp_path / f"{name}.yaml")
        paths[-1].write_text(text, encoding="utf-8")
    plain, *bombs = _measure(paths)
    assert plain["outcome"] == "valid"
    for bombed in bombs:
        assert ALIAS_LIMIT in str(bombed["outcome"])
        assert float(bombed["cpu_s"]) - float(plain["cpu_s"]) < 1.0  # type: ignore[arg-type]
        assert int(bombed["rss_kb"]) - int(plain["rss_kb"]) < 50 * 1024  # type: ignore[call-overload]


def test_validate_reports_every_file_and_goes_on(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bell.yaml").write_bytes((BASE + 'description: "\a"\n').encode())
    (tmp_path / "latin.yaml").write_bytes(BASE.encode() + b"description: \xe9\n")
    (tmp_path / "bomb.yaml").write_text(BOMB_TOP, encoding="utf-8")
    (tmp_path / "good.yaml").write_text(BASE, encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["validate", "bell.yaml", "latin.yaml", "bomb.yaml", "good.yaml"]
    )
    assert result.exit_code == 2
    assert result.stdout == "good.yaml: valid\n"
    assert result.stderr.splitlines() == [
        "error: bell.yaml:11:15 the control character U+0007 is not allowed in YAML; delete it "
        '(inside double quotes it may be written as "\\x07")',
        "error: latin.yaml:11:14 the spec file is not UTF-8 text: byte 0xe9 (invalid "
        "continuation byte); save it as UTF-8",
        f"error: bomb.yaml:15:8 {ALIAS_LIMIT}",
    ]


def test_validate_reports_a_bug_as_internal_error_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug while checking one file: exit 3, the traceback in a log file, the next file
    still checked. (The bug is planted in our own loader, not in torch.)"""
    import auditor.spec

    real = auditor.spec.load_spec

    def buggy(path: Path, overrides: tuple[str, ...] = ()) -> object:
        if Path(path).name == "bug.yaml":
            raise KeyError("planted")
        return real(path, overrides)

    monkeypatch.setattr(auditor.spec, "load_spec", buggy)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bug.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "good.yaml").write_text(BASE, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", "bug.yaml", "good.yaml"])
    assert result.exit_code == 3
    assert result.stdout == "good.yaml: valid\n"
    line = result.stderr.strip()
    assert line.startswith("internal error: bug.yaml: KeyError: 'planted' (traceback: ")
    log = Path(line.split("(traceback: ")[1].rstrip(")"))
    assert "KeyError: 'planted'" in log.read_text(encoding="utf-8")
    log.unlink()


def test_endless_or_huge_file_is_refused(tmp_path: Path) -> None:
    """At most 4 MB is read: /dev/zero (or a data file named by mistake) cannot hang it."""
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (4 * 1024 * 1024) + b"\n")
    for path in (big, Path("/dev/zero")):
        with pytest.raises(SpecError) as info:
            load_spec(path)
        assert str(info.value) == f"spec file {path} is larger than 4 MB; is it a spec?"


def test_bounds_in_set_values_are_errors_naming_the_set(tmp_path: Path) -> None:
    """A --set value is read with the spec file's bounds; past them it is an error that names
    the --set (it used to become the literal text, silently); only text that is not plain
    YAML is taken as a string."""
    path = tmp_path / "spec.yaml"
    path.write_text(BASE, encoding="utf-8")
    bomb = (
        "[&a [x, x, x, x, x, x, x, x, x]"
        + "".join(
            f", &{n} [{', '.join([f'*{p}'] * 9)}]"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "]"
    )
    overrides = [
        f"model.init.x={bomb}",
        "seed=" + "9" * 5000,
        "description=" + "[" * 150 + "]" * 150,
        "model.init.r=&r [x, *r]",
        "model.init.y={a: 1",  # a YAML syntax error: the text itself
    ]
    with pytest.raises(SpecError) as info:
        load_spec(path, overrides)
    assert [str(i) for i in info.value.issues] == [
        "--set model.init.x: YAML aliases repeat more than 10,000 values in all (*d stands for "
        "7,381); write the values out instead (at column 161 of the value)",
        "--set seed: a number of 5,000 characters is too long (at column 1 of the value)",
        "--set description: values are nested more than 100 levels deep (at column 101 of the "
        "value)",
        "--set model.init.r: alias *r is inside the value it names (a recursive structure); a "
        "spec holds plain data only (at column 8 of the value)",
    ]
    result = CliRunner().invoke(cli, ["validate", str(path), "--set", f"model.init.x={bomb}"])
    assert result.exit_code == 2, result.output
    assert "--set model.init.x: YAML aliases repeat more than 10,000 values" in result.output
    doc = load_document(path)
    data = apply_overrides(doc, ["model.init.y={a: 1", "description=2024-01-01", "seed=3"])
    assert data["model"]["init"] == {"y": "{a: 1"}
    assert data["description"] == "2024-01-01"  # a plain date is text, as in the file
    assert data["seed"] == 3


def test_one_loader_counts_each_document_afresh() -> None:
    """ruamel keeps one composer per loader: the alias count and its memo of node sizes start
    again with each document (they added up from one --set value to the next, and sizes were
    remembered by ids that freed nodes hand on)."""
    yaml = safe_yaml()
    counts = []
    for _ in range(3):
        assert yaml.load("a: &a [1, 2, 3]\nb: *a\n") == {"a": [1, 2, 3], "b": [1, 2, 3]}
        counts.append(yaml.composer.repeated)
    assert counts == [4, 4, 4]
    below = "[&a [" + ", ".join(["x"] * 99) + "], " + ", ".join(["*a"] * 99) + "]"
    for _ in range(3):  # 9,900 repeated values each time: under the limit every time
        assert len(yaml.load(below)) == 100
