"""Tracking faces between full zone scans (the ``track`` option, :mod:`areya.detectors.tracking`): the schedule of
full scans and tracking passes (a fake detector that finds bright squares and counts its passes), moving and
vanishing faces, the rescans of empty zones on tracking frames and their bound, per-camera state, zone changes,
bounded state, the worker passing its camera, option validation, and BlazeFace following a small face through a
generated sequence.  Generated data only."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine

from areya.cli import cli
from areya.config import ConfigError, load_settings
from areya.detectors import DEFAULT_TRACK, FaceBox, FaceDetector, create_detector, detect_for_camera
from areya.detectors.options import check_camera_options, check_options
from areya.detectors.tracking import RESCAN_ZONES, ZoneTracker, track_window
from areya.detectors.zones import Window, zone_windows
from areya.worker import build_worker

FOUR_BEDS = [(0.0, 0.0, 0.25, 1.0), (0.25, 0.0, 0.5, 1.0), (0.5, 0.0, 0.75, 1.0), (0.75, 0.0, 1.0, 1.0)]
WINDOW = 256


class Squares(FaceDetector):
    """A fake backend: every white blob is a 'face' (score 0.9, roll 10, eyes at 30 % / 70 % of its width, 40 % of
    its height); records the shape of each view it is run on."""

    name = "squares"

    def __init__(self) -> None:
        self.views: list[tuple[int, int]] = []

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        self.views.append(frame_bgr.shape[:2])
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        n, _, stats, _ = cv2.connectedComponentsWithStats((gray > 200).astype(np.uint8))
        return [
            FaceBox(int(x), int(y), int(w), int(h), 0.9, 10.0, (x + 0.3 * w, y + 0.4 * h, x + 0.7 * w, y + 0.4 * h))
            for x, y, w, h, _ in stats[1:n]
        ]


def tracking(mode: str = "both", every: int = 4, **tracker: object) -> Squares:
    """A fake detector as create_detector(track=every) makes one: zone crops go to a second fake."""
    det = Squares()
    det.zone_mode, det.zone_window_px = mode, WINDOW
    det.crop_detector = Squares()
    det.tracker = ZoneTracker(every, **tracker)  # type: ignore[attr-defined]
    return det


def squares_frame(boxes: list[tuple[int, int, int, int]], size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    frame = np.full((size[1], size[0], 3), 60, np.uint8)
    for x, y, w, h in boxes:
        frame[y : y + h, x : x + w] = 255
    return frame


def tuples(faces: list[FaceBox]) -> list[tuple[int, int, int, int]]:
    return sorted(f.as_tuple() for f in faces)


def crop_passes(det: Squares) -> int:
    assert det.crop_detector is not None
    passes = len(det.crop_detector.views)  # type: ignore[attr-defined]
    det.crop_detector.views.clear()  # type: ignore[attr-defined]
    return passes


def zone_passes(zone: tuple[float, float, float, float]) -> int:
    """Crop passes of one zone's scan (its windows) on a 1280x720 frame."""
    return len(zone_windows(zone, 1280, 720, 0.1, WINDOW))


# ---------------------------------------------------------------------------------------- the schedule
def test_full_scans_on_frames_1_n_plus_1_and_tracking_windows_between() -> None:
    faces = [(100, 200, 40, 40), (400, 500, 50, 50), (700, 90, 60, 60), (1000, 300, 40, 40)]  # one per bed
    frame = squares_frame(faces)
    det = tracking("both", every=4)
    scan = sum(zone_passes(z) for z in FOUR_BEDS)
    assert scan > 8
    passes = []
    for _ in range(9):
        det.views.clear()
        assert tuples(detect_for_camera(det, frame, FOUR_BEDS, "ICU/cam-1")) == faces
        assert det.views == [(720, 1280)]  # the whole-frame pass, on every frame (zone_mode=both)
        passes.append(crop_passes(det))
    assert passes == [scan, 4, 4, 4, scan, 4, 4, 4, scan]  # full scans on frames 1, 5, 9; one window per face
    tracker: ZoneTracker = det.tracker  # type: ignore[attr-defined]
    assert (tracker.scans, tracker.tracked, tracker.rescans) == (3, 6, 0)  # every bed held its face: no rescans
    # 9 frames: 9 whole-frame passes + 3 scans + 6 x 4 windows, against 9 + 9 scans without tracking
    assert 9 + 3 * scan + 24 < (9 + 9 * scan) / 2


