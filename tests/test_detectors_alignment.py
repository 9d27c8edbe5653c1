"""Eye-based alignment: BlazeFace's eye landmarks travel with the box (through zone crops and rotated passes), say
the face's roll, and :func:`crop_face` levels the eye line for the classifier.  Generated data only (the
astronaut of scikit-image is the one real face, shipped with that package)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from areya.detectors import FaceBox, create_detector, crop_face
from areya.detectors.rotation import box_from_rotated, rotate_frame
from areya.detectors.zones import Window, crop_box_to_frame


def test_eye_roll_is_the_turn_that_levels_the_eyes() -> None:
    level = FaceBox(100, 100, 100, 100, eyes=(130.0, 140.0, 170.0, 140.0))
    assert level.eye_roll() == pytest.approx(0.0)
    # the face turned 30 degrees counter-clockwise on screen: its left eye (image right) rises (smaller y)
    ccw = FaceBox(
        100,
        100,
        100,
        100,
        eyes=(130.0, 150.0, 130.0 + 40 * math.cos(math.radians(30)), 150.0 - 40 * math.sin(math.radians(30))),
    )
    assert ccw.eye_roll() == pytest.approx(30.0)  # turn it 30 degrees clockwise to make it upright
    assert FaceBox(100, 100, 100, 100).eye_roll() is None  # no landmarks (Haar)
    assert FaceBox(100, 100, 100, 100, eyes=(150.0, 150.0, 155.0, 150.0)).eye_roll() is None  # 5 px apart: noise
    # found in the upright pass (roll 0) but the eyes say upside down: the landmarks are not trusted
    assert FaceBox(100, 100, 100, 100, eyes=(170.0, 140.0, 130.0, 140.0)).eye_roll() is None
    assert FaceBox(100, 100, 100, 100, roll=180.0, eyes=(170.0, 140.0, 130.0, 140.0)).eye_roll() == 180.0


def test_eyes_follow_the_box_out_of_a_zone_crop_and_a_turned_view() -> None:
    in_crop = FaceBox(10, 20, 50, 50, 0.9, 0.0, (20.0, 35.0, 45.0, 35.0))
    mapped = crop_box_to_frame(in_crop, Window(300, 200, 400, 400), scale=0.5)
    assert mapped.as_tuple() == (320, 240, 100, 100)
    assert mapped.eyes == pytest.approx((340.0, 270.0, 390.0, 270.0))

    frame = np.zeros((480, 640), np.uint8)
    _, matrix = rotate_frame(frame, 90)  # the frame turned clockwise: 480 wide, 640 tall
    seen = FaceBox(100, 200, 60, 60, 0.9, 0.0, (115.0, 220.0, 145.0, 220.0))  # level in the turned view
    back = box_from_rotated(seen, matrix, 90)
    rx, ry, lx, ly = back.eyes
    assert back.roll == 90
    # in the frame the eye line runs upwards (the face lies on its side): it levels with a 90-degree turn
    assert lx == pytest.approx(rx, abs=1e-6) and ly < ry
    assert back.eye_roll() == pytest.approx(90.0)


def _astronaut_rolled(angle_ccw: float) -> tuple[np.ndarray, FaceBox]:
    data = pytest.importorskip("skimage.data")
    head = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 100:350]  # face ~100 px around (125, 125)
    frame = np.full((480, 640, 3), (200, 205, 210), np.uint8)
    frame[110:370, 200:450] = head
    m = cv2.getRotationMatrix2D((325.0, 235.0), angle_ccw, 1.0)  # OpenCV: positive = counter-clockwise
    frame = cv2.warpAffine(frame, m, (640, 480), borderMode=cv2.BORDER_REPLICATE)
    return frame, FaceBox(275, 185, 100, 100)


def test_blazeface_gives_eyes_and_an_aligned_crop_levels_them() -> None:
    frame, truth = _astronaut_rolled(25.0)
    det = create_detector("blazeface", zone_mode="frame")
    (face,) = [f for f in det.detect(frame) if f.iou(truth) > 0.3]
    assert face.eyes is not None
    rx, _, lx, _ = face.eyes
    assert rx < lx  # the person's right eye is on the image's left
    assert 10.0 < face.eye_roll() < 35.0  # BlazeFace's landmarks understate a roll (about 18 for 25 here)

    def similarity(a: np.ndarray, b: np.ndarray) -> float:
        a, b = (cv2.cvtColor(cv2.resize(x, (64, 64)), cv2.COLOR_BGR2GRAY).astype(np.float32).ravel() for x in (a, b))
        return float(np.corrcoef(a, b)[0, 1])

    upright = crop_face(frame, FaceBox(*face.as_tuple(), face.score, 25.0))  # turned by the true roll
    aligned = crop_face(frame, face)
    as_found = crop_face(frame, face, align=None)  # no eyes used: the face stays rolled in its crop
    assert similarity(aligned, upright) > similarity(as_found, upright) + 0.05


def test_small_eye_rolls_below_the_threshold_are_left_alone() -> None:
    frame = np.tile(np.arange(200, dtype=np.uint8), (200, 1))
    face = FaceBox(50, 50, 100, 100, eyes=(80.0, 90.0, 120.0, 90.0 - 40 * math.tan(math.radians(5))))
    assert face.eye_roll() == pytest.approx(5.0, abs=0.1)
    untouched = crop_face(frame, face, margin=0.0, align=10.0)
    np.testing.assert_array_equal(untouched, frame[50:150, 50:150])
    turned = crop_face(frame, face, margin=0.0, align=0.0)
    assert not np.array_equal(turned, untouched)
