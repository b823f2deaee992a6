"""medssl.data.io on real public files: every reader, geometry round trips, the error policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import monai.transforms as mt
import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image
from pydicom.pixels import get_decoder
from pydicom.uid import JPEG2000Lossless

from medssl.data.io import (
    LandmarkSet,
    MedImage,
    MedsslReader,
    read_dicom_series,
    read_header,
    read_image,
    read_landmarks,
    read_npz,
    read_swc,
    write_image,
    write_landmarks,
    write_swc,
)
from medssl.errors import DataError, OutputError

LA = "la2018/imagesTr/la_06SR5RBREL16DQ6M8LWS_0000.nii.gz"
SPLEEN = "smoke/clara_spleen8/spleen_8_image.nii.gz"
CT_RAS = "smoke/totalseg_examples/example_ct_sm.nii.gz"
MR_LPS = "smoke/totalseg_examples/example_mr_sm.nii.gz"
CT_DICOM = "smoke/totalseg_examples/example_ct_dicom"
OASIS = "oasis2d/imagesTr/oasis_OAS1_0001_MR1_0000.nii.gz"
JSRT_PNG = "jsrt/images/jsrt_JPCLN001.png"
KVASIR_JPG = "colonoscopy/kvasir_seg/images/cju0qkwl35piu0993l0dewei2.jpg"


def _raises_one_line(exc: pytest.ExceptionInfo, name: str) -> str:
    """The policy: a DataError on one line that names the file."""
    message = str(exc.value)
    assert "\n" not in message
    assert name in message
    return message


# ------------------------------------------------------------------------------------------
# NIfTI / NRRD
# ------------------------------------------------------------------------------------------


def test_la_nifti_matches_nibabel(shared_data: Path) -> None:
    path = shared_data / LA
    image = read_image(path)
    ref = nib.load(path)
    assert image.array.dtype == np.uint8
    assert image.spacing == (0.625, 0.625, 0.625)
    assert image.spatial_dims == 3 and image.components == 1 and image.path == path
    np.testing.assert_array_equal(image.array, np.asanyarray(ref.dataobj))
    np.testing.assert_allclose(image.affine_ras(), ref.affine, atol=1e-6)


def test_acdc_nifti(shared_data: Path) -> None:
    path = sorted((shared_data / "acdc" / "imagesTr").glob("*.nii.gz"))[0]
    image = read_image(path)
    ref = nib.load(path)
    assert image.spatial_shape == ref.shape
    assert image.array.dtype == ref.get_data_dtype()
    np.testing.assert_allclose(image.spacing, ref.header.get_zooms(), rtol=1e-6)
    np.testing.assert_allclose(image.affine_ras(), ref.affine, atol=1e-5)


@pytest.mark.parametrize(
    ("rel", "axcodes", "spacing", "value_range"),
    [
        (SPLEEN, ("L", "A", "S"), (0.785, 0.785, 7.5), (-1024, 1166)),
        (CT_RAS, ("R", "A", "S"), (3.0, 3.0, 3.0), (-1100, 1207)),
        (MR_LPS, ("L", "P", "S"), (3.0, 3.0, 3.0), (-47, 833)),
    ],
)
def test_ct_mr_orientation_spacing_hu(shared_data: Path, rel, axcodes, spacing, value_range):
    image = read_image(shared_data / rel)
    assert image.array.dtype == np.int16
    assert nib.aff2axcodes(image.affine_ras()) == axcodes
    np.testing.assert_allclose(image.spacing, spacing, atol=1e-3)
    assert (int(image.array.min()), int(image.array.max())) == value_range
    np.testing.assert_allclose(image.affine_ras(), nib.load(shared_data / rel).affine, atol=1e-4)


def test_trailing_singleton_z_stays_3d(shared_data: Path) -> None:
    image = read_image(shared_data / OASIS)
    assert image.array.shape == (160, 192, 1)
    assert image.spatial_dims == 3
    assert read_header(shared_data / OASIS).spatial_shape == (160, 192, 1)


def _sitk_reference(path: Path) -> tuple[np.ndarray, tuple, tuple, np.ndarray]:
    """What SimpleITK itself reads: (x, y, z) voxels, spacing, origin, direction."""
    ref = sitk.ReadImage(str(path))
    d = ref.GetDimension()
    array = sitk.GetArrayFromImage(ref).transpose(tuple(reversed(range(d))))
    return array, ref.GetSpacing(), ref.GetOrigin(), np.array(ref.GetDirection()).reshape(d, d)


def _assert_same_as_sitk(image: MedImage, path: Path) -> None:
    array, spacing, origin, direction = _sitk_reference(path)
    assert image.array.dtype == array.dtype and image.array.shape == array.shape
    assert image.array.tobytes(order="F") == array.tobytes(order="F")  # bit-identical
    assert image.spacing == spacing and image.origin == origin
    np.testing.assert_array_equal(image.direction, direction)


@pytest.mark.parametrize(
    "rel",
    [
        LA,
        LA.replace("imagesTr", "labelsTr").replace("_0000", ""),
        "acdc/imagesTr/acdc_patient002_frame01_0000.nii.gz",
        SPLEEN,
        CT_RAS,
        MR_LPS,
        OASIS,
    ],
    ids=["la", "la_label", "acdc", "spleen_las", "ct_ras", "mr_lps", "oasis_z1"],
)
def test_nifti_voxels_and_geometry_match_simpleitk(shared_data: Path, rel: str) -> None:
    """NIfTI voxels come from one decompression by medssl; all of it must equal SimpleITK's."""
    path = shared_data / rel
    image = read_image(path)
    _assert_same_as_sitk(image, path)
    assert image.array.flags.writeable and image.array.flags.f_contiguous


