"""Layout detection and reading: every shared dataset, plus small synthetic layouts."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from medssl.data.io import LandmarkSet, MedImage, write_image, write_landmarks
from medssl.data.layouts import detect_layout, load_dataset
from medssl.errors import DataError

# folder, layout, cases, labelled
SHARED = [
    ("la2018", "nnunet", 80, 80),
    ("acdc", "nnunet", 160, 160),
    ("adrenalmnist3d", "medmnist", 1188 + 98, 1188 + 98),
    ("pneumoniamnist", "medmnist", 3882 + 524, 3882 + 524),
    ("cephalometric", "landmarks", 100, 100),
    ("jsrt", "msd", 186, 186),
    ("brats2018", "nnunet", 9, 1),
    ("oasis2d", "nnunet", 104, 104),
    ("bigneuron", "swc", 42, 0),
    ("colonoscopy", "multidomain", 194, 194),
    ("fundus", "multidomain", 60, 60),
    ("smoke", "files", 7, 4),
]


@cache
def shared(path: Path):
    """Each shared dataset is read once per session (the 3D npz takes a second to decompress)."""
    return load_dataset(path)


@pytest.mark.parametrize(("folder", "layout", "cases", "labelled"), SHARED)
def test_shared_dataset_layout_and_counts(shared_data, folder, layout, cases, labelled):
    ds = shared(shared_data / folder)
    assert detect_layout(shared_data / folder) == layout
    assert ds.layout == layout
    assert len(ds.cases) == cases
    assert len(ds.labeled) == labelled
    assert len({c.id for c in ds.cases}) == cases


def test_acdc_splits_and_unknown_spacing(shared_data):
    ds = load_dataset(shared_data / "acdc")
    assert Counter(c.meta["split"] for c in ds.cases) == {"train": 140, "val": 20}
    assert ds.extra["splits"]["val"][0] in {c.id for c in ds.cases}
    assert ds.spacing_known is False
    assert ds.labels == {"background": 0, "RV": 1, "Myo": 2, "LV": 3}
    assert "dataset_json" in ds.extra


def test_la2018_files(shared_data):
    ds = load_dataset(shared_data / "la2018")
    case = ds.cases[0]
    assert case.images == [shared_data / "la2018" / "imagesTr" / f"{case.id}_0000.nii.gz"]
    assert case.label == shared_data / "la2018" / "labelsTr" / f"{case.id}.nii.gz"
    assert ds.spatial_dims == 3 and ds.file_ending == ".nii.gz" and ds.num_classes == 2


def test_brats2018_channels_and_unlabelled_pool(shared_data):
    ds = load_dataset(shared_data / "brats2018")
    assert ds.num_channels == 4
    assert all(len(c.images) == 4 for c in ds.cases)
    assert all(p.is_file() for c in ds.cases for p in c.images)
    assert [c.id for c in ds.labeled] == ["brats18_2013_2_1"]
    assert all(c.id.startswith("hinet_p") for c in ds.unlabeled)


def test_oasis2d_is_2d(shared_data):
    assert load_dataset(shared_data / "oasis2d").spatial_dims == 2


@pytest.mark.parametrize(
    ("folder", "dims", "shape", "split_counts"),
    [
        ("adrenalmnist3d", 3, (64, 64, 64), {"train": 1188, "val": 98}),
        ("pneumoniamnist", 2, (28, 28), {"train": 3882, "val": 524}),
    ],
)
def test_medmnist(shared_data, folder, dims, shape, split_counts):
    ds = shared(shared_data / folder)
    assert ds.spatial_dims == dims
    assert ds.labels == {"0": 0, "1": 1}
    assert Counter(c.meta["split"] for c in ds.cases) == split_counts
    case = ds.case("val_00003")
    assert case.array.shape == shape
    assert isinstance(case.target, int)
    images, labels = ds.extra["arrays"]["val"]
    assert np.shares_memory(case.array, images)
    assert case.target == int(labels[3, 0])


def test_medmnist_npz_path_itself(shared_data):
    npz = next((shared_data / "pneumoniamnist").glob("*.npz"))
    assert detect_layout(npz) == "medmnist"
    assert len(load_dataset(npz).cases) == 3882 + 524


def test_cephalometric_landmarks(shared_data):
    ds = load_dataset(shared_data / "cephalometric")
    case = ds.case("ceph_001")
    assert case.target.shape == (19, 2)
    assert {"annotator1", "annotator2"} <= set(case.meta["annotations"])
    assert len(ds.extra["landmarks"].names) == 19
    assert ds.spatial_dims == 2 and ds.task == "landmarks"


def test_jsrt_is_msd_with_landmarks(shared_data):
    ds = load_dataset(shared_data / "jsrt")
    assert ds.file_ending == ".png" and ds.spatial_dims == 2
    case = ds.case("jsrt_JPCLN001")
    assert case.images == [shared_data / "jsrt" / "images" / "jsrt_JPCLN001.png"]
    assert case.label == shared_data / "jsrt" / "masks" / "jsrt_JPCLN001.png"
    assert case.meta["landmarks"].shape == (166, 2)
    assert sum("landmarks" in c.meta for c in ds.cases) == 185  # JPCLN016 has none
    assert "landmarks" in ds.extra


def test_bigneuron_swc(shared_data):
    ds = load_dataset(shared_data / "bigneuron")
    assert Counter(c.meta["kind"] for c in ds.cases) == {"bigneuron_mip": 38, "stack3d": 4}
    case = ds.case("bigneuron_001")
    assert case.meta["swc"].is_file()
    assert set(case.meta["swc_auto"]) == {"app2", "neutube", "fmst"}
    assert all(p.is_file() for c in ds.cases for p in c.meta["swc_auto"].values())
    assert case.meta["spacing_um"] == [0.38, 0.38]


def test_colonoscopy_domains_and_sequences(shared_data):
    ds = load_dataset(shared_data / "colonoscopy")
    assert Counter(c.meta["domain"] for c in ds.cases) == {
        "cvc_clinicdb": 150,
        "kvasir_seg": 36,
        "etis_larib": 8,
    }
    assert "cvc_clinicdb" in ds.extra["sequences"]
    frame = ds.case("0001")
    assert frame.meta["sequence"] == "seq01" and frame.meta["frame_index"] == 0
    assert frame.label.name == "0001.png"
    cvc = load_dataset(shared_data / "colonoscopy", domains=["cvc_clinicdb"])
    assert len(cvc.cases) == 150 and cvc.extra["domains"] == ["cvc_clinicdb"]


def test_unknown_domain_lists_known(shared_data):
    with pytest.raises(DataError, match="unknown domain.*nowhere.*known: cvc_clinicdb"):
        load_dataset(shared_data / "colonoscopy", domains=["nowhere"])


def test_domains_on_single_domain_dataset(shared_data):
    with pytest.raises(DataError, match="has no domains"):
        load_dataset(shared_data / "la2018", domains=["a"])


def test_fundus_domains(shared_data):
    ds = load_dataset(shared_data / "fundus", domains=["refuge_zeiss", "rim_one_r3"])
    assert len(ds.cases) == 8
    assert ds.labels == {"background": 0, "optic_disc_rim": 1, "optic_cup": 2}


def test_smoke_files(shared_data):
    ds = load_dataset(shared_data / "smoke")
    spleen = ds.case("clara_spleen8/spleen_8")
    assert spleen.images[0].name == "spleen_8_image.nii.gz"
    assert spleen.label.name == "spleen_8_label.nii.gz"
    dicom = ds.case("totalseg_examples/example_ct_dicom")
    assert dicom.images[0].is_dir() and dicom.label is None
    assert ds.labels == {"background": 0, "class_1": 1}  # from the 0/1 masks: no dataset.json


def test_unknown_folder_and_missing_root(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(DataError, match="no dataset layout recognised") as err:
        load_dataset(tmp_path)
    assert str(err.value).endswith("see the README, section 'Datasets on disk'")
    assert "DESIGN" not in str(err.value)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "absent")


# ------------------------------------------------------------------------------------------
# synthetic layouts
# ------------------------------------------------------------------------------------------


def _volume(path: Path, array: np.ndarray) -> None:
    write_image(path, MedImage.from_array(array, spacing=(1.0,) * array.ndim))


def test_nnunet_imagests_and_missing_dataset_json(tmp_path):
    for folder in ("imagesTr", "imagesTs", "labelsTr"):
        (tmp_path / folder).mkdir()
    block = np.zeros((4, 4, 4), np.uint8)
    _volume(tmp_path / "imagesTr" / "a_0000.nii.gz", block)
    _volume(tmp_path / "imagesTr" / "b_0000.nii.gz", block)
    _volume(tmp_path / "labelsTr" / "a.nii.gz", block)
    _volume(tmp_path / "imagesTs" / "t_0000.nii.gz", block)
    with pytest.raises(DataError, match="dataset.json: missing next to imagesTr"):
        load_dataset(tmp_path)
    meta = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "x": 1}}
    (tmp_path / "dataset.json").write_text(json.dumps({**meta, "file_ending": ".nii.gz"}))
    ds = load_dataset(tmp_path)
    assert [c.id for c in ds.labeled] == ["a"]
    assert {c.id for c in ds.unlabeled} == {"b", "t"}
    assert ds.case("t").meta["split"] == "test"


def test_manifest_string_classes(tmp_path):
    (tmp_path / "images").mkdir()
    rows = ["image,mask,label,split"]
    for i, cls in enumerate(["malignant", "benign", "benign"]):
        _volume(tmp_path / "images" / f"c{i}.nii.gz", np.zeros((3, 3, 3), np.int16))
        rows.append(f"images/c{i}.nii.gz,masks/c{i}.nii.gz,{cls},{'val' if i else 'train'}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(tmp_path)
    assert ds.layout == "manifest" and ds.labels == {"benign": 0, "malignant": 1}
    assert [c.target for c in ds.cases] == [1, 0, 0]
    assert ds.case("c0").meta["mask"] == tmp_path / "masks" / "c0.nii.gz"
    assert ds.case("c1").meta["split"] == "val" and ds.case("c1").label is None
    assert load_dataset(tmp_path / "manifest.csv").cases[2].id == "c2"


def test_landmarks_with_classes(tmp_path):
    (tmp_path / "images").mkdir()
    cases = {}
    for i in range(3):
        write_image(
            tmp_path / "images" / f"lm_{i}.png", MedImage.from_array(np.zeros((8, 6), np.uint8))
        )
        cases[f"lm_{i}"] = {"annotator1": np.array([[1.0, 2.0], [3.0, 4.0]])}
    extra = {"classes": {"lm_0": 1, "lm_1": 0, "lm_2": 1}, "class_names": ["normal", "abnormal"]}
    write_landmarks(
        tmp_path / "landmarks.json",
        LandmarkSet(names=["a", "b"], spacing_mm=0.5, cases=cases, extra=extra),
    )
    ds = load_dataset(tmp_path)
    assert ds.layout == "landmarks" and ds.labels == {"normal": 0, "abnormal": 1}
    assert ds.case("lm_0").meta["class"] == 1
    assert ds.case("lm_2").target.shape == (2, 2)


def test_multidomain_duplicate_ids_are_refused(tmp_path):
    meta = {
        "domains": {"a": "centre a", "b": "centre b"},
        "training": [
            {"domain": "a", "image": "./a/images/1.png", "label": "./a/masks/1.png"},
            {"domain": "b", "image": "./b/images/1.png", "label": "./b/masks/1.png"},
        ],
    }
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    assert detect_layout(tmp_path) == "multidomain"
    with pytest.raises(DataError, match="case id '1'"):
        load_dataset(tmp_path)
    assert len(load_dataset(tmp_path, domains=["b"]).cases) == 1


def test_msd_style_labels_and_modality(tmp_path):
    meta = {
        "modality": {"0": "MRI"},
        "labels": {"0": "background", "1": "left atrium"},
        "training": [{"image": "./imagesTr/la_003.nii.gz", "label": "./labelsTr/la_003.nii.gz"}],
        "test": ["./imagesTs/la_001.nii.gz"],
    }
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    ds = load_dataset(tmp_path)
    assert ds.layout == "msd"
    assert ds.labels == {"background": 0, "left atrium": 1}
    assert ds.channel_names == {"0": "MRI"}
    assert ds.case("la_003").images == [tmp_path / "imagesTr" / "la_003.nii.gz"]
    assert ds.case("la_001").meta["split"] == "test" and not ds.case("la_001").has_label


def test_a_medmnist_file_with_only_a_test_split(tmp_path):
    """A user's held-out MedMNIST file (test_* arrays only) is a valid dataset."""

    np.savez(
        tmp_path / "held_out.npz",
        test_images=np.zeros((5, 28, 28), np.uint8),
        test_labels=np.array([[0], [1], [1], [0], [1]]),
    )
    assert detect_layout(tmp_path) == "medmnist"
    dataset = load_dataset(tmp_path / "held_out.npz")
    assert len(dataset.cases) == 5 and {c.meta["split"] for c in dataset.cases} == {"test"}
    assert [c.target for c in dataset.cases] == [0, 1, 1, 0, 1] and dataset.spatial_dims == 2


