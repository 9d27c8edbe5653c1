"""Rotated passes: find faces that are not upright (a camera mounted on its side, a patient lying down).

``rotations`` lists clockwise angles in degrees: the frame is turned by each, the wrapped detector runs on every
turned view and the boxes come back in frame coordinates - the face's own size around its centre, with
``FaceBox.roll`` set to the angle that makes it upright (for :func:`areya.detectors.crop_face`).  Multiples of 90
are exact pixel permutations (``cv2.rotate``); other angles warp onto a canvas large enough for the whole frame.
A camera mounted on its side can use ``rotations=90`` alone; ``0/90/270`` finds faces lying either way at three
times the cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from areya.detectors.boxes import FaceBox, FaceFinder, validate_frame
from areya.detectors.merge import merge_faces

_EXACT = {90: 0, 180: 1, 270: 2}  # angle -> cv2.ROTATE_90_CLOCKWISE, ROTATE_180, ROTATE_90_COUNTERCLOCKWISE


def normalize_angle(angle: float) -> int:
    """An angle in degrees -> an integer in [0, 360)."""
    return int(round(angle)) % 360


def rotation_matrix(frame_w: int, frame_h: int, angle_cw: float) -> tuple[np.ndarray, int, int]:
    """The 2x3 affine map from frame pixels to the frame turned ``angle_cw`` degrees clockwise on a canvas that
    holds all of it, and that canvas's width and height."""
    import cv2

    a = math.radians(angle_cw)
    cos, sin = abs(math.cos(a)), abs(math.sin(a))
    new_w = round(frame_w * cos + frame_h * sin)
    new_h = round(frame_w * sin + frame_h * cos)
    m = cv2.getRotationMatrix2D((frame_w / 2.0, frame_h / 2.0), -angle_cw, 1.0)
    m[0, 2] += new_w / 2.0 - frame_w / 2.0
    m[1, 2] += new_h / 2.0 - frame_h / 2.0
    return m, new_w, new_h


