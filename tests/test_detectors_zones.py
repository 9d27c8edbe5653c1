"""Zone-aware detection: zone windows, crop -> frame coordinate mapping, ``detect_in_zones`` modes (with a fake
detector that finds bright squares, and with BlazeFace on a generated frame), the worker's use of its camera's
zones, and the zone / rotation options' validation.  Generated data only."""

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
from areya.detectors import DEFAULT_ZONE_MODE, FaceBox, FaceDetector, create_detector, zone_backend
from areya.detectors.options import check_options, format_options, parse_options_text
from areya.detectors.zones import Window, crop_box_to_frame, detect_in_zones, zone_pixels, zone_windows
from areya.worker import build_worker

FOUR_BEDS = [(0.0, 0.0, 0.25, 1.0), (0.25, 0.0, 0.5, 1.0), (0.5, 0.0, 0.75, 1.0), (0.75, 0.0, 1.0, 1.0)]


class BrightSquares(FaceDetector):
    """A fake backend: every white blob is a 'face'; records the shape of each view it is run on."""

    name = "squares"

    def __init__(self) -> None:
        self.views: list[tuple[int, int]] = []

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        self.views.append(frame_bgr.shape[:2])
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        n, _, stats, _ = cv2.connectedComponentsWithStats((gray > 200).astype(np.uint8))
        return [FaceBox(int(x), int(y), int(w), int(h), 0.9) for x, y, w, h, _ in stats[1:n]]


