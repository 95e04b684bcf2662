"""The csv data source on small files written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from auditor.data import csv_source
from auditor.data.base import StaticInfo, TensorDataset
from auditor.data.csv_source import CsvDataSource, CsvParams
from auditor.errors import SpecError
from auditor.registries import datasets

IRIS = """sepal,petal,species,weight
5.1,1.4,setosa,2
4.9,1.3,setosa,3
6.3,4.9,virginica,4
5.8,4.0,versicolor,5
"""
SPECIES = ["setosa", "versicolor", "virginica"]


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, **params: object) -> TensorDataset:
    validated = CsvParams.model_validate(params, context={"base_dir": tmp_path})
    return CsvDataSource().load(validated)


def spec_error(tmp_path: Path, **params: object) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(SpecError) as info:
        load(tmp_path, **params)
    (issue,) = info.value.issues
    return issue.loc, issue.message


def test_registered_under_csv() -> None:
    assert datasets.get("csv") is CsvDataSource


def test_text_labels_in_the_models_class_order(tmp_path: Path) -> None:
    write(tmp_path, IRIS)
    names = ["virginica", "setosa", "versicolor"]
    data = load(tmp_path, path="data.csv", label="species", classes=names)
    assert data.modality == "tabular"
    assert data.input_shape == (3,)
    assert data.feature_names == ["sepal", "petal", "weight"]
    assert data.class_names == names
    assert data.labels.dtype == np.int64
    assert data.labels.tolist() == [1, 1, 0, 2]
    got = data.get(np.array([2, 0]))
    assert got.dtype == torch.float32
    assert got.tolist() == [
        pytest.approx([6.3, 4.9, 4.0]),
        pytest.approx([5.1, 1.4, 2.0]),
    ]
    assert data.description == (
        f"CSV {tmp_path / 'data.csv'}: 4 rows, 3 features, label 'species' (3 classes)"
    )


def test_features_pick_and_order_columns(tmp_path: Path) -> None:
    write(tmp_path, IRIS)
    data = load(
        tmp_path, path="data.csv", label="species", features=["weight", "sepal"], classes=SPECIES
    )
    assert data.feature_names == ["weight", "sepal"]
    assert data.get(np.arange(4))[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0]


def test_standardize_uses_the_files_own_statistics(tmp_path: Path) -> None:
    write(tmp_path, "a,b,y\n1,7,0\n2,7,1\n3,7,0\n")
    data = load(tmp_path, path="data.csv", label="y", standardize=True)
    got = data.get(np.arange(3)).numpy()
    std = np.std([1.0, 2.0, 3.0])
    np.testing.assert_allclose(got[:, 0], [-1 / std, 0.0, 1 / std], rtol=1e-6)
    assert got[:, 1].tolist() == [0.0, 0.0, 0.0]  # a constant column stays finite


def test_whole_number_labels_are_class_indices(tmp_path: Path) -> None:
    # Class 1 is absent: 2 must stay 2, as the model numbers it.
    write(tmp_path, "x,y\n0.5,0\n0.25,2\n1.0,2.0\n")
    data = load(tmp_path, path="data.csv", label="y")
    assert data.labels.tolist() == [0, 2, 2]
    assert data.class_names == ["0", "1", "2"]


def test_negative_numeric_labels_sort_as_numbers(tmp_path: Path) -> None:
    write(tmp_path, "x,y\n1,10\n2,-1\n3,2\n")
    data = load(tmp_path, path="data.csv", label="y")
    assert data.class_names == ["-1", "2", "10"]
    assert data.labels.tolist() == [2, 0, 1]


def test_class_names_is_the_older_name_of_classes(tmp_path: Path) -> None:
    write(tmp_path, IRIS)
    names = ["virginica", "setosa", "versicolor"]
    data = load(tmp_path, path="data.csv", label="species", class_names=names)
    assert data.class_names == names
    assert data.labels.tolist() == [1, 1, 0, 2]
    with pytest.raises(ValidationError) as info:
        CsvParams.model_validate(
            {"path": "data.csv", "label": "species", "classes": names, "class_names": names},
            context={"base_dir": tmp_path},
        )
    assert "give classes or class_names (its older name), not both" in str(info.value)


def test_classes_name_index_labels(tmp_path: Path) -> None:
    write(tmp_path, "x,y\n1,1\n2,0\n")
    data = load(tmp_path, path="data.csv", label="y", classes=["benign", "malignant"])
    assert data.labels.tolist() == [1, 0]
    assert data.class_names == ["benign", "malignant"]


def test_delimiter_blank_lines_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_bytes("\ufeffx;y\n1.5;a\n\n2;b\n".encode())
    data = load(tmp_path, path="semi.csv", label="y", delimiter=";", classes=["a", "b"])
    assert data.feature_names == ["x"]
    assert data.get(np.arange(2)).tolist() == [[1.5], [2.0]]


def test_missing_label_column_suggests_and_lists(tmp_path: Path) -> None:
    write(tmp_path, IRIS)
    assert spec_error(tmp_path, path="data.csv", label="specie") == (
        ("data", "label"),
        f"column 'specie' is not in {tmp_path / 'data.csv'}. Did you mean: species? "
        "Columns: sepal, petal, species, weight",
    )


def test_missing_feature_column(tmp_path: Path) -> None:
    write(tmp_path, IRIS)
    error = spec_error(
        tmp_path, path="data.csv", label="species", features=["sepal", "colour"], classes=SPECIES
    )
    assert error == (
        ("data", "features", 1),
        f"column 'colour' is not in {tmp_path / 'data.csv'}. "
        "Columns: sepal, petal, species, weight",
    )


def test_label_cannot_be_a_feature(tmp_path: Path) -> None:
    write(tmp_path, IRIS)
    error = spec_error(
        tmp_path, path="data.csv", label="species", features=["species"], classes=SPECIES
    )
    assert error == (
        ("data", "features", 0),
        "'species' is the label column; it cannot also be a feature",
    )


def test_non_numeric_value_names_line_and_column(tmp_path: Path) -> None:
    write(tmp_path, "age,income,y\n30,100,0\n41,lots,1\n")
    assert spec_error(tmp_path, path="data.csv", label="y") == (
        ("data", "path"),
        f"{tmp_path / 'data.csv'} line 3, column 'income': 'lots' is not a number",
    )


def test_empty_and_infinite_cells(tmp_path: Path) -> None:
    write(tmp_path, "age,y\n30,0\n,1\n")
    assert spec_error(tmp_path, path="data.csv", label="y")[1] == (
        f"{tmp_path / 'data.csv'} line 3, column 'age' is empty; expected a number"
    )
    write(tmp_path, "age,y\n30,0\ninf,1\n")
    assert spec_error(tmp_path, path="data.csv", label="y")[1] == (
        f"{tmp_path / 'data.csv'} line 3, column 'age': 'inf' is not a finite number"
    )


def test_ragged_row(tmp_path: Path) -> None:
    write(tmp_path, "a,b,y\n1,2,0\n1,2\n")
    assert spec_error(tmp_path, path="data.csv", label="y")[1] == (
        f"{tmp_path / 'data.csv'} line 3 has 2 fields but the header has 3 (delimiter ',')"
    )


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    write(tmp_path, "")
    assert spec_error(tmp_path, path="data.csv", label="y")[1] == (
        f"{tmp_path / 'data.csv'} is empty; expected a header row and data rows"
    )
    write(tmp_path, "a,y\n")
    assert spec_error(tmp_path, path="data.csv", label="y")[1] == (
        f"{tmp_path / 'data.csv'} has a header but no data rows"
    )


def test_label_not_in_classes(tmp_path: Path) -> None:
    write(tmp_path, IRIS)
    loc, message = spec_error(
        tmp_path, path="data.csv", label="species", classes=["setosa", "virginica", "versicolr"]
    )
    assert loc == ("data", "classes")
    assert message == (
        f"label 'versicolor' ({tmp_path / 'data.csv'} line 5) is not in classes. "
        "Did you mean: versicolr? classes: setosa, virginica, versicolr"
    )


def test_duplicate_header(tmp_path: Path) -> None:
    write(tmp_path, "a,a,y\n1,2,0\n")
    assert spec_error(tmp_path, path="data.csv", label="y")[1] == (
        f"{tmp_path / 'data.csv'} has two columns named 'a'"
    )


def test_params_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        CsvParams.model_validate({"path": "nope.csv", "label": "y"}, context={"base_dir": tmp_path})
    assert f"file {tmp_path / 'nope.csv'} does not exist" in str(info.value)
    write(tmp_path, IRIS)
    with pytest.raises(ValidationError):
        CsvParams.model_validate(
            {"path": "data.csv", "label": "y", "delimiter": ";;"}, context={"base_dir": tmp_path}
        )
    with pytest.raises(ValidationError):
        CsvParams.model_validate(
            {"path": "data.csv", "label": "y", "sep": ";"}, context={"base_dir": tmp_path}
        )


TABLE = """sample_id,age,site,income,y
S1,30,north,100,0
S2,41,south,250,1
S3,52,north,175,1
"""


def test_exclude_drops_columns_by_name(tmp_path: Path) -> None:
    write(tmp_path, TABLE)
    data = load(tmp_path, path="data.csv", label="y", exclude=["site", "sample_id"])
    assert data.feature_names == ["age", "income"]
    assert data.get(np.arange(3)).tolist() == [[30.0, 100.0], [41.0, 250.0], [52.0, 175.0]]
    assert data.description == (
        f"CSV {tmp_path / 'data.csv'}: 3 rows, 2 features, label 'y' (2 classes); "
        "excluded: site, sample_id"
    )


def test_text_columns_suggest_exclude(tmp_path: Path) -> None:
    write(tmp_path, TABLE)
    assert spec_error(tmp_path, path="data.csv", label="y") == (
        ("data", "path"),
        "columns 'sample_id' ('S1' on line 2) and 'site' ('north' on line 2) hold text, "
        "not numbers; drop them with exclude: [sample_id, site]",
    )
    # the suggested line keeps what exclude already lists
    assert spec_error(tmp_path, path="data.csv", label="y", exclude=["sample_id"]) == (
        ("data", "exclude"),
        "column 'site' ('north' on line 2) holds text, not numbers; drop it with "
        "exclude: [sample_id, site]",
    )


def test_text_column_listed_in_features(tmp_path: Path) -> None:
    write(tmp_path, TABLE)
    assert spec_error(tmp_path, path="data.csv", label="y", features=["age", "site"]) == (
        ("data", "features", 1),
        "column 'site' ('north' on line 2) holds text, not numbers; take it out of features",
    )


def test_exclude_names_are_checked(tmp_path: Path) -> None:
    write(tmp_path, TABLE)
    assert spec_error(tmp_path, path="data.csv", label="y", exclude=["site", "smaple_id"]) == (
        ("data", "exclude", 1),
        f"column 'smaple_id' is not in {tmp_path / 'data.csv'}. Did you mean: sample_id? "
        "Columns: sample_id, age, site, income, y",
    )
    assert spec_error(tmp_path, path="data.csv", label="y", exclude=["y"]) == (
        ("data", "exclude", 0),
        "'y' is the label column; exclude lists feature columns",
    )
    assert spec_error(tmp_path, path="data.csv", label="y", exclude=["site"], features=["age"]) == (
        ("data", "exclude"),
        "exclude drops columns from the default features (all but the label); with features "
        "listed, leave it out",
    )
    assert spec_error(
        tmp_path, path="data.csv", label="y", exclude=["sample_id", "age", "site", "income"]
    ) == (
        ("data", "exclude"),
        f"{tmp_path / 'data.csv'} has no feature columns: exclude drops every column besides "
        "the label",
    )


def test_text_labels_need_classes(tmp_path: Path) -> None:
    write(tmp_path, IRIS)
    assert spec_error(tmp_path, path="data.csv", label="species") == (
        ("data", "label"),
        "column 'species' holds text labels (setosa, versicolor, virginica); give the model's "
        "class order: classes: [setosa, versicolor, virginica]",
    )


def test_the_suggested_classes_line_is_valid_yaml(tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    labels = ["yes", "no", "stage 2", "a, b", "3", "x: y"]
    rows = "".join(f'{k},"{label}"\n' for k, label in enumerate(labels))
    write(tmp_path, "x,y\n" + rows)
    message = spec_error(tmp_path, path="data.csv", label="y")[1]
    line = message.split("give the model's class order: ")[1]
    assert line == 'classes: ["3", "a, b", "no", stage 2, "x: y", "yes"]'
    assert YAML(typ="safe").load(line)["classes"] == sorted(labels)


def test_integer_labels_out_of_range_of_classes(tmp_path: Path) -> None:
    write(tmp_path, "x,y\n1,0\n2,1\n3,2\n")
    assert spec_error(tmp_path, path="data.csv", label="y", classes=["benign", "malignant"]) == (
        ("data", "classes"),
        f"label 2 ({tmp_path / 'data.csv'} line 4) is not a class index: classes names 2 "
        "classes (indices 0 to 1)",
    )


def test_classes_may_be_numbers_in_yaml(tmp_path: Path) -> None:
    write(tmp_path, "x,y\n1,10\n2,-1\n")
    data = load(tmp_path, path="data.csv", label="y", classes=[10, -1])
    assert data.class_names == ["10", "-1"]
    assert data.labels.tolist() == [0, 1]


def test_standardize_with_training_statistics(tmp_path: Path) -> None:
    write(tmp_path, "a,b,y\n1,7,0\n2,9,1\n3,7,0\n")
    data = load(
        tmp_path, path="data.csv", label="y", standardize={"mean": [2.0, 5.0], "std": [0.5, 4.0]}
    )
    raw = np.array([[1, 7], [2, 9], [3, 7]], dtype=np.float64)
    expected = (raw - [2.0, 5.0]) / [0.5, 4.0]
    np.testing.assert_allclose(data.get(np.arange(3)).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(data.raw_values(np.array([2, 0])), raw[[2, 0]], rtol=1e-6)
    assert data.description.endswith("; standardized with the training statistics from the spec")


def test_standardize_true_says_it_is_not_the_training_statistics(tmp_path: Path) -> None:
    write(tmp_path, "a,y\n1,0\n3,1\n")
    data = load(tmp_path, path="data.csv", label="y", standardize=True)
    assert data.description.endswith(
        "; standardized with the CSV file's own statistics, not the training statistics"
    )
    np.testing.assert_allclose(data.raw_values(np.arange(2)), [[1.0], [3.0]], rtol=1e-6)
    unscaled = load(tmp_path, path="data.csv", label="y")
    assert unscaled.raw_values(np.arange(2)) is None  # the inputs are the CSV's values


def test_standardize_statistics_must_fit_the_features(tmp_path: Path) -> None:
    write(tmp_path, IRIS)
    stats = {"mean": [1.0, 2.0], "std": [1.0, 1.0]}
    assert spec_error(
        tmp_path, path="data.csv", label="species", classes=SPECIES, standardize=stats
    ) == (
        ("data", "standardize"),
        "the spec gives 2 means and 2 stds for 3 features (sepal, petal, weight); give one "
        "of each per feature, in feature order",
    )
    with pytest.raises(ValidationError) as info:
        CsvParams.model_validate(
            {"path": "data.csv", "label": "y", "standardize": {"mean": [1.0], "std": [1.0, 2]}},
            context={"base_dir": tmp_path},
        )
    assert "mean has 1 values but std has 2; give one per feature for both" in str(info.value)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "stats.json",
            '{"mean": [1, 2, 3], "std": [1, 0, 1]}',
            "{path}: std of feature 'petal' is 0; every std must be > 0",
        ),
        (
            "stats.json",
            '{"mean": [1, 2, 3]}',
            "{path} has no 'std'; expected keys mean and std, one value per feature",
        ),
        (
            "stats.json",
            "[1, 2]",
            "{path} holds a JSON list; expected keys mean and std, one value per feature",
        ),
        (
            "stats.json",
            '{"mean": [1, 2], "std": [1, 1]}',
            "{path} gives 2 means and 2 stds for 3 features (sepal, petal, weight); give one "
            "of each per feature, in feature order",
        ),
        (
            "stats.json",
            '{"mean": "a", "std": [1, 1, 1]}',
            "{path}: 'mean' is not a list of numbers",
        ),
        (
            "stats.txt",
            "mean 1",
            "{path} has an unsupported file type '.txt'; expected .json or .npz",
        ),
    ],
)
def test_standardize_file_problems(tmp_path: Path, name: str, content: str, message: str) -> None:
    write(tmp_path, IRIS)
    (tmp_path / name).write_text(content)
    assert spec_error(
        tmp_path, path="data.csv", label="species", classes=SPECIES, standardize=name
    ) == (("data", "standardize"), message.format(path=tmp_path / name))


def test_standardize_from_npz(tmp_path: Path) -> None:
    write(tmp_path, "a,b,y\n1,7,0\n3,9,1\n")
    np.savez(tmp_path / "stats.npz", mean=np.array([1.0, 8.0]), std=np.array([2.0, 1.0]))
    data = load(tmp_path, path="data.csv", label="y", standardize="stats.npz")
    np.testing.assert_allclose(data.get(np.arange(2)).numpy(), [[0, -1], [1, 1]])
    np.savez(tmp_path / "bad.npz", mean=np.zeros((2, 2)), std=np.ones(2))
    assert spec_error(tmp_path, path="data.csv", label="y", standardize="bad.npz")[1] == (
        f"{tmp_path / 'bad.npz'}: 'mean' has shape (2, 2); expected one value per feature"
    )


def test_standardize_files_are_read_within_bounds(tmp_path: Path) -> None:
    """A statistics file is read up to 16 MB (an NPZ's arrays unpacked, checked before
    unpacking); a broken archive is a spec error at data.standardize, not a traceback."""
    write(tmp_path, "a,b,y\n1,7,0\n3,9,1\n")
    with (tmp_path / "huge.json").open("wb") as file:
        file.truncate(17 * 2**20)  # sparse: 17 MB of NUL bytes
    np.savez_compressed(tmp_path / "bomb.npz", mean=np.zeros(3 * 2**20), std=np.ones(2))
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "empty.npz").write_bytes(b"")
    tail = "; a statistics file holds one mean and one std per feature"
    not_zip = "is not a readable NPZ file: File is not a zip file"
    expected = {
        "huge.json": f"{tmp_path / 'huge.json'} is larger than 16 MB{tail}",
        "bomb.npz": f"{tmp_path / 'bomb.npz'} is larger than 16 MB unpacked{tail}",
        "broken.npz": f"{tmp_path / 'broken.npz'} {not_zip}",
        "empty.npz": f"{tmp_path / 'empty.npz'} {not_zip}",
    }
    for name, message in expected.items():
        assert spec_error(tmp_path, path="data.csv", label="y", standardize=name) == (
            ("data", "standardize"),
            message,
        ), name


def static(tmp_path: Path, **params: object) -> StaticInfo:
    validated = CsvParams.model_validate(params, context={"base_dir": tmp_path})
    return CsvDataSource.static_info(validated)


def test_static_info_reads_a_small_file_whole(tmp_path: Path) -> None:
    write(tmp_path, TABLE)
    info = static(tmp_path, path="data.csv", label="y", exclude=["sample_id", "site"])
    assert info == StaticInfo("tabular", (2,), ["age", "income"], ["0", "1"])
    write(tmp_path, IRIS)
    info = static(tmp_path, path="data.csv", label="species")  # text labels, no classes
    assert [i.loc for i in info.issues] == [("data", "label")]  # given, not raised:
    assert info.feature_names is not None and info.input_shape is not None  # still planned


def test_static_info_of_a_large_file_reads_the_header_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_source, "STATIC_READ_LIMIT", 0)
    write(tmp_path, TABLE.replace("S2,41", "S2,oops"))  # a bad cell it does not read
    info = static(tmp_path, path="data.csv", label="y", exclude=["sample_id", "site"])
    assert info == StaticInfo("tabular", (2,), ["age", "income"], None)
    info = static(tmp_path, path="data.csv", label="y", features=["income"], classes=["a", "b"])
    assert info == StaticInfo("tabular", (1,), ["income"], ["a", "b"])
    with pytest.raises(SpecError) as error:
        static(tmp_path, path="data.csv", label="y", exclude=["sample"])
    assert error.value.issues[0].message == (
        f"column 'sample' is not in {tmp_path / 'data.csv'}. Did you mean: sample_id? "
        "Columns: sample_id, age, site, income, y"
    )


def test_column_and_label_problems_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, TABLE.replace(",0\n", ",no\n").replace(",1\n", ",yes\n"))
    with pytest.raises(SpecError) as info:
        load(tmp_path, path="data.csv", label="y", exclude=["sampleid"])
    assert [(i.loc, i.message) for i in info.value.issues] == [
        (
            ("data", "exclude", 0),
            f"column 'sampleid' is not in {tmp_path / 'data.csv'}. Did you mean: sample_id? "
            "Columns: sample_id, age, site, income, y",
        ),
        (
            ("data", "label"),
            "column 'y' holds text labels (no, yes); give the model's class order: "
            'classes: ["no", "yes"]',
        ),
    ]
