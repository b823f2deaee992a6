"""Datasets without labels: every layout reads images only, pools and pretraining splits.

Self-supervised pretraining reads images and nothing else, so a folder of images is a dataset
(not a broken one), any dataset has an unlabelled view, several can be pooled, and the split
that monitors the pretext loss covers every case.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medssl.cli import app
from medssl.data.check import check_dataset, format_report
from medssl.data.dataset import Case, Dataset, image_channels, image_dims, pool_datasets
from medssl.data.io import MedImage, write_image
from medssl.data.layouts import load_dataset, load_images_only
from medssl.data.splits import make_pretrain_split, make_split
from medssl.errors import ConfigError, DataError

CT_DICOM = "smoke/totalseg_examples/example_ct_dicom"
PRETRAIN = "use the set for pretraining or as the unlabelled pool of a semi-supervised run"


def _volume(path: Path, shape=(6, 5, 4), seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.random.default_rng(seed).random(shape, dtype=np.float32)
    write_image(path, MedImage.from_array(array, spacing=(1.0,) * len(shape)))


def _png(path: Path, rgb: bool = False, value: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (12, 10, 3) if rgb else (12, 10)
    array = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    Image.fromarray(array if value is None else np.full_like(array, value)).save(path)


def _series(shared_data: Path, folder: Path) -> None:
    """A DICOM series folder: links to the smoke CT slices (nothing copied)."""
    folder.mkdir(parents=True)
    for f in sorted((shared_data / CT_DICOM).glob("*.dcm")):
        (folder / f.name).symlink_to(f)


def _nnunet_images(root: Path, cases: int = 3, channels: int = 1) -> Path:
    for i in range(cases):
        for k in range(channels):
            _volume(root / "imagesTr" / f"c{i}_{k:04d}.nii.gz", seed=i)
    return root


def _lines(root: Path) -> list[str]:
    return format_report(check_dataset(root)).splitlines()


# ------------------------------------------------------------------------------------------
# every layout reads a folder of images without labels; data check calls it unlabelled
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["nifti", "png", "dicom"])
def test_loose_image_folder_is_unlabelled_not_broken(shared_data, tmp_path, kind):
    root = tmp_path / "images"
    n = 1 if kind == "dicom" else 2  # a series is read whole: one keeps the test fast
    for i in range(n):
        if kind == "nifti":
            _volume(root / f"scan{i}.nii.gz", seed=i)
        elif kind == "png":
            _png(root / "sub" / f"frame{i}.png")
        else:
            _series(shared_data, root / f"series{i}")
    ds = load_dataset(root)
    assert ds.layout == "files" and len(ds.cases) == n and ds.labeled == [] and ds.labels == {}
    assert image_dims(ds) == (2 if kind == "png" else 3) and image_channels(ds) == 1
    report = check_dataset(root)
    assert report == [], format_report(report)
    assert _lines(root)[-3:] == [
        f"{root}: unlabelled, not a problem: no <name>_label files; {PRETRAIN}",
        f"read {n} case{'s' * (n > 1)}: 0 labelled, {n} unlabelled (files layout)",
        "no problems found",
    ]


def test_nnunet_without_labels_tr_and_without_labels_in_dataset_json(tmp_path):
    """imagesTr/ only and a dataset.json that names no labels: read, checked, a note only."""
    root = _nnunet_images(tmp_path / "Dataset001_Pool")
    (root / "dataset.json").write_text(
        json.dumps({"channel_names": {"0": "CT"}, "file_ending": ".nii.gz"})
    )
    ds = load_dataset(root)
    assert ds.layout == "nnunet" and [c.id for c in ds.unlabeled] == ["c0", "c1", "c2"]
    assert ds.num_classes == 0 and "inferred" not in ds.extra
    assert check_dataset(root) == []
    assert _lines(root) == [
        f"{root}: unlabelled, not a problem: no labelsTr/; {PRETRAIN}",
        "read 3 cases: 0 labelled, 3 unlabelled (nnunet layout)",
        "no problems found",
    ]


def test_nnunet_images_only_without_dataset_json(tmp_path):
    """No labelsTr/ and no dataset.json: ending and channels come from imagesTr/."""
    root = _nnunet_images(tmp_path / "pool", cases=2, channels=2)
    ds = load_dataset(root)
    assert ds.layout == "nnunet" and ds.file_ending == ".nii.gz" and ds.num_channels == 2
    assert all(len(c.images) == 2 and not c.has_label for c in ds.cases)
    assert ds.extra["dataset_json"] == {}
    assert check_dataset(root) == []
    lines = _lines(root)
    assert lines[0] == (
        f"{root}: no dataset.json, not a problem: file_ending .nii.gz and 2 channels taken "
        "from imagesTr/ (write a dataset.json to name them)"
    )
    assert lines[-2:] == [
        "read 2 cases: 0 labelled, 2 unlabelled (nnunet layout)",
        "no problems found",
    ]


def test_nnunet_without_dataset_json_names_a_file_of_another_ending(tmp_path):
    root = _nnunet_images(tmp_path / "pool", cases=1)
    _volume(root / "imagesTr" / "c9_0000.nrrd")
    report = check_dataset(root)
    assert [(p.path.name, p.kind) for p in report] == [("c9_0000.nrrd", "unused")]
    assert "ending .nrrd is not the file_ending taken from imagesTr/ .nii.gz" in report[0].message


def test_nnunet_labels_tr_without_dataset_json_is_still_refused(tmp_path):
    root = _nnunet_images(tmp_path / "labelled", cases=1)
    _volume(root / "labelsTr" / "c0.nii.gz")
    with pytest.raises(DataError, match="dataset.json: missing next to imagesTr"):
        load_dataset(root)


def test_nnunet_with_labels_tr_but_no_matching_label_names_why(tmp_path):
    root = _nnunet_images(tmp_path / "named_wrong", cases=1)
    (root / "dataset.json").write_text(json.dumps({"file_ending": ".nii.gz"}))
    _volume(root / "labelsTr" / "other.nii.gz")
    lines = _lines(root)
    why = "labelsTr/ holds no label of an imagesTr/ case"
    assert f"{root}: unlabelled, not a problem: {why}; {PRETRAIN}" in lines
    assert lines[-1] == "1 problem in 1 file (1 unused)"  # the misnamed label still is one


def test_msd_index_with_only_an_unlabelled_list(tmp_path):
    for i in range(2):
        _volume(tmp_path / "imagesTr" / f"u{i}.nii.gz", seed=i)
    entries = [{"image": f"./imagesTr/u{i}.nii.gz"} for i in range(2)]
    (tmp_path / "dataset.json").write_text(json.dumps({"training": [], "unlabelled": entries}))
    ds = load_dataset(tmp_path)
    assert ds.layout == "msd" and [c.id for c in ds.unlabeled] == ["u0", "u1"]
    assert check_dataset(tmp_path) == []
    assert _lines(tmp_path)[0].endswith(f"no dataset.json entry names a label; {PRETRAIN}")


@pytest.mark.parametrize(
    "arrays",
    [
        {"train_images": np.zeros((5, 28, 28), np.uint8)},
        {
            "train_images": np.zeros((4, 28, 28, 3), np.uint8),
            "val_images": np.zeros((2, 28, 28, 3)),
        },
    ],
    ids=["grey", "rgb"],
)
def test_medmnist_npz_of_images_only(tmp_path, arrays):
    npz = tmp_path / "pool.npz"
    np.savez(npz, **arrays)
    ds = load_dataset(npz)
    total = sum(len(a) for a in arrays.values())
    assert ds.layout == "medmnist" and len(ds.cases) == total and ds.labeled == []
    assert image_channels(ds) == (3 if "val_images" in arrays else 1) and image_dims(ds) == 2
    for root in (npz, tmp_path):
        assert check_dataset(root) == []
        assert _lines(root) == [
            f"{npz}: unlabelled, not a problem: no <split>_labels arrays; {PRETRAIN}",
            f"read {total} cases: 0 labelled, {total} unlabelled (medmnist layout)",
            "no problems found",
        ]


def test_labelled_sets_get_no_unlabelled_note(tmp_path):
    _png(tmp_path / "x_image.png")
    Image.fromarray(np.eye(12, 10, dtype=np.uint8)).save(tmp_path / "x_label.png")
    _png(tmp_path / "y.png")  # one unlabelled image beside a labelled one is the usual pool
    assert _lines(tmp_path) == [
        "read 2 cases: 1 labelled, 1 unlabelled (files layout)",
        "no problems found",
    ]


# ------------------------------------------------------------------------------------------
# the unlabelled view of any dataset
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["la2018", "smoke", "brats2018", "jsrt", "bigneuron"])
def test_images_only_drops_labels_and_keeps_images(shared_data, folder):
    ds = load_dataset(shared_data / folder)
    view = ds.images_only()
    assert [c.id for c in view.cases] == [c.id for c in ds.cases]
    assert [c.images for c in view.cases] == [c.images for c in ds.cases]
    assert view.labeled == [] and view.labels == {} and view.num_classes == 0
    assert view.extra["images_only"] is True and "landmarks" not in view.extra
    assert not any(k in c.meta for c in view.cases for k in ("landmarks", "swc", "swc_auto"))
    assert view.num_channels == ds.num_channels and view.layout == ds.layout
    assert len(ds.labeled) == len(load_dataset(shared_data / folder).labeled)  # ds untouched


def test_images_only_of_a_medmnist_set_drops_targets_and_label_arrays(shared_data):
    ds = load_dataset(shared_data / "pneumoniamnist")
    view = ds.images_only()
    assert len(view.cases) == len(ds.cases) and view.labeled == []
    assert all(c.target is None and c.array is not None for c in view.cases)
    assert all(labels is None for _, labels in view.extra["arrays"].values())
    assert any(labels is not None for _, labels in ds.extra["arrays"].values())


def test_load_images_only_reads_labels_that_cannot_be_named(tmp_path):
    """0/255 masks stop training (no label names) but not pretraining on the images."""
    _png(tmp_path / "x_image.png")
    _png(tmp_path / "x_label.png", value=255)
    with pytest.raises(DataError, match="are not 0..K-1"):
        load_dataset(tmp_path)
    view = load_images_only(tmp_path)
    assert [c.id for c in view.cases] == ["x"] and view.labeled == []
    assert "labels_error" not in view.extra


def test_make_split_still_needs_labels(tmp_path):
    _volume(tmp_path / "a.nii.gz")
    with pytest.raises(ConfigError, match="no labelled cases found; .* can pretrain"):
        make_split(load_dataset(tmp_path))


# ------------------------------------------------------------------------------------------
# pooling datasets
# ------------------------------------------------------------------------------------------


def test_pool_prefixes_ids_with_the_folder_and_drops_labels(shared_data, tmp_path):
    _volume(tmp_path / "extra" / "scan.nii.gz")
    parts = [load_dataset(shared_data / "la2018"), load_dataset(tmp_path / "extra")]
    pool = pool_datasets(parts)
    ids = [c.id for c in pool.cases]
    assert len(ids) == len(set(ids)) == 81
    assert ids[0] == f"la2018/{parts[0].cases[0].id}" and ids[-1] == "extra/scan"
    assert pool.layout == "pooled" and pool.labeled == [] and pool.spatial_dims == 3
    assert pool.num_channels == 1 and pool.file_ending == ""  # loose files declare none
    assert pool.case("extra/scan").meta["source_id"] == "scan"
    assert pool.case("extra/scan").images == [tmp_path / "extra" / "scan.nii.gz"]
    assert list(pool.extra["sources"]) == ["la2018", "extra"]


def test_pool_names_folders_of_the_same_name_by_their_parents(tmp_path):
    for parent in ("site_a", "site_b"):
        _volume(tmp_path / parent / "images" / "scan.nii.gz")
    pool = pool_datasets([load_dataset(tmp_path / p / "images") for p in ("site_a", "site_b")])
    assert [c.id for c in pool.cases] == ["site_a/images/scan", "site_b/images/scan"]
    assert pool.root == tmp_path


def test_pool_of_medmnist_and_png_folders(shared_data, tmp_path):
    _png(tmp_path / "frames" / "f0.png")
    pool = pool_datasets([load_dataset(shared_data / "pneumoniamnist"), load_dataset(tmp_path)])
    assert pool.spatial_dims == 2 and pool.num_channels == 1
    assert pool.cases[-1].id == f"{tmp_path.name}/frames/f0"
    assert pool.cases[0].array is not None and pool.cases[0].target is None


def test_pool_refuses_different_channels_in_one_line(shared_data):
    la, brats = shared_data / "la2018", shared_data / "brats2018"
    with pytest.raises(DataError) as err:
        pool_datasets([load_dataset(la), load_dataset(brats)])
    assert str(err.value) == (
        f"{brats}: has 4 image channel(s) but {la} has 1; pool only datasets whose images have "
        "the same channels"
    )


def test_pool_refuses_rgb_with_grey_images(tmp_path):
    _png(tmp_path / "grey" / "a.png")
    _png(tmp_path / "rgb" / "b.png", rgb=True)
    with pytest.raises(DataError, match=r"rgb: has 3 image channel\(s\) but .*grey has 1"):
        pool_datasets([load_dataset(tmp_path / "grey"), load_dataset(tmp_path / "rgb")])
    assert image_channels(pool_datasets([load_dataset(tmp_path / "rgb")])) == 3


def test_pool_refuses_2d_with_3d(shared_data):
    with pytest.raises(DataError, match=r"oasis2d: holds 2D images but .*la2018 holds 3D"):
        pool_datasets([load_dataset(shared_data / "la2018"), load_dataset(shared_data / "oasis2d")])


def test_pool_of_one_keeps_ids_and_refuses_nothing_or_twice(shared_data):
    smoke = load_dataset(shared_data / "smoke")
    alone = pool_datasets([smoke])
    assert [c.id for c in alone.cases] == [c.id for c in smoke.cases] and alone.labeled == []
    with pytest.raises(ConfigError, match="no dataset to pool"):
        pool_datasets([])
    with pytest.raises(ConfigError, match="smoke: is given twice"):
        pool_datasets([smoke, load_dataset(shared_data / "smoke")])


def test_pool_refuses_a_dataset_without_cases(tmp_path):
    empty = Dataset(root=tmp_path / "empty", layout="files", cases=[])
    full = Dataset(root=tmp_path / "full", layout="files", cases=[Case("a", [tmp_path / "a.png"])])
    with pytest.raises(DataError, match="empty: has no case to pool"):
        pool_datasets([full, empty])


# ------------------------------------------------------------------------------------------
# the pretraining split
# ------------------------------------------------------------------------------------------


def _mixed(n_labelled: int = 6, n_unlabelled: int = 6, n_test: int = 2) -> Dataset:
    cases = [
        Case(f"l{i}", [Path(f"l{i}.nii.gz")], label=Path(f"y{i}.nii.gz")) for i in range(n_labelled)
    ]
    cases += [Case(f"u{i}", [Path(f"u{i}.nii.gz")]) for i in range(n_unlabelled)]
    cases += [Case(f"t{i}", [Path(f"t{i}.nii.gz")], meta={"split": "test"}) for i in range(n_test)]
    return Dataset(root=Path("/data"), layout="nnunet", cases=cases)


def test_pretrain_split_is_deterministic_disjoint_and_covers_every_case():
    ds = _mixed()
    split = make_pretrain_split(ds, seed=3, val_cases=3)
    assert split == make_pretrain_split(_mixed(), seed=3, val_cases=3)
    assert split["labeled"] == [] and len(split["val"]) == 3 and split["kind"] == "pretrain"
    assert not set(split["val"]) & set(split["unlabeled"])
    assert set(split["val"]) | set(split["unlabeled"]) == {c.id for c in ds.cases[:12]}
    assert split["counts"] == {"labeled": 0, "unlabeled": 9, "val": 3}
    assert set(split) >= {"labeled", "unlabeled", "val", "seed", "order", "counts"}
    order = [c.id for c in ds.cases]
    assert split["val"] == sorted(split["val"], key=order.index)
    assert split["unlabeled"] == sorted(split["unlabeled"], key=order.index)
    vals = {tuple(make_pretrain_split(ds, seed=s, val_cases=3)["val"]) for s in range(6)}
    assert len(vals) > 1
    json.dumps(split)  # split.json


def test_pretrain_split_fraction_test_cases_and_no_validation():
    ds = _mixed()
    assert len(make_pretrain_split(ds, val_cases=0.25)["val"]) == 3  # round(0.25 * 12)
    with_test = make_pretrain_split(ds, val_cases=0, include_test=True)
    assert with_test["val"] == [] and len(with_test["unlabeled"]) == 14


def test_pretrain_split_too_few_cases_is_one_line():
    with pytest.raises(ConfigError) as err:
        make_pretrain_split(_mixed(1, 1, 0), val_cases=2)
    assert str(err.value) == (
        "/data: val_cases=2 leaves no training case of 2; give at most 1, or 0 for no validation"
    )
    with pytest.raises(ConfigError, match="of 1; add cases, or 0 for no validation"):
        make_pretrain_split(_mixed(0, 1, 0))
    with pytest.raises(ConfigError, match="no case to pretrain on; every case is a test case"):
        make_pretrain_split(_mixed(0, 0, 2))


def test_pretrain_split_of_real_pools(shared_data):
    pool = pool_datasets(
        [load_dataset(shared_data / "la2018"), load_images_only(shared_data / "smoke")]
    )
    split = make_pretrain_split(pool, seed=0, val_cases=0.1)
    assert split["counts"] == {"labeled": 0, "unlabeled": 78, "val": 9}
    brats = make_pretrain_split(load_dataset(shared_data / "brats2018"), val_cases=2)
    assert brats["counts"]["unlabeled"] + brats["counts"]["val"] == 9  # labelled one included


# ------------------------------------------------------------------------------------------
# the command line
# ------------------------------------------------------------------------------------------


def test_data_check_cli_on_an_image_only_folder_exits_0(tmp_path):
    for i in range(3):
        _volume(tmp_path / "pool" / f"s{i}.nii.gz", seed=i)
    result = CliRunner().invoke(app, ["data", "check", str(tmp_path / "pool")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-2:] == [
        "read 3 cases: 0 labelled, 3 unlabelled (files layout)",
        "no problems found",
    ]
    assert "unlabelled, not a problem" in result.stdout
