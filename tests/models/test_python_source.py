"""Model source ``python``: import by path, init kwargs, weights, and the errors users see."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from model_source_nets import TinyNet, sample, seeded
from pydantic import ValidationError
from safetensors.torch import save_file

from auditor.errors import RunError, SpecError
from auditor.models.python_source import PythonModelSource
from auditor.registries import models

Params = PythonModelSource.Params


def _load(tmp_path: Path, **data: Any):
    params = Params.model_validate(data, context={"base_dir": tmp_path})
    return PythonModelSource().load(params)


def _issue(excinfo: pytest.ExceptionInfo[SpecError]) -> tuple[tuple[str | int, ...], str]:
    (issue,) = excinfo.value.issues
    return issue.loc, issue.message


def test_registered_under_its_name() -> None:
    assert models.get("python") is PythonModelSource


def test_class_with_init_is_built_in_eval_mode(tmp_path: Path) -> None:
    loaded = _load(tmp_path, **{"class": "model_source_nets:TinyNet", "init": {"num_classes": 5}})

    assert isinstance(loaded.module, TinyNet)
    assert not loaded.module.training
    assert not any(p.requires_grad for p in loaded.module.parameters())
    assert loaded.module(sample()).shape == (2, 5)
    assert loaded.source == "python"
    assert loaded.description == (
        "model_source_nets:TinyNet(num_classes=5) with its own initialisation"
    )
    assert loaded.weights_path is None and loaded.weights_sha256 is None


def test_factory_function_and_weights_relative_to_the_spec(tmp_path: Path) -> None:
    trained = seeded(1, num_classes=4)
    (tmp_path / "weights").mkdir()
    path = tmp_path / "weights" / "tiny.safetensors"
    save_file(trained.state_dict(), path)

    loaded = _load(
        tmp_path,
        **{
            "class": "model_source_nets:make_tiny",
            "init": {"num_classes": 4},
            "weights": "weights/tiny.safetensors",
        },
    )

    x = sample()
    assert torch.equal(loaded.module(x), trained(x))
    assert loaded.weights_path == path
    assert loaded.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.description == (
        "model_source_nets:make_tiny(num_classes=4) with weights tiny.safetensors"
    )


def test_params_by_alias_and_by_name_and_dump_by_alias() -> None:
    by_alias = Params.model_validate({"class": "model_source_nets:TinyNet"})
    by_name = Params(class_="model_source_nets:TinyNet")

    assert by_alias == by_name
    assert by_alias.model_dump(by_alias=True)["class"] == "model_source_nets:TinyNet"


@pytest.mark.parametrize(
    ("data", "loc", "message"),
    [
        (
            {"class": "model_source_nets.TinyNet"},
            ("class",),
            "Value error, expected 'package.module:ClassName', got 'model_source_nets.TinyNet'",
        ),
        (
            {"class": "model_source_nets:TinyNet", "clas": 1},
            ("clas",),
            "Extra inputs are not permitted",
        ),
        (
            {"class": "model_source_nets:TinyNet", "weights": "missing.pt"},
            ("weights",),
            "Value error, file {tmp}/missing.pt does not exist",
        ),
        (
            {"class": "model_source_nets:TinyNet", "pythonpath": ["nowhere"]},
            ("pythonpath", 0),
            "Value error, folder {tmp}/nowhere does not exist",
        ),
    ],
)
def test_params_errors(
    tmp_path: Path, data: dict[str, Any], loc: tuple[str | int, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Params.model_validate(data, context={"base_dir": tmp_path})

    (error,) = excinfo.value.errors()
    assert error["loc"] == loc
    assert error["msg"] == message.format(tmp=tmp_path.resolve())


def test_pythonpath_makes_a_spec_local_module_importable(tmp_path: Path) -> None:
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "spec_local_nets.py").write_text(
        "from torch import nn\n\n"
        "class Probe(nn.Module):\n"
        "    def __init__(self, width=2):\n"
        "        super().__init__()\n"
        "        self.linear = nn.Linear(width, 1)\n"
        "    def forward(self, x):\n"
        "        return self.linear(x)\n"
    )
    try:
        with pytest.raises(SpecError) as excinfo:
            _load(tmp_path, **{"class": "spec_local_nets:Probe"})
        assert _issue(excinfo) == (
            ("model", "class"),
            "cannot import 'spec_local_nets': No module named 'spec_local_nets'.",
        )

        loaded = _load(
            tmp_path,
            **{"class": "spec_local_nets:Probe", "init": {"width": 3}, "pythonpath": ["code"]},
        )

        assert loaded.module.linear.in_features == 3
        assert str(code_dir) not in sys.path
    finally:
        sys.modules.pop("spec_local_nets", None)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "model_source_nts:TinyNet",
            "cannot import 'model_source_nts': No module named 'model_source_nts'. "
            "Did you mean: model_source_nets?",
        ),
        (
            "json.decodr:JSONDecoder",
            "cannot import 'json.decodr': No module named 'json.decodr'. "
            "Did you mean: json.decoder?",
        ),
        (
            "model_source_nets:TinyNett",
            "cannot import 'model_source_nets:TinyNett': 'model_source_nets' has no attribute "
            "'TinyNett'. Did you mean: TinyNet?",
        ),
        (
            "model_source_nets:TinyNet.Inner",
            "cannot import 'model_source_nets:TinyNet.Inner': 'model_source_nets:TinyNet' has "
            "no attribute 'Inner'.",
        ),
    ],
)
def test_import_errors_suggest_names(tmp_path: Path, target: str, message: str) -> None:
    with pytest.raises(SpecError) as excinfo:
        _load(tmp_path, **{"class": target})

    assert _issue(excinfo) == (("model", "class"), message)


@pytest.mark.parametrize(
    ("target", "init", "loc", "message"),
    [
        (
            "model_source_nets:TinyNet",
            {"num_class": 5},
            ("model", "init"),
            "model_source_nets:TinyNet does not accept these arguments: got an unexpected "
            "keyword argument 'num_class'. Did you mean: num_classes? "
            "Accepted: num_classes, channels",
        ),
        (
            "model_source_nets:TinyNet",
            {"channels": 0},
            ("model", "init"),
            "model_source_nets:TinyNet(channels=0) failed: ValueError: channels must be "
            "positive, got 0",
        ),
        (
            "model_source_nets:not_a_module",
            {},
            ("model", "class"),
            "model_source_nets:not_a_module() returned a list, expected a torch.nn.Module",
        ),
        (
            "model_source_nets:__doc__",
            {},
            ("model", "class"),
            "'model_source_nets:__doc__' is a str, not a class or function",
        ),
    ],
)
def test_build_errors(
    tmp_path: Path, target: str, init: dict[str, Any], loc: tuple[str, str], message: str
) -> None:
    with pytest.raises(SpecError) as excinfo:
        _load(tmp_path, **{"class": target, "init": init})

    assert _issue(excinfo) == (loc, message)


def test_weights_that_do_not_fit_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    torch.save(seeded(1, num_classes=3).state_dict(), path)

    with pytest.raises(SpecError) as excinfo:
        _load(
            tmp_path,
            **{
                "class": "model_source_nets:TinyNet",
                "init": {"num_classes": 2},
                "weights": "tiny.pt",
            },
        )

    assert _issue(excinfo) == (
        ("model", "weights"),
        f"weights file {path} does not fit the model (TinyNet): shape mismatches: "
        "head.weight (file [3, 64], model [2, 64]), head.bias (file [3], model [2])",
    )


def test_whole_pickled_module_loads_only_when_trusted(tmp_path: Path) -> None:
    trained = seeded(1)
    torch.save(trained, tmp_path / "whole.pt")
    data = {"class": "model_source_nets:TinyNet", "weights": "whole.pt"}

    with pytest.raises(SpecError) as excinfo:
        _load(tmp_path, **data)
    assert _issue(excinfo)[1].endswith(
        "is a pickle that needs code to load (GLOBAL model_source_nets.TinyNet); refusing to "
        "run it. Convert it to safetensors or set model.trust_pickle: true if you trust its "
        "source"
    )

    loaded = _load(tmp_path, **data, trust_pickle=True)
    assert torch.equal(loaded.module(sample()), trained(sample()))


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("1 / 0\n", "ZeroDivisionError: division by zero"),
        ("import not_installed_dep_xyz\n", "No module named 'not_installed_dep_xyz'"),
    ],
)
def test_module_that_fails_to_import_is_a_run_error(
    tmp_path: Path, code: str, message: str
) -> None:
    (tmp_path / "broken_spec_nets.py").write_text(code)
    try:
        with pytest.raises(RunError) as excinfo:
            _load(tmp_path, **{"class": "broken_spec_nets:Net", "pythonpath": ["."]})
        assert str(excinfo.value) == f"importing 'broken_spec_nets' failed: {message}"
    finally:
        sys.modules.pop("broken_spec_nets", None)
