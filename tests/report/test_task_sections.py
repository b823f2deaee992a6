"""The report draws the plots a run's task asks for, and names no task itself."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from medssl.report import build_report

SRC = Path(__file__).resolve().parents[2] / "src" / "medssl" / "report"


def _classification_run(run: Path) -> Path:
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"task": "classification", "method": "x"}))
    per_case = {
        f"c{i}": {"label": c, "pred": c, "prob_normal": p, "prob_pneumonia": 1 - p}
        for i, (c, p) in enumerate(
            [("normal", 0.9), ("normal", 0.7), ("pneumonia", 0.2), ("pneumonia", 0.6)]
        )
    }
    evaluation = {
        "task": "classification",
        "mean": {"auc": 0.75, "accuracy": 0.75},
        "per_case": per_case,
        "class_names": ["normal", "pneumonia"],
        "confusion_matrix": [[2, 0], [1, 1]],
        "embedding_2d": {
            "explained_variance_ratio": [0.7, 0.2],
            "case": list(per_case),
            "label": [c["label"] for c in per_case.values()],
            "x": [-1.0, -0.5, 0.8, 0.7],
            "y": [0.1, -0.2, 0.3, 0.0],
        },
        "radiomics_weights": [["original_glcm_Contrast", 0.9], ["original_shape_Elongation", 0.5]],
    }
    (run / "evaluation.json").write_text(json.dumps(evaluation))
    return run


def test_a_classification_report_shows_its_evaluation_plots(tmp_path: Path):
    run = _classification_run(tmp_path / "run")
    page = build_report(run).read_text()
    assert "ROC curves" in page and "confusion matrix" in page
    assert "principal components" in page and "radiomics features" in page
    for name in ("roc", "confusion", "embedding", "radiomics"):
        assert (run / "plots" / f"{name}_evaluation.png").stat().st_size > 0
        assert f'src="plots/{name}_evaluation.png"' in page


def test_the_report_names_no_task():
    for path in SRC.glob("*.py"):
        text = path.read_text()
        assert '"classification"' not in text and '"segmentation"' not in text, path.name