# An orthonormal direction with anisotropic spacing and an offset: ITK refuses sheared affines.
_ROTATED = np.eye(4)
_ROTATED[:3, :3] = nib.eulerangles.euler2mat(0.3, -0.2, 0.1) @ np.diag([0.7, 0.8, 2.5])
_ROTATED[:3, 3] = [10.0, -20.0, 30.5]


def _float_volume(dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.normal(size=(7, 6, 5)) * 100).astype(dtype)


@pytest.mark.parametrize(
    "case",
    [
        "float32.nii.gz",
        "float32.nii",
        "float64.nii.gz",
        "scaled.nii.gz",
        "big_endian.nii",
        "ext.nii",
    ],
)
def test_finite_float_nifti_identical_to_simpleitk(tmp_path: Path, case: str) -> None:
    name, suffix = case.split(".", 1)
    header = nib.Nifti1Header(endianness=">" if name == "big_endian" else None)
    data = _float_volume(np.float64 if name == "float64" else np.float32)
    img = nib.Nifti1Image(data, _ROTATED, header)
    if name == "scaled":  # ITK scales in double and casts back to the stored float type
        img.header.set_slope_inter(2.7182817, -3.14159)
    if name == "ext":  # an extension moves the voxels past byte 352
        img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"a comment"))
    path = tmp_path / f"{name}.{suffix}"
    nib.save(img, path)
    image = read_image(path)
    _assert_same_as_sitk(image, path)
    np.testing.assert_allclose(image.array, nib.load(path).get_fdata(), rtol=1e-6)
    np.testing.assert_allclose(image.affine_ras(), _ROTATED, atol=1e-5)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_float_nifti_keeps_nan_and_inf(tmp_path: Path, suffix: str) -> None:
    """SimpleITK's NIfTI reader turns NaN/inf into 0; read_image must keep them where they are."""
    data = _float_volume()
    bad = {(1, 2, 3): np.nan, (4, 0, 1): np.inf, (6, 5, 4): -np.inf, (0, 0, 0): np.nan}
    for index, value in bad.items():
        data[index] = value
    path = tmp_path / f"nan{suffix}"
    nib.save(nib.Nifti1Image(data, _ROTATED), path)
    image = read_image(path)
    assert image.array.dtype == np.float32
    assert np.isnan(image.array[1, 2, 3]) and np.isnan(image.array[0, 0, 0])
    assert image.array[4, 0, 1] == np.inf and image.array[6, 5, 4] == -np.inf
    assert sorted(map(tuple, np.argwhere(~np.isfinite(image.array)).tolist())) == sorted(bad)
    finite = np.isfinite(data)
    np.testing.assert_array_equal(image.array[finite], data[finite])
    array, spacing, origin, direction = _sitk_reference(path)
    np.testing.assert_array_equal(image.array[finite], array[finite])
    assert image.spacing == spacing and image.origin == origin
    np.testing.assert_array_equal(image.direction, direction)


