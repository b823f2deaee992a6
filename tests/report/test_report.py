"""The run report: a full fake run renders every section; partial runs say what is missing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import yaml

from medssl.engine.config import RunConfig
from medssl.errors import CheckpointError
from medssl.report import build_report, plot_learning_curves, plot_overlay, plot_per_case
from medssl.report import overlays as report_overlays
from medssl.report import plots as report_plots

CASES = ["case_003", "case_007", "case_011"]
DICE = {"case_003": 0.91, "case_007": 0.42, "case_011": 0.8}

# Lightning's CSVLogger: train and val rows logged separately, most cells empty, a duplicated
# step (resume) and a NaN loss.
METRICS_CSV = """epoch,step,lr-SGD,train/loss,train/loss_cons,train/loss_sup,val/dice
0,0,0.01,,,,
0,9,,1.20,0.0005,1.1,
0,9,,1.15,0.0004,1.1,
0,19,,0.90,0.002,0.85,
0,19,,,,,0.35
1,29,0.008,nan,0.01,0.6,
1,39,,0.40,0.03,0.3,
1,39,,,,,0.61
2,49,0.006,0.25,0.05,0.18,
2,59,,0.15,0.04,0.1,
2,59,,,,,0.74
"""


def _write_run(run: Path, *, full: bool = True) -> Path:
    """A run folder as the engine writes it; ``full=False`` writes only config.yaml."""
    run.mkdir(parents=True)
    config = RunConfig(
        task="segmentation",
        method="mean_teacher",
        data_dir="/data/spleen",
        labeled=4,
        method_config={"ema_decay": 0.99, "consistency": {"weight": 0.1, "rampup": 40}},
        train={"max_steps": 60, "precision": "16-mixed", "seed": 0},
    ).to_dict()  # the shape the engine writes
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    if not full:
        return run
    split = {"labeled": CASES[:2], "unlabeled": ["case_020", "case_021"], "val": [CASES[2]]}
    (run / "split.json").write_text(json.dumps(split))
    (run / "metrics.csv").write_text(METRICS_CSV)
    evaluation = {
        "task": "segmentation",
        "data": "/data/spleen",
        "mean": {"dice": 0.7123, "hd95": 6.25},
        "per_class": {"spleen": {"dice": 0.7123, "hd95": 6.25}},
        "per_case": {c: {"dice": d, "hd95": 10 * (1 - d)} for c, d in DICE.items()},
        "units": {"hd95": "mm"},
        "policy": "both empty: dice 1, hd95 0",
    }
    (run / "evaluation.json").write_text(json.dumps(evaluation))
    (run / "overlays").mkdir()
    for i, case in enumerate(CASES[:2]):
        _write_overlay(run / "overlays" / f"{case}.npz", shift=i)
    comparison = {
        "rows": [
            {"method": "supervised", "run": "runs/sup4", "labeled": 4, "dice": 0.6, "hd95": 9.0},
            {"method": "mean_teacher", "run": str(run), "labeled": 4, "dice": 0.71, "hd95": 6.2},
        ],
        "metrics": ["dice", "hd95"],
    }
    (run / "comparison.json").write_text(json.dumps(comparison))
    return run


def _write_overlay(path: Path, shift: int = 0, **extra: np.ndarray) -> None:
    """A 64x64 slice with a bright disc; label and prediction are discs offset by ``shift``."""
    yy, xx = np.mgrid[:64, :64]
    image = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 300.0) + 0.05 * np.sin(xx / 3.0)
    label = ((yy - 32) ** 2 + (xx - 30) ** 2 < 120).astype(np.int64)
    pred = ((yy - 32 - 3 * shift) ** 2 + (xx - 33) ** 2 < 110).astype(np.int64)
    np.savez(path, image=image, label=label, pred=pred, slice_index=40, axis=2, **extra)


def _assert_real_image(png: Path) -> None:
    """A PNG that decodes, is more than a thumbnail and is not a blank canvas."""
    pixels = mpimg.imread(png)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert np.ptp(pixels[..., :3]) > 0.1


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return _write_run(tmp_path / "run")


def test_full_run_renders_every_section(run: Path) -> None:
    report = build_report(run)
    assert report == run / "report.html"
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<title>mean_teacher · segmentation · spleen</title>" in page
    assert "0.712" in page  # mean dice, formatted
    assert "hd95 (mm)" in page
    for case in CASES:
        assert case in page
    assert "method_config.consistency.weight" in page
    assert "<script" not in page and "http" not in page
    # worst case first in the per-case table
    table = page[page.index("Per-case scores") :]
    assert table.index("case_007") < table.index("case_011") < table.index("case_003")
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) >= 6  # 3 curve groups + per-case + comparison + 2 overlays
    for src in sources:
        assert src.startswith("plots/")
        _assert_real_image(run / src)
    assert not list(run.glob(".report-*")), "staging folder left behind"


def test_learning_curves_one_png_per_group(run: Path, tmp_path: Path) -> None:
    pngs = plot_learning_curves(run / "metrics.csv", tmp_path / "out")
    assert [p.name for p in pngs] == [
        "curves_train_loss.png",
        "curves_val_metrics.png",
        "curves_lr.png",
    ]
    for png in pngs:
        _assert_real_image(png)


def test_metric_series_skip_empty_nan_and_duplicate_steps(run: Path) -> None:
    series = report_plots.read_metric_series(run / "metrics.csv")
    steps, loss = series["train/loss"]
    assert list(steps) == [9, 19, 39, 49, 59]  # NaN at step 29 dropped
    assert loss[0] == pytest.approx(1.15)  # duplicated step keeps the last row
    assert list(series["val/dice"][0]) == [19, 39, 59]
    assert report_plots.group_series(series)["train_loss"] == [
        "train/loss",
        "train/loss_cons",
        "train/loss_sup",
    ]


def test_overlay_with_class_names(tmp_path: Path) -> None:
    npz = tmp_path / "c.npz"
    _write_overlay(npz, shift=1, class_names=np.array(["background", "spleen"]))
    png = plot_overlay(npz, tmp_path / "c.png")
    _assert_real_image(png)
    assert mpimg.imread(png).shape[1] > 2 * mpimg.imread(png).shape[0]  # three panels


def test_per_case_falls_back_to_first_metric(tmp_path: Path) -> None:
    evaluation = {"per_case": {"a": {"mae": 1.0}, "b": {"mae": 3.0}, "c": {"mae": 2.0}}}
    png = plot_per_case(evaluation, tmp_path / "p.png")
    assert png is not None
    _assert_real_image(png)
    assert plot_per_case({"per_case": {}}, tmp_path / "none.png") is None


def test_config_only_run_says_what_is_missing(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "bare", full=False)
    page = build_report(run).read_text(encoding="utf-8")
    assert "mean_teacher" in page
    assert f"not evaluated yet: run medssl evaluate --run {run} --data DIR" in page
    assert "metrics.csv" in page and "split.json" in page and "overlays" in page
    assert "<img" not in page


def test_bad_optional_inputs_become_notes(run: Path) -> None:
    (run / "split.json").write_text("{not json")
    (run / "overlays" / "broken.npz").write_bytes(b"not a zip")
    page = build_report(run).read_text(encoding="utf-8")
    assert "split.json is unreadable" in page
    assert "broken.npz: cannot read overlay" in page
    assert 'src="plots/overlay_case_003.png"' in page  # the good overlays still render


def test_missing_run_dir_raises_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(CheckpointError) as err:
        build_report(missing)
    message = str(err.value)
    assert "\n" not in message
    assert str(missing) in message and "medssl train --out" in message


def test_failing_plot_leaves_no_report(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("plot failed")

    monkeypatch.setattr(report_overlays, "plot_overlay", explode)
    with pytest.raises(RuntimeError, match="plot failed"):
        build_report(run)
    assert not (run / "report.html").exists()
    assert not list(run.glob(".report-*"))
    assert not (run / "plots").exists()


def test_summary_names_the_dataset_and_seed_of_an_engine_config(tmp_path: Path):
    report = build_report(_write_run(tmp_path / "run"))
    html = report.read_text()
    assert "mean_teacher · segmentation · spleen" in html
    assert "<code>/data/spleen</code>" in html
    assert "patch_size" not in html.split("Learning curves")[0].split("Summary")[1]


def _per_case_order(run: Path, per_case: dict[str, dict[str, float]]) -> tuple[list[str], str]:
    """Build the report of ``run`` with these per-case scores; (cases as the table lists them,
    the table's summary line)."""
    evaluation = {"task": "other", "mean": {}, "per_case": per_case}
    (run / "evaluation.json").write_text(json.dumps(evaluation))
    page = build_report(run).read_text(encoding="utf-8")
    table = page[page.index("Per-case scores") :]
    summary = table[: table.index("</summary>")]
    return sorted(per_case, key=table.index), summary


@pytest.mark.parametrize(
    ("per_case", "expected", "metric"),
    [
        (  # classification: the lowest AUC is the worst
            {
                "cls_a": {"auc": 0.91, "accuracy": 0.8},
                "cls_b": {"auc": 0.55, "accuracy": 0.9},
                "cls_c": {"auc": 0.75, "accuracy": 0.4},
            },
            ["cls_b", "cls_c", "cls_a"],
            "auc",
        ),
        (  # landmarks: the highest mean radial error is the worst
            {
                "lm_a": {"mre": 1.2, "sdr_2mm": 0.9},
                "lm_b": {"mre": 4.5, "sdr_2mm": 0.3},
                "lm_c": {"mre": 2.0, "sdr_2mm": 0.6},
            },
            ["lm_b", "lm_c", "lm_a"],
            "mre",
        ),
        (  # success detection rate: the lowest is the worst
            {"lm_a": {"sdr_2.5mm": 0.9}, "lm_b": {"sdr_2.5mm": 0.2}, "lm_c": {"sdr_2.5mm": 0.5}},
            ["lm_b", "lm_c", "lm_a"],
            "sdr_2.5mm",
        ),
    ],
)
def test_per_case_table_lists_the_worst_case_first_by_the_metrics_direction(
    run: Path, per_case: dict, expected: list[str], metric: str
) -> None:
    order, summary = _per_case_order(run, per_case)
    assert order == expected
    assert f"worst {metric} first" in summary


def test_per_case_ranks_by_a_metric_of_known_direction_before_others(run: Path) -> None:
    per_case = {"q_a": {"n": 3.0, "mre": 1.0}, "q_b": {"n": 1.0, "mre": 5.0}}
    order, summary = _per_case_order(run, per_case)  # "n" (a count) has no direction
    assert order == ["q_b", "q_a"] and "worst mre first" in summary


def test_per_case_of_an_unknown_metric_keeps_the_file_order(run: Path) -> None:
    per_case = {"u_b": {"score": 0.1}, "u_a": {"score": 0.9}, "u_c": {"score": 0.5}}
    order, summary = _per_case_order(run, per_case)
    assert order == ["u_b", "u_a", "u_c"] and "in file order" in summary


def test_best_validation_score_follows_the_direction(run: Path) -> None:
    csv_text = "epoch,step,train/loss,val/mre,val/auc\n0,9,1.0,,\n0,9,,3.25,0.6\n"
    csv_text += "0,19,,1.75,0.9\n0,29,,2.5,0.7\n"
    (run / "metrics.csv").write_text(csv_text)
    page = build_report(run).read_text(encoding="utf-8")
    facts = page[: page.index("Learning curves")]
    assert "<dt>val/mre</dt><dd>best 1.750 at step 19; final 2.500</dd>" in facts  # the lowest
    assert "<dt>val/auc</dt><dd>best 0.900 at step 19; final 0.700</dd>" in facts  # the highest