def test_empty_beds_cost_one_zone_scan_per_tracking_frame_in_turn() -> None:
    """Two beds hold a face, two are empty: each tracking frame rescans one empty zone (RESCAN_ZONES), the two in
    turn; never a full scan's worth between the full scans."""
    assert RESCAN_ZONES == 1
    faces = [(100, 200, 40, 40), (700, 90, 60, 60)]  # beds 0 and 2
    frame = squares_frame(faces)
    det = tracking("zones", every=4)
    scan = sum(zone_passes(z) for z in FOUR_BEDS)
    passes = []
    for _ in range(9):
        assert tuples(detect_for_camera(det, frame, FOUR_BEDS, "ICU/cam-1")) == faces
        passes.append(crop_passes(det))
    bed1, bed3 = 2 + zone_passes(FOUR_BEDS[1]), 2 + zone_passes(FOUR_BEDS[3])  # the tracking windows + one bed's
    assert passes == [scan, bed1, bed3, bed1, scan, bed3, bed1, bed3, scan]  # bed 1, bed 3, bed 1, ... in turn
    tracker: ZoneTracker = det.tracker  # type: ignore[attr-defined]
    assert (tracker.scans, tracker.tracked, tracker.rescans) == (3, 6, 6)
    assert max(passes[1:4]) < scan / 2
    everything = tracking("zones", every=4, rescan=None)  # no bound: every empty zone on every tracking frame
    for _ in range(2):
        detect_for_camera(everything, frame, FOUR_BEDS, "ICU/cam-1")
    assert everything.tracker.rescans == 2  # type: ignore[attr-defined]
    assert crop_passes(everything) == scan + bed1 + zone_passes(FOUR_BEDS[3])


def test_a_camera_without_faces_rescans_its_zones_in_turn() -> None:
    det = tracking("zones", every=6)
    empty = squares_frame([])
    passes = []
    for _ in range(6):
        assert detect_for_camera(det, empty, FOUR_BEDS, 3) == []
        passes.append(crop_passes(det))
    assert passes[1:] == [zone_passes(FOUR_BEDS[i]) for i in (0, 1, 2, 3, 0)]
    assert det.tracker.rescans == 5  # type: ignore[attr-defined]


def test_a_face_that_appears_in_an_empty_bed_is_found_on_that_frame() -> None:
    """Bed 0 holds a face; a face appears in bed 1 on the second frame, a tracking frame: found on that frame (the
    old tracker found it only at the next full scan, frame 5)."""
    zones = FOUR_BEDS[:2]
    det = tracking("zones", every=4)
    first, second = (100, 200, 40, 40), (450, 300, 50, 50)
    assert tuples(detect_for_camera(det, squares_frame([first]), zones, "cam")) == [first]
    crop_passes(det)
    assert tuples(detect_for_camera(det, squares_frame([first, second]), zones, "cam")) == [first, second]
    assert crop_passes(det) == 1 + zone_passes(zones[1])  # bed 0's tracking window, bed 1's rescan
    both = squares_frame([first, second])
    assert tuples(detect_for_camera(det, both, zones, "cam")) == [first, second]
    assert crop_passes(det) == 2  # tracked from now on: no rescan
    tracker: ZoneTracker = det.tracker  # type: ignore[attr-defined]
    assert (tracker.scans, tracker.tracked, tracker.rescans) == (1, 2, 1)


def test_a_bed_whose_tracked_face_is_lost_is_rescanned_on_that_frame() -> None:
    """The face in bed 2 jumps out of its tracking window (a patient sitting up, a new face): its zone is rescanned
    on that frame, whatever the bound on empty beds, and the face is found there."""
    det = tracking("zones", every=4, rescan=0)
    tracker: ZoneTracker = det.tracker  # type: ignore[attr-defined]
    still, before, after = (100, 200, 40, 40), (700, 90, 60, 60), (760, 560, 60, 60)
    detect_for_camera(det, squares_frame([still, before]), FOUR_BEDS, 1)
    crop_passes(det)
    assert tuples(detect_for_camera(det, squares_frame([still, after]), FOUR_BEDS, 1)) == [still, after]
    assert crop_passes(det) == 2 + zone_passes(FOUR_BEDS[2])  # two tracking windows, bed 2's rescan
    assert tracker.rescans == 1  # beds 1 and 3 (empty all along) are not rescanned with rescan=0
    assert tuples(detect_for_camera(det, squares_frame([still, after]), FOUR_BEDS, 1)) == [still, after]
    assert crop_passes(det) == 2 and tracker.rescans == 1  # tracked again in its new place
    old = tracking("zones", every=4, rescan=0, rescan_lost=False)  # no rescans: lost until the next full scan
    detect_for_camera(old, squares_frame([still, before]), FOUR_BEDS, 1)
    assert tuples(detect_for_camera(old, squares_frame([still, after]), FOUR_BEDS, 1)) == [still]


