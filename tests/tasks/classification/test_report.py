"""The classification report sections: ROC, confusion-matrix, embedding and radiomics PNGs
from an evaluate JSON."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from medssl.report.classification import (
    plot_confusion,
    plot_embedding,
    plot_radiomics,
    plot_roc,
)


def evaluation(names: list[str], cases: list[tuple[int, list[float]]]) -> dict:
    k = len(names)
    matrix = [[0] * k for _ in range(k)]
    per_case = {}
    for i, (label, prob) in enumerate(cases):
        pred = max(range(k), key=prob.__getitem__)
        matrix[label][pred] += 1
        per_case[f"c{i}"] = {
            "label": names[label],
            "pred": names[pred],
            **{f"prob_{n}": p for n, p in zip(names, prob, strict=True)},
        }
    projection = {
        "source": "pooled features",
        "dim": 8,
        "explained_variance_ratio": [0.6, 0.25],
        "case": list(per_case),
        "label": [c["label"] for c in per_case.values()],
        "x": [float(i) for i in range(len(cases))],
        "y": [float(i % 2) for i in range(len(cases))],
    }
    radiomics = [
        ["original_shape_Sphericity", 1.2],
        ["log-sigma-3-0-mm-3D_gldm_LargeDependenceHighGrayLevelEmphasis", 0.9],
        ["wavelet-HLL_glrlm_LongRunHighGrayLevelEmphasis", 0.4],
    ]
    return {
        "class_names": names,
        "per_case": per_case,
        "confusion_matrix": matrix,
        "embedding_2d": projection,
        "radiomics_weights": radiomics,
    }


def test_binary_and_multiclass_plots(tmp_path: Path):
    cases = [(0, [0.8, 0.2]), (1, [0.3, 0.7]), (1, [0.6, 0.4])]
    binary = evaluation(["normal", "pneumonia"], cases)
    three = evaluation(
        ["a", "b", "c"], [(0, [0.7, 0.2, 0.1]), (1, [0.1, 0.8, 0.1]), (2, [0.5, 0.2, 0.3])]
    )
    for name, ev in (("bin", binary), ("three", three)):
        for plot in (plot_roc, plot_confusion, plot_embedding, plot_radiomics):
            png = plot(ev, tmp_path / f"{name}_{plot.__name__}.png")
            assert png is not None and png.is_file()
            with Image.open(png) as image:
                assert image.size[0] > 100
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_nothing_to_plot(tmp_path: Path):
    one_class = evaluation(["0", "1"], [(1, [0.2, 0.8]), (1, [0.4, 0.6])])
    assert plot_roc(one_class, tmp_path / "roc.png") is None  # AUC undefined: no curve
    assert plot_confusion({"confusion_matrix": []}, tmp_path / "cm.png") is None
    # an evaluation without the projection or the radiomics (older, or a method without them)
    bare = {k: v for k, v in one_class.items() if k not in ("embedding_2d", "radiomics_weights")}
    assert plot_embedding(bare, tmp_path / "emb.png") is None
    assert plot_radiomics(bare, tmp_path / "rad.png") is None
    assert plot_radiomics({**bare, "radiomics_weights": []}, tmp_path / "rad.png") is None
    short = {**one_class["embedding_2d"], "x": [0.0]}  # x, y and labels must pair up
    assert plot_embedding({**bare, "embedding_2d": short}, tmp_path / "emb.png") is None
    not_finite = {**one_class["embedding_2d"], "y": [float("nan"), 0.0]}
    assert plot_embedding({**bare, "embedding_2d": not_finite}, tmp_path / "emb.png") is None
    assert not list(tmp_path.iterdir())
