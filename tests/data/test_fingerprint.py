"""The dataset fingerprint against values computed by hand (nibabel, numpy) on real data."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medssl.data import fingerprint as fpmod
from medssl.data.fingerprint import fingerprint
from medssl.data.layouts import load_dataset


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MEDSSL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_brats_fingerprint_matches_hand_computed(shared_data, cache):
    root = shared_data / "brats2018"
    fp = fingerprint(load_dataset(root))
    images = sorted((root / "imagesTr").glob("*_0000.nii.gz"))
    shapes = np.array([nib.load(p).shape for p in images], float)
    spacings = np.array([nib.load(p).header.get_zooms()[:3] for p in images], float)
    assert fp.cases == len(images) == 9 and fp.labeled == fp.read == 1
    assert fp.shape.median == pytest.approx(np.median(shapes, axis=0).tolist())
    assert fp.shape.min == pytest.approx(shapes.min(axis=0).tolist())
    assert fp.spacing.median == pytest.approx(np.median(spacings, axis=0).tolist())
    assert fp.modality == {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}

    label = np.rint(nib.load(root / "labelsTr" / "brats18_2013_2_1.nii.gz").get_fdata())
    foreground = label > 0
    for channel, stats in enumerate(fp.intensity):  # 7821 foreground voxels: none sampled away
        image = nib.load(root / "imagesTr" / f"brats18_2013_2_1_{channel:04d}.nii.gz")
        values = np.asarray(image.dataobj, dtype=np.float64)[foreground]
        assert stats.mean == pytest.approx(values.mean(), abs=1e-3)
        assert stats.std == pytest.approx(values.std(), abs=1e-3)
        assert stats.p99_5 == pytest.approx(np.percentile(values, 99.5), abs=1e-3)
        assert stats.min == values.min() and stats.max == values.max()
    for name, index in (("NCR_NET", 1), ("ED", 2), ("ET", 3)):
        mask = label == index
        hits = [
            np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != i))) for i in range(3)
        ]
        box = [(h[-1] - h[0] + 1) * 2.0 for h in hits]  # 2 mm voxels
        assert fp.classes[name].cases == 1
        assert fp.classes[name].fraction == pytest.approx(mask.mean(), rel=1e-6)
        assert fp.classes[name].bbox_mm == pytest.approx(box)


def test_fingerprint_is_cached_and_recomputed_when_a_file_changes(tmp_path, cache, monkeypatch):
    from medssl.data.phantom import make_phantom

    data = make_phantom(tmp_path / "ph", "seg3d", cases=4, seed=0)
    first = fingerprint(load_dataset(data))
    assert list((cache / "fingerprints").glob("*.json"))

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although nothing changed")

    monkeypatch.setattr(fpmod, "compute_fingerprint", fail)
    assert fingerprint(load_dataset(data)).to_dict() == first.to_dict()

    label = next((data / "labelsTr").iterdir())
    stat = label.stat()
    os.utime(label, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="recomputed"):
        fingerprint(load_dataset(data))


def test_unreadable_cache_is_recomputed(tmp_path, cache):
    from medssl.data.phantom import make_phantom

    data = make_phantom(tmp_path / "ph", "seg3d", cases=4, seed=0)
    first = fingerprint(load_dataset(data))
    for path in (cache / "fingerprints").glob("*.json"):
        path.write_text("{not json")
    assert fingerprint(load_dataset(data)).to_dict() == first.to_dict()


def test_two_dimensional_colour_images(shared_data, cache):
    fp = fingerprint(load_dataset(shared_data / "fundus"))
    assert fp.file_dims == 2 and [c.name for c in fp.intensity] == ["R", "G", "B"]
    assert fp.read == fpmod.MAX_CASES_READ < fp.labeled == 60
    assert set(fp.classes) == {"optic_disc_rim", "optic_cup"}
    assert all(0 <= c.p00_5 <= c.p99_5 <= 255 for c in fp.intensity)
