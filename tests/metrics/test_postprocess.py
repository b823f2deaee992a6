"""Largest connected component per class: the one helper behind BCP's pseudo labels and the
``--largest-component`` post-processing of evaluate / predict / bench."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import KeepLargestConnectedComponent

from medssl.metrics.postprocess import keep_largest_components


def test_largest_component_keeps_only_the_biggest_blob_of_each_class():
    labels = torch.zeros(1, 1, 8, 8, dtype=torch.long)
    labels[0, 0, :3, :3] = 1  # class 1: 9 voxels ...
    labels[0, 0, 6:, 6:] = 1  # ... and a 4-voxel blob
    labels[0, 0, 5, :4] = 2  # class 2: a row of 4 ...
    labels[0, 0, 4, 4] = 2  # ... joined only diagonally (full connectivity) to these two,
    labels[0, 0, 5, 5] = 2  # 6 voxels in all ...
    labels[0, 0, 7, 0] = 2  # ... and a single voxel
    kept = keep_largest_components(labels, num_classes=3, batch_dims=2)
    expected = torch.zeros_like(labels)
    expected[0, 0, :3, :3] = 1
    expected[0, 0, 5, :4] = 2
    expected[0, 0, 4, 4] = 2
    expected[0, 0, 5, 5] = 2
    assert torch.equal(kept, expected)


def test_largest_component_in_3d_and_with_an_absent_class():
    labels = torch.zeros(2, 1, 5, 5, 5, dtype=torch.long)
    labels[0, 0, :2, :2, :2] = 1
    labels[0, 0, 4, 4, 4] = 1
    kept = keep_largest_components(labels, num_classes=3, batch_dims=2)
    assert kept[0, 0].sum().item() == 8 and kept[0, 0, 4, 4, 4] == 0
    assert kept[1].sum().item() == 0


def test_a_numpy_map_keeps_its_type_dtype_and_shape():
    labels = np.zeros((6, 6, 3), np.uint8)
    labels[:2, :2] = 1
    labels[5, 5, 2] = 1
    kept = keep_largest_components(labels, num_classes=2)
    assert isinstance(kept, np.ndarray) and kept.dtype == np.uint8 and kept.shape == labels.shape
    assert kept.sum() == 12 and kept[5, 5, 2] == 0
    assert labels[5, 5, 2] == 1  # the input is left alone


def test_a_tensor_keeps_its_dtype_and_each_batch_image_is_on_its_own():
    labels = torch.zeros(2, 1, 6, 6, dtype=torch.int32)
    labels[0, 0, :2, :2] = 1  # image 0: 4 voxels ...
    labels[0, 0, 5, 5] = 1  # ... and a stray one
    labels[1, 0, 5, 5] = 1  # image 1: the single voxel is its largest component
    kept = keep_largest_components(labels, num_classes=2, batch_dims=2)
    assert kept.dtype == torch.int32 and kept.shape == labels.shape
    assert kept[0, 0, 5, 5] == 0 and kept[0].sum() == 4
    assert kept[1, 0, 5, 5] == 1


def test_between_equally_large_components_the_first_in_raster_order_stays():
    """The official ``getLargestCC`` / ``get_cut_mask``: ``argmax(bincount)`` keeps the first."""
    labels = np.zeros((6, 6), np.int64)
    labels[0, :2] = 1
    labels[4, :2] = 1
    kept = keep_largest_components(labels, num_classes=2)
    assert kept[0, :2].tolist() == [1, 1] and kept[4].sum() == 0


def test_labels_outside_the_classes_are_left_alone():
    labels = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [5, 0, 0, 5]])
    kept = keep_largest_components(labels, num_classes=2)
    assert kept.tolist() == [[0, 0, 1, 1], [0, 0, 0, 0], [5, 0, 0, 5]]


@pytest.mark.parametrize("dims", [2, 3])
def test_matches_monai_where_the_largest_component_is_unique(dims: int):
    rng = np.random.default_rng(dims)
    monai = KeepLargestConnectedComponent(applied_labels=[1, 2, 3], independent=True)
    for _ in range(30):
        labels = rng.integers(0, 4, size=(7,) * dims) * (rng.random((7,) * dims) < 0.4)
        if _has_tie(labels, num_classes=4):
            continue
        expected = np.asarray(monai(torch.as_tensor(labels[None]))[0])
        np.testing.assert_array_equal(keep_largest_components(labels, 4), expected)


def _has_tie(labels: np.ndarray, num_classes: int) -> bool:
    """Whether some class has two largest components of the same size (full connectivity)."""
    from scipy import ndimage

    full = ndimage.generate_binary_structure(labels.ndim, labels.ndim)
    for cls in range(1, num_classes):
        components, count = ndimage.label(labels == cls, structure=full)
        sizes = np.sort(np.bincount(components.ravel())[1:])
        if count > 1 and sizes[-1] == sizes[-2]:
            return True
    return False
