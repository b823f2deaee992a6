"""Classification ``evaluate``'s report data: the 2D PCA projection of the embedding the
classifier reads (one point per case) and the radiomics features that weigh most."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from medssl import api
from medssl.report import build_report
from medssl.tasks.classification.inference import (
    TOP_RADIOMICS,
    embedding,
    project_2d,
    top_radiomics,
)
from tests.methods.classify.tiny import TINY_3D, train_classifier


@pytest.fixture(scope="module")
def cls3d(tmp_path_factory) -> Path:
    from medssl.data.phantom import make_phantom

    return make_phantom(tmp_path_factory.mktemp("cls3d") / "cls3d", "cls3d", cases=8, seed=0)


@pytest.fixture(scope="module")
def run(cls3d: Path, tmp_path_factory) -> Path:
    """A supervised 3D classifier trained for 2 steps: its features, not its skill, matter."""
    out = tmp_path_factory.mktemp("runs") / "sup3d"
    return train_classifier("supervised", cls3d, out, 2, TINY_3D, seed=0)


def test_project_2d_matches_pca():
    rng = np.random.default_rng(0)
    # variance along three directions, 9 : 4 : 1
    x = rng.normal(size=(40, 3)) * [3.0, 2.0, 1.0] @ np.linalg.qr(rng.normal(size=(3, 3)))[0]
    coords, ratio = project_2d(x)
    centred = x - x.mean(axis=0)
    eigen = np.sort(np.linalg.eigvalsh(np.cov(centred.T)))[::-1]
    assert ratio == pytest.approx(list(eigen[:2] / eigen.sum()))
    assert coords.shape == (40, 2)
    assert coords.var(axis=0, ddof=1) == pytest.approx(eigen[:2])
    assert abs(np.corrcoef(coords.T)[0, 1]) < 1e-9  # uncorrelated axes
    order = rng.permutation(40)  # the axes' signs follow the loadings, not the case order
    np.testing.assert_allclose(project_2d(x[order])[0], coords[order], atol=1e-9)


def test_project_2d_degenerate_inputs():
    line = np.outer(np.arange(5.0), [1.0, 2.0, 2.0])  # one direction only
    coords, ratio = project_2d(line)
    assert ratio == pytest.approx([1.0, 0.0]) and np.allclose(coords[:, 1], 0)
    assert np.allclose(np.abs(coords[:, 0]), np.abs(np.arange(5.0) - 2) * 3)
    for rows in (np.ones((4, 6)), np.ones((1, 6))):  # identical rows, a single row
        coords, ratio = project_2d(rows)
        assert ratio == [0.0, 0.0] and not coords.any() and coords.shape == (len(rows), 2)


def test_embedding_reads_the_joint_embedding_else_the_pooled_features():
    batch = {"image": torch.zeros(3, 1, 4, 4)}
    joint = SimpleNamespace(
        joint_embedding=lambda b: torch.ones(len(b["image"]), 5),
        features_and_logits=lambda x: pytest.fail("the joint embedding comes first"),
    )
    assert embedding(joint, batch).shape == (3, 5)
    pooled = SimpleNamespace(features_and_logits=lambda x: (torch.ones(len(x), 7), None))
    assert embedding(pooled, batch).shape == (3, 7)
    assert embedding(SimpleNamespace(), batch) is None


def test_top_radiomics():
    weights = {f"original_glcm_F{i:02d}": float(i) for i in range(30)}
    top = top_radiomics(SimpleNamespace(radiomics_weights=lambda: weights))
    assert len(top) == TOP_RADIOMICS and top[0] == ["original_glcm_F29", 29.0]
    assert [w for _, w in top] == sorted((w for _, w in top), reverse=True)
    assert top_radiomics(SimpleNamespace(radiomics_weights=dict)) is None  # radiomics off
    assert top_radiomics(SimpleNamespace()) is None  # a method without radiomics


def test_evaluation_has_one_embedding_point_per_case(run: Path, cls3d: Path, tmp_path: Path):
    result = api.evaluate(run, cls3d, out=tmp_path / "eval.json")
    projection = result["embedding_2d"]
    assert projection["case"] == list(result["per_case"]) and result["cases"] == 8
    assert projection["label"] == [c["label"] for c in result["per_case"].values()]
    assert len(projection["x"]) == len(projection["y"]) == 8
    assert projection["source"] == "pooled features" and projection["dim"] == 512  # ResNet-10
    first, second = projection["explained_variance_ratio"]
    assert 1.0 >= first >= second >= 0.0 and first + second <= 1.0 + 1e-6
    assert "radiomics_weights" not in result  # supervised: no radiomics
    assert json.loads((tmp_path / "eval.json").read_text())["embedding_2d"] == projection

    page = build_report(run).read_text()
    assert "principal components" in page  # the embedding figure's caption
    assert (run / "plots" / "embedding_evaluation.png").stat().st_size > 0
    assert not (run / "plots" / "radiomics_evaluation.png").exists()
