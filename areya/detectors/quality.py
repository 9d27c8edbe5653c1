"""Face quality: how likely it is that Areya reads a face it found right.

Every observation carries a quality score in [0, 1]: the chance that its 4-class answer is right, predicted from
what the worker knows about the face when it reads it (:class:`FaceSignals`):

* its size in pixels (the box's longer side);
* its sharpness: the variance of the Laplacian of the 48x48 gray image the classifier gets;
* its exposure: how far the mean of the middle of the crop is from mid-grey, and its spread (standard deviation),
  on 0-1;
* the roll left after alignment: how far the eye line is from level in the crop (0 when the crop was turned by
  the eyes; when the eyes are implausible for the box the crop was turned by the pass's roll, and what the eyes
  say is left over);
* the detector's score;
* the classifier's confidence (its top 4-class probability) and the entropy of its 4-class answer (0 sure, 1 all
  four classes alike).

The score is a logistic model of those signals (:func:`quality_score`) whose constants
(:mod:`areya.detectors.quality_fit`) were fitted on generated ward scenes of FER-2013 faces in ward light, dim
light, infrared grey, small, lying, blurred, half under a blanket and very poor (``python -m
bench.bench_night_ward --fit-quality``; faces the detector found that are no face count as read wrong), each
weight held to its expected sign (a bigger, sharper, better exposed face, a higher detector score, a surer answer
never lower the score).  The alert rule sets aside
observations below the ``min_face_quality`` setting (:mod:`areya.alerts.rules`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass

import numpy as np

from areya.detectors.boxes import FaceBox
from areya.detectors.quality_fit import BIAS, FEATURES, MEAN, SCALE, WEIGHTS

CLASSIFIER_SIDE = 48  # the classifier reads 48x48 gray faces: sharpness is measured there
CENTRE = 0.6  # exposure is measured on the middle of the crop: this share of its side (the face, not the pillow)
MID_GREY = 0.5  # a well exposed face's mean; the model reads how far the middle of the crop is from it
IMPLAUSIBLE_EYES_ROLL = 45.0  # roll left after alignment when the eyes do not fit the box at all
# the sign each weight of the fitted model is held to (0: free; bench/bench_night_ward.py --fit-quality): a bigger,
# sharper, better exposed, less rolled face the detector and classifier are surer of never scores lower
SIGNS = {
    "log2_size": 1,
    "log_sharpness": 1,
    "exposure_error": -1,
    "log_contrast": 1,
    "residual_roll": -1,
    "detector_score": 1,
    "confidence": 1,
    "entropy": -1,
}


@dataclass(frozen=True)
class FaceSignals:
    """What the worker knows about one face it read (see the module doc)."""

    size_px: float
    sharpness: float  # variance of the Laplacian of the classifier's 48x48 gray input
    brightness: float  # mean of the crop's middle, 0-1
    contrast: float  # standard deviation of the crop's middle, 0-1
    residual_roll: float  # degrees the eye line is still off level in the crop (0: levelled by the eyes / no eyes)
    detector_score: float
    confidence: float  # top 4-class probability
    entropy: float  # entropy of the 4-class probabilities / ln 4

    def features(self) -> np.ndarray:
        """The model's inputs in :data:`areya.detectors.quality_fit.FEATURES` order."""
        values = {
            "log2_size": math.log2(max(self.size_px, 1.0)),
            "log_sharpness": math.log1p(max(self.sharpness, 0.0)),
            "exposure_error": abs(self.brightness - MID_GREY),
            "log_contrast": math.log(max(self.contrast, 1e-3)),
            "residual_roll": min(abs(self.residual_roll), 90.0) / 90.0,
            "detector_score": self.detector_score,
            "confidence": self.confidence,
            "entropy": self.entropy,
        }
        return np.array([values[name] for name in FEATURES], np.float64)

    def as_tuple(self) -> tuple[float, ...]:
        return astuple(self)


def residual_roll(box: FaceBox) -> float:
    """Degrees the face's eye line is still off level in the worker's crop (:func:`areya.detectors.crop_face` with
    ``align=0``): 0 when the crop was turned by the eyes or there are no eyes; when the eyes were too far from the
    pass's roll, how far they are from it; eyes that do not fit the box at all: :data:`IMPLAUSIBLE_EYES_ROLL`."""
    if box.eyes is None or box.eye_roll() is not None:
        return 0.0
    seen = box.eye_roll(max_offset=180.0)
    if seen is None:
        return IMPLAUSIBLE_EYES_ROLL
    return abs((seen - box.roll + 180.0) % 360.0 - 180.0)


def face_signals(crop: np.ndarray, box: FaceBox, probs4: Sequence[float] | np.ndarray) -> FaceSignals:
    """The signals of a face: the worker's ``crop`` of it (gray or BGR, any size), the detector's ``box`` and the
    classifier's calibrated 4-class probabilities ``probs4``."""
    import cv2

    arr = np.asarray(crop)
    if arr.ndim not in (2, 3) or arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"expected a face crop (H, W) or (H, W, C), got shape {arr.shape}")
    gray = arr if arr.ndim == 2 else cv2.cvtColor(arr[:, :, :3], cv2.COLOR_BGR2GRAY)
    gray = gray.astype(np.uint8) if gray.dtype != np.uint8 else gray
    side = CLASSIFIER_SIDE
    interp = cv2.INTER_AREA if min(gray.shape) > side else cv2.INTER_LINEAR
    small = cv2.resize(gray, (side, side), interpolation=interp).astype(np.float32)
    sharp = float(cv2.Laplacian(small, cv2.CV_32F).var())
    h, w = gray.shape
    my, mx = round(h * (1 - CENTRE) / 2), round(w * (1 - CENTRE) / 2)
    middle = gray[my : h - my, mx : w - mx].astype(np.float32) / 255.0
    p = np.clip(np.asarray(probs4, np.float64), 1e-9, 1.0)
    p = p / p.sum()
    return FaceSignals(
        size_px=float(max(box.w, box.h)),
        sharpness=sharp,
        brightness=float(middle.mean()),
        contrast=float(middle.std()),
        residual_roll=residual_roll(box),
        detector_score=float(min(max(box.score, 0.0), 1.0)),
        confidence=float(p.max()),
        entropy=float(-(p * np.log(p)).sum() / math.log(len(p))),
    )


def quality_score(signals: FaceSignals) -> float:
    """The predicted chance that the face's 4-class answer is right (:mod:`areya.detectors.quality_fit`)."""
    z = (signals.features() - np.asarray(MEAN)) / np.asarray(SCALE)
    logit = BIAS + float(np.dot(np.asarray(WEIGHTS), z))
    return float(1.0 / (1.0 + math.exp(-max(min(logit, 40.0), -40.0))))


def face_quality(crop: np.ndarray, box: FaceBox, probs4: Sequence[float] | np.ndarray) -> float:
    """:func:`quality_score` of :func:`face_signals`: in [0, 1]."""
    return quality_score(face_signals(crop, box, probs4))
