"""Zone-aware detection: run the detector on each bed zone's crop instead of (or besides) the whole frame.

A whole 1280x720 frame shrinks to the detector's input (192x192 for BlazeFace): a 48 px face becomes 7 px and is
missed.  A bed zone's crop is shrunk far less, so small faces are found, and a face found in a zone's crop whose
centre lies in the zone belongs to that zone's bed by construction.  Zones are normalized ``(x0, y0, x1, y1)``
rectangles (the ``bed_zones`` rows: objects with those attributes, or 4-tuples).  A zone is padded by
``pad`` x its shorter side (so faces at its edge are not cut) and, when long and thin or larger than the window
size (``zone_window_px``; 0 = twice the detector's input), split into overlapping square windows: the detector
letterboxes every view into its square input, so a window is shrunk at most that much.

Modes (the ``zone_mode`` detector option): ``frame`` (whole frame only), ``zones`` (zone crops only; a camera
without zones gets the whole frame), ``both`` (whole frame and zone crops, merged).

Turned looks (the ``zone_turns`` option, clockwise degrees; default 90 and 270): a zone window where no face was
found is looked at again turned by each angle, so a patient lying on the side (the face rolled 45-90 degrees,
which an upright pass misses) is found; such a face comes back with its ``roll`` set.  It costs detector passes
only on windows without a face (an empty bed, or a face the upright passes missed).

A second look at empty zones (the ``zone_relook`` option, a share of the zone window's side; default 0.75): a
zone where the upright passes found no face is looked at again, before the turned looks, in windows of that share
of the side (192 px for the short-range BlazeFace's 256), so its face is larger at the detector's input.  A face
smeared by motion, or small, that one window scale misses, another often finds.  It costs detector passes only
on zones without a face.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from areya.detectors.boxes import FaceBox, FaceFinder, validate_frame
from areya.detectors.merge import merge_faces
from areya.detectors.options import ZONE_MODES
from areya.detectors.rotation import (
    box_from_rotated,
    check_orientation,
    find_upright,
    redetect_rolled,
    rotate_frame,
)

DEFAULT_ZONE_MODE = "both"  # what FaceDetector.detect_in_zones does by default (bench/bench_detection.py)
DEFAULT_ZONE_PAD = 0.1
DEFAULT_ZONE_TURNS = (90, 270)  # zone windows without a face looked at turned by these (bench_detection.py)
DEFAULT_ZONE_RELOOK = 0.75  # zones without a face looked at again in windows of this share of the side (night ward)
MIN_RELOOK_WINDOW = 32  # pixels: the second look's windows are at least this wide


MAX_ASPECT = 1.5  # a padded zone longer than this many times its width is split into square windows
WINDOW_OVERLAP = 1 / 3  # neighbouring windows share at least this share of their side
MAX_WINDOW = 480  # largest window side for a detector of unknown input size (Haar)
TURNED_MIN_SCORE = 0.5  # a face found in a turned look counts from this score (the bench: false faces score lower)
SAME_FACE_SHARE = 0.3  # a turned look's face sharing this much of the smaller box with a found face is that face
CONFIRM_WINDOW = 2.0  # a turned look's face is seen again in a window this many times its side
INPUT_TIMES = 2  # auto window side: this many times the detector's input (384 px for BlazeFace full range)


@dataclass(frozen=True)
class Window:
    """A crop of the frame in pixels: top-left corner and size."""

    x: int
    y: int
    w: int
    h: int


def zone_rect(zone: Any) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` of a zone given as an object with those attributes or as a 4-sequence."""
    if hasattr(zone, "x0"):
        return (float(zone.x0), float(zone.y0), float(zone.x1), float(zone.y1))
    x0, y0, x1, y1 = zone
    return (float(x0), float(y0), float(x1), float(y1))


def zone_pixels(zone: Any, frame_w: int, frame_h: int) -> Window:
    """The zone in frame pixels, clipped to the frame (possibly empty)."""
    x0, y0, x1, y1 = zone_rect(zone)
    px0 = min(max(math.floor(min(x0, x1) * frame_w), 0), frame_w)
    py0 = min(max(math.floor(min(y0, y1) * frame_h), 0), frame_h)
    px1 = min(max(math.ceil(max(x0, x1) * frame_w), 0), frame_w)
    py1 = min(max(math.ceil(max(y0, y1) * frame_h), 0), frame_h)
    return Window(px0, py0, px1 - px0, py1 - py0)


def zone_windows(
    zone: Any, frame_w: int, frame_h: int, pad: float = DEFAULT_ZONE_PAD, max_side: int = MAX_WINDOW
) -> list[Window]:
    """The crops the detector sees for one zone: the zone padded by ``pad`` x its shorter side, clipped to the
    frame; split into overlapping squares (side: the shorter side, at most ``max_side``) when it is longer than
    :data:`MAX_ASPECT` x wide or larger than ``max_side``."""
    core = zone_pixels(zone, frame_w, frame_h)
    if core.w <= 0 or core.h <= 0:
        return []
    margin = round(pad * min(core.w, core.h))
    x0, y0 = max(core.x - margin, 0), max(core.y - margin, 0)
    x1, y1 = min(core.x + core.w + margin, frame_w), min(core.y + core.h + margin, frame_h)
    w, h = x1 - x0, y1 - y0
    if max(w, h) <= MAX_ASPECT * min(w, h) and max(w, h) <= max_side:
        return [Window(x0, y0, w, h)]
    side = min(w, h, max_side)
    xs, ys = _starts(w, side), _starts(h, side)
    return [Window(x0 + sx, y0 + sy, min(side, w), min(side, h)) for sy in ys for sx in xs]


