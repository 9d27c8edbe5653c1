"""Classification figures computed with NumPy alone: accuracy, macro-F1,
per-class precision/recall/F1, confusion matrix, one-vs-rest ROC AUC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct score threshold (descending)."""
    scores = np.asarray(scores, np.float64)
    positive = np.asarray(positive, bool)
    order = np.argsort(-scores, kind="mergesort")
    scores, positive = scores[order], positive[order]
    # last index of each run of equal scores
    distinct = np.flatnonzero(np.diff(scores)) if scores.size > 1 else np.array([], np.int64)
    ends = np.r_[distinct, scores.size - 1] if scores.size else np.array([], np.int64)
    tps = np.cumsum(positive)[ends] if scores.size else np.array([0])
    fps = (ends + 1) - tps if scores.size else np.array([0])
    n_pos, n_neg = positive.sum(), (~positive).sum()
    tpr = np.r_[0.0, tps / n_pos] if n_pos else np.r_[0.0, np.zeros_like(tps, float)]
    fpr = np.r_[0.0, fps / n_neg] if n_neg else np.r_[0.0, np.zeros_like(fps, float)]
    return fpr, tpr


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    positive = np.asarray(positive, bool)
    if positive.all() or not positive.any():
        return float("nan")
    fpr, tpr = roc_curve(scores, positive)
    return float(np.trapezoid(tpr, fpr))


@dataclass
class ClassificationReport:
    classes: tuple[str, ...]
    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: np.ndarray
    roc_auc: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        aucs = [v for v in self.roc_auc.values() if not np.isnan(v)]
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 6),
            "macro_f1": round(self.macro_f1, 6),
            "macro_roc_auc": round(float(np.mean(aucs)), 6) if aucs else None,
            "classes": list(self.classes),
            "per_class": {
                name: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in figures.items()}
                for name, figures in self.per_class.items()
            },
            "confusion_matrix": self.confusion.tolist(),
        }

    def to_text(self) -> str:
        width = max(len(c) for c in self.classes) + 2
        lines = [
            f"n={self.n}  accuracy={self.accuracy:.4f}  macro-F1={self.macro_f1:.4f}",
            f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'auc':>10}{'support':>10}",
        ]
        for name in self.classes:
            f = self.per_class[name]
            lines.append(
                f"{name:<{width}}{f['precision']:>10.4f}{f['recall']:>10.4f}{f['f1']:>10.4f}"
                f"{f['roc_auc']:>10.4f}{f['support']:>10d}"
            )
        lines.append("confusion matrix (rows true, columns predicted):")
        lines.append(" " * width + "".join(f"{c[:8]:>9}" for c in self.classes))
        for name, row in zip(self.classes, self.confusion, strict=True):
            lines.append(f"{name:<{width}}" + "".join(f"{v:>9d}" for v in row))
        return "\n".join(lines)


def classification_report(y_true: np.ndarray, probs: np.ndarray, classes: tuple[str, ...]) -> ClassificationReport:
    """Figures for integer labels ``y_true`` against class probabilities ``probs`` (N, K)."""
    y_true = np.asarray(y_true, np.int64)
    probs = np.asarray(probs, np.float64)
    k = len(classes)
    if probs.ndim != 2 or probs.shape[1] != k or probs.shape[0] != y_true.shape[0]:
        raise ValueError(f"probabilities of shape {probs.shape} do not match {y_true.shape[0]} labels x {k} classes")
    if y_true.size == 0:
        raise ValueError("no labelled images to evaluate")
    if y_true.min() < 0 or y_true.max() >= k:
        raise ValueError("labels out of range for the scheme")
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    aucs = {name: roc_auc(probs[:, i], y_true == i) for i, name in enumerate(classes)}
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "roc_auc": aucs[name],
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    }
    present = support > 0
    return ClassificationReport(
        classes=tuple(classes),
        n=int(y_true.size),
        accuracy=float(tp.sum() / y_true.size),
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        per_class=per_class,
        confusion=cm,
        roc_auc=aucs,
    )


def soft_nll(probs: np.ndarray, targets: np.ndarray, eps: float = 1e-7) -> float:
    """Mean cross-entropy ``-sum_k q_k log p_k`` of probabilities ``probs`` (N, K) against target distributions
    ``targets`` (N, K) (e.g. FER+ vote shares); with one-hot targets, the usual negative log-likelihood."""
    probs = np.asarray(probs, np.float64)
    targets = np.asarray(targets, np.float64)
    if probs.shape != targets.shape:
        raise ValueError(f"probabilities of shape {probs.shape} do not match targets of shape {targets.shape}")
    if probs.shape[0] == 0:
        return float("nan")
    return float(-np.mean(np.sum(targets * np.log(np.clip(probs, eps, 1.0)), axis=1)))
