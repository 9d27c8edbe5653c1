"""The second look at empty zones (``zone_relook``): a bed zone where the upright passes found no face is looked at
again in smaller windows, so a face smeared by motion that one window scale misses is found at another.  Generated
data only (the astronaut of scikit-image is the one real face, shipped with that package)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from detector_fakes import WideBlobs

from areya.detectors import DEFAULT_ZONE_RELOOK, create_detector
from areya.detectors.boxes import FaceBox
from areya.detectors.options import check_camera_options, check_options
from areya.detectors.zones import detect_in_zones

SIX_BEDS = [(x / 3, y / 2, (x + 1) / 3, (y + 1) / 2) for y in range(2) for x in range(3)]  # 1280 x 720, 3 x 2
TWO_BEDS = [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)]  # a 640 x 480 frame


class ViewSizes(WideBlobs):
    """WideBlobs that records the side of every view it is given."""

    def __init__(self) -> None:
        self.sides: list[int] = []

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        self.sides.append(max(frame_bgr.shape[:2]))
        return super().detect(frame_bgr)


def _blurred_astronaut_ward() -> tuple[np.ndarray, FaceBox]:
    """A 1280x720 six-bed frame, the astronaut's face 44 px wide in the top middle bed, smeared 13 px sideways
    (a head that moved during the exposure); the face's box."""
    data = pytest.importorskip("skimage.data")
    head = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 100:350]  # face ~100 px wide at (75, 75)
    head = cv2.resize(head, None, fx=0.44, fy=0.44, interpolation=cv2.INTER_AREA)
    smear = np.zeros((13, 13), np.float32)
    smear[6, :] = 1.0 / 13
    head = cv2.filter2D(head, -1, smear, borderType=cv2.BORDER_REPLICATE)
    frame = np.full((720, 1280, 3), (200, 205, 210), np.uint8)
    x, y = 560, 80
    frame[y : y + head.shape[0], x : x + head.shape[1]] = head
    return frame, FaceBox(x + 33, y + 33, 44, 44)


def test_a_face_blurred_by_motion_is_found_by_the_second_look_and_not_by_the_first_window_scale() -> None:
    frame, truth = _blurred_astronaut_ward()
    plain = create_detector("blazeface", zone_relook=0)
    assert not [f for f in plain.detect_in_zones(frame, SIX_BEDS) if f.iou(truth) > 0.3]
    found = create_detector("blazeface").detect_in_zones(frame, SIX_BEDS)
    (face,) = [f for f in found if f.iou(truth) > 0.4]
    assert face.roll == 0.0  # found upright, not by a turned look
    assert 1 / 3 <= face.center()[0] / 1280 < 2 / 3 and face.center()[1] / 720 < 0.5  # the top middle bed's


def test_the_second_look_runs_only_on_zones_without_a_face_in_smaller_windows() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[225:255, 130:190] = 255  # an upright 'face' in the left bed; the right bed is empty
    first, second = ViewSizes(), ViewSizes()
    plain = detect_in_zones(first, frame, TWO_BEDS, mode="zones", window_px=240)
    again = detect_in_zones(second, frame, TWO_BEDS, mode="zones", window_px=240, relook=0.75)
    assert again == plain and len(plain) == 1
    extra = second.sides[len(first.sides) :]
    assert second.sides[: len(first.sides)] == first.sides  # the first pass as before
    assert extra and max(extra) == 180  # then the empty right bed alone, in windows of 0.75 x 240 px
    assert len(extra) > len(first.sides) / 2  # smaller windows: more of them over one bed than over each before
    frame[225:255, 450:510] = 255  # a face in the right bed too: no zone is empty, no second look
    both, both_again = ViewSizes(), ViewSizes()
    detect_in_zones(both, frame, TWO_BEDS, mode="zones", window_px=240)
    detect_in_zones(both_again, frame, TWO_BEDS, mode="zones", window_px=240, relook=0.75)
    assert both_again.sides == both.sides


def test_the_second_look_finds_a_face_only_the_smaller_windows_see_whole() -> None:
    """A fake that sees a face only when it fills a fifth of the view: a 40 px face is a sixth of the first pass's
    240 px windows and a fifth of the second look's 180 px ones."""

    class NeedsLargeFaces(WideBlobs):
        def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
            side = max(frame_bgr.shape[:2])
            return [b for b in super().detect(frame_bgr) if b.w >= side / 5]

    frame = np.zeros((480, 640, 3), np.uint8)
    frame[230:250, 420:460] = 255  # a 40 px 'face' in the right bed
    assert detect_in_zones(NeedsLargeFaces(), frame, TWO_BEDS, mode="zones", window_px=240) == []
    (face,) = detect_in_zones(NeedsLargeFaces(), frame, TWO_BEDS, mode="zones", window_px=240, relook=0.75)
    assert face.as_tuple() == (420, 230, 40, 20)


def test_zone_relook_is_an_option_on_by_default() -> None:
    assert DEFAULT_ZONE_RELOOK == 0.75
    assert create_detector("haar").zone_relook == 0.75
    assert create_detector("haar", zone_relook=0).zone_relook == 0.0
    assert check_options("blazeface", {"zone_relook": "0.5"}) == {"zone_relook": 0.5}
    assert check_camera_options("blazeface", "zone_relook=0") == {"zone_relook": 0.0}
    for bad in ("1", "-0.1", "half"):
        with pytest.raises(ValueError, match="zone_relook"):
            check_options("blazeface", {"zone_relook": bad})
    with pytest.raises(ValueError, match="zone_relook"):
        create_detector("haar", zone_relook=1.5)


def test_a_zone_the_smaller_windows_cut_the_same_way_is_not_looked_at_twice() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    small_zone = [(0.1, 0.1, 0.25, 0.3)]  # 96 x 96 px padded to about 115: one window at 240 px and at 180 px
    first, second = ViewSizes(), ViewSizes()
    detect_in_zones(first, frame, small_zone, mode="zones", window_px=240)
    detect_in_zones(second, frame, small_zone, mode="zones", window_px=240, relook=0.75)
    assert len(first.sides) == 1 and second.sides == first.sides
