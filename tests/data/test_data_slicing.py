"""data.slice: which samples an audit sees, and batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from auditor.data.base import TensorDataset
from auditor.data.slicing import SliceSpec, iter_batches, select_indices
from auditor.errors import SpecError

# 20 samples; labels cycle 0, 1, 2, 3 so class c sits at c, c + 4, c + 8, ...
LABELS = np.arange(20) % 4
NAMES = ["cat", "dog", "bird", "fish"]


def dataset(size: int = 20) -> TensorDataset:
    inputs = torch.arange(size * 2, dtype=torch.float32).reshape(size, 2)
    return TensorDataset(inputs, LABELS[:size], modality="tabular", class_names=NAMES)


def select(**slice_params: object) -> np.ndarray:
    return select_indices(SliceSpec.model_validate(slice_params), dataset())


def spec_error(**slice_params: object) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(SpecError) as info:
        select(**slice_params)
    (issue,) = info.value.issues
    return issue.loc, issue.message


def validation_message(**slice_params: object) -> str:
    with pytest.raises(ValidationError) as info:
        SliceSpec.model_validate(slice_params)
    (error,) = info.value.errors()
    return error["msg"]


def test_no_slice_selects_everything_in_order() -> None:
    got = select_indices(None, dataset())
    assert got.dtype == np.int64
    assert got.tolist() == list(range(20))
    assert select().tolist() == list(range(20))


def test_start_stop_cut_like_a_python_slice() -> None:
    assert select(start=3, stop=7).tolist() == [3, 4, 5, 6]
    assert select(stop=2).tolist() == [0, 1]
    assert select(start=17).tolist() == [17, 18, 19]
    assert select(start=18, stop=500).tolist() == [18, 19]  # stop past the end is clamped


def test_classes_filter_first_by_name_or_index() -> None:
    assert select(classes=["dog"]).tolist() == [1, 5, 9, 13, 17]
    assert select(classes=[3, "dog"]).tolist() == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]
    # start/stop count positions in the filtered order, not dataset indices.
    assert select(classes=["bird"], start=1, stop=3).tolist() == [6, 10]


def test_sample_is_seeded_sorted_and_without_replacement() -> None:
    first = select(sample=6, seed=7)
    assert first.dtype == np.int64
    assert first.tolist() == sorted(first.tolist())
    assert len(set(first.tolist())) == 6
    assert select(sample=6, seed=7).tolist() == first.tolist()
    chosen = np.random.default_rng(7).choice(20, size=6, replace=False)
    assert first.tolist() == sorted(chosen.tolist())
    assert select(sample=6, seed=8).tolist() != first.tolist()
    assert select(sample=20).tolist() == list(range(20))


def test_sample_within_classes() -> None:
    got = select(classes=["fish"], sample=3, seed=0)
    assert set(got.tolist()) <= {3, 7, 11, 15, 19}
    assert len(got) == 3


def test_explicit_indices_keep_their_order() -> None:
    got = select(indices=[5, 0, 19])
    assert got.dtype == np.int64
    assert got.tolist() == [5, 0, 19]


def test_index_out_of_range() -> None:
    assert spec_error(indices=[3, 5000]) == (
        ("data", "slice", "indices"),
        "index 5000 is out of range for a dataset of 20 samples",
    )


def test_index_listed_twice() -> None:
    assert spec_error(indices=[3, 4, 3]) == (
        ("data", "slice", "indices"),
        "index 3 is listed more than once",
    )


def test_unknown_class_name_suggests_and_lists() -> None:
    assert spec_error(classes=["dgo"]) == (
        ("data", "slice", "classes"),
        "unknown class 'dgo'. Did you mean: dog? Classes: cat, dog, bird, fish",
    )


def test_class_index_out_of_range() -> None:
    assert spec_error(classes=[4]) == (
        ("data", "slice", "classes"),
        "class index 4 is out of range; the dataset has 4 classes (0..3)",
    )


def test_long_class_lists_are_cut_short() -> None:
    names = [f"c{i}" for i in range(30)]
    data = TensorDataset(torch.zeros(30, 1), np.arange(30), modality="tabular", class_names=names)
    with pytest.raises(SpecError) as info:
        select_indices(SliceSpec(classes=["zebra"]), data)
    listed = ", ".join(names[:20])
    assert (
        info.value.issues[0].message == f"unknown class 'zebra'. Classes: {listed}, ... (30 in all)"
    )


def test_class_without_samples_is_an_empty_slice() -> None:
    data = TensorDataset(
        torch.zeros(4, 1), np.array([0, 0, 1, 1]), modality="tabular", class_names=["0", "1", "2"]
    )
    with pytest.raises(SpecError) as info:
        select_indices(SliceSpec(classes=[2]), data)
    assert info.value.issues[0].loc == ("data", "slice", "classes")
    assert info.value.issues[0].message == (
        "slice selects no samples: none of the 4 samples is of class 2"
    )


def test_start_past_the_end_is_an_empty_slice() -> None:
    assert spec_error(start=20) == (
        ("data", "slice", "start"),
        "slice selects no samples: start 20 is at or past the end of the 20 samples in the dataset",
    )
    assert spec_error(classes=["cat", "dog"], start=10) == (
        ("data", "slice", "start"),
        "slice selects no samples: start 10 is at or past the end of the 10 samples of classes "
        "0 (cat), 1 (dog)",
    )


def test_sample_larger_than_available() -> None:
    assert spec_error(sample=21) == (
        ("data", "slice", "sample"),
        "sample 21 is more than the 20 samples in the dataset",
    )
    assert spec_error(classes=["bird"], sample=6) == (
        ("data", "slice", "sample"),
        "sample 6 is more than the 5 samples of class 2 (bird)",
    )


def test_empty_dataset() -> None:
    empty = TensorDataset(torch.zeros(0, 2), np.zeros(0), modality="tabular", class_names=["a"])
    with pytest.raises(SpecError) as info:
        select_indices(None, empty)
    assert info.value.issues[0].message == "slice selects no samples: the dataset is empty"


def test_incompatible_keys_are_refused() -> None:
    assert validation_message(indices=[1], start=0, classes=["cat"]) == (
        "Value error, indices cannot be combined with start, classes; indices already name the "
        "samples"
    )
    assert validation_message(sample=3, stop=10) == (
        "Value error, sample cannot be combined with start or stop; use classes to narrow what "
        "is sampled"
    )
    assert validation_message(start=5, stop=5) == (
        "Value error, start (5) must be less than stop (5)"
    )


def test_bounds_and_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        SliceSpec.model_validate({"sample": 0})
    with pytest.raises(ValidationError):
        SliceSpec.model_validate({"indices": []})
    with pytest.raises(ValidationError):
        SliceSpec.model_validate({"indices": [-1]})
    with pytest.raises(ValidationError):
        SliceSpec.model_validate({"stop": 0})
    with pytest.raises(ValidationError) as info:
        SliceSpec.model_validate({"start": 0, "end": 4})
    assert info.value.errors()[0]["loc"] == ("end",)
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_iter_batches() -> None:
    indices = np.array([9, 3, 4, 8, 1], dtype=np.int64)
    batches = list(iter_batches(indices, 2))
    assert [b.tolist() for b in batches] == [[9, 3], [4, 8], [1]]
    assert all(b.dtype == np.int64 for b in batches)
    assert [b.tolist() for b in iter_batches(indices, 64)] == [[9, 3, 4, 8, 1]]
    assert list(iter_batches(np.zeros(0, dtype=np.int64), 4)) == []
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        list(iter_batches(indices, 0))
