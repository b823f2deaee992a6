"""Labelled-subset selection: deterministic, disjoint, with the documented orderings."""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl.data.dataset import Case, Dataset
from medssl.data.splits import make_split
from medssl.errors import ConfigError


def _dataset(n_labelled: int = 10, n_unlabelled: int = 3, val: tuple[int, ...] = ()) -> Dataset:
    cases = [
        Case(
            id=f"c{i:02d}",
            images=[Path(f"c{i}.nii.gz")],
            label=Path(f"l{i}.nii.gz"),
            meta={"split": "val"} if i in val else {},
        )  # fmt: skip
        for i in range(n_labelled)
    ]
    cases += [Case(id=f"u{i}", images=[Path(f"u{i}.nii.gz")]) for i in range(n_unlabelled)]
    return Dataset(root=Path("/data"), layout="nnunet", cases=cases, labels={"bg": 0, "fg": 1})


def test_same_seed_same_split_and_parts_are_disjoint():
    a = make_split(_dataset(), labeled=3, seed=7, val_cases=2)
    b = make_split(_dataset(), labeled=3, seed=7, val_cases=2)
    assert a == b
    assert len(a["labeled"]) == 3 and len(a["val"]) == 2
    assert len(a["unlabeled"]) == 10 - 2 - 3 + 3  # other labelled training cases + the pool
    assert not set(a["labeled"]) & set(a["val"]) and not set(a["unlabeled"]) & set(a["labeled"])


def test_different_seeds_usually_differ():
    picks = {
        tuple(make_split(_dataset(20), labeled=4, seed=s, val_cases=2)["labeled"]) for s in range(5)
    }
    assert len(picks) > 1


def test_fraction_and_first_n():
    split = make_split(_dataset(), labeled=0.25, val_cases=2, order="first")
    train = [f"c{i:02d}" for i in range(10) if f"c{i:02d}" not in split["val"]]
    assert split["labeled"] == train[:2]  # round(0.25 * 8) = 2, the first two in dataset order


def test_dataset_validation_split_wins():
    split = make_split(_dataset(val=(0, 1)), labeled=2)
    assert split["val"] == ["c00", "c01"]


def test_explicit_ids_and_errors():
    split = make_split(_dataset(val=(0, 1)), labeled_ids=["c05", "c03"])
    assert split["labeled"] == ["c05", "c03"] and split["order"] == "explicit"
    with pytest.raises(ConfigError, match="not labelled training"):
        make_split(_dataset(val=(0, 1)), labeled_ids=["c00"])  # a validation case
    with pytest.raises(ConfigError, match="only"):
        make_split(_dataset(), labeled=20)
    with pytest.raises(ConfigError, match="fraction"):
        make_split(_dataset(), labeled=1.5)
    with pytest.raises(ConfigError, match="no labelled"):
        make_split(_dataset(0), labeled=1)


def test_last_validation_keeps_first_n_labelled_sets_nested():
    """The LA protocols: labelled = the first N of the list, validation = the last cases."""
    eight = make_split(_dataset(20), labeled=8, val_cases=4, order="first", val_order="last")
    four = make_split(_dataset(20), labeled=4, val_cases=4, order="first", val_order="last")
    assert eight["val"] == four["val"] == [f"c{i:02d}" for i in range(16, 20)]
    assert eight["labeled"] == [f"c{i:02d}" for i in range(8)]
    assert eight["labeled"][:4] == four["labeled"]


def test_splits_json_fixes_the_case_order(shared_data: Path):
    """ACDC: "the first 7 patients" are those of SSL4MIS's train list, not sorted ids."""
    import json

    from medssl.data.layouts import load_dataset

    root = shared_data / "acdc"
    listed = json.loads((root / "splits.json").read_text())["train"]
    split = make_split(load_dataset(root), labeled=14, order="first")
    assert split["labeled"] == listed[:14]
    assert split["labeled"][0] == "acdc_patient099_frame01"