def test_scaled_float_nifti_keeps_nan(tmp_path: Path) -> None:
    data = _float_volume()
    data[2, 3, 4] = np.nan
    img = nib.Nifti1Image(data, _ROTATED)
    img.header.set_slope_inter(2.0, 1.0)
    nib.save(img, tmp_path / "scaled.nii.gz")
    array = read_image(tmp_path / "scaled.nii.gz").array
    assert array.dtype == np.float32
    assert np.argwhere(np.isnan(array)).tolist() == [[2, 3, 4]]
    finite = np.isfinite(data)
    expected = (data[finite].astype(np.float64) * 2 + 1).astype(np.float32)
    np.testing.assert_array_equal(array[finite], expected)
    np.testing.assert_array_equal(
        array[finite], _sitk_reference(tmp_path / "scaled.nii.gz")[0][finite]
    )


@pytest.mark.parametrize(
    ("name", "shape", "spacing", "dtype"),
    [
        ("brain1_image", (256, 256, 25), (0.781, 0.781, 6.5), np.int16),
        ("brain1_label", (256, 256, 25), (0.781, 0.781, 6.5), np.int32),
        ("brain2_image", (256, 256, 23), (0.781, 0.781, 6.5), np.int16),
        ("brain2_label", (256, 256, 23), (0.781, 0.781, 6.5), np.int32),
        ("breast1_image", (45, 120, 21), (0.664, 0.664, 2.1), np.int16),
        ("breast1_label", (45, 120, 21), (0.664, 0.664, 2.1), np.int16),
    ],
)
def test_nrrd(shared_data: Path, name, shape, spacing, dtype) -> None:
    path = shared_data / "smoke" / "pyradiomics_tumor_mri" / f"{name}.nrrd"
    image = read_image(path)
    assert image.spatial_shape == shape and image.array.dtype == dtype
    np.testing.assert_allclose(image.spacing, spacing, atol=1e-3)
    header = read_header(path)
    assert header.spatial_shape == shape and header.dtype == np.dtype(dtype).name
    assert header.spacing == image.spacing and header.origin == image.origin


# ------------------------------------------------------------------------------------------
# DICOM
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ct_series(shared_data: Path) -> MedImage:
    return read_dicom_series(shared_data / CT_DICOM)