def test_tracking_windows_are_squares_twice_the_face_around_it() -> None:
    det = tracking("zones", every=2, rescan=0)
    frame = squares_frame([(100, 200, 40, 40), (700, 90, 60, 60)])
    detect_for_camera(det, frame, FOUR_BEDS, 1)
    crop_passes(det)
    detect_for_camera(det, frame, FOUR_BEDS, 1)
    assert sorted(det.crop_detector.views) == [(80, 80), (120, 120)]  # type: ignore[attr-defined]
    assert det.views == []  # zone_mode=zones: no whole-frame pass


def test_track_window_stays_in_the_frame() -> None:
    assert track_window(FaceBox(100, 200, 40, 40), 1280, 720) == Window(80, 180, 80, 80)
    assert track_window(FaceBox(0, 0, 40, 40), 1280, 720) == Window(0, 0, 80, 80)  # shifted in, still square
    assert track_window(FaceBox(1260, 700, 20, 20), 1280, 720) == Window(1232, 672, 48, 48)  # at least 48 px
    assert track_window(FaceBox(10, 10, 300, 300), 400, 500) == Window(0, 0, 400, 500)  # frame smaller: clipped
    assert track_window(FaceBox(100, 100, 40, 40), 1280, 720, pad=1.0) == Window(60, 60, 120, 120)


def test_tracked_face_keeps_its_frame_coordinates_score_roll_and_eyes() -> None:
    det = tracking("zones", every=5)
    for i in range(5):
        x, y = 400 + 3 * i, 300 - 2 * i  # drifts a few pixels per frame
        (face,) = detect_for_camera(det, squares_frame([(x, y, 50, 50)]), FOUR_BEDS, "cam")
        assert face.as_tuple() == (x, y, 50, 50)
        assert (face.score, face.roll) == (0.9, 10.0)
        assert face.eyes == pytest.approx((x + 15, y + 20, x + 35, y + 20))
    assert (det.tracker.scans, det.tracker.tracked) == (1, 4)  # type: ignore[attr-defined]


def test_a_face_that_vanishes_is_looked_for_in_its_bed_and_found_when_it_comes_back() -> None:
    det = tracking("zones", every=8, rescan=0)
    tracker: ZoneTracker = det.tracker  # type: ignore[attr-defined]
    both = squares_frame([(400, 300, 50, 50), (900, 300, 50, 50)])
    assert len(detect_for_camera(det, both, FOUR_BEDS, 1)) == 2  # frame 1: full scan
    crop_passes(det)
    one = squares_frame([(402, 300, 50, 50)])
    assert tuples(detect_for_camera(det, one, FOUR_BEDS, 1)) == [(402, 300, 50, 50)]
    assert crop_passes(det) == 2 + zone_passes(FOUR_BEDS[2])  # both looked for; the lost one's bed rescanned
    assert tracker.rescans == 1
    detect_for_camera(det, one, FOUR_BEDS, 1)
    assert crop_passes(det) == 1 and tracker.rescans == 1  # empty since: left to the bound (here 0) and full scans
    det.tracker = ZoneTracker(8)  # the default bound: one empty bed per tracking frame, in turn
    detect_for_camera(det, one, FOUR_BEDS, 1)
    crop_passes(det)
    back = squares_frame([(404, 300, 50, 50), (900, 300, 50, 50)])
    found = [len(detect_for_camera(det, back, FOUR_BEDS, 1)) for _ in range(3)]
    assert found == [1, 2, 2]  # beds 0, 2, 3 empty in turn: bed 0 first (nothing), then bed 2 finds it
    assert det.tracker.scans == 1  # type: ignore[attr-defined]  # found by a rescan, not a full scan


def test_faces_found_in_a_tracking_window_keep_the_zone_rule() -> None:
    """A face tracked in zone 0 moves into the gap between the zones: with zone_mode=zones it is no longer
    reported (nor tracked), by the tracking window or by the rescans of the zones now empty; with zone_mode=both
    the whole-frame pass still sees it, but it is not tracked."""
    zones = [(0.0, 0.0, 0.3, 1.0), (0.5, 0.0, 0.8, 1.0)]  # zone 0 ends at x = 384
    inside, gap = squares_frame([(355, 300, 40, 40)]), squares_frame([(370, 300, 40, 40)])
    for mode, expected in (("zones", []), ("both", [(370, 300, 40, 40)])):
        det = tracking(mode, every=4)
        assert len(detect_for_camera(det, inside, zones, 1)) == 1
        crop_passes(det)
        assert tuples(detect_for_camera(det, gap, zones, 1)) == expected
        views = det.crop_detector.views  # type: ignore[attr-defined]
        assert views[0] == (80, 80)  # seen in the window, dropped; then zone 0 (lost) and zone 1 (empty) rescanned
        assert len(views) == 1 + zone_passes(zones[0]) + zone_passes(zones[1])
        crop_passes(det)
        assert tuples(detect_for_camera(det, gap, zones, 1)) == expected
        assert crop_passes(det) == zone_passes(zones[0])  # nothing tracked any more: one empty zone rescanned