def squares_frame(boxes: list[tuple[int, int, int, int]], size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    frame = np.full((size[1], size[0], 3), 60, np.uint8)
    for x, y, w, h in boxes:
        frame[y : y + h, x : x + w] = 255
    return frame


# ---------------------------------------------------------------------------------------- geometry
def test_zone_pixels_clip_and_accept_objects_or_tuples() -> None:
    assert zone_pixels((0.25, 0.0, 0.5, 1.0), 1280, 720) == Window(320, 0, 320, 720)
    assert zone_pixels(SimpleNamespace(x0=0.9, y0=0.5, x1=1.3, y1=0.6), 1000, 100) == Window(900, 50, 100, 10)
    assert zone_pixels((1.2, 0, 1.5, 1), 100, 100).w == 0  # outside the frame: empty


def test_tall_zone_becomes_overlapping_squares_covering_it() -> None:
    wins = zone_windows((0.25, 0.0, 0.5, 1.0), 1280, 720, pad=0.1, max_side=256)
    assert len(wins) > 1
    covered = np.zeros((720, 1280), bool)
    for win in wins:
        assert win.w == win.h == 256  # squares: the detector letterboxes nothing
        assert win.x >= 0 and win.x + win.w <= 1280 and win.y >= 0 and win.y + win.h <= 720
        covered[win.y : win.y + win.h, win.x : win.x + win.w] = True
    assert covered[:, 288:672].all()  # the zone (320..640) and its padding (32 px each side)
    assert not covered[:, :280].any() and not covered[:, 680:].any()
    (whole,) = zone_windows((0.25, 0.25, 0.5, 0.75), 1280, 720, pad=0.0, max_side=1000)
    assert whole == Window(320, 180, 320, 360)  # short enough and small enough: one crop, as it is


def test_crop_box_maps_back_to_frame_coordinates() -> None:
    win = Window(320, 180, 400, 400)
    assert crop_box_to_frame(FaceBox(10, 20, 30, 40, 0.8), win) == FaceBox(330, 200, 30, 40, 0.8)
    # the crop was resized by 0.5 before detection: boxes double, then shift
    assert crop_box_to_frame(FaceBox(10, 20, 30, 40, 0.8, 90.0), win, scale=0.5) == FaceBox(340, 220, 60, 80, 0.8, 90.0)
    with pytest.raises(ValueError, match="scale"):
        crop_box_to_frame(FaceBox(0, 0, 1, 1), win, scale=0)


# ---------------------------------------------------------------------------------------- detect_in_zones
def test_zone_crops_find_faces_in_frame_coordinates_and_only_in_their_zone() -> None:
    faces = [(100, 200, 40, 40), (700, 90, 60, 60), (1200, 600, 50, 50)]
    frame = squares_frame(faces)
    det = BrightSquares()
    found = detect_in_zones(det, frame, FOUR_BEDS[:3], mode="zones", pad=0.2, window_px=256)
    # the third face lies in no zone: not looked for; the others come back exactly, once each
    assert sorted(f.as_tuple() for f in found) == sorted(faces[:2])
    assert all(h <= 256 and w <= 256 for h, w in det.views)  # crops only, never the whole frame
    for f in found:  # each found face lies in the zone whose crops found it
        (zone,) = [z for z in FOUR_BEDS if z[0] * 1280 <= f.center()[0] < z[2] * 1280]
        assert zone in FOUR_BEDS[:3]


def test_face_in_the_padding_belongs_to_the_neighbouring_zone_only() -> None:
    """A face just right of zone 0's border is seen in zone 0's padded crop but kept only for zone 1."""
    frame = squares_frame([(330, 300, 40, 40)])
    (only,) = detect_in_zones(BrightSquares(), frame, FOUR_BEDS[:2], mode="zones", pad=0.3)
    assert only.as_tuple() == (330, 300, 40, 40)
    assert detect_in_zones(BrightSquares(), frame, FOUR_BEDS[:1], mode="zones", pad=0.3) == []


def test_modes_frame_both_and_no_zones() -> None:
    frame = squares_frame([(100, 200, 40, 40), (1200, 600, 50, 50)])
    det = BrightSquares()
    assert len(detect_in_zones(det, frame, FOUR_BEDS[:1], mode="frame")) == 2
    assert det.views == [(720, 1280)]
    det.views.clear()
    both = detect_in_zones(det, frame, FOUR_BEDS[:1], mode="both")
    assert sorted(f.as_tuple() for f in both) == [(100, 200, 40, 40), (1200, 600, 50, 50)]  # merged: no duplicate
    assert det.views[0] == (720, 1280) and len(det.views) > 1
    assert len(detect_in_zones(BrightSquares(), frame, [], mode="zones")) == 2  # a camera without zones
    with pytest.raises(ValueError, match="frame, zones, both"):
        detect_in_zones(det, frame, FOUR_BEDS, mode="beds")


def _astronaut_head() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[0:260, 100:350]  # face ~100 px wide at (75, 75)


def test_blazeface_zones_find_a_small_face_the_whole_frame_misses() -> None:
    """A 1280x720 four-bed frame, the astronaut's face about 40 px wide in bed 3: the default whole-frame pass
    (192 px input: the face shrinks to 6 px) misses it, the zone crops find it, in bed 3."""
    head = cv2.resize(_astronaut_head(), None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    frame = np.full((720, 1280, 3), (200, 205, 210), np.uint8)
    x, y = 820, 150
    frame[y : y + head.shape[0], x : x + head.shape[1]] = head
    truth = FaceBox(x + round(75 * 0.4), y + round(75 * 0.4), 40, 40)
    det = create_detector("blazeface", zone_mode="zones")
    assert det.zone_mode == "zones" and det.crop_detector is not None
    assert not [f for f in det.detect(frame) if f.iou(truth) > 0.3]
    found = det.detect_in_zones(frame, FOUR_BEDS)
    assert len(found) == 1 and found[0].iou(truth) > 0.4
    cx = found[0].center()[0] / 1280
    assert [i for i, z in enumerate(FOUR_BEDS) if z[0] <= cx < z[2]] == [2]
    assert det.detect_in_zones(frame, FOUR_BEDS[:2]) == []  # bed 3 not a zone of this camera: not looked for


# ---------------------------------------------------------------------------------------- the worker
def test_worker_detects_in_its_cameras_zones(tmp_path: Path) -> None:
    settings = load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var")})
    calls: list[tuple[str, int]] = []

    class Recording(BrightSquares):
        def detect_in_zones(self, frame_bgr: np.ndarray, zones: list, **kwargs: object) -> list[FaceBox]:
            calls.append(("zones", len(zones)))
            return super().detect_in_zones(frame_bgr, zones, **kwargs)

    det = Recording()
    det.zone_mode = "zones"
    worker = build_worker(
        settings, client=object(), engine=create_engine("sqlite://"), classifier=object(), detector=det
    )
    worker.resolver = SimpleNamespace(
        zones=lambda camera_id: FOUR_BEDS[:2] if camera_id == 7 else [], detector_options=lambda camera_id: None
    )
    frame = squares_frame([(100, 200, 40, 40), (1000, 200, 40, 40)])
    item = SimpleNamespace(image=frame, message=SimpleNamespace(camera_id=7))
    assert [f.as_tuple() for f in worker._faces(item)] == [(100, 200, 40, 40)]  # bed zones 0-1 only
    assert calls == [("zones", 2)]
    det.zone_mode = "frame"
    assert len(worker._faces(item)) == 2 and calls == [("zones", 2)]


# ---------------------------------------------------------------------------------------- options
def test_zone_and_rotation_options_parse_and_format() -> None:
    raw = parse_options_text("zone_mode=Both,zone_pad=0.3,rotations=0/90/270,zone_window_px=320,zone_detector=same")
    typed = check_options("blazeface", raw)
    assert typed == {
        "zone_mode": "both",
        "zone_pad": 0.3,
        "rotations": (0, 90, 270),
        "zone_window_px": 320,
        "zone_detector": "same",
    }
    assert parse_options_text(format_options(typed.items()))["rotations"] == "0/90/270"
    assert check_options("haar", {"rotations": [-90, 90, 450 - 360]})["rotations"] == (270, 90)
    assert check_options("haar", {"rotations": 90})["rotations"] == (90,)
    det = create_detector("haar", **check_options("haar", raw | {"zone_detector": "auto"}))
    assert (det.zone_mode, det.zone_pad, det.zone_window_px) == ("both", 0.3, 320)
    assert det.rotations == (0, 90, 270) and det.crop_detector is None  # auto: haar crops with haar
    assert create_detector("haar").zone_mode == DEFAULT_ZONE_MODE


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"zone_mode": "beds"}, "must be one of frame, zones, both"),
        ({"zone_pad": "2"}, "must be a number in [0, 1]"),
        ({"rotations": "0,90"}, "angles in degrees like 0/90/270"),
        ({"rotations": "0/45.5"}, "whole degrees"),
        ({"rotations": ""}, "at least one angle"),
        ({"zone_window_px": "-1"}, "zone_window_px"),
        ({"zone_detector": "yolo"}, "must be one of auto, same, blazeface"),
    ],
)
def test_bad_zone_and_rotation_options_are_rejected(options: dict[str, str], fragment: str) -> None:
    with pytest.raises(ValueError, match="option") as info:
        check_options("blazeface", options)
    assert fragment in str(info.value)


def test_config_check_rejects_a_bad_zone_mode(tmp_path: Path) -> None:
    env = {"AREYA_DATA_DIR": str(tmp_path), "AREYA_DETECTOR_OPTIONS": "zone_mode=beds"}
    result = CliRunner().invoke(cli, ["config", "check"], env=env)
    assert result.exit_code == 2 and "zone_mode" in result.output + result.stderr
    with pytest.raises(ConfigError, match="frame, zones, both"):
        load_settings(env={"AREYA_DATA_DIR": str(tmp_path), "AREYA_DETECTOR_OPTIONS": "zone_mode=beds"})
    ok = load_settings(env={"AREYA_DATA_DIR": str(tmp_path), "AREYA_DETECTOR_OPTIONS": "rotations=90;270"})
    assert ok.detector_options == (("rotations", (90, 270)),)


def test_zone_backend_choice() -> None:
    assert zone_backend("blazeface", "auto") == "blazeface-short"
    assert zone_backend("blazeface", "same") == "blazeface"
    assert zone_backend("haar", "auto") == "haar"
    assert zone_backend("haar", "blazeface") == "blazeface"
    with pytest.raises(ValueError, match="unknown face detector"):
        zone_backend("haar", "yolo")
