"""Confusion-matrix and ROC figures as PNG files, drawn with OpenCV (no plotting library needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from areya.emotion.metrics import ClassificationReport, roc_curve

# Distinct BGR colours for up to 7 classes.
PALETTE = [(40, 40, 214), (60, 160, 60), (180, 105, 30), (0, 165, 255), (160, 60, 160), (128, 128, 0), (90, 90, 90)]


def confusion_png(report: ClassificationReport, path: str | Path, title: str = "") -> Path:
    import cv2

    k = len(report.classes)
    cell, left, top = 70, 110, 70
    img = np.full((top + k * cell + 30, left + k * cell + 20, 3), 255, np.uint8)
    cm = report.confusion.astype(np.float64)
    rows = np.clip(cm.sum(axis=1, keepdims=True), 1, None)
    norm = cm / rows
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title or "confusion matrix (row-normalised)", (10, 22), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "predicted ->", (left, 45), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for j, name in enumerate(report.classes):
        cv2.putText(img, name[:8], (left + j * cell + 4, top - 6), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for i, name in enumerate(report.classes):
        y = top + i * cell
        cv2.putText(img, name[:10], (8, y + cell // 2 + 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for j in range(k):
            x = left + j * cell
            shade = int(255 - 200 * norm[i, j])
            cv2.rectangle(img, (x, y), (x + cell - 2, y + cell - 2), (255, shade, shade), -1)
            colour = (255, 255, 255) if norm[i, j] > 0.55 else (0, 0, 0)
            cv2.putText(img, f"{norm[i, j]:.2f}", (x + 12, y + 30), font, 0.45, colour, 1, cv2.LINE_AA)
            cv2.putText(img, f"{int(cm[i, j])}", (x + 12, y + 50), font, 0.38, colour, 1, cv2.LINE_AA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


def roc_png(
    report: ClassificationReport, probs: np.ndarray, labels: np.ndarray, path: str | Path, title: str = ""
) -> Path:
    import cv2

    size, margin = 420, 50
    img = np.full((size + 2 * margin, size + 2 * margin + 170, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    x0, y0 = margin, margin + size
    cv2.rectangle(img, (margin, margin), (margin + size, margin + size), (0, 0, 0), 1)
    cv2.line(img, (x0, y0), (x0 + size, margin), (200, 200, 200), 1, cv2.LINE_AA)
    cv2.putText(img, title or "ROC, one-vs-rest", (margin, 30), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "false positive rate", (margin + size // 2 - 70, y0 + 35), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "TPR", (8, margin + size // 2), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for i, name in enumerate(report.classes):
        fpr, tpr = roc_curve(probs[:, i], labels == i)
        pts = np.stack([x0 + fpr * size, y0 - tpr * size], axis=1).astype(np.int32)
        colour = PALETTE[i % len(PALETTE)]
        cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
        auc = report.roc_auc[name]
        ly = margin + 20 + 22 * i
        cv2.line(img, (margin + size + 15, ly - 4), (margin + size + 35, ly - 4), colour, 3)
        cv2.putText(img, f"{name} {auc:.3f}", (margin + size + 40, ly), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


def reliability_png(
    probs_before: np.ndarray, probs_after: np.ndarray, labels: np.ndarray, path: str | Path, title: str = ""
) -> Path:
    """Reliability diagram: accuracy per confidence bin (15 bins) before and after calibration, with ECE."""
    import cv2

    from areya.emotion.calibration import expected_calibration_error, reliability_bins

    size, margin = 420, 50
    img = np.full((size + 2 * margin + 20, size + 2 * margin + 200, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    x0, y0 = margin, margin + size
    cv2.rectangle(img, (margin, margin), (margin + size, margin + size), (0, 0, 0), 1)
    cv2.line(img, (x0, y0), (x0 + size, margin), (200, 200, 200), 1, cv2.LINE_AA)
    cv2.putText(img, title or "reliability", (margin, 30), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "confidence (top class)", (margin + size // 2 - 90, y0 + 35), font, 0.45, (0, 0, 0), 1)
    cv2.putText(img, "accuracy", (4, margin - 8), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    series = (("before", probs_before, PALETTE[0], -4), ("after", probs_after, PALETTE[1], 4))
    for i, (name, probs, colour, dx) in enumerate(series):
        bins = reliability_bins(probs, labels)
        pts = []
        for b in bins:
            if b["n"] == 0:
                continue
            px, py = int(x0 + b["confidence"] * size), int(y0 - b["accuracy"] * size)
            radius = int(2 + min(8, np.sqrt(b["n"]) / 4))
            cv2.circle(img, (px + dx, py), radius, colour, -1, cv2.LINE_AA)
            pts.append((px + dx, py))
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
        ece = expected_calibration_error(probs, labels)
        ly = margin + 20 + 24 * i
        cv2.line(img, (margin + size + 15, ly - 4), (margin + size + 35, ly - 4), colour, 3)
        cv2.putText(img, f"{name}: ECE {ece:.3f}", (margin + size + 40, ly), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "dot size ~ faces in bin", (margin + size + 15, margin + 80), font, 0.4, (90, 90, 90), 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path