def test_dicom_jpeg2000_series_matches_simpleitk(shared_data: Path, ct_series: MedImage) -> None:
    folder = shared_data / CT_DICOM
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    ref = reader.Execute()
    assert ct_series.spatial_shape == (512, 512, 20)
    assert ct_series.array.dtype == np.int16
    assert (int(ct_series.array.min()), int(ct_series.array.max())) == (-1024, 1839)
    np.testing.assert_allclose(ct_series.spacing, (0.9765625, 0.9765625, 2.0))
    np.testing.assert_array_equal(ct_series.array, sitk.GetArrayFromImage(ref).T)
    np.testing.assert_allclose(ct_series.spacing, ref.GetSpacing(), atol=1e-9)
    np.testing.assert_allclose(ct_series.origin, ref.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(ct_series.direction.ravel(), ref.GetDirection(), atol=1e-9)


def test_dicom_header_and_read_image_agree(shared_data: Path, ct_series: MedImage) -> None:
    header = read_header(shared_data / CT_DICOM)
    assert header.spatial_shape == ct_series.spatial_shape
    assert header.spacing == ct_series.spacing and header.origin == ct_series.origin
    assert header.dtype == "int16" and header.components == 1


def test_single_dcm_file_is_one_slice(shared_data: Path, ct_series: MedImage) -> None:
    path = sorted((shared_data / CT_DICOM).glob("*.dcm"))[0]
    one = read_image(path)
    assert one.spatial_shape == (512, 512, 1)
    k = int(round((one.origin[2] - ct_series.origin[2]) / ct_series.spacing[2]))
    np.testing.assert_array_equal(one.array[..., 0], ct_series.array[..., k])


def _copy_series(shared_data: Path, dst: Path) -> list[Path]:
    dst.mkdir()
    files = sorted((shared_data / CT_DICOM).glob("*.dcm"))
    return [Path(shutil.copy(f, dst / f"{len(files) - i:02d}.dcm")) for i, f in enumerate(files)]


def test_dicom_slices_ordered_by_position_not_name(
    shared_data: Path, ct_series: MedImage, tmp_path: Path
) -> None:
    _copy_series(shared_data, tmp_path / "series")  # names now run against the positions
    (tmp_path / "series" / "README.txt").write_text("not DICOM, skipped")
    image = read_image(tmp_path / "series")
    np.testing.assert_array_equal(image.array, ct_series.array)
    assert image.origin == ct_series.origin


def test_dicom_missing_slice_is_an_error(shared_data: Path, tmp_path: Path) -> None:
    files = _copy_series(shared_data, tmp_path / "series")
    files[10].unlink()
    with pytest.raises(DataError, match="unevenly spaced") as exc:
        read_dicom_series(tmp_path / "series")
    _raises_one_line(exc, "series")


def test_dicom_several_series(shared_data: Path, tmp_path: Path) -> None:
    files = _copy_series(shared_data, tmp_path / "series")
    for f in files[:2]:
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = "1.2.3.4"
        ds.save_as(f)
    with pytest.raises(DataError, match="2 DICOM series") as exc:
        read_image(tmp_path / "series")
    assert "series_uid=''" in _raises_one_line(exc, "series")  # the largest: no UID (anonymised)
    picked = read_dicom_series(tmp_path / "series", series_uid="1.2.3.4")
    assert picked.spatial_shape == (512, 512, 2)


def test_dicom_without_jpeg2000_decoder(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_decoder(JPEG2000Lossless), "_available", {})
    path = sorted((shared_data / CT_DICOM).glob("*.dcm"))[0]
    with pytest.raises(DataError, match="OpenJPEG") as exc:
        read_image(path)
    assert "JPEG 2000" in _raises_one_line(exc, path.name)


def test_empty_folder_is_no_dicom_series(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no DICOM image files") as exc:
        read_image(tmp_path / "empty")
    _raises_one_line(exc, "empty")


# ------------------------------------------------------------------------------------------
# PNG / JPEG
# ------------------------------------------------------------------------------------------


def test_png_grey(shared_data: Path) -> None:
    path = shared_data / JSRT_PNG
    image = read_image(path)
    assert image.array.shape == (512, 512) and image.array.dtype == np.uint8
    assert image.spacing == (1.0, 1.0) and image.components == 1
    np.testing.assert_array_equal(image.array, np.asarray(Image.open(path)).T)


def test_jpeg_rgb_has_trailing_component_axis(shared_data: Path) -> None:
    path = shared_data / KVASIR_JPG
    image = read_image(path)
    width, height = Image.open(path).size
    assert image.array.shape == (width, height, 3)
    assert image.spatial_dims == 2 and image.components == 3
    np.testing.assert_array_equal(image.array, np.asarray(Image.open(path)).transpose(1, 0, 2))
    header = read_header(path)
    assert header.spatial_shape == (width, height) and header.components == 3


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.uint8).reshape(4, 3),
        (np.arange(12, dtype=np.uint16) * 5000).reshape(4, 3),
        np.arange(36, dtype=np.uint8).reshape(4, 3, 3),
    ],
    ids=["uint8", "uint16", "rgb"],
)
def test_png_round_trip(tmp_path: Path, array: np.ndarray) -> None:
    write_image(tmp_path / "out" / "x.png", MedImage.from_array(array))
    back = read_image(tmp_path / "out" / "x.png")
    np.testing.assert_array_equal(back.array, array)
    assert back.array.dtype == array.dtype