def _png(path: Path, values: tuple[int, ...] = (0,)) -> None:
    array = np.zeros((6, 5), np.uint8)
    array.flat[: len(values)] = values
    write_image(path, MedImage.from_array(array))


def test_loose_files_name_their_labels_from_the_values(tmp_path):
    """Without dataset.json, labels 0..K-1 are named; training would build K outputs."""
    for name, values in (("a", (0, 1)), ("b", (2, 0))):
        _png(tmp_path / f"{name}_image.png")
        _png(tmp_path / f"{name}_label.png", values)
    _png(tmp_path / "lone_label.png", (1,))
    ds = load_dataset(tmp_path)
    assert ds.layout == "files" and ds.num_classes == 3
    assert ds.labels == {"background": 0, "class_1": 1, "class_2": 2}
    assert sorted(c.id for c in ds.cases) == ["a", "b"]  # a label alone is not an image
    (tmp_path / "dataset.json").write_text(
        json.dumps({"labels": {"background": 0, "x": 1, "y": 2}})
    )
    assert load_dataset(tmp_path).labels == {"background": 0, "x": 1, "y": 2}


@pytest.mark.parametrize(
    ("values", "text"),
    [
        ((0, 255), "label values 0, 255 (e.g. in a_label.png) are not 0..K-1"),
        ((0,), "all background"),
    ],
)
def test_loose_files_labels_that_cannot_be_named(tmp_path, values, text):
    """One line naming the folder and the fix, instead of a network with no outputs."""
    _png(tmp_path / "a_image.png")
    _png(tmp_path / "a_label.png", values)
    with pytest.raises(DataError) as err:
        load_dataset(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{tmp_path}: ") and text in message and "\n" not in message
    lenient = load_dataset(tmp_path, strict=False)
    assert lenient.labels == {} and str(lenient.extra["labels_error"]) == message
