"""Safe weight loading: round trips, unwrapping, refusals of code-running pickles, mismatches."""

from __future__ import annotations

import hashlib
import pickle
import warnings
from pathlib import Path

import pytest
import torch
from model_source_nets import sample, seeded
from safetensors.torch import save_file

from auditor.errors import SpecError
from auditor.models.weights import fit_state_dict, load_state_dict, load_weights_into

LOC = ("model", "weights")


class WritesFile:
    """Unpickling this runs ``exec`` and creates ``target``: what a malicious checkpoint does."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({str(self.target)!r}, 'w').write('pwned')",))


def _message(excinfo: pytest.ExceptionInfo[SpecError]) -> str:
    (issue,) = excinfo.value.issues
    assert issue.loc == LOC
    return issue.message


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_round_trip_gives_identical_outputs(tmp_path: Path, suffix: str) -> None:
    trained = seeded(1)
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".safetensors":
        save_file(trained.state_dict(), path)
    else:
        torch.save(trained.state_dict(), path)

    fresh = seeded(2)
    x = sample()
    assert not torch.equal(fresh(x), trained(x))
    sha = load_weights_into(fresh, path, trust_pickle=False)

    assert torch.equal(fresh(x), trained(x))
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()


def test_safetensors_under_another_suffix_is_recognised(tmp_path: Path) -> None:
    trained = seeded(1)
    path = tmp_path / "tiny.bin"
    save_file(trained.state_dict(), path)

    state = load_state_dict(path, trust_pickle=False)

    assert all(torch.equal(state[k], v) for k, v in trained.state_dict().items())


@pytest.mark.parametrize("key", ["state_dict", "model_state_dict"])
def test_checkpoint_containers_are_unwrapped(tmp_path: Path, key: str) -> None:
    trained = seeded(1)
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 7, key: trained.state_dict(), "optimizer": {"lr": 0.1}}, path)

    state = load_state_dict(path, trust_pickle=False)

    assert state.keys() == trained.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in trained.state_dict().items())


def test_data_parallel_prefix_is_stripped(tmp_path: Path) -> None:
    trained = seeded(1)
    state = {f"module.{k}": v for k, v in trained.state_dict().items()}
    fresh = seeded(2)

    fit_state_dict(fresh, state, LOC)

    x = sample()
    assert torch.equal(fresh(x), trained(x))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_that_runs_code_is_refused_and_not_run(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if writer == "torch.save":
        torch.save({"head.weight": torch.zeros(2), "extra": WritesFile(marker)}, path)
    else:
        # Plain pickle without tensors: a raw tensor would be refused for its own GLOBAL.
        payload = {"head.weight": [0.0, 0.0], "extra": WritesFile(marker)}
        with open(path, "wb") as fh:
            pickle.dump(payload, fh, protocol=2)

    with pytest.raises(SpecError) as excinfo:
        load_state_dict(path, trust_pickle=False)

    assert _message(excinfo) == (
        f"weights file {path} is a pickle that needs code to load (GLOBAL exec); refusing to "
        "run it. Convert it to safetensors or set model.trust_pickle: true if you trust its "
        "source"
    )
    assert not marker.exists()
    # The payload is real: a trusted load runs it (and then finds no usable state dict).
    with pytest.raises(SpecError):
        load_state_dict(path, trust_pickle=True)
    assert marker.read_text() == "pwned"


def test_whole_pickled_module_needs_trust(tmp_path: Path) -> None:
    trained = seeded(1)
    path = tmp_path / "whole.pt"
    torch.save(trained, path)

    with pytest.raises(SpecError) as excinfo:
        load_state_dict(path, trust_pickle=False)
    assert "(GLOBAL model_source_nets.TinyNet); refusing to run it." in _message(excinfo)

    state = load_state_dict(path, trust_pickle=True)
    fresh = seeded(2)
    fit_state_dict(fresh, state, LOC)
    assert torch.equal(fresh(sample()), trained(sample()))


def test_mismatch_lists_missing_unexpected_and_shapes() -> None:
    state = dict(seeded(1, num_classes=5).state_dict())
    del state["features.0.bias"]
    state["features.9.weight"] = torch.zeros(1)
    model = seeded(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    with pytest.raises(SpecError) as excinfo:
        fit_state_dict(model, state, LOC, path=Path("/w/tiny.pt"))

    assert _message(excinfo) == (
        "weights file /w/tiny.pt does not fit the model (TinyNet): "
        "missing keys: features.0.bias; "
        "unexpected keys: features.9.weight; "
        "shape mismatches: head.weight (file [5, 64], model [3, 64]), "
        "head.bias (file [5], model [3])"
    )
    # Nothing was loaded: the check comes before load_state_dict.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_mismatch_lists_the_first_five_then_a_count() -> None:
    state = dict(seeded(1).state_dict())
    state.update({f"extra.{i}": torch.zeros(1) for i in range(8)})

    with pytest.raises(SpecError) as excinfo:
        fit_state_dict(seeded(2), state, LOC)

    assert _message(excinfo) == (
        "the weights do not fit the model (TinyNet): unexpected keys: extra.0, extra.1, "
        "extra.2, extra.3, extra.4 and 3 more"
    )


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("junk.pt", b"garbage, not a checkpoint", "Unsupported operand 103"),
        ("empty.pt", b"", "the file is empty"),
        ("zip.pt", b"PK\x03\x04 truncated", "RuntimeError: PytorchStreamReader failed "),
    ],
)
def test_corrupt_torch_file(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    for trust in (False, True):
        with pytest.raises(SpecError) as excinfo:
            load_state_dict(path, trust_pickle=trust)
        assert _message(excinfo).startswith(
            f"weights file {path} cannot be read as a torch.save or safetensors file ({reason}"
        )


def test_torchscript_archive_is_not_weights(tmp_path: Path) -> None:
    path = tmp_path / "tiny.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream
        torch.jit.save(torch.jit.trace(seeded(1), sample()), str(path))

    with pytest.raises(SpecError) as excinfo:
        load_state_dict(path, trust_pickle=False)

    assert _message(excinfo) == (
        f"weights file {path} is a TorchScript archive, not a state dict: use "
        "model.source: torchscript with path: set to this file"
    )


def test_corrupt_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "tiny.safetensors"
    path.write_bytes(b"\x00\x01garbage")

    with pytest.raises(SpecError) as excinfo:
        load_state_dict(path, trust_pickle=False)

    assert _message(excinfo).startswith(f"weights file {path} is not a valid safetensors file: ")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "holds a list, expected a state dict (a mapping of parameter names to tensors)"),
        (
            {"head.weight": torch.zeros(1), "step": 3, "lr": 0.1},
            "is not a state dict: entries that are not name -> tensor: step, lr",
        ),
    ],
)
def test_not_a_state_dict(tmp_path: Path, payload: object, message: str) -> None:
    path = tmp_path / "odd.pt"
    torch.save(payload, path)

    with pytest.raises(SpecError) as excinfo:
        load_state_dict(path, trust_pickle=False, loc=LOC)

    assert _message(excinfo) == f"weights file {path} {message}"
