"""The pretraining benchmarks' arms and their summary over seeds."""

from __future__ import annotations

import pytest

from medssl.bench.base import BENCHMARKS, load_benchmarks
from medssl.bench.pretraining import summarise


def test_arms_cover_budgets_methods_modes_and_inits_without_a_scratch_probe():
    load_benchmarks()
    bench = BENCHMARKS.get("pretrain-pneumonia")
    arms = bench.arms(["scratch", "c2l"])
    assert {a.labeled for a in arms} == {0.01, 0.1}
    assert not [a for a in arms if a.init == "scratch" and a.mode == "probe"]
    assert len(arms) == 2 * (1 + 2)  # per budget: scratch fine-tune, c2l probe and fine-tune
    la = BENCHMARKS.get("pretrain-la").arms(["scratch", "voco", "rubik"])
    assert len(la) == 2 * 2 * 3 and {a.method for a in la} == {"supervised", "bcp"}


def test_summary_gives_mean_and_sample_spread_per_arm():
    runs = [
        {"labeled": 4, "method": "supervised", "mode": "finetune", "init": "voco", "seed": s,
         "dice": d, "train_s": 10.0}
        for s, d in ((0, 0.70), (1, 0.74))
    ]  # fmt: skip
    (row,) = summarise(runs, ["dice"])
    assert row["dice"] == pytest.approx(0.72) and row["seeds"] == 2
    assert row["dice_sd"] == pytest.approx(0.0282843, rel=1e-4)
    (single,) = summarise(runs[:1], ["dice"])
    assert single["dice_sd"] is None
