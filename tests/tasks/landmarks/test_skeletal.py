"""The skeletal class of a cephalogram from its ANB angle: the rule, its thresholds and where it
reaches training, evaluation and prediction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medssl import api
from medssl.engine.task import get_task
from medssl.errors import ConfigError, DataError
from medssl.tasks.landmarks.skeletal import (
    CLASS_NAMES,
    anb_angle,
    check_rule,
    rule_scores,
    skeletal_class,
    with_rule_classes,
)
from tests.methods.landmarks.test_ccf import TINY_CCF, train_ccf


def cephalogram(sna: float, snb: float) -> np.ndarray:
    """19 points, all at nasion but sella, A and B: sella 100 px behind nasion (facing +x),
    A point and B point below nasion at ``sna`` and ``snb`` degrees from the N-S line."""
    points = np.zeros((19, 2))
    points[0] = (-100.0, 0.0)  # sella
    for index, angle in ((4, sna), (5, snb)):  # A point, B point
        direction = np.radians(180.0 - angle)  # measured from the ray N -> S
        points[index] = 60.0 * np.cos(direction), 60.0 * np.sin(direction)
    return points


def test_anb_is_sna_minus_snb_in_degrees():
    assert anb_angle(cephalogram(82.0, 78.0)) == pytest.approx(4.0)
    assert anb_angle(cephalogram(80.0, 83.0)) == pytest.approx(-3.0)  # B ahead of A
    batch = np.stack([cephalogram(82.0, 78.0), cephalogram(85.0, 77.0)])
    np.testing.assert_allclose(anb_angle(batch), [4.0, 8.0])
    scaled = cephalogram(82.0, 78.0) * 3.7 + 12.0  # angles do not change with scale or shift
    assert anb_angle(scaled) == pytest.approx(4.0)


def test_the_thresholds_are_the_isbi_challenges():
    anb = np.array([3.2, 4.5, 5.7, 5.71, 9.0, 3.19, -2.0, np.nan])
    assert skeletal_class(anb).tolist() == [0, 0, 0, 1, 1, 2, 2, -1]
    missing = cephalogram(82.0, 78.0)
    missing[5] = np.nan  # no B point: no ANB, no class
    assert np.isnan(anb_angle(missing)) and skeletal_class(anb_angle(missing)) == -1


def test_rule_scores_count_agreement_of_the_classes():
    truth = np.stack([cephalogram(82, 78), cephalogram(85, 77), cephalogram(80, 79)])  # I II III
    judged = np.stack([cephalogram(82, 77), cephalogram(85, 77), cephalogram(80, 76)])  # I II I
    scores = rule_scores(truth, judged)
    assert scores["anb_error_deg"] == pytest.approx((1 + 0 + 3) / 3)
    assert scores["class_accuracy_from_landmarks"] == pytest.approx(2 / 3)
    assert scores["class_balanced_accuracy_from_landmarks"] == pytest.approx(2 / 3)
    assert scores["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]


def test_the_shared_cephalograms_get_a_class_each(shared_data: Path):
    """ceph_001's reference points (mean of the annotators): S (185.5, 300.8), N (427.2, 250.8),
    A (416.7, 479.4), B (406.9, 626.1) give SNA 75.8, SNB 75.3: ANB 0.5, Class III."""
    dataset = with_rule_classes(
        get_task("landmarks").load_dataset(shared_data / "cephalometric"), "anb"
    )
    case = dataset.case("ceph_001")
    assert anb_angle(case.target) == pytest.approx(0.5, abs=0.1)
    assert case.meta["class"] == 2
    assert dataset.labels == {"Class I": 0, "Class II": 1, "Class III": 2}
    classes = [c.meta["class"] for c in dataset.cases]
    assert len(classes) == 100 and set(classes) == {0, 1, 2}


def test_the_rule_is_refused_where_it_does_not_apply(landmark_phantom: Path):
    with pytest.raises(DataError, match="19 ISBI 2015"):
        check_rule("anb", 8, landmark_phantom)  # the phantom has 8 landmarks
    with pytest.raises(ConfigError, match="choose one of anb"):
        check_rule("wits", 19, landmark_phantom)
    phantom = get_task("landmarks").load_dataset(landmark_phantom)
    with pytest.raises(ConfigError, match="would replace the image classes"):
        with_rule_classes(phantom, "anb")  # it gives its own classes


def test_ccf_reports_the_class_from_its_head_and_from_its_points(shared_data: Path, tmp_path: Path):
    """A few steps on the real cephalograms: the head is trained on the ANB classes, evaluate
    scores it and the class its points give, and the annotators' own class agreement; predict
    writes the ANB and both classes."""
    ceph = shared_data / "cephalometric"
    run = train_ccf(ceph, tmp_path / "ccf", 4, data={**TINY_CCF["data"], "class_rule": "anb"})
    result = api.evaluate(run, ceph, only="val")
    assert result["class_names"] == CLASS_NAMES
    assert {"accuracy", "class_accuracy_from_landmarks", "anb_error_deg"} <= set(result["mean"])
    block = result["skeletal_class"]["from_landmarks"]
    assert "ISBI 2015" in result["skeletal_class"]["rule"]
    assert np.asarray(block["confusion_matrix"]).sum() == block["cases"] == result["cases"] == 20
    some = next(iter(result["per_case"].values()))
    assert {"anb_reference", "anb_predicted", "class_from_landmarks", "pred"} <= set(some)
    human = result["inter_annotator"]["mean"]
    assert 0.0 <= human["class_accuracy_from_landmarks"] <= 1.0 and human["anb_error_deg"] > 0
    image = ceph / "images" / "ceph_001.png"
    api.predict(run, [image], tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "ceph_001.json").read_text())
    points = np.array([doc["landmarks"][n] for n in doc["landmark_names"]], dtype=float)
    assert doc["anb_deg"] == pytest.approx(float(anb_angle(points)), abs=1e-2)  # 3-decimal points
    assert doc["class_from_landmarks"] in CLASS_NAMES
    assert set(doc["class_probabilities"]) == set(CLASS_NAMES)