def _starts(length: int, side: int) -> list[int]:
    """Offsets of overlapping windows of ``side`` covering ``length``."""
    if length <= side:
        return [0]
    count = max(1, math.ceil((length / side - WINDOW_OVERLAP) / (1.0 - WINDOW_OVERLAP)))
    return np.linspace(0, length - side, count).round().astype(int).tolist()


def auto_window(detector: Any) -> int:
    """The largest zone window for ``detector`` when ``zone_window_px`` is 0: :data:`INPUT_TIMES` x its square
    input (BlazeFace: ``spec.input_size``), else :data:`MAX_WINDOW`."""
    spec = getattr(detector, "spec", None)
    size = getattr(spec, "input_size", None)
    return int(size * INPUT_TIMES) if isinstance(size, int) and size > 0 else MAX_WINDOW


def crop_box_to_frame(box: FaceBox, window: Window, scale: float = 1.0) -> FaceBox:
    """A box found in ``window``'s crop (resized by ``scale`` before detection) -> frame pixels."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return FaceBox(
        window.x + round(box.x / scale),
        window.y + round(box.y / scale),
        round(box.w / scale),
        round(box.h / scale),
        box.score,
        box.roll,
        None
        if box.eyes is None
        else tuple(  # type: ignore[arg-type]
            (v / scale) + (window.x if i % 2 == 0 else window.y) for i, v in enumerate(box.eyes)
        ),
    )


def centre_in(box: FaceBox, window: Window) -> bool:
    cx, cy = box.center()
    return window.x <= cx < window.x + window.w and window.y <= cy < window.y + window.h


def detect_in_zones(
    detector: FaceFinder,
    frame_bgr: np.ndarray,
    zones: Sequence[Any],
    *,
    mode: str = "zones",
    pad: float = DEFAULT_ZONE_PAD,
    window_px: int = 0,
    crop_detector: FaceFinder | None = None,
    redetect_roll: float = 0,
    turns: Sequence[int] = (),
    relook: float = 0.0,
    orient_check: float = 0.0,
) -> list[FaceBox]:
    """Faces in ``frame_bgr`` found as ``mode`` says (see the module doc), in frame pixels, best score first.

    Zone crops go to ``crop_detector`` (None: ``detector``) in windows of at most ``window_px`` (0:
    :func:`auto_window` of that detector).  A face found in a zone's crop is kept only if its centre lies in that
    zone (not in the padding).  ``redetect_roll`` > 0: faces whose eyes say they are rolled that many degrees or
    more are found again by ``crop_detector`` in a turned window (:func:`areya.detectors.rotation.redetect_rolled`).
    ``relook`` > 0: a zone holding no face after the upright passes is looked at again in windows of that share of
    the window side (:func:`relook_zones`).  ``turns`` (clockwise degrees): a zone window holding no face after
    that is looked at turned by each (:func:`turned_looks`).  Neither in ``frame`` mode.  ``orient_check`` > 0:
    each face is then turned the way the detector is surest is upright (:func:`areya.detectors.rotation.
    check_orientation`, that margin).
    """
    if mode not in ZONE_MODES:
        raise ValueError(f"zone mode must be one of {', '.join(ZONE_MODES)}, got {mode!r}")
    frame = validate_frame(frame_bgr)
    h, w = frame.shape[:2]
    cores = [(z, zone_pixels(z, w, h)) for z in zones]
    cores = [(z, core) for z, core in cores if core.w > 0 and core.h > 0]
    on_crops = crop_detector or detector
    if mode == "frame" or not cores:
        faces = redetect_rolled(on_crops, frame, list(detector.detect(frame)), redetect_roll)
        return check_orientation(on_crops, frame, faces, orient_check)
    faces: list[FaceBox] = list(detector.detect(frame)) if mode == "both" else []
    side = window_px or auto_window(on_crops)
    for zone, core in cores:
        for win in zone_windows(zone, w, h, pad, side):
            for box in on_crops.detect(frame[win.y : win.y + win.h, win.x : win.x + win.w]):
                mapped = crop_box_to_frame(box, win)
                if centre_in(mapped, core):
                    faces.append(mapped)
    faces = merge_faces(faces)
    if relook > 0:
        relook_side = max(MIN_RELOOK_WINDOW, round(side * relook))
        faces = merge_faces(faces + relook_zones(on_crops, frame, cores, faces, pad, relook_side, side))
    if turns:
        faces = merge_faces(faces + turned_looks(on_crops, frame, cores, faces, turns, pad, side))
    faces = redetect_rolled(on_crops, frame, faces, redetect_roll)
    return check_orientation(on_crops, frame, faces, orient_check)


def relook_zones(
    detector: FaceFinder,
    frame: np.ndarray,
    zones: Sequence[tuple[Any, Window]],
    found: Sequence[FaceBox],
    pad: float,
    side: int,
    first_side: int = 0,
) -> list[FaceBox]:
    """Faces in the zones of ``zones`` (``(zone, core)`` pairs) whose core holds no face of ``found`` (by its
    centre): each such zone is cut into windows of at most ``side`` (:func:`zone_windows`) and ``detector`` runs
    on every one (a zone that windows of ``first_side``, the first pass's, cut the same way is skipped: the same
    views again); faces whose centre lies in the zone's core and that are not part of a face of ``found``
    (:func:`_on_found`) are returned, in frame pixels.  With a smaller ``side`` than the first pass's windows a
    face is larger at the detector's input: a face smeared by motion or a small one that the first window scale
    missed is often found at the second."""
    h, w = frame.shape[:2]
    out: list[FaceBox] = []
    for zone, core in zones:
        if any(centre_in(f, core) for f in found):
            continue
        windows = zone_windows(zone, w, h, pad, side)
        if first_side and windows == zone_windows(zone, w, h, pad, first_side):
            continue
        for win in windows:
            for box in detector.detect(frame[win.y : win.y + win.h, win.x : win.x + win.w]):
                face = crop_box_to_frame(box, win)
                if centre_in(face, core) and not _on_found(face, found):
                    out.append(face)
    return out


def turned_looks(
    detector: FaceFinder,
    frame: np.ndarray,
    zones: Sequence[tuple[Any, Window]],
    found: Sequence[FaceBox],
    turns: Sequence[int],
    pad: float,
    side: int,
    min_score: float = TURNED_MIN_SCORE,
) -> list[FaceBox]:
    """Faces in the windows of ``zones`` (``(zone, core)`` pairs) that hold no face of ``found``: each such
    window is turned clockwise by each of ``turns`` degrees until ``detector`` finds faces there that lie in the
    zone's core (by their centre), score at least ``min_score`` and are seen again in a second view
    (:func:`_confirmed`) and are not part of a face of ``found`` (:func:`_on_found`); returned in frame pixels,
    with ``roll`` the turn that makes them upright."""
    h, w = frame.shape[:2]
    out: list[FaceBox] = []
    for zone, core in zones:
        for win in zone_windows(zone, w, h, pad, side):
            if any(centre_in(f, win) for f in found):
                continue
            crop = frame[win.y : win.y + win.h, win.x : win.x + win.w]
            for angle in turns:
                turned, matrix = rotate_frame(crop, angle)
                hits = []
                for box in detector.detect(turned):
                    if box.score < min_score:
                        continue
                    face = crop_box_to_frame(box_from_rotated(box, matrix, angle).clip(win.w, win.h), win)
                    if _on_found(face, found):  # the face an upright pass found, whose centre is in another window
                        continue
                    if centre_in(face, core) and (seen := _confirmed(detector, frame, face)) is not None:
                        hits.append(_upright_if_better(detector, frame, face, seen))
                if hits:
                    out.extend(hits)
                    break
    return out


def _on_found(face: FaceBox, found: Sequence[FaceBox]) -> bool:
    """Whether ``face`` is part of a face of ``found`` seen again: they share at least :data:`SAME_FACE_SHARE` of
    the smaller box.  (A window next to an upright face's own holds part of it - its brow and eyes, say; turned,
    that part was taken for a face lying on its side, which the roll then turned upside down for the classifier.)"""
    for f in found:
        ix = min(face.x + face.w, f.x + f.w) - max(face.x, f.x)
        iy = min(face.y + face.h, f.y + f.h) - max(face.y, f.y)
        if ix > 0 and iy > 0 and ix * iy >= SAME_FACE_SHARE * min(face.area, f.area):
            return True
    return False


def _confirmed(detector: FaceFinder, frame: np.ndarray, face: FaceBox) -> FaceBox | None:
    """A face from a turned look seen again in a second view: a window of :data:`CONFIRM_WINDOW` x its side
    turned by its roll (another scale and context than the zone window: false faces in bedding seldom survive);
    the face found there, or None."""
    side = round(CONFIRM_WINDOW * max(face.w, face.h))
    return find_upright(detector, frame, face.center(), side, face.roll)


def _upright_if_better(detector: FaceFinder, frame: np.ndarray, face: FaceBox, seen: FaceBox) -> FaceBox:
    """``face``, or the face an unturned view of the same close-up window finds there when it scores higher than
    the turned view's ``seen``: a small upright face that the zone window missed can be taken for one lying on
    its side when turned, and would reach the classifier turned 90 degrees."""
    side = round(CONFIRM_WINDOW * max(face.w, face.h))
    upright = find_upright(detector, frame, face.center(), side, 0.0)
    if upright is None or upright.score <= seen.score:
        return face
    return FaceBox(upright.x, upright.y, upright.w, upright.h, face.score, 0.0, upright.eyes)
