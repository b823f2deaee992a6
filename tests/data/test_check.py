"""``data check`` finds nothing in the real datasets and everything ``data corrupt`` plants."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medssl.data import corrupt
from medssl.data.check import Problem, Report, check_dataset, format_report
from medssl.data.corrupt import KINDS, corrupt_dataset
from medssl.data.io import LandmarkSet, MedImage, write_image, write_landmarks
from medssl.errors import DataError

SHARED = [
    "la2018",
    "acdc",
    "adrenalmnist3d",
    "pneumoniamnist",
    "cephalometric",
    "jsrt",
    "brats2018",
    "oasis2d",
    "bigneuron",
    "colonoscopy",
    "fundus",
    "smoke",
]
# The kind data check reports for each planted kind (a cut file cannot even be read).
REPORTED = {kind: kind for kind in KINDS} | {"truncated": "unreadable"}


@pytest.mark.parametrize("folder", SHARED)
def test_shared_datasets_are_clean(shared_data, folder):
    problems = check_dataset(shared_data / folder)
    assert problems == [], format_report(problems)


def small_copy(shared_data: Path, folder: str, n: int, dest: Path) -> Path:
    """The first ``n`` labelled cases of a shared nnU-Net dataset, with its json files.

    ``numTraining`` is set to ``n``: the copy is meant to be complete, not to miss cases.
    """
    src = shared_data / folder
    for sub in ("imagesTr", "labelsTr"):
        (dest / sub).mkdir(parents=True)
    meta = json.loads((src / "dataset.json").read_text())
    (dest / "dataset.json").write_text(json.dumps(meta | {"numTraining": n}))
    if (src / "splits.json").is_file():
        shutil.copy(src / "splits.json", dest / "splits.json")
    for label in sorted((src / "labelsTr").iterdir())[:n]:
        case = label.name[: -len(".nii.gz")]
        shutil.copy(label, dest / "labelsTr" / label.name)
        shutil.copy(src / "imagesTr" / f"{case}_0000.nii.gz", dest / "imagesTr")
    return dest


@pytest.fixture(scope="module")
def acdc_small(shared_data, tmp_path_factory) -> Path:
    return small_copy(shared_data, "acdc", 8, tmp_path_factory.mktemp("acdc") / "src")


@pytest.mark.parametrize("folder", ["la2018", "acdc"])
def test_every_planted_problem_is_reported_once(shared_data, tmp_path, folder):
    src = small_copy(shared_data, folder, 8, tmp_path / "src")
    assert check_dataset(src) == []
    planted = corrupt_dataset(src, tmp_path / "out", fraction=0.2, seed=1)
    assert sorted(p.kind for p in planted) == sorted(KINDS)
    problems = check_dataset(tmp_path / "out")
    found = sorted((p.path, p.kind) for p in problems)
    assert found == sorted((p.file, REPORTED[p.kind]) for p in planted), format_report(problems)
    assert all(str(p).startswith(f"{p.path}: ") for p in problems)
    bad_value = next(p for p in problems if p.kind == "label_value")
    assert "label values" in bad_value.message and "allowed: 0, 1" in bad_value.message
    records = json.loads((tmp_path / "out" / "corruptions.json").read_text())
    assert records == [
        {"case": p.case, "file": p.file.relative_to(tmp_path / "out").as_posix(), "kind": p.kind}
        for p in planted
    ]


def test_corrupt_is_deterministic_and_honours_fraction(acdc_small, tmp_path):
    first = corrupt_dataset(acdc_small, tmp_path / "a", kinds=["empty_label", "nan"], seed=5)
    again = corrupt_dataset(acdc_small, tmp_path / "b", kinds=["empty_label", "nan"], seed=5)
    assert [(p.case, p.kind) for p in first] == [(p.case, p.kind) for p in again]
    everything = corrupt_dataset(acdc_small, tmp_path / "c", fraction=1.0, kinds=["empty_label"])
    assert len(everything) == 8
    assert {p.kind for p in check_dataset(tmp_path / "c")} == {"empty_label"}


def test_corrupt_refuses_existing_out(acdc_small, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match="exists; choose a new OUT or delete it"):
        corrupt_dataset(acdc_small, tmp_path / "out")


def test_corrupt_refuses_unknown_kind(acdc_small, tmp_path):
    with pytest.raises(DataError, match="unknown corruption kind"):
        corrupt_dataset(acdc_small, tmp_path / "out", kinds=["melted"])
    assert not (tmp_path / "out").exists()


def test_corrupt_removes_partial_out(acdc_small, tmp_path, monkeypatch):
    def fail(case, ds):
        raise RuntimeError("disk full")

    monkeypatch.setitem(corrupt.PLANTERS, "nan", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        corrupt_dataset(acdc_small, tmp_path / "out", kinds=["nan"])
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------
# problems corrupt does not plant
# ------------------------------------------------------------------------------------------


def _volume(array: np.ndarray) -> MedImage:
    return MedImage.from_array(array, spacing=(1.0,) * array.ndim)


def _nnunet(root: Path, cases: dict[str, tuple[list[np.ndarray], np.ndarray | None]]) -> Path:
    """A tiny nnU-Net dataset: {case: ([channel arrays], label or None)}, labels 0-2."""
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True)
    n_channels = max(len(images) for images, _ in cases.values())
    for case, (images, label) in cases.items():
        for k, array in enumerate(images):
            write_image(root / "imagesTr" / f"{case}_{k:04d}.nii.gz", _volume(array))
        if label is not None:
            write_image(root / "labelsTr" / f"{case}.nii.gz", _volume(label))
    meta = {
        "tensorImageSize": "3D",
        "channel_names": {str(k): f"c{k}" for k in range(n_channels)},
        "labels": {"background": 0, "a": 1, "b": 2},
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def _label(*values: int) -> np.ndarray:
    label = np.zeros((6, 6, 4), np.uint8)
    label.flat[: len(values)] = values
    return label


def test_absent_class_is_fine_but_channels_and_4d_are_not(tmp_path):
    img = np.ones((6, 6, 4), np.int16)
    root = _nnunet(
        tmp_path,
        {
            "absent_class": ([img, img], _label(2)),
            "odd_channel": ([img, np.ones((6, 5, 4), np.int16)], _label(1)),
            "four_d": ([img, img], _label(1)),
        },
    )
    four_d = root / "imagesTr" / "four_d_0001.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((6, 6, 4, 2), np.int16), np.eye(4)), four_d)
    problems = check_dataset(root)
    assert sorted((p.path.name, p.kind) for p in problems) == [
        ("four_d_0001.nii.gz", "dim4d"),
        ("odd_channel_0001.nii.gz", "channels"),
    ]


def test_region_labels_allow_their_members(tmp_path):
    root = _nnunet(tmp_path, {"a": ([np.ones((6, 6, 4), np.int16)], _label(1, 2))})
    meta = json.loads((root / "dataset.json").read_text())
    meta["labels"] = {"background": 0, "whole": [1, 2], "core": [2]}
    (root / "dataset.json").write_text(json.dumps(meta))
    assert check_dataset(root) == []
    write_image(root / "labelsTr" / "a.nii.gz", _volume(_label(1, 3)))
    assert [p.kind for p in check_dataset(root)] == ["label_value"]


def test_missing_files_referenced_by_dataset_json(tmp_path):
    (tmp_path / "images").mkdir()
    write_image(tmp_path / "images" / "a.png", MedImage.from_array(np.ones((5, 5), np.uint8)))
    meta = {
        "tensorImageSize": "2D",
        "labels": {"background": 0, "x": 1},
        "training": [
            {"image": "./images/a.png", "label": "./masks/a.png"},
            {"image": "./images/b.png", "label": None},
        ],
    }
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    problems = check_dataset(tmp_path)
    assert sorted((p.path.name, p.kind) for p in problems) == [
        ("a.png", "missing"),
        ("b.png", "missing"),
    ]
    assert all("file not found" in p.message for p in problems)


@pytest.mark.parametrize(
    ("labels", "kind", "text"),
    [(np.zeros((3, 1), np.uint8), "medmnist", "4 train_images but 3"), (None, "nan", "1 NaN")],
)
def test_medmnist_nan_and_length_mismatch(tmp_path, labels, kind, text):
    images = np.zeros((4, 5, 5), np.float32)
    images[1, 2, 2] = np.nan
    arrays = {"train_images": images} | ({"train_labels": labels} if labels is not None else {})
    np.savez(tmp_path / "bad.npz", **arrays)
    problems = check_dataset(tmp_path)
    assert [(p.path, p.kind) for p in problems] == [(tmp_path / "bad.npz", kind)]
    assert text in problems[0].message


def test_swc_parents_and_missing_tracings(tmp_path):
    for sub in ("images", "swc"):
        (tmp_path / sub).mkdir()
    write_image(tmp_path / "images" / "n.nii.gz", MedImage.from_array(np.ones((8, 8), np.uint8)))
    (tmp_path / "swc" / "n.swc").write_text("1 1 1 1 0 1 -1\n2 3 2 2 0 1 7\n")
    item = {
        "id": "n",
        "ndim": 2,
        "image": "images/n.nii.gz",
        "swc": "swc/n.swc",
        "swc_auto": {"app2": "swc_auto/app2/n.swc"},
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"items": [item]}))
    problems = check_dataset(tmp_path)
    assert sorted((p.path.name, p.kind) for p in problems) == [
        ("n.swc", "missing"),
        ("n.swc", "swc"),
    ]


def test_landmarks_outside_the_image(tmp_path):
    (tmp_path / "images").mkdir()
    write_image(tmp_path / "images" / "c.png", MedImage.from_array(np.zeros((10, 8), np.uint8)))
    points = np.array([[10.0, 8.0], [10.5, 3.0], [np.nan, np.nan]])
    write_landmarks(
        tmp_path / "landmarks.json",
        LandmarkSet(names=["p", "q", "r"], cases={"c": {"annotator1": points}}),
    )
    problems = check_dataset(tmp_path)
    assert [p.kind for p in problems] == ["landmark"]
    assert "landmarks q lie outside the 10 x 8 image" in problems[0].message


def test_manifest_rows_with_missing_files(tmp_path):
    (tmp_path / "images").mkdir()
    write_image(tmp_path / "images" / "a.nii.gz", _volume(np.ones((4, 4, 4), np.int16)))
    (tmp_path / "manifest.csv").write_text(
        "image,mask,label\nimages/a.nii.gz,masks/a.nii.gz,0\nimages/b.nii.gz,,1\n"
    )
    problems = check_dataset(tmp_path)
    assert sorted((p.path.name, p.kind) for p in problems) == [
        ("a.nii.gz", "missing"),
        ("b.nii.gz", "missing"),
    ]


def test_format_report():
    problems = [
        Problem(Path("x/a.nii.gz"), "label map is all background", "empty_label"),
        Problem(Path("x/b.nii.gz"), "image has 3 NaN/inf voxels", "nan"),
    ]
    assert format_report(problems).splitlines() == [
        "x/a.nii.gz: label map is all background",
        "x/b.nii.gz: image has 3 NaN/inf voxels",
        "2 problems in 2 files (1 empty_label, 1 nan)",
    ]
    assert format_report([]) == "no problems found"


def test_format_report_with_cases_read_and_notes():
    """A Report adds the files not used (not problems) and the cases read before the verdict."""
    problems = [Problem(Path("x/imagesTr/a.nii.gz"), "not used: no suffix; rename it", "unused")]
    report = Report(problems, "read 3 cases: 2 labelled, 1 unlabelled (nnunet layout)")
    assert format_report(report).splitlines() == [
        "x/imagesTr/a.nii.gz: not used: no suffix; rename it",
        "read 3 cases: 2 labelled, 1 unlabelled (nnunet layout)",
        "1 problem in 1 file (1 unused)",
    ]
    clean = Report([], "read 3 cases: 3 labelled, 0 unlabelled (nnunet layout)")
    assert format_report(clean).splitlines()[-1] == "no problems found"


# ------------------------------------------------------------------------------------------
# files a layout does not use: what silently shrinks a dataset
# ------------------------------------------------------------------------------------------


def _update_json(root: Path, **fields) -> None:
    meta = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps(meta | fields))


def test_nnunet_files_that_are_not_used_and_too_few_cases(tmp_path):
    """Each way a file drops out of an nnU-Net set is a problem; imagesTs and extras are not."""
    img, lab = np.ones((6, 6, 4), np.int16), _label(1)
    root = _nnunet(
        tmp_path / "ds",
        {"case_000": ([img], lab), "case_001": ([img], lab), "case_004": ([img], None)},
    )
    _update_json(root, numTraining=5)
    write_image(root / "labelsTr" / "case_002.nii.gz", _volume(lab))  # label, no image
    write_image(root / "imagesTr" / "case_003.nii.gz", _volume(img))  # no _0000
    write_image(root / "labelsTr" / "case_004_seg.nii.gz", _volume(lab))  # wrong name
    (root / "imagesTs").mkdir()
    write_image(root / "imagesTs" / "test_0000.nii.gz", _volume(img))  # the test set: expected
    (root / "extra").mkdir()
    write_image(root / "extra" / "atlas.nii.gz", _volume(img))  # not a layout folder: a note
    (root / "README.md").write_text("notes")
    (root / "imagesTr" / ".DS_Store").write_bytes(b"\0")

    report = check_dataset(root)
    assert sorted((p.path.relative_to(root).as_posix(), p.kind) for p in report) == [
        ("dataset.json", "count"),
        ("imagesTr/case_003.nii.gz", "unused"),
        ("labelsTr/case_002.nii.gz", "unused"),
        ("labelsTr/case_004_seg.nii.gz", "unused"),
    ]
    messages = {p.path.name: p.message for p in report}
    assert "rename it to imagesTr/case_003_0000.nii.gz" in messages["case_003.nii.gz"]
    assert "no image imagesTr/case_002_0000.nii.gz" in messages["case_002.nii.gz"]
    assert "rename it to labelsTr/case_004.nii.gz" in messages["case_004_seg.nii.gz"]
    assert "numTraining is 5 but 3 training cases were found" in messages["dataset.json"]
    assert all(m.startswith("not used: ") for n, m in messages.items() if n != "dataset.json")
    assert [n.path.name for n in report.notes] == ["atlas.nii.gz"]
    lines = format_report(report).splitlines()
    assert lines[-2].startswith(
        "read 4 cases: 2 labelled, 2 unlabelled (1 of them a test case; nnunet layout)"
    )
    assert lines[-1] == "4 problems in 4 files (1 count, 3 unused)"


def test_more_cases_than_num_training_is_fine(tmp_path):
    """The seg3d phantom counts only labelled cases in numTraining, brats2018 all of them."""
    img = np.ones((6, 6, 4), np.int16)
    root = _nnunet(tmp_path, {"a": ([img], _label(1)), "b": ([img], None)})
    _update_json(root, numTraining=1)
    assert check_dataset(root) == []


def _png(path: Path, value: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((6, 5), np.uint8)
    array[2:4, 1:3] = value
    write_image(path, MedImage.from_array(array))


def test_msd_list_leaves_files_out(tmp_path):
    """An image the training list leaves out, and a mask its case does not name."""
    for name in ("a", "b", "c"):
        _png(tmp_path / "images" / f"{name}.png")
    _png(tmp_path / "masks" / "a.png")
    _png(tmp_path / "masks" / "c.png")
    meta = {
        "labels": {"background": 0, "x": 1},
        "training": [{"image": "./images/a.png", "label": "./masks/a.png"}, "./images/c.png"],
    }
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    report = check_dataset(tmp_path)
    assert sorted((p.path.relative_to(tmp_path).as_posix(), p.kind) for p in report) == [
        ("images/b.png", "unused"),
        ("masks/c.png", "unused"),
    ]
    mask = next(p for p in report if p.path.name == "c.png")
    assert "set the label of case c to ./masks/c.png" in mask.message


def test_multidomain_unlisted_image_and_unselected_domain(tmp_path):
    """An unlisted image of a selected domain is a problem; a domain left out is a note."""
    entries = []
    for domain in ("a", "b"):
        _png(tmp_path / domain / "images" / f"{domain}1.png")
        _png(tmp_path / domain / "masks" / f"{domain}1.png")
        entries.append(
            {
                "domain": domain,
                "image": f"./{domain}/images/{domain}1.png",
                "label": f"./{domain}/masks/{domain}1.png",
            }
        )
    _png(tmp_path / "a" / "images" / "a2.png")
    meta = {"domains": {"a": "A", "b": "B"}, "labels": {"background": 0, "x": 1}}
    (tmp_path / "dataset.json").write_text(json.dumps(meta | {"training": entries}))
    report = check_dataset(tmp_path, domains=["a"])
    assert [(p.path.name, p.kind) for p in report] == [("a2.png", "unused")]
    assert {n.path.name: n.why for n in report.notes} == {
        "b1.png": "domain 'b' not selected (--domains)"
    }


def test_loose_label_without_image_is_not_a_case(tmp_path):
    _png(tmp_path / "x_image.png")
    _png(tmp_path / "x_label.png")
    _png(tmp_path / "y_label.png")
    report = check_dataset(tmp_path)
    assert [(p.path.name, p.kind) for p in report] == [("y_label.png", "unused")]
    assert "label with no image y_image.png" in report[0].message
    assert report.summary == "read 1 case: 1 labelled, 0 unlabelled (files layout)"


def test_loose_labels_that_cannot_be_named(tmp_path):
    """0/255 masks without dataset.json: training would have no label names; check says so."""
    _png(tmp_path / "x_image.png")
    _png(tmp_path / "x_label.png", value=255)
    report = check_dataset(tmp_path)
    assert [(p.path, p.kind) for p in report] == [(tmp_path, "labels")]
    assert "label values 0, 255 (e.g. in x_label.png) are not 0..K-1" in report[0].message
    assert "\n" not in str(report[0])
