"""Box fit: BlazeFace's box calibration (``box_scale`` / ``box_shift``) and rolled faces found again upright in a
turned window (``redetect_roll``, :func:`areya.detectors.rotation.redetect_rolled`).  Generated data only (the
astronaut of scikit-image is the one real face, shipped with that package)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from detector_fakes import WideBlobs, blob_boxes

from areya.detectors import FaceBox, FaceDetector, create_detector
from areya.detectors.blazeface import BOX_SCALE, BOX_SHIFT, CALIBRATED_BOX, calibrate_boxes
from areya.detectors.options import check_options
from areya.detectors.rotation import REDETECT_ROLL, redetect_rolled
from areya.detectors.zones import detect_in_zones


class LooseBox(FaceDetector):
    """A fake whole-frame pass: always the same loose box, with eyes."""

    name = "loose"

    def __init__(self, face: FaceBox) -> None:
        self.face = face

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        return [self.face]


def rolled_blob(angle_ccw: float) -> tuple[np.ndarray, FaceBox]:
    """A 60 x 30 white 'face' rolled ``angle_ccw`` degrees around (320, 240), and the loose axis-aligned box of it
    an upright pass would give, with eyes along its long axis."""
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[225:255, 290:350] = 255
    m = cv2.getRotationMatrix2D((320.0, 240.0), angle_ccw, 1.0)  # OpenCV: positive = counter-clockwise
    frame = cv2.warpAffine(frame, m, (640, 480), flags=cv2.INTER_NEAREST)
    eyes = [m @ np.array([x, 235.0, 1.0]) for x in (305.0, 335.0)]
    (bound,) = blob_boxes(frame)
    return frame, FaceBox(*bound.as_tuple(), 0.8, 0.0, (*eyes[0], *eyes[1]))


def test_a_rolled_face_is_boxed_again_upright_around_its_centre() -> None:
    frame, loose = rolled_blob(60.0)
    assert loose.eye_roll(max_offset=180.0) == pytest.approx(60.0, abs=0.5)
    (face,) = redetect_rolled(WideBlobs(), frame, [loose], min_roll=20)
    assert face.roll == pytest.approx(60.0, abs=0.5)
    assert face.score == loose.score and face.eyes == loose.eyes  # WideBlobs gives no eyes: the old ones stay
    cx, cy = face.center()
    assert (cx, cy) == (pytest.approx(320.0, abs=2.0), pytest.approx(240.0, abs=2.0))
    assert (face.w, face.h) == (pytest.approx(60, abs=3), pytest.approx(30, abs=3))  # the face's own size
    assert loose.w < loose.h  # the loose box is the bounds of the turned face


def test_faces_rolled_less_than_min_roll_or_not_found_again_stay() -> None:
    frame, loose = rolled_blob(10.0)
    assert redetect_rolled(WideBlobs(), frame, [loose], min_roll=20) == [loose]
    frame, loose = rolled_blob(60.0)
    assert redetect_rolled(WideBlobs(), frame, [loose], min_roll=0) == [loose]  # 0: off
    assert redetect_rolled(WideBlobs(), np.zeros_like(frame), [loose], min_roll=20) == [loose]  # nothing there
    no_eyes = FaceBox(*loose.as_tuple(), loose.score)
    assert redetect_rolled(WideBlobs(), frame, [no_eyes], min_roll=20) == [no_eyes]


def test_detect_in_zones_redetects_rolled_faces_with_the_crop_detector() -> None:
    frame, loose = rolled_blob(-70.0)
    found = detect_in_zones(LooseBox(loose), frame, [], mode="frame", crop_detector=WideBlobs(), redetect_roll=20)
    assert len(found) == 1 and found[0].roll == pytest.approx(-70.0, abs=0.5)
    assert detect_in_zones(LooseBox(loose), frame, [], mode="frame", crop_detector=WideBlobs()) == [loose]
    zones = [(0.3, 0.3, 0.7, 0.7)]
    found = detect_in_zones(LooseBox(loose), frame, zones, mode="both", crop_detector=WideBlobs(), redetect_roll=20)
    assert [f.roll for f in found] == [pytest.approx(-70.0, abs=0.5)]


def test_redetection_is_on_by_default_and_configurable() -> None:
    assert REDETECT_ROLL == 20
    det = create_detector("haar")
    assert det.redetect_roll == REDETECT_ROLL
    assert create_detector("haar", redetect_roll=0).redetect_roll == 0
    assert check_options("blazeface", {"redetect_roll": "30"}) == {"redetect_roll": 30}
    with pytest.raises(ValueError):
        create_detector("haar", redetect_roll=91)
    with pytest.raises(ValueError):
        check_options("blazeface", {"redetect_roll": "-1"})


def test_calibrate_boxes_scales_around_the_centre_and_shifts_by_the_height() -> None:
    boxes = np.array([[100.0, 200.0, 200.0, 300.0]])
    ((x0, y0, x1, y1),) = calibrate_boxes(boxes, 1.1, -0.05)
    assert (x1 - x0, y1 - y0) == (pytest.approx(110.0), pytest.approx(110.0))
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == (pytest.approx(150.0), pytest.approx(245.0))
    assert np.allclose(calibrate_boxes(boxes, 1.0, 0.0), boxes)


def test_blazeface_box_calibration_is_an_option_and_off_by_default() -> None:
    data = pytest.importorskip("skimage.data")
    frame = np.full((480, 640, 3), (200, 205, 210), np.uint8)
    frame[110:370, 200:450] = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 100:350]
    (raw,) = create_detector("blazeface", zone_mode="frame", box_scale=1.0, box_shift=0.0).detect(frame)
    (default,) = create_detector("blazeface", zone_mode="frame").detect(frame)
    assert (BOX_SCALE, BOX_SHIFT) == (1.0, 0.0) and default.as_tuple() == raw.as_tuple()
    (cal,) = create_detector("blazeface", zone_mode="frame", **CALIBRATED_BOX).detect(frame)
    scale, shift = CALIBRATED_BOX["box_scale"], CALIBRATED_BOX["box_shift"]
    assert cal.w == pytest.approx(raw.w * scale, abs=1.5) and cal.h == pytest.approx(raw.h * scale, abs=1.5)
    assert cal.center()[0] == pytest.approx(raw.center()[0], abs=1.0)
    assert cal.center()[1] == pytest.approx(raw.center()[1] + shift * raw.h, abs=1.0)
    assert cal.eyes == pytest.approx(raw.eyes, abs=0.5)  # the eyes are not moved
    assert check_options("blazeface", {"box_scale": "1", "box_shift": "0"}) == {"box_scale": 1.0, "box_shift": 0.0}


def test_blazeface_finds_a_real_face_rolled_60_degrees_again_upright() -> None:
    data = pytest.importorskip("skimage.data")
    head = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 100:350]
    frame = np.full((480, 640, 3), (200, 205, 210), np.uint8)
    frame[110:370, 200:450] = head
    m = cv2.getRotationMatrix2D((325.0, 235.0), 60.0, 1.0)
    frame = cv2.warpAffine(frame, m, (640, 480), borderMode=cv2.BORDER_REPLICATE)
    found = create_detector("blazeface", zone_mode="frame").detect_in_zones(frame, [])
    rolled = [f for f in found if math.dist(f.center(), (325.0, 235.0)) < 40]
    assert rolled and 25.0 < rolled[0].roll < 85.0  # found again in a window turned by its eye roll
    off = create_detector("blazeface", zone_mode="frame", redetect_roll=0).detect_in_zones(frame, [])
    assert [f.roll for f in off if math.dist(f.center(), (325.0, 235.0)) < 40] == [0.0]  # the upright pass's box


def test_a_model_file_option_is_not_handed_to_the_zone_crops_backend() -> None:
    # model_path names the full-range model: the short-range detector run on zone crops keeps its own file
    from areya.detectors.blazeface import MODELS, model_dir

    full = model_dir() / MODELS["full"].filename
    detector = create_detector("blazeface", model_path=str(full))
    crop = detector.crop_detector
    assert crop is not None and crop.name == "blazeface-short"
    frame = np.full((480, 640, 3), 128, np.uint8)
    zone = SimpleNamespace(x0=0.1, y0=0.1, x1=0.5, y1=0.6)
    assert detector.detect_in_zones(frame, [zone]) == []  # runs: no shape mismatch


def test_two_loose_boxes_of_one_rolled_face_found_again_are_one_face() -> None:
    frame, loose = rolled_blob(70.0)
    # two upright passes' boxes of the same lying face (its two halves, from two zone windows): they overlap too
    # little to be merged, and each is found again upright around its own centre as the whole face
    x, y, w, h = loose.as_tuple()
    halves = [
        FaceBox(x, y, w, h // 2 + 6, 0.8, 0.0, loose.eyes),
        FaceBox(x, y + h // 2 - 6, w, h - h // 2 + 6, 0.7, 0.0, loose.eyes),
    ]
    assert halves[0].iou(halves[1]) < 0.3
    (face,) = redetect_rolled(WideBlobs(), frame, halves, min_roll=20)
    assert face.score == 0.8 and face.roll == pytest.approx(70.0, abs=0.5)
    cx, cy = face.center()
    assert (cx, cy) == (pytest.approx(320.0, abs=2.0), pytest.approx(240.0, abs=2.0))
