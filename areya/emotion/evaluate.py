"""Evaluate an emotion model on a class-folder tree, in either scheme.

For the 4-class scheme the ``neutral`` folder counts as relaxed and the
disgust, fear and surprise folders are ignored.  The served 4-class answer
(what the model's calibration says: the 4-class head, the 7-class head
restricted to the four classes, or their mean) is measured, and beside it both
sources on their own.  Calibration figures (ECE with 15 bins, Brier score, NLL)
are given before (raw network output) and after the model's fitted temperature.

The labels are the class folders' (FER-2013) by default; against the FER+ annotators' votes
(:mod:`areya.emotion.ferplus`) a face's label is its FER+ majority, and the NLL against the vote distributions
is given beside the figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from areya.emotion.calibration import ECE_BINS, calibration_figures, combine_four
from areya.emotion.dataset import FaceDataset, load_dataset
from areya.emotion.ferplus import FerPlusVotes, majority7, restrict_to_four, usable, vote_distribution
from areya.emotion.metrics import ClassificationReport, classification_report, soft_nll
from areya.emotion.schemes import (
    Scheme,
    fer7_to_scheme_labels,
    four_of_seven,
    get_scheme,
)

LABEL_SETS = ("fer2013", "ferplus", "both")


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
    label_set: str = "fer2013"  # the labels scored against: the FER-2013 folders' or the FER+ majority
    ferplus: Evaluation | None = None  # with --labels both: the same answers against the FER+ majority

    def to_dict(self) -> dict[str, Any]:
        out = {
            "scheme": self.scheme.name,
            "labels": self.label_set,
            "model": self.model_version,
            "data": self.data,
            "tta_flip": self.tta_flip,
            "faces_per_second": round(self.faces_per_second, 1),
        }
        out.update(self.report.to_dict())
        out.update(self.extra)
        if self.ferplus is not None:
            sub = self.ferplus.to_dict()
            out["ferplus"] = {k: v for k, v in sub.items() if k not in ("model", "data", "tta_flip", "scheme")}
        return out


def select_scheme(data: FaceDataset, scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of ``data`` that belong to ``scheme`` (4-class drops disgust/fear/surprise)."""
    labels = fer7_to_scheme_labels(data.labels7, scheme)
    keep = labels >= 0
    return data.images[keep], labels[keep]


def _score(
    sch: Scheme, labels: np.ndarray, head4: np.ndarray, raw7: np.ndarray, cal, targets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, ClassificationReport, dict[str, Any]]:
    """(served probabilities, the same before calibration, figures, extra figures) of raw outputs against
    ``labels`` (``sch``'s indices); ``targets`` (N, K): vote distributions, whose NLL joins the calibration
    figures."""
    probs4, probs7 = cal.serve(head4, raw7)
    extra: dict[str, Any] = {}
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
    if targets is not None:
        extra["calibration"]["before"]["vote_nll"] = round(soft_nll(raw, targets), 6)
        extra["calibration"]["after"]["vote_nll"] = round(soft_nll(probs, targets), 6)
    return probs, raw, classification_report(labels, probs, sch.classes), extra


def ferplus_labels(
    data: FaceDataset, votes: FerPlusVotes, scheme: Scheme
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """The FER+ test labels of ``data``'s faces in ``scheme`` (:func:`areya.emotion.ferplus.majority7`; -1: not
    scored), their vote distributions (N, ``scheme.size``: the 4-class one restricted to angry / happy / neutral /
    sad and renormalised), and counts of the faces left out and why."""
    counts, found = votes.lookup(data)
    major = np.where(found, majority7(counts), -1)
    labels = np.where(major >= 0, fer7_to_scheme_labels(np.maximum(major, 0), scheme), -1)
    dist = vote_distribution(counts)
    if scheme.name != "7":
        dist = restrict_to_four(dist)[0]
    ok = found & usable(counts)
    why = {
        "faces": len(data),
        "without_votes": int((~found).sum()),
        "unusable_votes": int((found & ~ok).sum()),
        "tied_majority": int((ok & (major < 0)).sum()),
        "majority_outside_scheme": int(((major >= 0) & (labels < 0)).sum()),
        "scored": int((labels >= 0).sum()),
    }
    return labels, dist, why


def evaluate(
    classifier,
    data_dir: str | Path,
    scheme: str | int,
    data: FaceDataset | None = None,
    labels: str = "fer2013",
    votes: FerPlusVotes | None = None,
) -> Evaluation:
    """Run ``classifier`` (an :class:`~areya.emotion.inference.EmotionClassifier`) over ``data_dir``.

    ``labels``: score against the FER-2013 folders' labels ("fer2013"), the FER+ majority of ``votes`` (a
    :class:`~areya.emotion.ferplus.FerPlusVotes`; faces with a unique majority among the 7 classes, in the
    4-class scheme those whose majority is angry, happy, neutral or sad), or "both" (the FER-2013 evaluation with
    the FER+ one as its ``ferplus``).  The FER+ figures add the NLL against the vote distributions.
    """
    sch = get_scheme(scheme)
    if labels not in LABEL_SETS:
        raise ValueError(f"labels must be one of {', '.join(LABEL_SETS)}, got {labels!r}")
    if labels != "fer2013" and votes is None:
        raise ValueError(f"labels = {labels!r} needs the FER+ votes")
    if data is None:
        data = load_dataset(data_dir)
    fer_labels = fer7_to_scheme_labels(data.labels7, sch) if labels != "ferplus" else None
    plus = ferplus_labels(data, votes, sch) if labels != "fer2013" else None
    keep = np.zeros(len(data), bool)
    for scored in (fer_labels, None if plus is None else plus[0]):
        if scored is not None:
            keep |= scored >= 0
    if not keep.any():
        which = "FER+ majority" if labels == "ferplus" else f"{sch.name}-class scheme"
        raise ValueError(f"{data_dir}: no images of the {which}'s classes")
    x = data.images[keep].astype(np.float32)[..., None]
    classifier.predict_arrays(x[: min(len(x), 64)])  # warm-up (graph tracing) outside the timing
    t0 = time.perf_counter()
    head4, raw7 = classifier.predict_raw(x)
    classifier.calibration.serve(head4, raw7)
    took = time.perf_counter() - t0
    common = dict(
        scheme=sch,
        model_version=classifier.model_version,
        data=str(data_dir),
        faces_per_second=len(x) / took if took > 0 else float("inf"),
        tta_flip=classifier.tta_flip,
    )

    def scored(label_set: str, all_labels: np.ndarray, targets: np.ndarray | None) -> Evaluation:
        rows = all_labels[keep] >= 0
        y = all_labels[keep][rows]
        if y.size == 0:
            raise ValueError(f"{data_dir}: no faces with a {label_set} label in the {sch.name}-class scheme")
        t = None if targets is None else targets[keep][rows]
        probs, raw, report, extra = _score(sch, y, head4[rows], raw7[rows], classifier.calibration, t)
        extra = {"import": data.report.summary(), **extra}
        return Evaluation(
            report=report, extra=extra, probs=probs, labels=y, raw_probs=raw, label_set=label_set, **common
        )

    sub = None
    if plus is not None:
        sub = scored("ferplus", plus[0], plus[1])
        sub.extra["import"] += f"; FER+ votes {votes.source}"
        sub.extra["ferplus_faces"] = plus[2]
        if labels == "ferplus":
            return sub
    ev = scored("fer2013", fer_labels, None)
    ev.ferplus = sub
    return ev
