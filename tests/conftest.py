"""Shared fixtures: the real datasets beside the checkout and small temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDSSL_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: the real public datasets (CI has ``../shared`` beside the checkout)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA}: shared datasets not found; put ../shared beside the checkout")
    return SHARED_DATA