# ---------------------------------------------------------------------------------------- per camera
def test_state_is_per_camera() -> None:
    det = tracking("zones", every=3)
    face_a, face_b = (400, 300, 50, 50), (1000, 100, 40, 40)
    frame_a, frame_b = squares_frame([face_a]), squares_frame([face_b])
    for _ in range(4):  # interleaved: each camera tracks its own face (shared state would lose both)
        assert tuples(detect_for_camera(det, frame_a, FOUR_BEDS, "A")) == [face_a]
        assert tuples(detect_for_camera(det, frame_b, FOUR_BEDS, "B")) == [face_b]
    assert det.tracker.scans == 4  # type: ignore[attr-defined]  # frames 1 and 4 of each camera
    assert det.tracker.cameras == ["A", "B"]  # type: ignore[attr-defined]


def test_a_zone_or_frame_size_change_means_a_full_scan_at_once() -> None:
    det = tracking("zones", every=10)
    frame = squares_frame([(400, 300, 50, 50)])
    tracker: ZoneTracker = det.tracker  # type: ignore[attr-defined]
    detect_for_camera(det, frame, FOUR_BEDS, 1)
    detect_for_camera(det, frame, FOUR_BEDS, 1)
    assert (tracker.scans, tracker.tracked) == (1, 1)
    detect_for_camera(det, frame, FOUR_BEDS[:3], 1)  # a zone removed
    assert tracker.scans == 2
    moved = [(0.0, 0.0, 0.25, 1.0), (0.26, 0.0, 0.5, 1.0), *FOUR_BEDS[2:]]
    detect_for_camera(det, frame, moved, 1)  # a zone redrawn
    assert tracker.scans == 3
    detect_for_camera(det, squares_frame([(400, 300, 50, 50)], (1920, 1080)), moved, 1)  # another frame size
    assert (tracker.scans, tracker.tracked) == (4, 1)
    assert len(detect_for_camera(det, frame, [], 1)) == 1 and tracker.cameras == []  # no zones: whole frame


def test_callers_without_a_camera_or_tracking_get_the_full_scan() -> None:
    det = tracking("zones", every=4)
    frame = squares_frame([(400, 300, 50, 50)])
    for _ in range(3):
        assert len(detect_for_camera(det, frame, FOUR_BEDS, None)) == 1
        assert len(det.detect_in_zones(frame, FOUR_BEDS)) == 1
    assert det.tracker.scans == 0 and det.tracker.cameras == []  # type: ignore[attr-defined]
    plain = Squares()  # no tracker (a detector not made by create_detector): detect_in_zones
    plain.zone_mode = "zones"
    assert len(detect_for_camera(plain, frame, FOUR_BEDS, 1)) == 1


def test_idle_cameras_are_forgotten_and_state_is_bounded() -> None:
    now = [0.0]
    det = tracking("zones", every=4, idle_s=30.0, max_cameras=2, clock=lambda: now[0])
    tracker: ZoneTracker = det.tracker  # type: ignore[attr-defined]
    frame = squares_frame([(400, 300, 50, 50)])
    detect_for_camera(det, frame, FOUR_BEDS, "a")
    now[0] = 10.0
    detect_for_camera(det, frame, FOUR_BEDS, "a")
    assert (tracker.scans, tracker.tracked) == (1, 1)
    detect_for_camera(det, frame, FOUR_BEDS, "b")
    detect_for_camera(det, frame, FOUR_BEDS, "c")
    assert tracker.cameras == ["b", "c"]  # at most 2: the least recently seen went
    now[0] = 25.0
    detect_for_camera(det, frame, FOUR_BEDS, "c")
    now[0] = 50.0  # b idle 40 s, c 25 s
    detect_for_camera(det, frame, FOUR_BEDS, "d")
    assert tracker.cameras == ["c", "d"]
    now[0] = 60.0  # c idle 35 s: forgotten, its next frame gets the full scan
    scans = tracker.scans
    detect_for_camera(det, frame, FOUR_BEDS, "c")
    assert tracker.scans == scans + 1 and tracker.cameras == ["d", "c"]
    tracker.forget("d")
    assert tracker.cameras == ["c"]


