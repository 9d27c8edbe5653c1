"""Whose face is it: the role of every face in a bed zone - the bed's patient, or someone else.

A bed zone holds more than the patient: a visitor seated at the bedside, a nurse leaning over the pillow, a porter
passing the foot of the bed.  Only the patient's face may count for the patient.  Each face in a bed zone gets a
**patient score** from what a ward camera gives (each part can be switched off, :class:`Cues`, for the bench's
ablations):

- **head** - where the face is against the bed's head-of-bed (pillow) region (drawn by an admin, else
  :func:`default_head`: the top :data:`HEAD_DEPTH` of the zone, its middle :data:`HEAD_WIDTH`): +2 inside, falling
  linearly to -2 at :data:`HEAD_REACH` x the zone's longer side from it (a step sideways, where visitors sit,
  counts :data:`SIDEWAYS` times a step towards the foot, where a patient sitting up moves);
- **pose** - a face rolled :data:`LYING_ROLL` degrees or more (its head on the pillow on its side: the roll that
  the detector's eyes or turned looks measure) is lying: +1.5; an upright face is no evidence either way (a
  patient on the back seen from the foot of the bed looks upright too);
- **size** - the face's side against the patient's: the held patient track's median side when there is one, else
  :data:`EXPECTED_SIDE` x the zone's shorter side (a head is about a fifth of a bed's width); a face more than
  :data:`SIZE_TOLERANCE` x larger or smaller than the patient's (nearer the camera: someone standing or leaning
  over; further: someone behind) loses up to 2.

and **track** - continuity across frames: faces are followed from frame to frame per bed (:class:`BedRoles`:
nearest previous face within :data:`MAX_STEP` x its side across the bed and :data:`ALONG_STEP` along it (from
the pillow region towards the zone's centre), of a similar size and look; a track missed on the bed's
previous frame is picked up again only by a face of a similar look, when the worker gives it: :func:`face_look`,
the face's grey pixels shrunk to 12 x 12, compared with the track's last few, kept in memory only while the track
lives - a nurse's face where the hidden patient's was does not continue the patient's track).  The bed's patient is one
track: it keeps the role while it is seen, and for :data:`HOLD_S` seconds after it was last seen (a nurse's head
in front of it, a face the detector missed), during which no other face can take the role; when no track holds
it, the track with the best mean score of at least :data:`MIN_SCORE` takes it.  A track seen over
:data:`TAKEOVER_FRAMES` frames whose mean score beats the holder's by :data:`TAKEOVER_MARGIN` takes the role over
(a visitor taken for the patient while the patient's face was not yet found gives it back).  A new track whose
face lies within :data:`SAME_PLACE` of its side where the unseen patient track's face last was carries the role
on (the patient's face, changed by a hand or a head partly in front of it, or by a new roll estimate).  Without
the track cue each frame is judged alone (its best face scoring at least :data:`MIN_SCORE` is the patient).

An admin's correction (:meth:`BedRoles.correct`) overrides the decision: the patient track is "not the patient"
(it stays someone else until it ends), or a given track "is the patient".  :class:`BedRoles` keeps state per
worker process, per camera and bed, like the detector's tracker; state of beds not seen for :data:`FORGET_S`
seconds is dropped.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from areya.detectors.boxes import FaceBox
from areya.detectors.crop import crop_face

PATIENT = "patient"
OTHER = "other"
ROLES = (PATIENT, OTHER)

HEAD_DEPTH = 0.35  # default pillow region: this share of the zone from its head end (the top)
HEAD_WIDTH = 0.7  # ... and this middle share of its width (visitors sit at the edges)
HEAD_REACH = 0.35  # the head cue falls from +2 to -2 over this many zone long-sides away from the pillow region
SIDEWAYS = 2.0  # a step beside the pillow region counts this many times a step towards the foot
HEAD_WEIGHT = 2.0
LYING_ROLL = 30.0  # degrees: a face rolled this much or more lies on its side
LYING_BONUS = 1.5
EXPECTED_SIDE = 0.22  # prior patient face side as a share of the zone's shorter side (bed width)
SIZE_TOLERANCE = 1.45  # a face within this factor of the patient's size loses nothing
PRIOR_TOLERANCE = 3.0  # ... of the prior size (no patient track yet: the prior is rough)
SIZE_PENALTY = 2.0
MIN_SCORE = 0.0  # a track needs at least this mean score to become the patient
TAKEOVER_MARGIN = 1.5  # ... or, to take the role from the holder, this much more than the holder's mean score
TAKEOVER_FRAMES = 3  # ... over at least this many frames
MAX_STEP = 0.5  # a face continues a track when its centre lies within this many sides of the track's last across
ALONG_STEP = 0.9  # the bed, and this many along it (a patient sitting up moves along the bed; visitors are beside)
STEP_SIZE = 1.45  # ... its size within this factor
STEP_LOOK = 0.5  # ... and, picking up a track missed on the previous frame, its look (face_look) correlates at
LOOKS_KEPT = 5  # least this much with one of the track's last few looks
NEXT_LOOK = 0.35  # ... and on the next frame, at least this much
SAME_PLACE = 0.4  # a new face this close (in sides) to the unseen patient track's last face carries its role on
MISSED_STEPS = 1.5  # a track not seen for this many of the bed's usual frame intervals was missed
LOOK_SIDE = 12  # pixels of a face's look, each way
TRACK_GAP_S = 10.0  # a track not seen this long ends (the patient's: HOLD_S)
HOLD_S = 30.0  # the patient track holds the role this long after it was last seen
FORGET_S = 600.0  # a bed not seen this long is forgotten
SIDES_KEPT = 30  # a track's recent face sides (its median: the patient's reference size)
SCORES_KEPT = 10  # a track's recent scores (their mean: its evidence)

Rect = tuple[float, float, float, float]


@dataclass(frozen=True)
class Cues:
    """Which cues decide (all by default); the bench switches them off one at a time."""

    head: bool = True
    pose: bool = True
    size: bool = True
    track: bool = True

    def without(self, name: str) -> Cues:
        if name not in ("head", "pose", "size", "track"):
            raise ValueError(f"unknown cue {name!r}")
        return Cues(**{**self.__dict__, name: False})


@dataclass(frozen=True)
class BedGeometry:
    """A bed zone and its pillow region, normalized ``(x0, y0, x1, y1)`` rectangles of the frame."""

    zone: Rect
    head: Rect | None = None  # None: :func:`default_head`

    @property
    def pillow(self) -> Rect:
        return self.head if self.head is not None else default_head(self.zone)

    def along_y(self, frame_w: int, frame_h: int) -> bool:
        """Whether the bed runs up and down the picture: the pillow region lies above or below the zone's centre
        rather than left or right of it."""
        zx0, zy0, zx1, zy1 = self.zone
        hx0, hy0, hx1, hy1 = self.pillow
        dx = ((hx0 + hx1) - (zx0 + zx1)) / 2 * frame_w
        dy = ((hy0 + hy1) - (zy0 + zy1)) / 2 * frame_h
        return abs(dy) >= abs(dx)


def default_head(zone: Rect) -> Rect:
    """The pillow region of a zone whose head-of-bed region was not drawn: the top :data:`HEAD_DEPTH` of the zone,
    the middle :data:`HEAD_WIDTH` of its width (a ward camera sees its beds from their foot: the head end is the
    far, upper end of the zone in the picture)."""
    x0, y0, x1, y1 = zone
    margin = (1.0 - HEAD_WIDTH) / 2.0 * (x1 - x0)
    return (x0 + margin, y0, x1 - margin, y0 + HEAD_DEPTH * (y1 - y0))


def check_head(zone: Rect, head: Rect) -> Rect:
    """``head`` if it is a rectangle inside ``zone`` (edges included) with x0 < x1 and y0 < y1, else ValueError."""
    hx0, hy0, hx1, hy1 = (float(v) for v in head)
    if not all(math.isfinite(v) for v in (hx0, hy0, hx1, hy1)):
        raise ValueError("the pillow region's coordinates must be numbers")
    if not (hx0 < hx1 and hy0 < hy1):
        raise ValueError(f"the pillow region needs x0 < x1 and y0 < y1, got {hx0:g} {hy0:g} {hx1:g} {hy1:g}")
    x0, y0, x1, y1 = zone
    eps = 1e-9
    if hx0 < x0 - eps or hy0 < y0 - eps or hx1 > x1 + eps or hy1 > y1 + eps:
        raise ValueError(
            f"the pillow region {hx0:g} {hy0:g} {hx1:g} {hy1:g} must lie inside the bed zone "
            f"{x0:g} {y0:g} {x1:g} {y1:g}"
        )
    return (hx0, hy0, hx1, hy1)


@dataclass(frozen=True)
class FaceSeen:
    """A face in a bed zone, in frame pixels: centre, side (the box's longer side) and roll in degrees; ``look``:
    its :func:`face_look` (None: not known), compared only with the same track's previous look, never kept."""

    cx: float
    cy: float
    side: float
    roll: float = 0.0
    look: np.ndarray | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of_box(cls, box: Any, image: np.ndarray | None = None) -> FaceSeen:
        look = face_look(image, box) if image is not None else None
        return cls(
            box.x + box.w / 2.0, box.y + box.h / 2.0, float(max(box.w, box.h)), float(getattr(box, "roll", 0)), look
        )


def face_look(image: np.ndarray, box: Any) -> np.ndarray | None:
    """A face's coarse look: its box's grey pixels, turned upright by its roll, shrunk to :data:`LOOK_SIDE` x
    :data:`LOOK_SIDE`, zero-mean and unit-norm (their dot product is the correlation of two looks).  Not a
    signature - far too coarse to tell who someone is - only whether the face in a track's place on the next frame
    is still the same picture of a face; never stored.  None for a box with no pixels in the frame or a flat one."""
    face = FaceBox(
        int(box.x),
        int(box.y),
        int(box.w),
        int(box.h),
        1.0,
        float(getattr(box, "roll", 0.0)),
        getattr(box, "eyes", None),
    )
    try:
        patch = crop_face(image, face, 0.0)  # turned upright by its roll, as the classifier sees it
    except ValueError:
        return None
    if min(patch.shape[:2]) < 2:
        return None
    grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY) if patch.ndim == 3 else patch
    small = cv2.resize(grey, (LOOK_SIDE, LOOK_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    return small / norm if norm > 1e-3 else None


def look_alike(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """The correlation of two looks, the best over quarter turns of one (a face lying on its side is found turned
    either way, and now and then taken for upright: its roll is known up to quarter turns); None when one is
    unknown."""
    if a is None or b is None:
        return None
    square = a.reshape(LOOK_SIDE, LOOK_SIDE)
    return max(float(np.dot(np.rot90(square, k).ravel(), b)) for k in range(4))


def _folded_roll(roll: float) -> float:
    """|roll| folded into [0, 180]."""
    return abs((roll + 180.0) % 360.0 - 180.0)


def _px(rect: Rect, frame_w: int, frame_h: int) -> Rect:
    return (rect[0] * frame_w, rect[1] * frame_h, rect[2] * frame_w, rect[3] * frame_h)


def score_parts(
    face: FaceSeen, geometry: BedGeometry, frame_w: int, frame_h: int, patient_side: float | None, cues: Cues
) -> dict[str, float]:
    """The patient score's parts of one face (only the cues switched on), as the module doc says."""
    parts: dict[str, float] = {}
    zx0, zy0, zx1, zy1 = _px(geometry.zone, frame_w, frame_h)
    if cues.head:
        hx0, hy0, hx1, hy1 = _px(geometry.pillow, frame_w, frame_h)
        dx = max(hx0 - face.cx, 0.0, face.cx - hx1)
        dy = max(hy0 - face.cy, 0.0, face.cy - hy1)
        reach = HEAD_REACH * max(zx1 - zx0, zy1 - zy0, 1.0)
        distance = math.hypot(SIDEWAYS * dx, dy)  # beside the pillow counts more than below it
        parts["head"] = HEAD_WEIGHT - 2 * HEAD_WEIGHT * min(1.0, distance / reach)
    if cues.pose:
        parts["pose"] = (
            LYING_BONUS if min(_folded_roll(face.roll), 180 - _folded_roll(face.roll)) >= LYING_ROLL else 0.0
        )
        if _folded_roll(face.roll) >= 180 - LYING_ROLL:  # upside down: the detector's guess, not a pose
            parts["pose"] = 0.0
    if cues.size:
        if patient_side:
            ref, tolerance = patient_side, SIZE_TOLERANCE
        else:
            ref, tolerance = EXPECTED_SIDE * max(min(zx1 - zx0, zy1 - zy0), 1.0), PRIOR_TOLERANCE
        excess = abs(math.log(max(face.side, 1.0) / ref)) - math.log(tolerance)
        parts["size"] = -SIZE_PENALTY * min(1.0, max(0.0, excess) / math.log(1.5))
    return parts


@dataclass
class Track:
    """A face followed across frames of one bed."""

    id: int
    cx: float
    cy: float
    side: float
    roll: float
    first_at: float
    last_at: float
    seen: int = 0
    role: str = OTHER
    fixed: str | None = None  # an admin's correction: PATIENT or OTHER for as long as the track lives
    sides: deque[float] = field(default_factory=lambda: deque(maxlen=SIDES_KEPT))
    scores: deque[float] = field(default_factory=lambda: deque(maxlen=SCORES_KEPT))
    parts: dict[str, float] = field(default_factory=dict)  # the last frame's score parts
    looks: deque[np.ndarray] = field(default_factory=lambda: deque(maxlen=LOOKS_KEPT), repr=False)  # memory only

    @property
    def score(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else -math.inf

    @property
    def median_side(self) -> float:
        return statistics.median(self.sides) if self.sides else self.side

    def public(self, geometry: BedGeometry | None, frame_w: int, frame_h: int) -> dict[str, Any]:
        """What the patient page shows of a track: no picture, only where and how the face was."""
        return {
            "track": self.id,
            "role": self.role,
            "fixed": self.fixed,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "frames": self.seen,
            "where": where(self, geometry, frame_w, frame_h),
            "lying": min(_folded_roll(self.roll), 180 - _folded_roll(self.roll)) >= LYING_ROLL,
            "score": round(self.score, 2) if self.scores else None,
        }


def _same_place(track: Track, holder: Track) -> bool:
    """Whether ``track``'s face lies where ``holder``'s last did: within :data:`SAME_PLACE` of its sides, of a size
    within :data:`STEP_SIZE` of its."""
    side = max(holder.median_side, 1.0)
    ratio = max(track.side, 1.0) / side
    return math.hypot(track.cx - holder.cx, track.cy - holder.cy) / side <= SAME_PLACE and (
        1 / STEP_SIZE <= ratio <= STEP_SIZE
    )


def where(track: Track, geometry: BedGeometry | None, frame_w: int, frame_h: int) -> str:
    """A face's place in words: at the pillow, beside the bed (left/right), at the foot, in the bed."""
    if geometry is None or frame_w <= 0 or frame_h <= 0:
        return "in the bed zone"
    x, y = track.cx / frame_w, track.cy / frame_h
    hx0, hy0, hx1, hy1 = geometry.pillow
    zx0, zy0, zx1, zy1 = geometry.zone
    if hx0 <= x <= hx1 and hy0 <= y <= hy1:
        return "at the pillow"
    if y > zy0 + 0.75 * (zy1 - zy0):
        return "at the foot of the bed"
    if x < hx0:
        return "at the left side of the bed"
    if x > hx1:
        return "at the right side of the bed"
    return "in the bed"


@dataclass
class _Bed:
    tracks: list[Track] = field(default_factory=list)
    seen_at: float = 0.0
    geometry: BedGeometry | None = None
    frame: tuple[int, int] = (0, 0)
    others_at: float = -math.inf  # when someone else was last seen
    others: int = 0  # how many others on that frame
    steps: deque[float] = field(default_factory=lambda: deque(maxlen=9))  # seconds between the bed's frames


class BedRoles:
    """The role of each face in each bed zone, with each bed's face tracks (one instance per worker process).

    ``everyone_patient``: the behaviour before roles (every face in a zone counts for the patient), for the
    bench's comparison."""

    def __init__(self, cues: Cues | None = None, *, everyone_patient: bool = False) -> None:
        self.cues = cues or Cues()
        self.everyone_patient = everyone_patient
        self._beds: dict[Hashable, _Bed] = {}
        self._next_id = 1

    def beds(self) -> list[Hashable]:
        """The beds (keys) known now."""
        return list(self._beds)

    def tracks(self, bed: Hashable) -> list[Track]:
        state = self._beds.get(bed)
        return list(state.tracks) if state is not None else []

    def snapshot(self, bed: Hashable) -> dict[str, Any]:
        """The bed's tracks (:meth:`Track.public`) and its bedside presence, for the patient page."""
        state = self._beds.get(bed)
        if state is None:
            return {"tracks": [], "others_at": None, "others": 0}
        w, h = state.frame
        return {
            "tracks": [t.public(state.geometry, w, h) for t in state.tracks],
            "others_at": state.others_at if math.isfinite(state.others_at) else None,
            "others": state.others,
        }

    def assign(
        self,
        bed: Hashable,
        geometry: BedGeometry,
        faces: Sequence[FaceSeen],
        frame_w: int,
        frame_h: int,
        at: float,
    ) -> list[str]:
        """The role of each of ``faces`` (one frame of one bed zone, captured at ``at`` seconds), in order."""
        self._forget(at)
        state = self._beds.setdefault(bed, _Bed())
        if state.tracks and at > state.seen_at:
            state.steps.append(at - state.seen_at)
        state.seen_at, state.geometry, state.frame = at, geometry, (frame_w, frame_h)
        if self.everyone_patient:
            return [PATIENT] * len(faces)
        state.tracks = [t for t in state.tracks if at - t.last_at <= (HOLD_S if t.role == PATIENT else TRACK_GAP_S)]
        if not self.cues.track:
            state.tracks = []
        matched = self._follow(state, faces, at, along_y=geometry.along_y(frame_w, frame_h))
        patient = next((t for t in state.tracks if t.role == PATIENT), None)
        ref = patient.median_side if patient is not None else None
        for face, track in zip(faces, matched, strict=True):
            track.parts = score_parts(face, geometry, frame_w, frame_h, ref, self.cues)
            track.scores.append(sum(track.parts.values()))
        self._decide(state, matched)
        roles = [t.role for t in matched]
        others = roles.count(OTHER)
        if others:
            state.others_at, state.others = at, others
        return roles

    def _follow(self, state: _Bed, faces: Sequence[FaceSeen], at: float, along_y: bool = True) -> list[Track]:
        """Each face's track: the nearest track (last seen before this frame) it may continue, greedily by
        distance in sides; a new track for each face that continues none."""
        pairs = []
        frame_step = statistics.median(state.steps) if state.steps else math.inf
        sides = {track.id: max(track.median_side, 1.0) for track in state.tracks}
        for i, face in enumerate(faces):
            for track in state.tracks:  # a re-delivered frame's faces continue the tracks they made: same roles
                side = sides[track.id]
                ratio = max(face.side, 1.0) / side
                across, along = abs(face.cx - track.cx), abs(face.cy - track.cy)
                if not along_y:
                    across, along = along, across
                step = math.hypot(across / (MAX_STEP * side), along / (ALONG_STEP * side))
                if step > 1.0 or not 1 / STEP_SIZE <= ratio <= STEP_SIZE:
                    continue
                if face.look is not None and track.looks:  # the look last: the dearest test
                    missed = at - track.last_at > MISSED_STEPS * frame_step  # missed a frame or more: picked up again
                    alike = max(look_alike(face.look, old) or 0.0 for old in track.looks)
                    if alike < (STEP_LOOK if missed else NEXT_LOOK):
                        continue
                pairs.append((step, i, track))
        pairs.sort(key=lambda p: (p[0], p[2].role != PATIENT))
        out: list[Track | None] = [None] * len(faces)
        taken: set[int] = set()
        for _, i, track in pairs:
            if out[i] is None and track.id not in taken:
                out[i] = track
                taken.add(track.id)
        for i, face in enumerate(faces):
            track = out[i]
            if track is None:
                track = Track(self._next_id, face.cx, face.cy, face.side, face.roll, at, at)
                self._next_id += 1
                state.tracks.append(track)
                out[i] = track
            track.cx, track.cy, track.side, track.roll, track.last_at = face.cx, face.cy, face.side, face.roll, at
            track.seen += 1
            track.sides.append(face.side)
            if face.look is not None:
                track.looks.append(face.look)
        return [t for t in out if t is not None]

    def _decide(self, state: _Bed, current: list[Track]) -> None:
        """Roles after this frame: corrections first; the held patient track keeps the role; else the best
        current track scoring at least :data:`MIN_SCORE` takes it."""
        for track in state.tracks:
            if track.fixed is not None:
                track.role = track.fixed
        pinned = [t for t in state.tracks if t.fixed == PATIENT]
        holder = pinned[0] if pinned else next((t for t in state.tracks if t.role == PATIENT), None)
        if holder is not None and holder.fixed is None and all(t is not holder for t in current):
            # the patient's face, changed by a hand or a head partly in front of it or a new roll, starts a new
            # track in the very place the patient's was: it carries the role on
            heir = next((t for t in current if t.fixed is None and _same_place(t, holder)), None)
            if heir is not None:
                heir.first_at = min(heir.first_at, holder.first_at)
                heir.scores.extendleft(reversed(holder.scores))
                state.tracks.remove(holder)
                holder = heir
        candidates = [t for t in current if t.fixed != OTHER and t.score >= MIN_SCORE]
        if holder is None:
            if candidates:
                holder = max(candidates, key=lambda t: (t.score, t.seen))
        elif not pinned:  # a face that the cues say is far likelier the patient than the holder takes over
            better = [t for t in candidates if t.seen >= TAKEOVER_FRAMES and t.score >= holder.score + TAKEOVER_MARGIN]
            if better:
                holder = max(better, key=lambda t: t.score)
        for track in state.tracks:
            track.role = PATIENT if track is holder else OTHER

    def correct(self, bed: Hashable, action: str, track_id: int | None = None) -> bool:
        """Apply an admin's correction to ``bed``: ``not_patient`` (the patient track - or ``track_id`` - is
        someone else while it lives), ``patient`` (``track_id`` is the patient while it lives), ``auto`` (drop
        the corrections).  False when the bed or track is not known here (another worker's, or ended)."""
        state = self._beds.get(bed)
        if state is None:
            return False
        if action == "auto":
            for t in state.tracks:
                t.fixed = None
            return True
        if action == "not_patient":
            target = next(
                (t for t in state.tracks if (t.id == track_id if track_id is not None else t.role == PATIENT)), None
            )
            if target is None:
                return False
            target.fixed, target.role = OTHER, OTHER
            return True
        if action == "patient":
            target = next((t for t in state.tracks if t.id == track_id), None)
            if target is None:
                return False
            for t in state.tracks:
                if t is not target and t.fixed == PATIENT:
                    t.fixed = None
                t.role = OTHER
            target.fixed, target.role = PATIENT, PATIENT
            return True
        raise ValueError(f"unknown correction {action!r} (patient, not_patient, auto)")

    def _forget(self, now: float) -> None:
        for bed in [b for b, s in self._beds.items() if now - s.seen_at > FORGET_S]:
            del self._beds[bed]


__all__ = [
    "OTHER",
    "PATIENT",
    "BedGeometry",
    "BedRoles",
    "Cues",
    "FaceSeen",
    "Track",
    "check_head",
    "default_head",
    "score_parts",
]
