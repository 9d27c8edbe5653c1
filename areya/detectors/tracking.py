"""Tracking faces between full zone scans: the ``track=N`` detector option.

A full zone scan (:func:`areya.detectors.zones.detect_in_zones`) costs about 46 detector passes on a 1280x720
four-bed frame.  Patients in beds move little between frames (cameras are sampled at about 2 frames/s), so with
``track=N`` a camera gets the full scan on its first frame and then every N-th frame; on the frames between, the
crop detector runs only on one window around each face found in a zone on the camera's previous frame (plus the
whole-frame pass when ``zone_mode=both``): the face padded by :data:`TRACK_PAD` x its side on each side, cut
square (shifted to stay in the frame), so the detector's letterbox scales the face to about half its input (64 px
of short-range BlazeFace's 128) whatever the face's size; on the bench's sequences half a side of padding finds
slightly more faces than a whole side (3x the face: a third of the input) or 1.5 sides.  A face found in a
tracking window is kept only if its centre lies in a zone (that bed's face, as in a zone crop); a tracked face not
found again is dropped until the next full scan, and a face that appears meanwhile is found by the next full scan
(or by the whole-frame pass when it is large enough).

A full scan's turned looks at windows without a face (the ``zone_turns`` option, :mod:`areya.detectors.zones`)
take one of the angles per scan, in turn (:func:`scan_turns`): a patient lying on the side is found within two
full scans with the default ``90/270``, at half the cost per scan, and is then tracked in a window turned upright.

State is per camera and never shared: :meth:`ZoneTracker.detect` takes the camera's key (the worker passes the
camera id; callers without one get the full scan every time).  A camera is scanned in full again at once when
its zone set or frame size changes, or after :data:`TRACK_IDLE_S` seconds without frames; cameras idle that long
are forgotten, and at most :data:`MAX_CAMERAS` are remembered (least recently seen forgotten first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from areya.detectors.boxes import FaceBox, validate_frame
from areya.detectors.merge import merge_faces
from areya.detectors.rotation import find_upright, redetect_rolled
from areya.detectors.zones import Window, centre_in, crop_box_to_frame, zone_pixels, zone_rect

if TYPE_CHECKING:
    from areya.detectors.base import FaceDetector

DEFAULT_TRACK = 4  # a full zone scan every 4th frame of a camera (bench/bench_detection.py --sequences)
TRACK_PAD = 0.5  # a tracking window reaches this many face sides beyond the face on each side (2x the face)
MIN_TRACK_WINDOW = 48  # pixels: a tracking window is at least this wide (tiny boxes get some context)
TRACK_IDLE_S = 10.0  # a camera without frames this long is forgotten (its next frame gets the full scan)
MAX_CAMERAS = 4096  # cameras remembered at most per detector instance
TURNED_TRACK_ROLL = 45  # a face rolled this many degrees or more is tracked in a window turned upright


def track_window(
    box: FaceBox, frame_w: int, frame_h: int, pad: float = TRACK_PAD, min_side: int = MIN_TRACK_WINDOW
) -> Window:
    """The square window a face is looked for in on the next frame: ``box`` padded by ``pad`` x its longer side
    on each side (at least ``min_side``), centred on it, shifted to lie in the frame (clipped only when the frame
    is smaller than the window)."""
    side = max(min_side, round(max(box.w, box.h) * (1.0 + 2.0 * pad)))
    win_w, win_h = min(side, frame_w), min(side, frame_h)
    cx, cy = box.center()
    x = min(max(round(cx - side / 2.0), 0), frame_w - win_w)
    y = min(max(round(cy - side / 2.0), 0), frame_h - win_h)
    return Window(x, y, win_w, win_h)


def track_faces(
    detector: FaceDetector,
    frame_bgr: np.ndarray,
    zones: Sequence[Any],
    tracked: Sequence[FaceBox],
    *,
    mode: str = "both",
    crop_detector: FaceDetector | None = None,
    pad: float = TRACK_PAD,
    redetect_roll: float = 0,
) -> list[FaceBox]:
    """One tracking frame: ``crop_detector`` (None: ``detector``) on :func:`track_window` of each of ``tracked``
    (faces kept only when their centre lies in one of ``zones``), plus ``detector`` on the whole frame when
    ``mode`` is ``both``; merged, best score first, in frame pixels; rolled faces found again as
    :func:`areya.detectors.zones.detect_in_zones` does with ``redetect_roll``.  A tracked face rolled
    :data:`TURNED_TRACK_ROLL` degrees or more is looked for in its window turned by its roll (upright)."""
    frame = validate_frame(frame_bgr)
    h, w = frame.shape[:2]
    cores = [c for c in (zone_pixels(z, w, h) for z in zones) if c.w > 0 and c.h > 0]
    faces: list[FaceBox] = list(detector.detect(frame)) if mode == "both" else []
    on_crops = crop_detector or detector
    for prev in tracked:
        win = track_window(prev, w, h, pad)
        if abs((prev.roll + 180.0) % 360.0 - 180.0) >= TURNED_TRACK_ROLL:  # lying on the side: look upright
            found = find_upright(on_crops, frame, prev.center(), max(win.w, win.h), prev.roll)
            if found is not None and any(centre_in(found, core) for core in cores):
                faces.append(found)
            continue
        for box in on_crops.detect(frame[win.y : win.y + win.h, win.x : win.x + win.w]):
            mapped = crop_box_to_frame(box, win)
            if any(centre_in(mapped, core) for core in cores):
                faces.append(mapped)
    return redetect_rolled(on_crops, frame, merge_faces(faces), redetect_roll)


@dataclass
class _Camera:
    key: tuple[Any, ...]  # zone rectangles, frame size and zone mode: a change means a full scan
    frames: int  # frames since the last full scan, that one included
    faces: list[FaceBox]  # faces to look for on the next frame (those found whose centre lies in a zone)
    seen: float  # clock time of the last frame
    scans: int = 0  # full scans of this camera so far (which turned look comes next)


def scan_turns(detector: Any, scans: int) -> tuple[int, ...]:
    """The turned looks of a camera's full scan number ``scans`` (from 0): one of the detector's ``zone_turns`` in
    turn, so each full scan costs one turned look per window without a face, not one per angle (a face lying on
    its side is found within ``len(zone_turns)`` full scans, and then tracked upright)."""
    turns = tuple(getattr(detector, "zone_turns", ()))
    return (turns[scans % len(turns)],) if turns else ()


class ZoneTracker:
    """Per-camera tracking state of one detector instance (not thread-safe: one per detector, as detectors are).

    ``every``: a full zone scan on a camera's first frame and then every ``every``-th frame (<= 1: always).
    ``scans`` and ``tracked`` count the frames that got a full scan and a tracking pass (for benches / tests).
    """

    def __init__(
        self,
        every: int,
        *,
        pad: float = TRACK_PAD,
        idle_s: float = TRACK_IDLE_S,
        max_cameras: int = MAX_CAMERAS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"track must be an integer >= 0, got {every!r}")
        if max_cameras < 1:
            raise ValueError(f"max_cameras must be >= 1, got {max_cameras!r}")
        self.every = every
        self.pad = float(pad)
        self.idle_s = float(idle_s)
        self.max_cameras = max_cameras
        self.clock = clock
        self.scans = 0
        self.tracked = 0
        self._cameras: OrderedDict[Hashable, _Camera] = OrderedDict()  # least recently seen first

    @property
    def cameras(self) -> list[Hashable]:
        """The cameras remembered now, least recently seen first."""
        return list(self._cameras)

    def forget(self, camera: Hashable | None = None) -> None:
        """Drop one camera's state (None: every camera's); its next frame gets the full scan."""
        if camera is None:
            self._cameras.clear()
        else:
            self._cameras.pop(camera, None)

    def detect(
        self, detector: FaceDetector, frame_bgr: np.ndarray, zones: Sequence[Any], camera: Hashable | None
    ) -> list[FaceBox]:
        """``detector``'s faces in ``camera``'s frame: the full zone scan (``detector.detect_in_zones``) or a
        tracking pass (:func:`track_faces`), as the module doc says.  ``camera`` None: the full scan, no state."""
        frame = validate_frame(frame_bgr)
        h, w = frame.shape[:2]
        mode = getattr(detector, "zone_mode", "both")
        rects = tuple(zone_rect(z) for z in zones)
        cores = [c for c in (zone_pixels(r, w, h) for r in rects) if c.w > 0 and c.h > 0]
        if camera is None or self.every <= 1 or mode == "frame" or not cores:
            if camera is not None:
                self._cameras.pop(camera, None)
            return list(detector.detect_in_zones(frame, zones))
        now = self.clock()
        self._expire(now)
        key = (rects, (w, h), mode)
        state = self._cameras.get(camera)
        scans = 0 if state is None or state.key != key else state.scans
        if state is None or state.key != key or state.frames >= self.every:
            faces = list(detector.detect_in_zones(frame, zones, turns=scan_turns(detector, scans)))
            frames = 1
            scans += 1
            self.scans += 1
        else:
            faces = track_faces(
                detector,
                frame,
                rects,
                state.faces,
                mode=mode,
                crop_detector=getattr(detector, "crop_detector", None),
                pad=self.pad,
                redetect_roll=getattr(detector, "redetect_roll", 0),
            )
            frames = state.frames + 1
            self.tracked += 1
        in_zones = [f for f in faces if any(centre_in(f, core) for core in cores)]
        self._cameras[camera] = _Camera(key, frames, in_zones, now, scans)
        self._cameras.move_to_end(camera)
        while len(self._cameras) > self.max_cameras:
            self._cameras.popitem(last=False)
        return faces

    def _expire(self, now: float) -> None:
        """Forget cameras not seen for :attr:`idle_s` (they are kept least recently seen first)."""
        while self._cameras:
            oldest = next(iter(self._cameras.values()))
            if now - oldest.seen <= self.idle_s:
                break
            self._cameras.popitem(last=False)


def detect_for_camera(detector: Any, frame_bgr: np.ndarray, zones: Sequence[Any], camera: Hashable | None) -> Any:
    """The faces of ``camera``'s frame: through the detector's :class:`ZoneTracker` (its ``tracker``, set by
    ``create_detector(track=N)``) when it has one, else ``detector.detect_in_zones(frame, zones)``."""
    tracker = getattr(detector, "tracker", None)
    if isinstance(tracker, ZoneTracker):
        return tracker.detect(detector, frame_bgr, zones, camera)
    return detector.detect_in_zones(frame_bgr, zones)


__all__ = ["DEFAULT_TRACK", "ZoneTracker", "detect_for_camera", "track_faces", "track_window"]
