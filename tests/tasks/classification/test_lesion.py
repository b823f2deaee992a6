"""The lesion in its context (medssl.tasks.classification.lesion): the context box, the region
crop with its mask, where a case's lesion is read from (manifest columns, label maps, masks,
binary volumes) and the whole-image region."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medssl.data.dataset import Case
from medssl.data.radiomics import LesionPosition
from medssl.data.radiomics.extract import lesion_roi
from medssl.data.radiomics.masks import SELF_MASK, WHOLE_IMAGE, case_lesion
from medssl.errors import ConfigError
from medssl.tasks.classification.lesion import (
    MIN_BOX,
    LesionInputs,
    LesionRegiond,
    context_box,
    region_steps,
)


def box_mask(shape: tuple[int, ...], low: tuple[int, ...], high: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(a, b) for a, b in zip(low, high, strict=True))] = True
    return mask


def ramp(shape: tuple[int, ...]) -> torch.Tensor:
    """A (1, *shape) image whose every pixel differs and none is 0 (so padding shows)."""
    return torch.arange(1, int(np.prod(shape)) + 1, dtype=torch.float32).reshape(1, *shape)


def bbox(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    where = np.argwhere(mask)
    return where.min(axis=0), where.max(axis=0) + 1


# -- context_box ------------------------------------------------------------------------------
def test_context_box_is_a_cube_centred_on_the_lesion():
    mask = box_mask((30, 30), (4, 6), (14, 10))  # 10 x 4 pixels, centre (9, 8)
    assert context_box(mask, 0.0) == ([4, 3], [14, 13])  # side = largest extent
    assert context_box(mask, 0.5) == ([-1, -2], [19, 18])  # side 10 * 2, may leave the image
    start, end = context_box(mask, 1.25)
    assert [e - s for s, e in zip(start, end, strict=True)] == [35, 35]  # ceil(10 * 3.5)
    for s, e, centre in zip(start, end, (9, 8), strict=True):
        assert abs((s + e) / 2 - centre) <= 0.5

    cube = box_mask((40, 40, 40), (10, 12, 20), (22, 18, 26))  # 12 x 6 x 6, centre (16, 15, 23)
    assert context_box(cube, 0.0) == ([10, 9, 17], [22, 21, 29])
    assert context_box(cube, 0.5) == ([4, 3, 11], [28, 27, 35])


def test_context_box_has_a_minimum_size():
    dot = box_mask((20, 20), (5, 5), (6, 6))
    assert context_box(dot, 0.0) == ([1, 1], [1 + MIN_BOX, 1 + MIN_BOX])
    assert context_box(dot, 2.0) == context_box(dot, 0.0)  # 1 * 5 < MIN_BOX
    small = box_mask((20, 20), (5, 5), (9, 8))  # extent 4: 4 * 3 = 12 > MIN_BOX
    start, end = context_box(small, 1.0)
    assert [e - s for s, e in zip(start, end, strict=True)] == [12, 12]


# -- LesionRegiond ----------------------------------------------------------------------------
def test_region_crops_image_and_mask_around_a_position():
    image = ramp((30, 24))
    position = LesionPosition((10.5, 12.5), 6, "px")  # a disc of radius 3 around pixel (10, 12)
    out = LesionRegiond(0.5)({"image": image, "lesion": position, "id": "c"})
    disc = position.mask((30, 24), (1.0, 1.0))
    low, high = bbox(disc)
    assert list(low) == [7, 9] and list(high) == [14, 16]  # extent 7: side 14
    assert out["image"].shape == (1, 14, 14) and out["lesion"].shape == (1, 14, 14)
    torch.testing.assert_close(torch.as_tensor(out["image"]), image[:, 3:17, 5:19])
    lesion = np.asarray(out["lesion"][0])
    assert set(np.unique(lesion)) == {0.0, 1.0}
    np.testing.assert_array_equal(lesion > 0, disc[3:17, 5:19])
    low, high = bbox(lesion > 0)  # the lesion lies centred in the crop (7 pixels in 14: 4 + 3)
    assert np.all(np.abs((low + high) / 2 - 7.0) <= 0.5)
    assert list(low) == [4, 4] and list(high) == [11, 11]

    larger = LesionPosition((10.5, 12.5), 12, "px")  # pixels 4-16 x 6-18: 13 across
    own = LesionRegiond(0.0)({"image": image, "lesion": larger})  # margin 0: the lesion's box
    assert own["image"].shape == (1, 13, 13)
    torch.testing.assert_close(torch.as_tensor(own["image"]), image[:, 4:17, 6:19])
    lesion = np.asarray(own["lesion"][0]) > 0
    assert lesion.sum() == larger.mask((30, 24), (1.0, 1.0)).sum()
    assert list(bbox(lesion)[0]) == [0, 0] and list(bbox(lesion)[1]) == [13, 13]


def test_region_pads_with_zeros_where_the_box_leaves_the_image():
    image = ramp((20, 16))
    position = LesionPosition((2.5, 2.5), 4, "px")  # pixels 0-4: box rows / columns -3 to 7
    out = LesionRegiond(0.5)({"image": image, "lesion": position})
    crop = torch.as_tensor(out["image"])
    assert crop.shape == (1, 10, 10)
    assert torch.all(crop[:, :3] == 0) and torch.all(crop[:, :, :3] == 0)
    torch.testing.assert_close(crop[:, 3:, 3:], image[:, :7, :7])
    lesion = torch.as_tensor(out["lesion"])
    assert torch.all(lesion[:, :3] == 0) and lesion[0, 3:8, 3:8].sum() == lesion.sum()

    # the far corner: the disc is cut to pixels 17-19 x 13-15, its box (side 8) to 14-21 x 10-17
    corner = LesionRegiond(0.5)({"image": image, "lesion": LesionPosition((19.5, 15.5), 4, "px")})
    crop = torch.as_tensor(corner["image"])
    assert crop.shape == (1, 8, 8)
    assert torch.all(crop[:, 6:] == 0) and torch.all(crop[:, :, 6:] == 0)
    torch.testing.assert_close(crop[:, :6, :6], image[:, 14:, 10:])


def test_region_of_a_3d_mask_array():
    image = ramp((24, 20, 16))
    mask = box_mask((24, 20, 16), (8, 6, 4), (14, 12, 8))  # 6 x 6 x 4: side 6 * 2 = 12
    out = LesionRegiond(0.5)({"image": image, "lesion": mask})
    assert out["image"].shape == (1, 12, 12, 12) and out["lesion"].shape == (1, 12, 12, 12)
    lesion = np.asarray(out["lesion"][0]) > 0
    assert lesion.sum() == mask.sum()
    low, high = bbox(lesion)
    np.testing.assert_allclose((low + high) / 2, [6.0, 6.0, 6.0])
    crop = torch.as_tensor(out["image"])
    torch.testing.assert_close(crop[:, :, :, 0:12], image[:, 5:17, 3:15, 0:12])


def test_region_measures_millimetres_with_the_given_or_stored_spacing():
    image = ramp((30, 30))
    in_mm = LesionPosition((15.5, 15.5), 3.0, "mm")  # 6 px at 0.5 mm
    given = LesionRegiond(0.5, spacing=(0.5, 0.5))({"image": image, "lesion": in_mm})
    assert given["image"].shape == (1, 14, 14)  # disc of 7 pixels across
    meta = MetaTensor(image.clone(), affine=torch.diag(torch.tensor([0.5, 0.5, 1.0, 1.0])))
    stored = LesionRegiond(0.5)({"image": meta, "lesion": in_mm})
    torch.testing.assert_close(torch.as_tensor(stored["image"]), torch.as_tensor(given["image"]))
    unit = LesionRegiond(0.5)({"image": image, "lesion": in_mm})  # no spacing: 1 mm pixels
    assert unit["image"].shape == (1, MIN_BOX, MIN_BOX)  # 3 pixels across, side 6 -> 8


def test_region_steps_only_when_a_margin_is_set():
    assert region_steps(LesionInputs(), None) == []
    (step,) = region_steps(LesionInputs(context_margin=0.25), (0.7, 0.7))
    assert isinstance(step, LesionRegiond) and step.margin == 0.25 and step.spacing == (0.7, 0.7)
    assert not LesionInputs().any and LesionInputs(context_margin=0).any


# -- case_lesion ------------------------------------------------------------------------------
def manifest_case(**meta) -> Case:
    return Case(id="case_7", images=[Path("images/case_7.png")], target=1, meta={"row": 9, **meta})


def test_case_lesion_from_manifest_columns():
    position = case_lesion(manifest_case(x="10.5", y="4.25", diameter_mm="6"))
    assert position == LesionPosition((10.5, 4.25), 6.0, "mm")
    volume = case_lesion(manifest_case(x="1", y="2", z="3", diameter_px="4"))
    assert volume == LesionPosition((1.0, 2.0, 3.0), 4.0, "px")
    jsrt = case_lesion(manifest_case(nodule_x="408.625", nodule_y="173.125", nodule_size_mm="15"))
    assert jsrt == LesionPosition((408.625, 173.125), 15.0, "mm")
    assert case_lesion(manifest_case(x="", y="", diameter_mm="")) is None  # no lesion given
    given = {"case_7": LesionPosition((1.0, 1.0), 2.0)}
    assert case_lesion(manifest_case(x="10.5", y="4.25", diameter_mm="6"), given) == given["case_7"]
    assert case_lesion(manifest_case(), {"other": given["case_7"]}) is None


@pytest.mark.parametrize(
    ("meta", "problem"),
    [
        ({"x": "ten", "y": "4", "diameter_mm": "6"}, "could not convert"),
        ({"x": "10", "y": "4", "diameter_mm": "-2"}, "diameter"),
        ({"x": "nan", "y": "4", "diameter_px": "3"}, "centre"),
    ],
)
def test_a_bad_lesion_value_names_the_case(meta: dict, problem: str):
    with pytest.raises(ConfigError) as err:
        case_lesion(manifest_case(**meta))
    message = str(err.value)
    assert message.startswith("case_7 (row 9): ") and problem in message
    assert "\n" not in message and "fix the lesion centre or diameter" in message


def test_case_lesion_falls_back_to_masks_and_binary_volumes(tmp_path: Path):
    label = tmp_path / "label.nii.gz"
    assert case_lesion(Case(id="a", images=[tmp_path / "a.nii.gz"], label=label)) == label
    mask = tmp_path / "mask.nii.gz"
    assert case_lesion(Case(id="b", images=[tmp_path / "b.nii.gz"], meta={"mask": mask})) == mask
    shape = np.zeros((8, 8, 8), dtype=np.uint8)
    shape[2:5, 2:5, 2:5] = 255
    assert case_lesion(Case(id="c", array=shape)) == SELF_MASK
    grey = np.arange(512, dtype=np.uint8).reshape(8, 8, 8)
    assert case_lesion(Case(id="d", array=grey)) is None
    position = case_lesion(manifest_case(x="3", y="3", diameter_px="2", mask=str(mask)))
    assert isinstance(position, LesionPosition)  # the position columns come first


# -- lesion_roi -------------------------------------------------------------------------------
def test_whole_image_region_is_every_pixel():
    for shape in ((7, 5), (4, 6, 3)):
        roi = lesion_roi(np.zeros(shape), (1.0,) * len(shape), WHOLE_IMAGE, name="x")
        assert roi.dtype == bool and roi.shape == shape and roi.all()
    disc = lesion_roi(np.zeros((20, 16)), (1.0, 1.0), LesionPosition((10.5, 8.5), 6, "px"))
    assert disc.sum() == 29  # a position still gives its disc (tests/data/test_radiomics.py)
