"""Evaluation figures on cases whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from areya.emotion.metrics import classification_report, confusion_matrix, roc_auc


def test_confusion_accuracy_and_f1_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[y_pred] * 0.8 + 0.2 / 3
    rep = classification_report(y_true, probs, ("a", "b", "c"))
    assert rep.confusion.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert rep.accuracy == pytest.approx(4 / 6)
    # a: p=1, r=2/3 -> f1=0.8; b: p=1/2, r=1/2 -> 0.5; c: p=1/2, r=1 -> 2/3
    assert rep.per_class["a"]["f1"] == pytest.approx(0.8)
    assert rep.per_class["b"]["f1"] == pytest.approx(0.5)
    assert rep.per_class["c"]["f1"] == pytest.approx(2 / 3)
    assert rep.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert rep.per_class["a"]["support"] == 3
    d = rep.to_dict()
    assert {"accuracy", "macro_f1", "n", "per_class", "confusion_matrix", "macro_roc_auc"} <= set(d)


def test_roc_auc_known_values():
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 1, 0, 0])) == pytest.approx(1.0)
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([1, 1, 0, 0])) == pytest.approx(0.0)
    # AUC = share of (positive, negative) pairs ranked right: 2 of 4 here, 3 of 4 below
    assert roc_auc(np.array([0.9, 0.5, 0.7, 0.1]), np.array([0, 1, 1, 0])) == pytest.approx(0.5)
    assert roc_auc(np.array([0.8, 0.6, 0.4, 0.2]), np.array([1, 0, 1, 0])) == pytest.approx(0.75)
    # ties count half
    assert roc_auc(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.5)
    assert np.isnan(roc_auc(np.array([0.5, 0.4]), np.array([1, 1])))


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="do not match"):
        classification_report(np.array([0, 1]), np.zeros((3, 2)), ("a", "b"))
    with pytest.raises(ValueError, match="out of range"):
        classification_report(np.array([0, 5]), np.zeros((2, 2)), ("a", "b"))
    assert confusion_matrix(np.array([1]), np.array([0]), 2).tolist() == [[0, 0], [1, 0]]
