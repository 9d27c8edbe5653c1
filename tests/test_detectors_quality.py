"""Face quality (:mod:`areya.detectors.quality`): what it measures, that the fitted model keeps the expected signs,
and that through the worker's path (detector, crop, shipped classifier) it falls for a tiny, blurred or dark face
and rises for a sharp lit one.  Generated scenes of the real FER faces Areya ships for its demo, and the
astronaut of scikit-image."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from areya.config import Settings
from areya.detectors import FaceBox, create_detector, crop_face
from areya.detectors.quality import SIGNS, FaceSignals, face_quality, face_signals, quality_score, residual_roll
from areya.detectors.quality_fit import BIAS, FEATURES, MEAN, SCALE, WEIGHTS

SURE = np.array([0.04, 0.04, 0.88, 0.04])  # a sure answer, the same for every face where the answer is fixed
ASTRONAUT_FACE = FaceBox(175, 75, 100, 100)  # forehead to chin, ear to ear (tests/test_detectors.py)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def test_the_fitted_model_has_a_weight_of_the_expected_sign_per_signal() -> None:
    assert len(FEATURES) == len(MEAN) == len(SCALE) == len(WEIGHTS) == len(FaceSignals.__dataclass_fields__) == 8
    assert set(FEATURES) == set(SIGNS) and all(s > 0 for s in SCALE)
    assert all(SIGNS[name] * w >= 0 for name, w in zip(FEATURES, WEIGHTS, strict=True))
    assert sum(w != 0 for w in WEIGHTS) >= 4  # not the classifier's certainty alone


def test_signals_measure_size_sharpness_exposure_roll_and_certainty(astronaut: np.ndarray) -> None:
    box = FaceBox(*ASTRONAUT_FACE.as_tuple(), 0.93)
    lit = face_signals(crop_face(astronaut, box), box, SURE)
    assert lit.size_px == 100 and lit.detector_score == pytest.approx(0.93) and lit.residual_roll == 0.0
    assert lit.confidence == pytest.approx(0.88) and 0.0 < lit.entropy < 0.5
    dark = face_signals(crop_face((astronaut * 0.25).astype(np.uint8), box), box, SURE)
    assert dark.brightness < 0.3 * lit.brightness + 0.01 and dark.contrast < 0.3 * lit.contrast + 0.01
    blurred = face_signals(crop_face(cv2.GaussianBlur(astronaut, (0, 0), 4.0), box), box, SURE)
    assert blurred.sharpness < 0.2 * lit.sharpness
    unsure = face_signals(crop_face(astronaut, box), box, np.full(4, 0.25))
    assert unsure.entropy == pytest.approx(1.0) and unsure.confidence == pytest.approx(0.25)
    with pytest.raises(ValueError):
        face_signals(np.zeros((1, 1), np.uint8), FaceBox(0, 0, 1, 1), SURE)


def test_with_the_same_answer_a_flatter_face_a_weaker_detection_or_an_unsure_answer_never_scores_higher(
    astronaut: np.ndarray,
) -> None:
    box = FaceBox(*ASTRONAUT_FACE.as_tuple(), 0.9)
    crop = crop_face(astronaut, box)
    sharp_lit = face_quality(crop, box, SURE)
    flat = face_quality(crop_face(((astronaut - 128.0) * 0.3 + 128).astype(np.uint8), box), box, SURE)
    blurred = face_quality(crop_face(cv2.GaussianBlur(astronaut, (0, 0), 5.0), box), box, SURE)
    weak = face_quality(crop, FaceBox(*box.as_tuple(), 0.55), SURE)
    unsure = face_quality(crop, box, np.array([0.3, 0.2, 0.25, 0.25]))
    assert flat <= sharp_lit and blurred <= sharp_lit
    assert weak < sharp_lit and unsure < sharp_lit
    assert min(flat, blurred, weak, unsure) >= 0.0 and sharp_lit <= 1.0


def _scene(face48: np.ndarray, size: int, kind: str) -> tuple[np.ndarray, FaceBox]:
    """A pale 640x480 frame with a FER face (and a ring of its own border) whose face box is ``size`` px at the
    centre; ``blurred``: smeared as by a moving head; ``dark``: a night frame, 15 % of the light, sensor noise."""
    frame = np.full((480, 640, 3), (200, 205, 210), np.uint8)
    ring = cv2.copyMakeBorder(face48, 14, 14, 14, 14, cv2.BORDER_REPLICATE)
    side = round(size * ring.shape[0] / (0.9 * 48))
    patch = cv2.cvtColor(cv2.resize(ring, (side, side), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
    frame[240 - side // 2 : 240 - side // 2 + side, 320 - side // 2 : 320 - side // 2 + side] = patch
    if kind == "blurred":
        frame = cv2.GaussianBlur(frame, (0, 0), size / 20)
    elif kind == "dark":
        noise = np.random.default_rng(1).normal(0, 5, frame.shape)
        frame = np.clip(frame * 0.15 + noise, 0, 255).astype(np.uint8)
    return frame, FaceBox(320 - size // 2, 240 - size // 2, size, size)


def test_through_the_worker_path_quality_falls_for_tiny_blurred_and_dark_faces() -> None:
    from areya.camera.facepack import load_face_pack
    from areya.emotion.inference import EmotionClassifier

    try:
        classifier = EmotionClassifier.load()
    except (FileNotFoundError, OSError) as exc:
        pytest.skip(f"shipped emotion model not available: {exc}")
    pack = load_face_pack()
    faces = [pack.image(i) for c in ("angry", "happy", "neutral", "sad") for i in pack.indices(c, agreeing=True)[:4]]
    detector = create_detector("blazeface")
    zone = (0.25, 0.2, 0.75, 0.8)  # the bed around the face
    mean: dict[str, float] = {}
    for kind, size in (("lit", 96), ("tiny", 34), ("blurred", 96), ("dark", 96)):
        qualities = []
        for face in faces:
            frame, truth = _scene(face, size, "lit" if kind == "tiny" else kind)
            best = max(detector.detect_in_zones(frame, [zone]), key=lambda b: b.iou(truth), default=None)
            if best is None or best.iou(truth) < 0.3:
                continue  # not found: not read at all
            crop = crop_face(frame, best)
            qualities.append(face_quality(crop, best, classifier.classify([crop])[0].probs4))
        assert len(qualities) >= len(faces) // 2, kind
        mean[kind] = float(np.mean(qualities))
    threshold = Settings().min_face_quality
    assert mean["lit"] >= threshold + 0.15
    for poor in ("tiny", "blurred", "dark"):
        assert mean[poor] <= mean["lit"] - 0.1, (poor, mean)
    assert mean["blurred"] < 0.5  # predicted more often wrong than right


def test_residual_roll_is_what_the_crop_leaves_of_the_eye_line() -> None:
    level = FaceBox(0, 0, 100, 100, 0.9, 0.0, (30.0, 40.0, 70.0, 40.0))
    assert residual_roll(level) == 0.0  # turned by its eyes (they are level)
    assert residual_roll(FaceBox(0, 0, 100, 100)) == 0.0  # no eyes (Haar): nothing known
    # eyes 60 degrees off the roll of the pass that found the face: not used to turn it, 60 degrees are left
    a = math.radians(60)
    eyes = (50 - 20 * math.cos(a), 50 + 20 * math.sin(a), 50 + 20 * math.cos(a), 50 - 20 * math.sin(a))
    off = FaceBox(0, 0, 100, 100, 0.9, 0.0, eyes)
    assert off.eye_roll() is None and residual_roll(off) == pytest.approx(60.0, abs=0.5)
    assert residual_roll(FaceBox(0, 0, 100, 100, 0.9, 0.0, (50.0, 50.0, 52.0, 50.0))) == 45.0  # eyes too close


def test_quality_is_the_fitted_logistic_models_probability() -> None:
    signals = FaceSignals(80.0, 150.0, 0.45, 0.2, 0.0, 0.9, 0.8, 0.4)
    z = (signals.features() - np.asarray(MEAN)) / np.asarray(SCALE)
    assert quality_score(signals) == pytest.approx(1.0 / (1.0 + math.exp(-(float(np.dot(WEIGHTS, z)) + BIAS))))