# ------------------------------------------------------------------------------------------
# geometry round trips and the image model
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", [SPLEEN, MR_LPS])
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_geometry_round_trip(shared_data: Path, tmp_path: Path, rel: str, suffix: str) -> None:
    image = read_image(shared_data / rel)
    out = tmp_path / "deep" / f"copy{suffix}"
    write_image(out, image)
    back = read_image(out)
    np.testing.assert_array_equal(back.array, image.array)
    assert back.array.dtype == image.array.dtype
    assert back.spacing == image.spacing
    assert back.origin == image.origin
    np.testing.assert_array_equal(back.direction, image.direction)
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary left


def test_prediction_keeps_input_geometry(shared_data: Path, tmp_path: Path) -> None:
    image = read_image(shared_data / SPLEEN)
    prediction = image.with_array((image.array > 0).astype(np.uint8))
    write_image(tmp_path / "pred.nii.gz", prediction)
    np.testing.assert_allclose(
        nib.load(tmp_path / "pred.nii.gz").affine, image.affine_ras(), atol=1e-4
    )
    with pytest.raises(ValueError, match="does not fit"):
        image.with_array(np.zeros((4, 4, 4)))


def test_from_array_defaults() -> None:
    volume = MedImage.from_array(np.zeros((4, 5, 6), np.float32))
    assert volume.spacing == (1.0, 1.0, 1.0) and volume.origin == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(volume.direction, np.eye(3))
    rgb = MedImage.from_array(np.zeros((4, 5, 3), np.uint8))
    assert rgb.spatial_dims == 2 and rgb.components == 3
    slices = MedImage.from_array(np.zeros((4, 5, 3)), spacing=(1.0, 1.0, 2.0))
    assert slices.spatial_dims == 3 and slices.components == 1
    flat = MedImage.from_array(np.zeros((4, 5)), spacing=(0.5, 0.7), origin=(1.0, 2.0))
    np.testing.assert_array_equal(
        flat.affine_ras(), [[-0.5, 0, 0, -1], [0, -0.7, 0, -2], [0, 0, 1, 0], [0, 0, 0, 1]]
    )


# ------------------------------------------------------------------------------------------
# MONAI
# ------------------------------------------------------------------------------------------


def _load(reader, keys=("image",)):
    return mt.Compose([mt.LoadImaged(keys, reader=reader), mt.EnsureChannelFirstd(keys)])


def test_monai_reader_matches_nibabel_reader(shared_data: Path) -> None:
    data = {"image": str(shared_data / LA)}
    ours = _load(MedsslReader())(data)["image"]
    theirs = _load("NibabelReader")(data)["image"]
    assert ours.shape == theirs.shape == (1, 183, 140, 88)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_allclose(ours.affine.numpy(), theirs.affine.numpy(), atol=1e-6)
    assert ours.meta["filename_or_obj"] == data["image"]


def test_monai_reader_channels_and_rgb(shared_data: Path) -> None:
    two = _load(MedsslReader())({"image": [str(shared_data / SPLEEN)] * 2})["image"]
    assert two.shape == (2, 512, 512, 32)
    rgb = _load(MedsslReader())({"image": str(shared_data / KVASIR_JPG)})["image"]
    assert rgb.shape[0] == 3 and rgb.shape[1:] == read_image(shared_data / KVASIR_JPG).spatial_shape
    reader = MedsslReader()
    assert reader.verify_suffix([shared_data / LA, shared_data / CT_DICOM])
    assert not reader.verify_suffix("notes.txt")


def test_monai_reader_refuses_channels_on_different_grids(shared_data: Path) -> None:
    reader = MedsslReader()
    images = reader.read([shared_data / SPLEEN, shared_data / MR_LPS])
    with pytest.raises(DataError, match="differs from") as exc:
        reader.get_data(images)
    _raises_one_line(exc, "example_mr_sm.nii.gz")


# ------------------------------------------------------------------------------------------
# landmarks, npz, swc
# ------------------------------------------------------------------------------------------


