"""Classification metrics against hand-computed cases and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from medssl.metrics import classification_metrics, per_class_metrics


def one_hot_probs(labels, n_classes, confidence=0.9):
    """Rows that put ``confidence`` on ``labels`` and spread the rest evenly."""
    rest = (1 - confidence) / (n_classes - 1)
    prob = np.full((len(labels), n_classes), rest)
    prob[np.arange(len(labels)), labels] = confidence
    return prob


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_perfect_probabilities_give_ones():
    y = np.array([0, 1, 2, 2, 1, 0])
    m = classification_metrics(y, one_hot_probs(y, 3))
    assert m == {"accuracy": 1.0, "auc": 1.0, "f1_macro": 1.0, "balanced_accuracy": 1.0}
    per = per_class_metrics(y, one_hot_probs(y, 3), class_names=["a", "b", "c"])
    assert list(per) == ["a", "b", "c"]
    assert all(per[k][key] == 1.0 for k in per for key in ("precision", "recall", "f1", "auc"))
    assert per["a"]["support"] == 2.0


def test_balanced_accuracy_imbalanced_hand_case():
    # 8 negatives, 2 positives, everything predicted negative:
    # accuracy 8/10, balanced = (8/8 + 0/2) / 2, f1: class 0 = 2*0.8*1/1.8, class 1 = 0.
    y = np.array([0] * 8 + [1] * 2)
    prob = np.tile([0.7, 0.3], (10, 1))
    m = classification_metrics(y, prob)
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["f1_macro"] == pytest.approx((16 / 18) / 2)
    assert m["auc"] == pytest.approx(0.5)  # constant scores


def test_balanced_accuracy_second_hand_case():
    # recalls: class 0 3/4, class 1 1/2 -> balanced 0.625; accuracy 4/6
    y = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 0, 1, 1, 0])
    m = classification_metrics(y, one_hot_probs(pred, 2, 0.8))
    assert m["balanced_accuracy"] == pytest.approx(0.625)
    assert m["accuracy"] == pytest.approx(4 / 6)
    per = per_class_metrics(y, one_hot_probs(pred, 2, 0.8))
    assert per["0"]["precision"] == pytest.approx(3 / 4)
    assert per["0"]["recall"] == pytest.approx(3 / 4)
    assert per["1"]["precision"] == pytest.approx(1 / 2)
    assert per["1"]["recall"] == pytest.approx(1 / 2)


def test_binary_auc_from_two_columns_hand_case():
    # positive scores 0.4, 0.8 vs negative 0.1, 0.6: 3 of 4 pairs ordered correctly -> 0.75
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.4, 0.8])
    prob = np.stack([1 - p1, p1], axis=1)
    assert classification_metrics(y, prob)["auc"] == pytest.approx(0.75)
    assert classification_metrics(y, p1)["auc"] == pytest.approx(0.75)  # (N,) = P(class 1)
    assert classification_metrics(torch.tensor(y), torch.tensor(prob))["auc"] == pytest.approx(0.75)
    per = per_class_metrics(y, prob)
    assert per["0"]["auc"] == pytest.approx(0.75)
    assert per["1"]["auc"] == pytest.approx(0.75)


def test_multiclass_auc_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=60)
    prob = softmax(rng.normal(size=(60, 4)) + 1.5 * np.eye(4)[y])
    expected = roc_auc_score(y, prob, multi_class="ovr", average="macro")
    assert classification_metrics(y, prob)["auc"] == pytest.approx(expected)
    per = per_class_metrics(y, prob)
    for k in range(4):
        assert per[str(k)]["auc"] == pytest.approx(roc_auc_score(y == k, prob[:, k]))


def test_missing_class_gives_nan_auc_and_macro_over_present():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=30)  # class 2 never occurs
    y[:2] = [0, 1]
    prob = softmax(rng.normal(size=(30, 3)))
    prob[:, 2] *= 0.01  # never predicted either
    prob /= prob.sum(axis=1, keepdims=True)
    per = per_class_metrics(y, prob)
    assert math.isnan(per["2"]["auc"])
    assert all(math.isnan(per["2"][k]) for k in ("precision", "recall", "f1"))
    assert per["2"]["support"] == 0.0
    m = classification_metrics(y, prob)
    assert m["auc"] == pytest.approx((per["0"]["auc"] + per["1"]["auc"]) / 2)
    assert m["f1_macro"] == pytest.approx((per["0"]["f1"] + per["1"]["f1"]) / 2)


def test_binary_with_one_class_present_has_nan_auc():
    y = np.zeros(5, dtype=int)
    m = classification_metrics(y, one_hot_probs(y, 2))
    assert math.isnan(m["auc"])
    assert m["accuracy"] == 1.0


def test_invalid_inputs():
    y = np.array([0, 1])
    with pytest.raises(ValueError, match="sum to 1"):
        classification_metrics(y, np.array([[0.5, 0.6], [0.2, 0.8]]))
    with pytest.raises(ValueError, match="softmax"):
        classification_metrics(y, np.array([[2.0, -1.0], [0.2, 0.8]]))
    with pytest.raises(ValueError, match="0..1"):
        classification_metrics(np.array([0, 2]), one_hot_probs([0, 1], 2))
    with pytest.raises(ValueError, match="shape"):
        classification_metrics(np.array([0, 1, 1]), one_hot_probs([0, 1], 2))
    with pytest.raises(ValueError, match="class_names"):
        per_class_metrics(y, one_hot_probs([0, 1], 2), class_names=["a"])
