"""The run config: each task reads ``data`` with its own settings; older keys still load."""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl.engine.config import build_config
from medssl.engine.profiles import resolve_config
from medssl.engine.task import get_task
from medssl.errors import ConfigError
from medssl.methods.classify.supervised import SupervisedClassifier
from medssl.tasks.segmentation.config import PatchDataConfig, SegmentationDataConfig


def test_each_task_validates_data_with_its_own_class():
    seg = build_config({"task": "segmentation", "data": {"sw_overlap": 0.5}})
    assert isinstance(seg.data, SegmentationDataConfig) and seg.data.sw_overlap == 0.5
    assert type(build_config({"task": "pretrain"}).data) is PatchDataConfig
    cls = build_config({"task": "classification"})
    assert type(cls.data) is get_task("classification").data_config
    assert not hasattr(cls.data, "sw_overlap")  # sliding windows belong to segmentation


def test_a_key_another_task_owns_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="'data.sw_overlap' is not a setting of the classif"):
        build_config({"task": "classification", "data": {"sw_overlap": 0.5}})
    with pytest.raises(ConfigError, match="invalid value for 'data.patch_size'"):
        build_config({"task": "segmentation", "data": {"patch_size": "big"}})


def test_sliding_window_keys_of_older_configs_move_to_data():
    old = {"task": "segmentation", "train": {"sw_overlap": 0.5, "sw_batch_size": 8}}
    cfg = build_config(old)
    assert (cfg.data.sw_overlap, cfg.data.sw_batch_size) == (0.5, 8)
    assert "sw_overlap" not in cfg.to_dict()["train"]
    both = {**old, "data": {"sw_overlap": 0.75}}  # the data key wins
    assert build_config(both).data.sw_overlap == 0.75


def test_the_saved_config_round_trips_with_the_task_fields():
    cfg = build_config({"task": "segmentation", "data": {"slice_size": [64, 64]}})
    again = build_config(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict() and again.data.slice_size == [64, 64]


def test_profile_network_options_follow_their_network(shared_data: Path):
    data = shared_data / "adrenalmnist3d"
    dataset = get_task("classification").load_dataset(data)

    def resolved(file_values: dict) -> dict:
        cfg = resolve_config(
            task="classification",
            method_cls=SupervisedClassifier,
            dataset=dataset,
            profile="cpu",
            file_values=file_values,
            flag_values={"method": "supervised", "data_dir": str(data)},
        )
        return cfg.net.model_dump()

    assert resolved({})["options"] == {"conv1_t_stride": 2}  # the cpu 3D profile's stem
    assert resolved({"net": {"name": "densenet121"}})["options"] == {}  # not DenseNet's option
    mine = resolved({"net": {"name": "resnet18", "options": {"conv1_t_stride": 1}}})
    assert mine["options"] == {"conv1_t_stride": 1}