def rotate_frame(frame: np.ndarray, angle_cw: int) -> tuple[np.ndarray, np.ndarray]:
    """``frame`` turned ``angle_cw`` degrees clockwise, and the affine map from frame to turned pixels."""
    import cv2

    h, w = frame.shape[:2]
    m, new_w, new_h = rotation_matrix(w, h, angle_cw)
    if angle_cw % 360 == 0:
        return frame, m
    if angle_cw % 360 in _EXACT:
        return cv2.rotate(frame, _EXACT[angle_cw % 360]), m
    turned = cv2.warpAffine(frame, m, (new_w, new_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return turned, m


def box_from_rotated(box: FaceBox, matrix: np.ndarray, angle_cw: int) -> FaceBox:
    """A box found in the turned view -> the same face in frame pixels (centre mapped back, size kept; width and
    height swap for quarter turns) with ``roll`` = ``angle_cw`` (turn it that far clockwise to make it upright)."""
    import cv2

    back = cv2.invertAffineTransform(matrix)
    cx, cy = box.center()
    fx = back[0, 0] * cx + back[0, 1] * cy + back[0, 2]
    fy = back[1, 0] * cx + back[1, 1] * cy + back[1, 2]
    w, h = (box.h, box.w) if angle_cw % 180 == 90 else (box.w, box.h)
    roll = float(normalize_angle(angle_cw + box.roll))
    eyes = None
    if box.eyes is not None:
        rx, ry, lx, ly = box.eyes
        eyes = (
            back[0, 0] * rx + back[0, 1] * ry + back[0, 2],
            back[1, 0] * rx + back[1, 1] * ry + back[1, 2],
            back[0, 0] * lx + back[0, 1] * ly + back[0, 2],
            back[1, 0] * lx + back[1, 1] * ly + back[1, 2],
        )
        eyes = tuple(float(v) for v in eyes)
    return FaceBox(round(fx - w / 2.0), round(fy - h / 2.0), w, h, box.score, roll if roll <= 180 else roll - 360, eyes)


REDETECT_ROLL = 20  # default redetect_roll: faces whose eyes say they are rolled this many degrees or more
REDETECT_WINDOW = 2.0  # the turned window around such a face: this many times its box side


def find_upright(
    detector: FaceFinder, frame: np.ndarray, centre: tuple[float, float], side: int, roll: float
) -> FaceBox | None:
    """The face nearest ``centre`` in a ``side`` x ``side`` window around it turned ``roll`` degrees clockwise
    (so a face rolled that much is upright there), or None when ``detector`` finds none within a quarter of the
    side from the window's centre.  The box (the face's own size, as the detector boxes an upright face) is
    mapped back to frame pixels around the found centre, with ``roll`` and the eyes mapped back."""
    import cv2

    h, w = frame.shape[:2]
    side = max(8, int(side))
    cx, cy = centre
    m = cv2.getRotationMatrix2D((cx, cy), -roll, 1.0)  # turns the face clockwise by its roll: upright
    m[0, 2] += side / 2.0 - cx
    m[1, 2] += side / 2.0 - cy
    turned = cv2.warpAffine(frame, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    found = detector.detect(turned)
    best = min(found, key=lambda b: math.dist(b.center(), (side / 2.0, side / 2.0)), default=None)
    if best is None or math.dist(best.center(), (side / 2.0, side / 2.0)) > side / 4.0:
        return None
    back = cv2.invertAffineTransform(m)
    bx, by = best.center()
    fx = back[0, 0] * bx + back[0, 1] * by + back[0, 2]
    fy = back[1, 0] * bx + back[1, 1] * by + back[1, 2]
    eyes = None
    if best.eyes is not None:
        rx, ry, lx, ly = best.eyes
        eyes = (
            float(back[0, 0] * rx + back[0, 1] * ry + back[0, 2]),
            float(back[1, 0] * rx + back[1, 1] * ry + back[1, 2]),
            float(back[0, 0] * lx + back[0, 1] * ly + back[0, 2]),
            float(back[1, 0] * lx + back[1, 1] * ly + back[1, 2]),
        )
    signed = (roll + 180.0) % 360.0 - 180.0
    return FaceBox(round(fx - best.w / 2.0), round(fy - best.h / 2.0), best.w, best.h, best.score, signed, eyes).clip(
        w, h
    )


def redetect_rolled(
    detector: FaceFinder,
    frame_bgr: np.ndarray,
    faces: Sequence[FaceBox],
    min_roll: float = REDETECT_ROLL,
    window: float = REDETECT_WINDOW,
) -> list[FaceBox]:
    """``faces`` with each rolled one found again upright: a face whose eye line (:meth:`FaceBox.eye_roll`) is
    ``min_roll`` degrees or more from its ``roll`` is looked for by ``detector`` in a square window of ``window`` x
    its box side around its centre, turned by that eye roll so the face is upright (:func:`find_upright`); the
    detection found there replaces it (its score kept from the first pass; its eyes, when it has them, also give
    the roll: those of a face seen nearly upright are more reliable than the first pass's).  A face not found again
    stays as it was.  ``min_roll`` 0: ``faces`` unchanged.  When a face was found again, the faces are merged
    once more (:func:`areya.detectors.merge.merge_faces`, best score first): two loose boxes of one lying face that
    overlapped too little to be merged (parts of it seen from two zone windows) are found again as the same face.

    An upright pass boxes a face rolled 45-90 degrees loosely (too small, or the bounds of the turned face); the
    second look costs one detector pass on a small window per rolled face.
    """
    if min_roll <= 0 or not faces:
        return list(faces)
    frame = validate_frame(frame_bgr)
    out = []
    moved = False
    for face in faces:
        roll = face.eye_roll(max_offset=180.0)
        if roll is None or abs((roll - face.roll + 180.0) % 360.0 - 180.0) < min_roll:
            out.append(face)
            continue
        found = find_upright(detector, frame, face.center(), round(window * max(face.w, face.h)), roll)
        if found is None:
            out.append(face)
            continue
        again = FaceBox(
            found.x, found.y, found.w, found.h, face.score, roll, found.eyes if found.eyes is not None else face.eyes
        )
        # the eyes of the face seen (nearly) upright are the reliable ones: their roll, if plausible, is the face's
        refined = again.eye_roll(max_offset=45.0) if found.eyes is not None else None
        out.append(again if refined is None else FaceBox(*again.as_tuple(), again.score, refined, again.eyes))
        moved = True
    return merge_faces(out) if moved else out


ORIENT_CHECK = 0.1  # default orient_check: another turn of a face wins when the detector is this much surer there
ORIENT_ACCEPT = 0.85  # a face found again upright with at least this score is taken as upright without other turns
ORIENT_TURNS = (180.0, 90.0, -90.0)  # the other turns looked at, clockwise degrees beyond the face's own roll


def check_orientation(
    detector: FaceFinder,
    frame_bgr: np.ndarray,
    faces: Sequence[FaceBox],
    margin: float = ORIENT_CHECK,
    accept: float = ORIENT_ACCEPT,
    window: float = REDETECT_WINDOW,
) -> list[FaceBox]:
    """``faces`` each turned the way ``detector`` is surest is upright.

    The roll a face's crop would be turned by (its eyes', when plausible, else its pass's) can be a quarter or a
    half turn off: eye points read upside down on a small dim face, or a lying face boxed by an upright pass
    with its eyes in the wrong places.  Each face is looked at in a window of ``window`` x its side turned by
    that roll (:func:`find_upright`); unless it is found there with a score of at least ``accept``, the window is
    also looked at turned 180 and 90 degrees either way more (:data:`ORIENT_TURNS`).  Another turn wins only when
    its face scores more than ``margin`` above the first look's (or the first look finds none) and its eyes are
    level within 45 degrees there (a face seen the right way up); the face then keeps its box and score and takes
    the winner's eyes and the roll they say.  A face where no other turn wins stays exactly as it was.
    ``margin`` 0: ``faces`` unchanged.

    Costs one detector pass on a small window per face, and three more for a face not found again surely
    upright; the worker runs it on full scans and on the faces a tracking frame's rescan finds in an empty zone
    (a tracked face keeps the roll it was tracked with).
    """
    if margin <= 0 or not faces:
        return list(faces)
    frame = validate_frame(frame_bgr)
    out = []
    for face in faces:
        eye_roll = face.eye_roll()
        roll = eye_roll if eye_roll is not None else face.roll
        side = round(window * max(face.w, face.h))
        first = find_upright(detector, frame, face.center(), side, roll)
        if first is not None and first.score >= accept:
            out.append(face)
            continue
        best, best_roll, best_score = None, 0.0, (first.score + margin) if first is not None else -math.inf
        for turn in ORIENT_TURNS:
            found = find_upright(detector, frame, face.center(), side, roll + turn)
            level = found.eye_roll(max_offset=45.0) if found is not None else None
            if found is not None and level is not None and found.score > best_score:
                best, best_roll, best_score = found, level, found.score
        out.append(face if best is None else FaceBox(*face.as_tuple(), face.score, best_roll, best.eyes))
    return out
