"""``data.exclude_ids``: cases a run never reads (evaluation cases kept out of pretraining)."""

from __future__ import annotations

import json

import pytest

from medssl.errors import ConfigError
from tests.conftest import TINY_SEG_CONFIG, train_tiny


def test_excluded_cases_are_in_no_part_of_the_split(seg_phantom, tmp_path):
    excluded = ["phantom_000", "phantom_005"]
    data = {**TINY_SEG_CONFIG["data"], "exclude_ids": excluded}
    run = train_tiny(
        seg_phantom, tmp_path / "r", max_steps=1, config={**TINY_SEG_CONFIG, "data": data}
    )
    split = json.loads((run / "split.json").read_text())
    seen = set(split["labeled"]) | set(split["unlabeled"]) | set(split["val"])
    assert seen and not seen & set(excluded)


def test_an_unknown_excluded_id_is_one_line(seg_phantom, tmp_path):
    data = {**TINY_SEG_CONFIG["data"], "exclude_ids": ["nope"]}
    with pytest.raises(ConfigError, match="not cases of"):
        train_tiny(
            seg_phantom, tmp_path / "r", max_steps=1, config={**TINY_SEG_CONFIG, "data": data}
        )
    assert not (tmp_path / "r").exists()