# ---------------------------------------------------------------------------------------- the worker
def test_worker_passes_its_camera_to_the_tracker(tmp_path: Path) -> None:
    settings = load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var")})
    det = tracking("zones", every=4)
    worker = build_worker(
        settings, client=object(), engine=create_engine("sqlite://"), classifier=object(), detector=det
    )
    worker.resolver = SimpleNamespace(zones=lambda camera_id: FOUR_BEDS, detector_options=lambda camera_id: None)
    frames = {7: squares_frame([(100, 200, 40, 40)]), 8: squares_frame([(1000, 200, 40, 40)])}
    for _ in range(2):
        for camera_id, frame in frames.items():
            item = SimpleNamespace(image=frame, message=SimpleNamespace(camera_id=camera_id))
            assert [f.as_tuple()[0] for f in worker._faces(item)] == [100 if camera_id == 7 else 1000]
    tracker: ZoneTracker = det.tracker  # type: ignore[attr-defined]
    assert tracker.cameras == [7, 8] and (tracker.scans, tracker.tracked) == (2, 2)


# ---------------------------------------------------------------------------------------- options
def test_track_option_parses_and_reaches_the_detector(tmp_path: Path) -> None:
    assert check_options("blazeface", {"track": "8"}) == {"track": 8}
    assert check_camera_options("haar", "track=0") == {"track": 0}  # a camera whose patients move a lot
    assert DEFAULT_TRACK == 4
    default = create_detector("haar")
    assert default.track == DEFAULT_TRACK and default.tracker.every == DEFAULT_TRACK  # type: ignore[attr-defined]
    assert create_detector("haar", track=0).tracker is None  # type: ignore[attr-defined]
    assert create_detector("haar", track=1).tracker is None  # type: ignore[attr-defined]
    assert create_detector("haar", min_face_px=20, track=8).tracker.every == 8  # type: ignore[attr-defined]
    ok = load_settings(env={"AREYA_DATA_DIR": str(tmp_path), "AREYA_DETECTOR_OPTIONS": "track=2"})
    assert ok.detector_options == (("track", 2),)


@pytest.mark.parametrize("value", ["-1", "101", "two", "2.5", ""])
def test_bad_track_values_are_a_clear_error(value: str) -> None:
    with pytest.raises(ValueError, match="option 'track' of detector 'blazeface'") as info:
        check_options("blazeface", {"track": value})
    assert "valid options: " in str(info.value)


@pytest.mark.parametrize("value", [-1, 101, True, 2.0, "4"])
def test_create_detector_rejects_a_bad_track(value: object) -> None:
    with pytest.raises(ValueError, match=r"track must be an integer in \[0, 100\]"):
        create_detector("haar", track=value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="track must be an integer >= 0"):
        ZoneTracker(-1)


def test_config_check_rejects_a_bad_track(tmp_path: Path) -> None:
    env = {"AREYA_DATA_DIR": str(tmp_path), "AREYA_DETECTOR_OPTIONS": "track=-1"}
    result = CliRunner().invoke(cli, ["config", "check"], env=env)
    assert result.exit_code == 2 and "track" in result.output + result.stderr
    with pytest.raises(ConfigError, match=r"option 'track'.*\[0, 100\]"):
        load_settings(env=env)


# ---------------------------------------------------------------------------------------- BlazeFace
def _astronaut_head() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 100:350]  # face ~100 px wide at (75, 75)


def test_blazeface_tracks_a_small_drifting_face_between_full_scans() -> None:
    """A 1280x720 four-bed frame, the astronaut's face about 48 px wide in bed 3, drifting 3 px a frame: found
    in every frame, by the full scan on frames 1 and 5 and by its tracking window between."""
    head = cv2.resize(_astronaut_head(), None, fx=0.48, fy=0.48, interpolation=cv2.INTER_AREA)
    det = create_detector("blazeface", zone_mode="zones", track=4)
    for i in range(6):
        frame = np.full((720, 1280, 3), (200, 205, 210), np.uint8)
        x, y = 820 + 3 * i, 150 + 2 * i
        frame[y : y + head.shape[0], x : x + head.shape[1]] = head
        truth = FaceBox(x + round(75 * 0.48), y + round(75 * 0.48), 48, 48)
        found = detect_for_camera(det, frame, FOUR_BEDS, "ICU/cam-1")
        assert len(found) == 1 and found[0].iou(truth) > 0.4, (i, found, truth)
        assert found[0].eyes is not None
    assert (det.tracker.scans, det.tracker.tracked) == (2, 4)  # type: ignore[attr-defined]
