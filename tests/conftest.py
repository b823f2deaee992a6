"""Shared fixtures: the real datasets beside the checkout and small temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDSSL_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _fingerprint_cache(tmp_path_factory) -> None:
    """Fingerprints (medssl.data.fingerprint) go to a folder of this session, not ~/.cache."""
    os.environ["MEDSSL_CACHE_DIR"] = str(tmp_path_factory.mktemp("medssl-cache"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: the real public datasets (CI has ``../shared`` beside the checkout)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA}: shared datasets not found; put ../shared beside the checkout")
    return SHARED_DATA


@pytest.fixture
def acdc_record(shared_data: Path) -> dict[str, str]:
    """One real ACDC volume and its RV / Myo / LV labels (232x256, 10 slices, no spacing)."""
    root, case = shared_data / "acdc", "acdc_patient002_frame01"
    return {
        "image": str(root / "imagesTr" / f"{case}_0000.nii.gz"),
        "label": str(root / "labelsTr" / f"{case}.nii.gz"),
    }


TINY_SEG_CONFIG = {
    "data": {
        "patch_size": [32, 32, 32],
        "batch_size": 1,
        "unlabeled_batch_size": 1,
        "val_cases": 1,
        "sw_batch_size": 2,
    },
    "net": {"channels": [8, 16, 32], "num_res_units": 0},
    "train": {"val_every": 2, "log_every": 1},
}


def train_tiny(data: Path, out: Path, max_steps: int, **kwargs) -> Path:
    """``api.train`` with 2 labelled cases, the cpu profile and ``TINY_SEG_CONFIG`` unless given."""
    from medssl import api

    kwargs.setdefault("config", TINY_SEG_CONFIG)
    return api.train(data, out=out, labeled=2, profile="cpu", max_steps=max_steps, **kwargs)


@pytest.fixture(scope="session")
def seg_phantom(tmp_path_factory) -> Path:
    """A small seg3d phantom (8 cases: 4 labelled, 4 unlabelled), generated once per session."""
    from medssl.data.phantom import make_phantom

    return make_phantom(tmp_path_factory.mktemp("phantom") / "seg3d", "seg3d", cases=8, seed=0)


@pytest.fixture(scope="session")
def tiny_run(seg_phantom, tmp_path_factory) -> Path:
    """A supervised run trained for a few steps on ``seg_phantom`` (shared by read-only tests)."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    return train_tiny(seg_phantom, method="supervised", out=out, max_steps=4)


# A landmarks run small enough to train in seconds: 64 x 64 inputs, a narrow UNet, batch 4.
TINY_LANDMARK_CONFIG = {
    "data": {"patch_size": [64, 64], "batch_size": 4},
    "net": {"channels": [8, 16, 32, 64, 64], "num_res_units": 0},
    "optim": {"lr": 1e-2},
    "train": {"val_every": 50, "log_every": 10},
}


@pytest.fixture(scope="session")
def landmark_phantom(tmp_path_factory) -> Path:
    """A landmark2d phantom of 32 cases (24 train, 8 validation), generated once per session."""
    from medssl.data.phantom import make_phantom

    root = tmp_path_factory.mktemp("phantom") / "landmark2d"
    return make_phantom(root, "landmark2d", cases=32, seed=0)


@pytest.fixture(scope="session")
def heatmap_landmark_run(landmark_phantom, tmp_path_factory) -> Path:
    """The heatmap method trained for 150 steps on ``landmark_phantom`` (shared, read-only)."""
    from medssl import api

    out = tmp_path_factory.mktemp("runs") / "heatmap"
    return api.train(
        landmark_phantom,
        method="heatmap",
        task="landmarks",
        out=out,
        profile="cpu",
        max_steps=150,
        seed=0,
        config=TINY_LANDMARK_CONFIG,
    )
