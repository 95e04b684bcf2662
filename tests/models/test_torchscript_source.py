"""Model source ``torchscript``: traced and scripted files round trip; other files are refused."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest
import torch
from model_source_nets import sample, seeded
from pydantic import ValidationError

from auditor.errors import SpecError
from auditor.models.torchscript_source import TorchScriptModelSource
from auditor.registries import models

Params = TorchScriptModelSource.Params


def _load(tmp_path: Path, path: str):
    params = Params.model_validate({"path": path}, context={"base_dir": tmp_path})
    return TorchScriptModelSource().load(params)


def _save_script(model: torch.nn.Module, path: Path, how: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream
        compiled = torch.jit.trace(model, sample()) if how == "trace" else torch.jit.script(model)
        torch.jit.save(compiled, str(path))


def test_registered_under_its_name() -> None:
    assert models.get("torchscript") is TorchScriptModelSource


@pytest.mark.parametrize("how", ["trace", "script"])
def test_round_trip_gives_identical_outputs(tmp_path: Path, how: str) -> None:
    trained = seeded(1)
    path = tmp_path / "tiny.ts"
    _save_script(trained, path, how)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loading must not warn users about torch.jit
        loaded = _load(tmp_path, "tiny.ts")

    x = sample(seed=5)
    assert torch.equal(loaded.module(x), trained(x))
    assert not loaded.module.training
    assert loaded.source == "torchscript"
    assert loaded.description == "TorchScript TinyNet from tiny.ts"
    assert loaded.weights_path == path
    assert loaded.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_torch_save_file_is_not_torchscript(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    torch.save(seeded(1).state_dict(), path)

    with pytest.raises(SpecError) as excinfo:
        _load(tmp_path, "tiny.pt")

    (issue,) = excinfo.value.issues
    assert issue.loc == ("model", "path")
    assert issue.message == (
        f"file {path} is not a TorchScript archive (PytorchStreamReader failed locating file "
        "constants.pkl: file not found); it looks like a torch.save file: use source: python "
        "or torchvision with weights: instead"
    )


def test_a_file_that_is_no_archive(tmp_path: Path) -> None:
    path = tmp_path / "model.ts"
    path.write_text("not a model")

    with pytest.raises(SpecError) as excinfo:
        _load(tmp_path, "model.ts")

    assert excinfo.value.issues[0].message == (
        f"file {path} is not a TorchScript archive (PytorchStreamReader failed reading zip "
        "archive: not a ZIP archive)"
    )


def test_missing_file_is_a_params_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Params.model_validate({"path": "gone.ts"}, context={"base_dir": tmp_path})

    (error,) = excinfo.value.errors()
    assert error["msg"] == f"Value error, file {tmp_path.resolve()}/gone.ts does not exist"
