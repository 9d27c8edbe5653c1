"""The orientation check (``orient_check``): a face whose crop would be turned a half or a quarter turn the wrong
way (eye points read upside down on a small dim face, a lying face boxed by an upright pass) is turned the way the
detector is surest is upright.  Generated frames around the one real face scikit-image ships (the astronaut)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from areya.detectors import create_detector
from areya.detectors.boxes import FaceBox
from areya.detectors.options import check_camera_options, check_options
from areya.detectors.rotation import ORIENT_CHECK, check_orientation


def _lying_astronaut(roll: float) -> tuple[np.ndarray, tuple[float, float]]:
    """A 640x480 grey-walled frame with the astronaut's face (about 90 px) rolled ``roll`` degrees
    counter-clockwise (lying on the side), and its centre."""
    data = pytest.importorskip("skimage.data")
    head = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 80:340]  # the face about 105 px wide
    head = cv2.resize(head, None, fx=0.9, fy=0.9, interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), (190, 196, 200), np.uint8)
    x, y = 200, 120
    frame[y : y + head.shape[0], x : x + head.shape[1]] = head
    centre = (x + 130.0, y + 108.0)  # where the detector boxes the upright face
    turn = cv2.getRotationMatrix2D(centre, roll, 1.0)  # OpenCV: positive angles turn counter-clockwise
    frame = cv2.warpAffine(frame, turn, (640, 480), borderMode=cv2.BORDER_REPLICATE)
    return frame, centre


def _off(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.fixture(scope="module")
def blazeface():
    return create_detector("blazeface")


@pytest.mark.parametrize("wrong_by", [180.0, 90.0, -90.0])
def test_a_lying_face_given_the_wrong_turn_is_turned_upright(blazeface, wrong_by: float) -> None:
    frame, (cx, cy) = _lying_astronaut(75.0)
    side = 96
    wrong = FaceBox(round(cx - side / 2), round(cy - side / 2), side, side, 0.7, 75.0 + wrong_by)
    (fixed,) = check_orientation(blazeface, frame, [wrong])
    assert _off(fixed.roll, 75.0) <= 25.0, fixed
    assert fixed.score == 0.7  # the first pass's score is kept
    assert fixed.as_tuple() == wrong.as_tuple()  # the box the scan found is kept: only the turn changes
    assert fixed.eyes is not None and fixed.eye_roll() is not None  # and the eyes seen upright come with it


def test_a_face_turned_the_right_way_stays_exactly_as_it_was(blazeface) -> None:
    frame, (cx, cy) = _lying_astronaut(75.0)
    right = FaceBox(round(cx - 48), round(cy - 48), 96, 96, 0.8, 75.0)
    assert check_orientation(blazeface, frame, [right]) == [right]


def test_the_check_is_off_at_margin_zero_and_leaves_what_it_cannot_find(blazeface) -> None:
    frame, (cx, cy) = _lying_astronaut(75.0)
    wrong = FaceBox(round(cx - 48), round(cy - 48), 96, 96, 0.7, 255.0)
    assert check_orientation(blazeface, frame, [wrong], margin=0.0) == [wrong]
    nothing = FaceBox(560, 400, 60, 60, 0.6, 180.0)  # a box on the bare wall: no turn finds a face there
    assert check_orientation(blazeface, frame, [nothing]) == [nothing]


def test_the_full_zone_scan_turns_a_face_found_upside_down() -> None:
    """Through detect_in_zones: the zone scan's faces are checked, so the crop of an upside-down face is upright."""
    frame, (cx, cy) = _lying_astronaut(180.0)  # the face upside down in the bed
    zone = [(0.0, 0.0, 1.0, 1.0)]
    truth = FaceBox(round(cx - 48), round(cy - 48), 96, 96)

    def crop_roll(**options: float) -> float:
        found = create_detector("blazeface", **options).detect_in_zones(frame, zone)
        (face,) = [f for f in found if f.iou(truth) > 0.2]
        eye_roll = face.eye_roll()
        return eye_roll if eye_roll is not None else face.roll  # what crop_face turns the crop by

    assert _off(crop_roll(orient_check=0), 180.0) > 90.0  # without the check: its eye points read the wrong way up
    assert _off(crop_roll(), 180.0) <= 25.0


def test_orient_check_is_an_option_on_by_default() -> None:
    assert create_detector("haar").orient_check == ORIENT_CHECK == 0.1
    assert create_detector("haar", orient_check=0).orient_check == 0.0
    assert check_options("blazeface", {"orient_check": "0.2"}) == {"orient_check": 0.2}
    assert check_camera_options("blazeface", "orient_check=0") == {"orient_check": 0.0}
    for bad in ("-0.1", "1", "x"):
        with pytest.raises(ValueError, match="orient_check"):
            check_options("blazeface", {"orient_check": bad})
    with pytest.raises(ValueError, match="orient_check"):
        create_detector("haar", orient_check=1.5)