def test_cephalometric_landmarks(shared_data: Path, tmp_path: Path) -> None:
    landmarks = read_landmarks(shared_data / "cephalometric" / "landmarks.json")
    assert landmarks.names == [f"l{i}" for i in range(1, 20)]
    assert landmarks.spacing_mm == 0.288 and landmarks.image_size_wh == (670, 836)
    assert len(landmarks.cases) == 100
    case = landmarks.cases["ceph_002"]
    assert set(case) == {"annotator1", "annotator2", "mean"}
    assert np.isnan(case["annotator2"][17]).all()  # l18 missing -> null -> NaN
    np.testing.assert_array_equal(case["mean"][17], case["annotator1"][17])
    assert landmarks.reference("ceph_002") is case["mean"]
    assert "notes" in landmarks.extra

    write_landmarks(tmp_path / "out" / "landmarks.json", landmarks)
    back = read_landmarks(tmp_path / "out" / "landmarks.json")
    assert back.names == landmarks.names and back.extra == landmarks.extra
    for case_id, by_annotator in landmarks.cases.items():
        for name, points in by_annotator.items():
            np.testing.assert_array_equal(back.cases[case_id][name], points)


def test_jsrt_landmarks_default_annotator(shared_data: Path) -> None:
    landmarks = read_landmarks(shared_data / "jsrt" / "landmarks.json")
    assert len(landmarks.names) == 166 and len(landmarks.cases) == 185
    assert landmarks.spacing_mm == 0.7 and landmarks.image_size_wh == (512, 512)
    assert list(landmarks.cases["jsrt_JPCLN001"]) == ["default"]
    assert landmarks.reference("jsrt_JPCLN001").shape == (166, 2)
    assert landmarks.extra["groups"]["heart"] == [94, 120]


def test_landmark_reference_falls_back_to_first_annotator() -> None:
    points = np.zeros((1, 2))
    landmarks = LandmarkSet(names=["a"], cases={"c": {"reader2": points, "reader1": points + 1}})
    assert landmarks.reference("c") is points


@pytest.mark.parametrize(
    ("rel", "train", "val"),
    [
        ("adrenalmnist3d/adrenalmnist3d_64.npz", (1188, 64, 64, 64), 98),
        ("pneumoniamnist/pneumoniamnist.npz", (3882, 28, 28), 524),
    ],
)
def test_medmnist_npz(shared_data: Path, rel: str, train: tuple, val: int) -> None:
    splits = read_npz(shared_data / rel)
    assert list(splits) == ["train", "val"]
    images, labels = splits["train"]
    assert images.shape == train and labels.shape == (train[0], 1)
    assert len(splits["val"][0]) == val


def test_npz_test_only_and_without_labels(tmp_path: Path) -> None:
    np.savez(tmp_path / "t.npz", test_images=np.zeros((3, 28, 28), np.uint8))
    splits = read_npz(tmp_path / "t.npz")
    assert list(splits) == ["test"]
    assert splits["test"][0].shape == (3, 28, 28) and splits["test"][1] is None


