"""Patients lying on their side: a bed zone where no face was found is looked at again turned (``zone_turns``),
and a face found that way is tracked in a window turned upright.  Generated data only (the astronaut of
scikit-image is the one real face, shipped with that package)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from detector_fakes import WideBlobs, blob_boxes

from areya.detectors import DEFAULT_ZONE_TURNS, FaceDetector, create_detector
from areya.detectors.boxes import FaceBox
from areya.detectors.options import check_camera_options, check_options
from areya.detectors.tracking import ZoneTracker
from areya.detectors.zones import detect_in_zones, turned_looks, zone_pixels

ZONES = [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)]  # two beds side by side in a 640 x 480 frame


class CountingBlobs(WideBlobs):
    """WideBlobs that counts the views it is given."""

    def __init__(self) -> None:
        self.views = 0

    def detect(self, frame_bgr: np.ndarray) -> list:
        self.views += 1
        return super().detect(frame_bgr)


def ward(lying_at: tuple[int, int] | None, upright_at: tuple[int, int] | None) -> np.ndarray:
    """A black frame with a 'face' lying on its side (a 30 x 60 blob: rolled 90 degrees) and/or an upright one
    (60 x 30), centred at the given points."""
    frame = np.zeros((480, 640, 3), np.uint8)
    if lying_at is not None:
        x, y = lying_at
        frame[y - 30 : y + 30, x - 15 : x + 15] = 255
    if upright_at is not None:
        x, y = upright_at
        frame[y - 15 : y + 15, x - 30 : x + 30] = 255
    return frame


def test_a_face_lying_on_its_side_in_an_empty_zone_is_found_turned_with_its_roll() -> None:
    frame = ward(lying_at=(160, 240), upright_at=None)
    assert detect_in_zones(WideBlobs(), frame, ZONES, mode="zones") == []  # the upright passes miss it
    (face,) = detect_in_zones(WideBlobs(), frame, ZONES, mode="zones", turns=(90, 270))
    assert face.center() == (pytest.approx(160, abs=2), pytest.approx(240, abs=2))
    assert (face.w, face.h) == (pytest.approx(30, abs=2), pytest.approx(60, abs=2))
    assert face.roll in (90.0, -90.0)  # the turn that made it upright
    assert face.x < 320  # the left bed's


def test_zones_with_a_face_get_no_turned_look() -> None:
    both_up = ward(lying_at=None, upright_at=(160, 240))
    both_up[200:230, 420:480] = 255  # a second upright face, in the right bed
    plain, turned = CountingBlobs(), CountingBlobs()
    found = detect_in_zones(plain, both_up, ZONES, mode="zones")
    assert detect_in_zones(turned, both_up, ZONES, mode="zones", turns=(90, 270)) == found
    assert len(found) == 2 and turned.views == plain.views  # no extra views: no zone was empty
    one_empty = ward(lying_at=None, upright_at=(160, 240))
    plain, turned = CountingBlobs(), CountingBlobs()
    detect_in_zones(plain, one_empty, ZONES, mode="zones")
    detect_in_zones(turned, one_empty, ZONES, mode="zones", turns=(90, 270))
    assert turned.views > plain.views  # the empty right bed was looked at turned


def test_a_window_without_a_face_is_looked_at_turned_even_when_its_zone_has_one() -> None:
    # a patient lying at the foot of the bed, a visitor upright at its head: one zone, several windows
    frame = ward(lying_at=(160, 400), upright_at=(100, 60))
    upright = detect_in_zones(WideBlobs(), frame, ZONES[:1], mode="zones", window_px=240)
    assert [f.roll for f in upright] == [0.0]
    found = detect_in_zones(WideBlobs(), frame, ZONES[:1], mode="zones", window_px=240, turns=(90, 270))
    assert sorted(f.roll for f in found) == [0.0, 90.0]
    lying = next(f for f in found if f.roll)
    assert lying.center() == (pytest.approx(160, abs=2), pytest.approx(400, abs=2))


def test_a_zone_stops_at_the_first_turn_that_finds_its_face() -> None:
    frame = ward(lying_at=(160, 240), upright_at=(480, 240))
    det = CountingBlobs()
    found = detect_in_zones(det, frame, ZONES, mode="zones", turns=(90, 270))
    assert sorted(f.roll for f in found) == [0.0, 90.0]
    first = det.views
    det2 = CountingBlobs()
    detect_in_zones(det2, frame, ZONES, mode="zones", turns=(90,))
    assert first == det2.views  # 270 was not tried once 90 found the face


def test_the_tracker_follows_a_face_lying_on_its_side_between_full_scans() -> None:
    det = create_detector("haar", zone_mode="zones", track=4)
    det.crop_detector = WideBlobs()  # the fake runs on the zone crops and tracking windows
    det.detect = lambda frame: []  # noqa: ARG005 - the whole-frame pass finds nothing
    tracker = ZoneTracker(4)
    frame = ward(lying_at=(160, 240), upright_at=None)
    first = tracker.detect(det, frame, ZONES, camera=1)
    moved = ward(lying_at=(166, 244), upright_at=None)
    second = tracker.detect(det, moved, ZONES, camera=1)
    assert tracker.scans == 1 and tracker.tracked == 1
    assert [f.roll for f in first] == [90.0] and len(second) == 1
    assert second[0].center() == (pytest.approx(166, abs=2), pytest.approx(244, abs=2))
    assert second[0].roll == pytest.approx(90.0)


def test_zone_rescans_on_tracking_frames_take_turned_looks_only_when_asked() -> None:
    """A face lying on its side appears in the empty right bed on a tracking frame: the rescan of that bed is
    upright by default (the face waits for a full scan's turned look); with ``rescan_turns`` it is found turned
    on that frame."""
    before = ward(lying_at=None, upright_at=(160, 240))
    after = ward(lying_at=(480, 240), upright_at=(160, 240))
    for rescan_turns, rolls in ((False, [0.0]), (True, [0.0, 90.0])):
        det = create_detector("haar", zone_mode="zones", track=4)
        det.crop_detector = CountingBlobs()
        det.detect = lambda frame: []  # noqa: ARG005 - the whole-frame pass finds nothing
        tracker = ZoneTracker(4, rescan_turns=rescan_turns)
        assert [f.roll for f in tracker.detect(det, before, ZONES, camera=1)] == [0.0]
        found = tracker.detect(det, after, ZONES, camera=1)
        assert (tracker.scans, tracker.tracked, tracker.rescans) == (1, 1, 1)  # the right bed was rescanned
        assert sorted(abs(f.roll) for f in found) == rolls
    with pytest.raises(ValueError, match="rescan must be None or an integer >= 0"):
        ZoneTracker(4, rescan=-1)


def test_zone_turns_is_an_option_on_by_default() -> None:
    assert DEFAULT_ZONE_TURNS == (90, 270)
    assert create_detector("haar").zone_turns == (90, 270)
    assert create_detector("haar", zone_turns="none").zone_turns == ()
    assert create_detector("haar", zone_turns="0").zone_turns == ()
    assert check_options("blazeface", {"zone_turns": "90"}) == {"zone_turns": (90,)}
    assert check_camera_options("blazeface", "zone_turns=270") == {"zone_turns": (270,)}
    with pytest.raises(ValueError, match="zone_turns"):
        check_options("blazeface", {"zone_turns": "ninety"})
    with pytest.raises(ValueError):
        create_detector("haar", zone_turns="12.5")


def test_blazeface_finds_a_real_face_lying_on_its_side_in_a_bed_zone() -> None:
    data = pytest.importorskip("skimage.data")
    head = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 100:350]
    frame = np.full((720, 1280, 3), (200, 205, 210), np.uint8)
    lying = cv2.rotate(cv2.resize(head, (125, 130)), cv2.ROTATE_90_COUNTERCLOCKWISE)  # head to the left
    frame[300:425, 200:330] = lying
    zones = [(0.0, 0.2, 0.5, 0.9)]
    near = [
        f for f in create_detector("blazeface").detect_in_zones(frame, zones) if math.dist(f.center(), (265, 362)) < 40
    ]
    assert near and abs(abs(near[0].roll) - 90.0) < 30.0  # found, and turned upright for the classifier
    off = create_detector("blazeface", zone_turns="none", redetect_roll=0, orient_check=0).detect_in_zones(frame, zones)
    assert not [f for f in off if math.dist(f.center(), (265, 362)) < 40 and abs(f.roll) >= 45]


def test_a_cameras_full_scans_take_the_turns_in_turn() -> None:
    det = create_detector("haar", zone_mode="zones", track=2)
    seen: list[tuple[int, ...] | None] = []

    def record(frame: np.ndarray, zones: list, turns: tuple[int, ...] | None = None) -> list:
        seen.append(None if turns is None else tuple(turns))
        return []

    det.detect_in_zones = record  # type: ignore[method-assign]
    tracker = ZoneTracker(2)  # a full scan every 2nd frame
    frame = ward(lying_at=None, upright_at=None)
    for _ in range(8):
        tracker.detect(det, frame, ZONES, camera=7)
    assert tracker.scans == 4 and seen == [(90,), (270,), (90,), (270,)]
    seen.clear()
    tracker.detect(det, frame, ZONES, camera=None)  # no camera, no state: the detector's own turns, all of them
    assert seen == [None] and det.zone_turns == (90, 270)


def test_a_turned_look_does_not_take_part_of_a_face_already_found_for_a_second_face() -> None:
    # the lying blob is in a window that does not hold the found face's centre, but inside that face's box: the
    # same face, seen again (with blazeface: a second box, turned upside down for the classifier)
    frame = ward(lying_at=(160, 250), upright_at=None)
    core = zone_pixels(ZONES[0], 640, 480)
    lone = turned_looks(WideBlobs(), frame, [(ZONES[0], core)], [], (90, 270), 0.1, 240)
    assert lone and all(f.center() == (pytest.approx(160, abs=12), pytest.approx(250, abs=12)) for f in lone)
    covering = FaceBox(130, 240, 60, 260)  # centre (160, 370): outside the window that holds the blob whole
    assert turned_looks(WideBlobs(), frame, [(ZONES[0], core)], [covering], (90, 270), 0.1, 240) == []


class UprightOnlyUpClose(FaceDetector):
    """A fake backend: a wide blob (an upright face) scores 0.9 but is found only when it fills a sixth of the
    view or more (small upright faces are missed in a whole zone window); a tall one scores 0.6 at any size."""

    name = "upclose"

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        view = max(frame_bgr.shape[:2])
        return [
            FaceBox(b.x, b.y, b.w, b.h, 0.9 if b.w > b.h else 0.6)
            for b in blob_boxes(frame_bgr)
            if b.w <= b.h or view <= 6 * b.w
        ]


def test_a_small_upright_face_a_turned_look_finds_is_kept_upright_when_it_looks_more_like_one_up_close() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[290:310, 145:175] = 255  # upright, 30 x 20: too small for the 240 px zone window upright
    (face,) = detect_in_zones(UprightOnlyUpClose(), frame, ZONES, mode="zones", window_px=240, turns=(90, 270))
    assert face.roll == 0.0 and (face.w, face.h) == (30, 20)  # not handed to the classifier turned 90 degrees
    assert face.center() == (pytest.approx(160, abs=1), pytest.approx(300, abs=1))
    # the turned look found it (as a tall blob, 0.6): without it the zone has no face
    assert detect_in_zones(UprightOnlyUpClose(), frame, ZONES, mode="zones", window_px=240) == []
