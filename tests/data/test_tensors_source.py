"""The tensors data source on .pt, .npy and .npz files written to tmp_path."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from auditor.data.base import TensorDataset
from auditor.data.tensors import TensorsDataSource, TensorsParams
from auditor.errors import SpecError
from auditor.registries import datasets

RNG = np.random.default_rng(0)
TABLE = RNG.normal(size=(6, 3)).astype(np.float32)
IMAGES = RNG.random(size=(5, 2, 4, 4)).astype(np.float32)
GRAY = (RNG.random(size=(4, 8, 8)) * 255).astype(np.uint8)


def load(tmp_path: Path, **params: object) -> TensorDataset:
    validated = TensorsParams.model_validate(params, context={"base_dir": tmp_path})
    return TensorsDataSource().load(validated)


def spec_error(tmp_path: Path, **params: object) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(SpecError) as info:
        load(tmp_path, **params)
    (issue,) = info.value.issues
    return issue.loc, issue.message


def test_registered_under_tensors() -> None:
    assert datasets.get("tensors") is TensorsDataSource


def test_pt_dict_of_tabular_rows(tmp_path: Path) -> None:
    labels = torch.tensor([0, 1, 2, 1, 0, 2])
    torch.save({"inputs": torch.from_numpy(TABLE), "labels": labels}, tmp_path / "rows.pt")
    data = load(
        tmp_path,
        path="rows.pt",
        feature_names=["a", "b", "c"],
        class_names=["low", "mid", "high"],
    )
    assert data.modality == "tabular"
    assert data.input_shape == (3,)
    assert data.feature_names == ["a", "b", "c"]
    assert data.class_names == ["low", "mid", "high"]
    assert data.labels.dtype == np.int64
    assert data.labels.tolist() == [0, 1, 2, 1, 0, 2]
    got = data.get(np.array([4, 1]))
    assert got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), TABLE[[4, 1]])
    assert data.description == f"tensors {tmp_path / 'rows.pt'}: 6 samples of shape (3,)"


def test_pth_tuple_of_images_with_custom_keys_refused(tmp_path: Path) -> None:
    torch.save((torch.from_numpy(IMAGES), torch.arange(5) % 2), tmp_path / "imgs.pth")
    data = load(tmp_path, path="imgs.pth")
    assert data.modality == "image"
    assert data.input_shape == (2, 4, 4)
    assert data.class_names == ["0", "1"]
    np.testing.assert_array_equal(data.get(np.arange(5)).numpy(), IMAGES)
    assert spec_error(tmp_path, path="imgs.pth", inputs_key="x") == (
        ("data", "inputs_key"),
        f"{tmp_path / 'imgs.pth'} holds a tuple, not a dict",
    )


def test_pt_with_named_keys(tmp_path: Path) -> None:
    torch.save({"X": torch.from_numpy(TABLE), "target": torch.zeros(6, dtype=torch.int64)},
               tmp_path / "rows.pt")  # fmt: skip
    data = load(tmp_path, path="rows.pt", inputs_key="X", labels_key="target")
    assert data.labels.tolist() == [0] * 6
    assert data.class_names == ["0"]


def test_half_precision_inputs(tmp_path: Path) -> None:
    x = torch.from_numpy(TABLE).to(torch.bfloat16)
    torch.save({"inputs": x, "labels": torch.zeros(6, dtype=torch.uint8)}, tmp_path / "h.pt")
    data = load(tmp_path, path="h.pt")
    assert data.get(np.arange(6)).dtype == torch.float32
    torch.testing.assert_close(data.get(np.arange(6)), x.float())


def test_npz_gray_images_get_a_channel(tmp_path: Path) -> None:
    np.savez(tmp_path / "digits.npz", x=GRAY, y=np.array([3, 1, 0, 3]))
    data = load(tmp_path, path="digits.npz")
    assert data.modality == "image"
    assert data.input_shape == (1, 8, 8)
    assert data.class_names == ["0", "1", "2", "3"]
    got = data.get(np.array([2]))
    assert got.shape == (1, 1, 8, 8)
    # Values are taken as stored (no rescaling of integer pixels).
    np.testing.assert_array_equal(got[0, 0].numpy(), GRAY[2].astype(np.float32))


def test_npy_with_labels_file(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", TABLE)
    np.save(tmp_path / "y.npy", np.array([1, 0, 1, 0, 1, 0], dtype=np.int32))
    data = load(tmp_path, path="x.npy", labels="y.npy")
    assert data.modality == "tabular"
    assert data.labels.dtype == np.int64
    assert data.labels.tolist() == [1, 0, 1, 0, 1, 0]


def test_modality_can_be_forced_to_image(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=GRAY, y=np.zeros(4, dtype=np.int64))
    assert load(tmp_path, path="d.npz", modality="image").input_shape == (1, 8, 8)
    assert spec_error(tmp_path, path="d.npz", modality="tabular") == (
        ("data", "modality"),
        f"tabular inputs must have shape (N, features); {tmp_path / 'd.npz'} has (4, 8, 8)",
    )
    np.savez(tmp_path / "t.npz", x=TABLE, y=np.zeros(6, dtype=np.int64))
    assert spec_error(tmp_path, path="t.npz", modality="image") == (
        ("data", "modality"),
        f"image inputs must have shape (N, H, W) or (N, C, H, W); {tmp_path / 't.npz'} has (6, 3)",
    )


def test_missing_key_suggests_and_lists(tmp_path: Path) -> None:
    torch.save({"input": torch.zeros(2, 3), "labels": torch.zeros(2, dtype=torch.long)},
               tmp_path / "a.pt")  # fmt: skip
    assert spec_error(tmp_path, path="a.pt") == (
        ("data", "path"),
        f"{tmp_path / 'a.pt'} has no key 'inputs'. Did you mean: input? Keys: input, labels; "
        "name the right one with inputs_key",
    )
    np.savez(tmp_path / "b.npz", x=TABLE, label=np.zeros(6, dtype=np.int64))
    assert spec_error(tmp_path, path="b.npz", labels_key="lbl") == (
        ("data", "labels_key"),
        f"{tmp_path / 'b.npz'} has no key 'lbl'. Did you mean: label? Keys: x, label; name the "
        "right one with labels_key",
    )


def test_wrong_label_shape_count_and_dtype(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=TABLE, y=np.zeros(5, dtype=np.int64))
    assert spec_error(tmp_path, path="a.npz") == (
        ("data", "path"),
        f"labels in {tmp_path / 'a.npz'} have shape (5,); expected (6,), one per input",
    )
    np.savez(tmp_path / "b.npz", x=TABLE, y=np.zeros(6, dtype=np.float32))
    assert spec_error(tmp_path, path="b.npz")[1] == (
        f"labels in {tmp_path / 'b.npz'} have dtype float32; expected integer class indices"
    )
    np.savez(tmp_path / "c.npz", x=TABLE, y=np.array([0, 1, -1, 0, 0, 0]))
    assert spec_error(tmp_path, path="c.npz")[1] == (
        f"labels in {tmp_path / 'c.npz'} must be >= 0; sample 2 has label -1"
    )


def test_wrong_input_shapes_and_values(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.zeros(6), y=np.zeros(6, dtype=np.int64))
    assert spec_error(tmp_path, path="a.npz") == (
        ("data", "path"),
        f"inputs in {tmp_path / 'a.npz'} have shape (6,); expected (N, features), (N, H, W) or "
        "(N, C, H, W)",
    )
    bad = TABLE.copy()
    bad[3, 1] = np.nan
    np.savez(tmp_path / "b.npz", x=bad, y=np.zeros(6, dtype=np.int64))
    assert spec_error(tmp_path, path="b.npz")[1] == (
        f"inputs in {tmp_path / 'b.npz'} have NaN or infinite values (sample 3)"
    )


def test_names_must_fit(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=TABLE, y=np.array([0, 1, 2, 0, 1, 2]))
    assert spec_error(tmp_path, path="a.npz", class_names=["a", "b"]) == (
        ("data", "class_names"),
        "class_names has 2 names but the labels go up to 2",
    )
    assert spec_error(tmp_path, path="a.npz", feature_names=["f1", "f2"]) == (
        ("data", "feature_names"),
        "feature_names has 2 names but the inputs have 3 features",
    )


def test_npy_needs_a_labels_file(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", TABLE)
    assert spec_error(tmp_path, path="x.npy") == (
        ("data", "labels"),
        f"{tmp_path / 'x.npy'} holds only inputs; name a .npy file of labels with labels: ...",
    )


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.array([{"a": 1}, {"b": 2}], dtype=object))
    np.save(tmp_path / "y.npy", np.zeros(2, dtype=np.int64))
    loc, message = spec_error(tmp_path, path="x.npy", labels="y.npy")
    assert loc == ("data", "path")
    assert message.startswith(f"{tmp_path / 'x.npy'} could not be read as a .npy array: ")

    # Any class outside torch's allowlist needs code to unpickle.
    torch.save({"inputs": Fraction(1, 3), "labels": torch.zeros(1)}, tmp_path / "evil.pt")
    loc, message = spec_error(tmp_path, path="evil.pt")
    assert loc == ("data", "path")
    assert message == (
        f"{tmp_path / 'evil.pt'} could not be loaded with torch.load(weights_only=True) "
        "(Unsupported global: GLOBAL fractions.Fraction was not an allowed global by default); "
        "save plain tensors, e.g. torch.save({'inputs': x, 'labels': y}, path)"
    )
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint\n")
    loc, message = spec_error(tmp_path, path="garbage.pt")
    assert message.startswith(
        f"{tmp_path / 'garbage.pt'} could not be loaded with torch.load(weights_only=True) ("
    )


def test_unsupported_suffix(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    assert spec_error(tmp_path, path="data.csv") == (
        ("data", "path"),
        f"{tmp_path / 'data.csv'} has an unsupported file type '.csv'; expected .pt, .pth, .npy "
        "or .npz (CSV files use source: csv)",
    )
