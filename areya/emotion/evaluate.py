"""Evaluate an emotion model on a class-folder tree, in either scheme.

For the 4-class scheme the ``neutral`` folder counts as relaxed and the
disgust, fear and surprise folders are ignored.  The served 4-class answer
(what the model's calibration says: the 4-class head, the 7-class head
restricted to the four classes, or their mean) is measured, and beside it both
sources on their own.  Calibration figures (ECE with 15 bins, Brier score, NLL)
are given before (raw network output) and after the model's fitted temperature.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from areya.emotion.calibration import ECE_BINS, calibration_figures, combine_four
from areya.emotion.dataset import FaceDataset, load_dataset
from areya.emotion.metrics import ClassificationReport, classification_report
from areya.emotion.schemes import (
    FER7_CLASSES,
    FER_TO_AREYA4,
    SCHEME4,
    Scheme,
    fer7_to_scheme_labels,
    get_scheme,
)

# FER-7 column of each 4-class class, to read 4-of-7 probabilities off the 7-class head.
FOUR_OF_SEVEN_COLUMNS = [
    FER7_CLASSES.index(fer) for a4 in SCHEME4.classes for fer, a in FER_TO_AREYA4.items() if a == a4
]


def four_of_seven(probs7: np.ndarray) -> np.ndarray:
    """7-class probabilities -> 4-class ones, renormalised over angry/happy/neutral/sad."""
    sub = np.asarray(probs7)[:, FOUR_OF_SEVEN_COLUMNS]
    return sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)


@dataclass
class Evaluation:
    scheme: Scheme
    model_version: str
    data: str
    report: ClassificationReport
    faces_per_second: float
    tta_flip: bool
    extra: dict[str, Any]
    probs: np.ndarray
    labels: np.ndarray
    raw_probs: np.ndarray  # the same answer before calibration (temperature 1)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "scheme": self.scheme.name,
            "model": self.model_version,
            "data": self.data,
            "tta_flip": self.tta_flip,
            "faces_per_second": round(self.faces_per_second, 1),
        }
        out.update(self.report.to_dict())
        out.update(self.extra)
        return out


def select_scheme(data: FaceDataset, scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of ``data`` that belong to ``scheme`` (4-class drops disgust/fear/surprise)."""
    labels = fer7_to_scheme_labels(data.labels7, scheme)
    keep = labels >= 0
    return data.images[keep], labels[keep]


def evaluate(
    classifier,
    data_dir: str | Path,
    scheme: str | int,
    data: FaceDataset | None = None,
) -> Evaluation:
    """Run ``classifier`` (an :class:`~areya.emotion.inference.EmotionClassifier`) over ``data_dir``."""
    sch = get_scheme(scheme)
    if data is None:
        data = load_dataset(data_dir)
    images, labels = select_scheme(data, sch)
    if labels.size == 0:
        raise ValueError(f"{data_dir}: no images of the {sch.name}-class scheme's classes")
    x = images.astype(np.float32)[..., None]
    classifier.predict_arrays(x[: min(len(x), 64)])  # warm-up (graph tracing) outside the timing
    t0 = time.perf_counter()
    head4, raw7 = classifier.predict_raw(x)
    probs4, probs7 = classifier.calibration.serve(head4, raw7)
    took = time.perf_counter() - t0
    cal = classifier.calibration
    extra: dict[str, Any] = {"import": data.report.summary()}
    if sch.name == "7":
        probs, raw, temperature = probs7, raw7, cal.temperature7
    else:
        probs, temperature = probs4, cal.temperature4
        raw = combine_four(cal.four_class_source, head4, four_of_seven(raw7))
        extra["four_class_source"] = cal.four_class_source
        for key, source in (("four_class_head", head4), ("four_of_seven", four_of_seven(raw7))):
            rep = classification_report(labels, source, sch.classes)
            extra[key] = {
                "accuracy": round(rep.accuracy, 6),
                "macro_f1": round(rep.macro_f1, 6),
                "recall": {c: round(f["recall"], 6) for c, f in rep.per_class.items()},
            }
    extra["calibration"] = {
        "temperature": temperature,
        "bins": ECE_BINS,
        "before": calibration_figures(raw, labels),
        "after": calibration_figures(probs, labels),
    }
    report = classification_report(labels, probs, sch.classes)
    return Evaluation(
        scheme=sch,
        model_version=classifier.model_version,
        data=str(data_dir),
        report=report,
        faces_per_second=len(x) / took if took > 0 else float("inf"),
        tta_flip=classifier.tta_flip,
        extra=extra,
        probs=probs,
        labels=labels,
        raw_probs=raw,
    )
