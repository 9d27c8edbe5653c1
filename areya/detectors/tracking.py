"""Tracking faces between full zone scans: the ``track=N`` detector option.

A full zone scan (:func:`areya.detectors.zones.detect_in_zones`) costs about 46 detector passes on a 1280x720
four-bed frame.  Patients in beds move little between frames (cameras are sampled at about 2 frames/s), so with
``track=N`` a camera gets the full scan on its first frame and then every N-th frame; on the frames between (the
tracking frames), the crop detector runs only on one window around each face found in a zone on the camera's
previous frame (plus the whole-frame pass when ``zone_mode=both``): the face padded by :data:`TRACK_PAD` x its
side on each side, cut square (shifted to stay in the frame), so the detector's letterbox scales the face to about
half its input (64 px of short-range BlazeFace's 128) whatever the face's size; on the bench's sequences half a
side of padding finds slightly more faces than a whole side (3x the face: a third of the input) or 1.5 sides.  A
face found in a tracking window is kept only if its centre lies in a zone (that bed's face, as in a zone crop).

Zone rescans: after the tracking pass, a zone holding no face is looked at again on the same frame with a zone
scan of that zone alone (:func:`rescan_zones`: its windows as the full scan cuts them, the crop detector only, no
whole-frame pass), so a face that moved out of its window, turned, or appeared is found on that frame instead of
at the next full scan.  Every zone whose face of the previous frame was lost is rescanned; of the zones that were
empty on the previous frame too (an empty bed, or a face that the rescans miss), at most :data:`RESCAN_ZONES`
per frame, in turn (round robin per camera), so an empty bed costs a share of one zone's windows per frame, never
a full scan.  Rescans take no second look in smaller windows (``zone_relook``: full scans only) and no turned
looks (``rescan_turns``; on the night-ward frames they found 0.1 point more beds' faces for 5 % more detector
passes, on the pipeline bench's frames with empty beds none for 20 % more): a face lying on its side that the
upright passes miss waits for a full scan's turned look, as before.  The
counters :attr:`ZoneTracker.scans`, :attr:`~ZoneTracker.tracked` and :attr:`~ZoneTracker.rescans` say what it
cost.

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
from areya.detectors.rotation import check_orientation, find_upright, redetect_rolled
from areya.detectors.zones import (
    DEFAULT_ZONE_PAD,
    Window,
    auto_window,
    centre_in,
    crop_box_to_frame,
    detect_in_zones,
    turned_looks,
    zone_pixels,
    zone_rect,
)

if TYPE_CHECKING:
    from areya.detectors.base import FaceDetector

DEFAULT_TRACK = 4  # a full zone scan every 4th frame of a camera (bench/bench_detection.py --sequences)
TRACK_PAD = 0.5  # a tracking window reaches this many face sides beyond the face on each side (2x the face)
MIN_TRACK_WINDOW = 48  # pixels: a tracking window is at least this wide (tiny boxes get some context)
TRACK_IDLE_S = 10.0  # a camera without frames this long is forgotten (its next frame gets the full scan)
MAX_CAMERAS = 4096  # cameras remembered at most per detector instance
TURNED_TRACK_ROLL = 45  # a face rolled this many degrees or more is tracked in a window turned upright
RESCAN_ZONES = 1  # empty zones (no face last frame either) rescanned per tracking frame, in turn; lost ones: all


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


def rescan_zones(
    detector: Any, frame_bgr: np.ndarray, zones: Sequence[Any], found: Sequence[FaceBox], turns: Sequence[int] = ()
) -> list[FaceBox]:
    """The faces a zone scan finds in ``zones`` alone: :func:`areya.detectors.zones.detect_in_zones` in ``zones``
    mode (no whole-frame pass, no second look in smaller windows; the detector's crop detector, ``zone_pad`` and
    ``zone_window_px``), faces kept when their centre lies in their zone; the windows still without a face looked
    at turned by ``turns``
    (:func:`areya.detectors.zones.turned_looks`, which also skips parts of ``found``, the faces found elsewhere in
    the frame); rolled faces found again upright as ``redetect_roll`` says and turned the way the detector is surest
    of as ``orient_check`` says (faces new to the tracker).  In frame pixels, best score first."""
    frame = validate_frame(frame_bgr)
    h, w = frame.shape[:2]
    on_crops = getattr(detector, "crop_detector", None) or detector
    pad = float(getattr(detector, "zone_pad", DEFAULT_ZONE_PAD))
    side = int(getattr(detector, "zone_window_px", 0)) or auto_window(on_crops)
    faces = detect_in_zones(detector, frame, zones, mode="zones", pad=pad, window_px=side, crop_detector=on_crops)
    if turns:
        cores = [(z, c) for z, c in ((z, zone_pixels(z, w, h)) for z in zones) if c.w > 0 and c.h > 0]
        turned = turned_looks(on_crops, frame, cores, [*found, *faces], turns, pad, side)
        faces = merge_faces(faces + turned)
    faces = redetect_rolled(on_crops, frame, faces, getattr(detector, "redetect_roll", 0))
    return check_orientation(on_crops, frame, faces, getattr(detector, "orient_check", 0.0))


@dataclass
class _Camera:
    key: tuple[Any, ...]  # zone rectangles, frame size and zone mode: a change means a full scan
    frames: int  # frames since the last full scan, that one included
    faces: list[FaceBox]  # faces to look for on the next frame (those found whose centre lies in a zone)
    seen: float  # clock time of the last frame
    scans: int = 0  # full scans of this camera so far (which turned look comes next)
    rescans: int = 0  # tracking frames of this camera with a zone rescan so far (which turned look comes next)
    next_zone: int = 0  # the zone (index) whose turn it is to be rescanned when empty (round robin)


def scan_turns(detector: Any, scans: int) -> tuple[int, ...]:
    """The turned looks of a camera's full scan number ``scans`` (from 0): one of the detector's ``zone_turns`` in
    turn, so each full scan costs one turned look per window without a face, not one per angle (a face lying on
    its side is found within ``len(zone_turns)`` full scans, and then tracked upright)."""
    turns = tuple(getattr(detector, "zone_turns", ()))
    return (turns[scans % len(turns)],) if turns else ()


class ZoneTracker:
    """Per-camera tracking state of one detector instance (not thread-safe: one per detector, as detectors are).

    ``every``: a full zone scan on a camera's first frame and then every ``every``-th frame (<= 1: always).
    ``rescan``: on a tracking frame, at most this many zones that were empty on the previous frame too are
    rescanned, in turn (None: every one); ``rescan_lost``: zones whose tracked face was lost are all rescanned;
    ``rescan_turns``: rescans also take a turned look (:func:`scan_turns`, in turn) at their windows without a face
    (off by default: see the module doc).
    ``scans`` and ``tracked`` count the frames that got a full scan and a tracking pass, ``rescans`` the zones
    rescanned on tracking frames (for benches / tests).
    """

    def __init__(
        self,
        every: int,
        *,
        pad: float = TRACK_PAD,
        rescan: int | None = RESCAN_ZONES,
        rescan_lost: bool = True,
        rescan_turns: bool = False,
        idle_s: float = TRACK_IDLE_S,
        max_cameras: int = MAX_CAMERAS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"track must be an integer >= 0, got {every!r}")
        if max_cameras < 1:
            raise ValueError(f"max_cameras must be >= 1, got {max_cameras!r}")
        if rescan is not None and (isinstance(rescan, bool) or not isinstance(rescan, int) or rescan < 0):
            raise ValueError(f"rescan must be None or an integer >= 0, got {rescan!r}")
        self.every = every
        self.pad = float(pad)
        self.rescan = rescan
        self.rescan_lost = rescan_lost
        self.rescan_turns = rescan_turns
        self.idle_s = float(idle_s)
        self.max_cameras = max_cameras
        self.clock = clock
        self.scans = 0
        self.tracked = 0
        self.rescans = 0
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
        if state is None or state.key != key or state.frames >= self.every:
            if state is None or state.key != key:
                state = _Camera(key, 0, [], now)
            faces = list(detector.detect_in_zones(frame, zones, turns=scan_turns(detector, state.scans)))
            state.frames, state.scans = 0, state.scans + 1
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
            self.tracked += 1
            faces = self._rescan(detector, frame, rects, faces, state)
        in_zones = [f for f in faces if any(centre_in(f, core) for core in cores)]
        state.frames, state.faces, state.seen = state.frames + 1, in_zones, now
        self._cameras[camera] = state
        self._cameras.move_to_end(camera)
        while len(self._cameras) > self.max_cameras:
            self._cameras.popitem(last=False)
        return faces

    def _rescan(
        self,
        detector: Any,
        frame: np.ndarray,
        rects: Sequence[tuple[float, float, float, float]],
        faces: list[FaceBox],
        state: _Camera,
    ) -> list[FaceBox]:
        """``faces`` (a tracking pass's) with those found by rescanning this frame's empty zones
        (:func:`rescan_zones`): every zone whose face of the previous frame was lost (``rescan_lost``), and at
        most :attr:`rescan` of the zones empty on the previous frame too, taken in turn from ``state.next_zone``
        (which moves on past the last one taken)."""
        h, w = frame.shape[:2]
        cores = {i: c for i, c in enumerate(zone_pixels(r, w, h) for r in rects) if c.w > 0 and c.h > 0}
        empty = [i for i, c in cores.items() if not any(centre_in(f, c) for f in faces)]
        lost = [i for i in empty if any(centre_in(f, cores[i]) for f in state.faces)] if self.rescan_lost else []
        waiting = sorted((i for i in empty if i not in lost), key=lambda i: (i - state.next_zone) % len(rects))
        taken = waiting if self.rescan is None else waiting[: self.rescan]
        if taken:
            state.next_zone = (taken[-1] + 1) % len(rects)
        chosen = sorted(lost + taken)
        if not chosen:
            return faces
        turns = scan_turns(detector, state.rescans) if self.rescan_turns else ()
        state.rescans += 1
        self.rescans += len(chosen)
        found = rescan_zones(detector, frame, [rects[i] for i in chosen], faces, turns)
        return merge_faces(faces + found) if found else faces

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


__all__ = ["DEFAULT_TRACK", "ZoneTracker", "detect_for_camera", "rescan_zones", "track_faces", "track_window"]