def test_npz_without_image_keys(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", x=np.zeros(3), y=np.zeros(3))
    with pytest.raises(DataError, match=r"keys: x, y") as exc:
        read_npz(tmp_path / "x.npz")
    _raises_one_line(exc, "x.npz")


def test_swc_read_and_round_trip(shared_data: Path, tmp_path: Path) -> None:
    nodes = read_swc(shared_data / "bigneuron" / "swc" / "bigneuron_001.swc")
    assert nodes.dtype.names == ("id", "type", "x", "y", "z", "radius", "parent")
    assert len(nodes) == 912
    first = nodes[0]
    assert (first["id"], first["type"], first["x"], first["parent"]) == (1, 3, 195.1, 2)
    write_swc(tmp_path / "out.swc", nodes)
    np.testing.assert_array_equal(read_swc(tmp_path / "out.swc"), nodes)
    zero_based = read_swc(shared_data / "bigneuron" / "swc" / "rivuletpy_test.swc")
    assert zero_based["id"].min() == 0 and (zero_based["parent"] == -1).sum() >= 1


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("2 3 1.0 2.0 3.0 1.0", "6 columns"),
        ("2 3 1.0 two 3.0 1.0 1", "y 'two'"),
        ("2 3 1 2 3 1 9", "parent 9"),
    ],
)
def test_swc_malformed_line(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "bad.swc"
    path.write_text(f"# n type x y z radius parent\n1 1 0 0 0 1 -1\n{line}\n")
    with pytest.raises(DataError, match=match) as exc:
        read_swc(path)
    assert "line 3" in _raises_one_line(exc, "bad.swc")


# ------------------------------------------------------------------------------------------
# error policy
# ------------------------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    for reader in (read_image, read_header, read_npz, read_landmarks, read_swc):
        with pytest.raises(DataError, match="does not exist") as exc:
            reader(tmp_path / "nowhere.nii.gz")
        _raises_one_line(exc, "nowhere.nii.gz")


def test_unknown_suffix_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "scan.img"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(DataError, match=r"\.nii\.gz, .*\.png") as exc:
        read_image(path)
    _raises_one_line(exc, "scan.img")


@pytest.mark.parametrize("damage", ["cut", "flip", "stub"])
def test_damaged_nifti(shared_data: Path, tmp_path: Path, damage: str) -> None:
    data = bytearray(
        (shared_data / "smoke" / "clara_spleen8" / "spleen_8_label.nii.gz").read_bytes()
    )
    if damage == "cut":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[:100]
    path = tmp_path / f"{damage}.nii.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as exc:
        read_image(path)
    _raises_one_line(exc, path.name)


def test_nifti_gzip_crc_is_checked(shared_data: Path, tmp_path: Path) -> None:
    data = bytearray(
        (shared_data / "smoke" / "clara_spleen8" / "spleen_8_label.nii.gz").read_bytes()
    )
    data[-8] ^= 0xFF  # the CRC-32 in the gzip trailer: every deflate block still decodes
    (tmp_path / "crc.nii.gz").write_bytes(bytes(data))
    with pytest.raises(DataError, match="incorrect data check") as exc:
        read_image(tmp_path / "crc.nii.gz")
    _raises_one_line(exc, "crc.nii.gz")


def test_truncated_uncompressed_nifti(shared_data: Path, tmp_path: Path) -> None:
    image = read_image(shared_data / "smoke" / "clara_spleen8" / "spleen_8_label.nii.gz")
    write_image(tmp_path / "full.nii", image)
    data = (tmp_path / "full.nii").read_bytes()
    (tmp_path / "half.nii").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated") as exc:
        read_image(tmp_path / "half.nii")
    _raises_one_line(exc, "half.nii")


def test_truncated_jpeg(shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / KVASIR_JPG).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated") as exc:
        read_image(tmp_path / "cut.jpg")
    _raises_one_line(exc, "cut.jpg")


def test_png_of_3d_array_leaves_no_file(tmp_path: Path) -> None:
    volume = MedImage.from_array(np.zeros((8, 8, 5), np.uint8))
    with pytest.raises(DataError, match="2-D") as exc:
        write_image(tmp_path / "vol.png", volume)
    _raises_one_line(exc, "vol.png")
    with pytest.raises(DataError, match="uint8/uint16"):
        write_image(tmp_path / "f.png", MedImage.from_array(np.zeros((8, 8), np.float32)))
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    def half_write(image, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise RuntimeError("sitk::ERROR: disk full\n")

    monkeypatch.setattr(sitk, "WriteImage", half_write)
    with pytest.raises(OutputError, match="disk full") as exc:
        write_image(tmp_path / "out.nii.gz", MedImage.from_array(np.zeros((4, 4, 4))))
    _raises_one_line(exc, "out.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_write_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"\.nii\.gz, \.nii, \.nrrd, \.mha, \.png"):
        write_image(tmp_path / "x.jpg", MedImage.from_array(np.zeros((4, 4), np.uint8)))


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (MedImage.from_array(np.zeros((4, 4, 4), np.float16)), "dtype float16"),
        (MedImage.from_array(np.zeros((4, 4, 4)), direction=np.ones((3, 3))), "orthonormal"),
    ],
    ids=["float16", "direction"],
)
def test_unwritable_image_is_refused_before_writing(tmp_path: Path, image, match) -> None:
    with pytest.raises(DataError, match=match) as exc:
        write_image(tmp_path / "x.nii.gz", image)
    _raises_one_line(exc, "x.nii.gz")
    assert list(tmp_path.iterdir()) == []
