"""Bad data in a GroupDataset is a one-line BenchError at build time, before anything trains."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import bench, make_info, toy_dataset

from benchmark.core.errors import BenchError
from benchmark.core.registry import METHODS
from benchmark.data.batches import eval_batches
from benchmark.data.core import FeatureSpace
from benchmark.models import GroupModel
from benchmark.training.evaluation import evaluate


def with_value(data, field: str, index: int, value: int) -> dict:
    """``{field: copy of data.field with entry index set to value}``, for :func:`dataclasses.replace`."""
    damaged = getattr(data, field).clone()
    damaged[index] = value
    return {field: damaged}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("split_code", 3, "dataset toy: 'split_code' has value 3 outside [0, 3) (0 = train, 1 = val, 2 = test)"),
        ("y", 3, "dataset toy: 'y' has value 3 outside [0, 3) (3 classes)"),
        ("y", -1, "dataset toy: 'y' has value -1 outside [0, 3) (3 classes)"),
        ("g", 5, "dataset toy: 'g' has value 5 outside [0, 3) (3 groups)"),
        ("a", 3, "dataset toy: 'a' has value 3 outside [0, 3) (3 attributes)"),
        ("space", 4, "dataset toy: 'space' has value 4 outside [0, 3) (3 feature spaces)"),
    ],
)
def test_code_out_of_range_names_the_field_and_the_first_bad_value(field, value, message):
    data = toy_dataset()
    bad = with_value(data, field, 7, value)
    bad[field][50] = 10 * value  # a later bad value is not the one reported
    with pytest.raises(BenchError) as error:
        dataclasses.replace(data, **bad)
    assert str(error.value) == message


def test_row_outside_its_space_names_the_space():
    data = toy_dataset()  # spaces vec0 (40 rows), img1 (20), seq2 (10); sample 45 is row 5 of img1
    with pytest.raises(BenchError) as error:
        dataclasses.replace(data, **with_value(data, "row", 45, 20))
    assert str(error.value) == "dataset toy: 'row' has value 20 outside space img1's rows [0, 20)"
    with pytest.raises(BenchError, match="'row' has value -1 outside space vec0's rows"):
        dataclasses.replace(data, **with_value(data, "row", 0, -1))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_features_name_the_space_and_the_rows_affected(bad):
    data = toy_dataset()
    x = data.spaces[1].x.clone()
    x[2, 0, 1, 1] = bad
    x[2, 0, 3, 0] = bad  # same row twice: counted once
    x[9, 0, 0, 2] = bad
    spaces = [data.spaces[0], FeatureSpace("img1", "image", x), data.spaces[2]]
    with pytest.raises(BenchError) as error:
        dataclasses.replace(data, spaces=spaces)
    assert str(error.value) == "dataset toy: space img1 has NaN or infinite features in 2 of 20 rows"


def test_integer_features_and_finite_features_with_an_overflowing_sum_build():
    data = toy_dataset()
    tokens = FeatureSpace("seq2", "sequence", torch.zeros(10, 1, 6, dtype=torch.int64))
    dataclasses.replace(data, spaces=[*data.spaces[:2], tokens])
    large = FeatureSpace("seq2", "sequence", torch.full((10, 1, 6), 60000.0, dtype=torch.float16))
    assert torch.isinf(large.x.sum())  # the fast check is inconclusive; the exact one finds every row finite
    dataclasses.replace(data, spaces=[*data.spaces[:2], large])


def test_group_without_training_samples_is_rejected():
    data = toy_dataset()
    split = torch.where((data.g == 1) & (data.split_code == 0), 1, data.split_code)  # img1's training samples -> val
    data = dataclasses.replace(data, split_code=split)
    with pytest.raises(BenchError) as error:
        data.validate()
    assert str(error.value) == "dataset toy: group(s) img1 have no training samples"


def test_group_without_test_samples_builds_and_is_reported_missing():
    data = toy_dataset()
    split = torch.where((data.g == 2) & (data.split_code == 2), 1, data.split_code)  # seq2's test samples -> val
    data = dataclasses.replace(data, split_code=split)
    data.validate()
    assert data.counts_table()["test"][2] == 0 and data.counts_table()["val"][2] > 0
    torch.manual_seed(0)
    method = METHODS.get("erm")(GroupModel(data), make_info(data))
    test = evaluate(method, data, eval_batches(data, "test", 16))
    assert test["groups"]["seq2"] is None
    assert test["groups"]["vec0"] is not None and test["groups"]["img1"] is not None
    assert test["wga"] == min(test["groups"]["vec0"], test["groups"]["img1"])
    assert evaluate(method, data, eval_batches(data, "val", 16))["groups"]["seq2"] is not None


NAN_PLUGIN = """
import torch

from benchmark.data.core import FeatureSpace, GroupDataset

from benchmark.data.builder import DatasetBuilder
from benchmark.core.registry import register_dataset


@register_dataset("nan-features")
class NanFeatures(DatasetBuilder):
    description = "Two groups of vectors, two rows with a NaN"

    def build(self, options, data_root):
        x = torch.randn(30, 4, generator=torch.Generator().manual_seed(options["seed"]))
        x[3, 1] = x[17, 0] = float("nan")
        codes = torch.arange(30) % 2
        return GroupDataset(
            name=self.name,
            spaces=[FeatureSpace("vec", "vector", x)],
            space=torch.zeros(30, dtype=torch.int64),
            row=torch.arange(30),
            y=codes,
            a=codes,
            g=codes,
            split_code=torch.arange(30) // 2 % 3,
            class_names=["c0", "c1"],
            attr_names=["a0", "a1"],
            group_names=["g0", "g1"],
        )
"""


def test_cli_nan_features_from_a_plugin_dataset_exit_2_before_training(tmp_path):
    plugin = tmp_path / "nan_data.py"
    plugin.write_text(NAN_PLUGIN)
    out = tmp_path / "results"
    args = ["--plugin", str(plugin), "--dataset", "nan-features", "--methods", "erm", "--seeds", "0", "--quick"]
    proc = bench("run", *args, "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == ["error: dataset nan-features: space vec has NaN or infinite features in 2 of 30 rows"]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists()
