"""The synthetic ward camera: frames of a ward with faces at known beds, following a known scenario.

A :class:`SyntheticWard` draws a background with N beds and pastes a face image
on each occupied bed's pillow.  Which bed shows which emotion class, and when,
is a :class:`Scenario` (segments of time per bed; a segment without a class is
an empty bed).  Everything is deterministic for a given seed, and the ground
truth for any time is :meth:`SyntheticWard.truth_at`.

Face images come from a class-folder tree in FER-2013 layout
(``DIR/<class>/*.png|jpg``, class names as FER's or Areya's ``relaxed``), from
the demo face pack shipped with Areya (``faces_dir="builtin"``, URI
``faces=builtin``; :mod:`areya.camera.facepack`), or, with neither, from the
public-domain ``astronaut`` image shipped with scikit-image (one smiling face:
class ``happy``).

FER-2013 crops are tight 48x48 faces; they are upscaled to ``face_size`` pixels
and framed by a flat border, and a face is only used if every checking detector
(``check_detectors``: OpenCV's Haar cascade and BlazeFace by default) finds it,
alone and in place, on a pillow of the ward.  FER holds profiles, occluded and
tiny faces that detectors miss (BlazeFace finds only about half of them);
leaving those out keeps the ground truth usable for end-to-end checks.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from areya.camera.facepack import BUILTIN_FACES, FacePack, load_face_pack
from areya.camera.scenario import Scenario
from areya.camera.story import load_story
from areya.emotion.schemes import FER7_CLASSES, FER_TO_AREYA4, folder_to_fer7

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
ASTRONAUT_FACE_BOX = (168, 57, 113, 113)  # x, y, w, h of the face in skimage.data.astronaut()
ASTRONAUT_CLASS = "happy"
MAX_FACE_SIZE = 220
CHECK_MIN_SCORE = 0.6  # score a face must reach with each checking detector that takes ``min_score``


def _haar_cascade():  # noqa: ANN202 - cv2 type
    import cv2  # noqa: PLC0415

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise RuntimeError("OpenCV's haarcascade_frontalface_default.xml could not be loaded")
    return cascade


class FaceLibrary:
    """Face images per FER-7 class name, loaded lazily, filtered for detectability."""

    def __init__(
        self,
        faces_dir: str | Path | None = None,
        *,
        face_size: int = 140,
        accept: Callable[[np.ndarray], bool] | None = None,
        accept_key: tuple[Any, ...] = (),
        agreeing: bool = True,
    ) -> None:
        self.pack: FacePack | None = load_face_pack() if str(faces_dir or "") == BUILTIN_FACES else None
        self.faces_dir = Path(faces_dir) if faces_dir and self.pack is None else None
        self.agreeing = agreeing  # pack only: faces the pack's model labels as their class
        self.face_size = face_size
        self._accept = accept
        self._accept_key = accept_key  # what the verdict of ``accept`` depends on besides the image (process cache)
        self._cache: dict[Path | str, np.ndarray | None] = {}
        if self.faces_dir is not None and not self.faces_dir.is_dir():
            raise FileNotFoundError(f"faces folder not found: {self.faces_dir}")

    @cached_property
    def files(self) -> dict[str, list[Path]]:
        """FER-7 class name -> sorted image files (pack: ``pack:<index>`` keys; empty for the astronaut)."""
        if self.pack is not None:
            return {
                c: [Path(f"pack:{i}") for i in self.pack.indices(c, agreeing=self.agreeing)] for c in self.pack.classes
            }
        if self.faces_dir is None:
            return {}
        out: dict[str, list[Path]] = {}
        for sub in sorted(p for p in self.faces_dir.iterdir() if p.is_dir()):
            index = folder_to_fer7(sub.name)
            if index is None:
                continue
            files = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if files:
                out.setdefault(FER7_CLASSES[index], []).extend(files)
        if not out:
            raise ValueError(
                f"no class folders with images under {self.faces_dir} "
                f"(expected FER layout: <dir>/<{'|'.join(FER7_CLASSES)}>/*.png)"
            )
        return out

    @property
    def classes(self) -> tuple[str, ...]:
        if self.faces_dir is None and self.pack is None:
            return (ASTRONAUT_CLASS,)
        return tuple(c for c in FER7_CLASSES if c in self.files)

    def areya4_classes(self) -> tuple[str, ...]:
        """The available classes that are part of the 4-class scheme (as FER-7 names)."""
        return tuple(c for c in self.classes if c in FER_TO_AREYA4)

    @cached_property
    def _astronaut(self) -> np.ndarray:
        import cv2  # noqa: PLC0415
        from skimage import data  # noqa: PLC0415

        x, y, w, h = ASTRONAUT_FACE_BOX
        rgb = data.astronaut()[y : y + h, x : x + w]
        return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)

    def compose(self, face: np.ndarray) -> np.ndarray:
        """A tight face -> BGR patch of ``face_size`` plus a flat border (what gets pasted)."""
        import cv2  # noqa: PLC0415

        if face.ndim == 2:
            face = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
        size = self.face_size
        resized = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
        pad = max(2, size // 8)
        fill = tuple(int(v) for v in resized.reshape(-1, 3).mean(axis=0))
        return cv2.copyMakeBorder(resized, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)

    def _detectable(self, patch: np.ndarray) -> bool:
        if self._accept is not None:
            return self._accept(patch)
        return self.haar_finds(patch)

    def haar_finds(self, patch: np.ndarray) -> bool:
        """OpenCV's frontal-face cascade finds exactly one face in the patch."""
        import cv2  # noqa: PLC0415

        gray = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
        boxes = _cascade_singleton().detectMultiScale(gray, 1.1, 5, minSize=(self.face_size // 2,) * 2)
        return len(boxes) == 1

    def load(self, path: Path) -> np.ndarray | None:
        """The composed patch for an image file, or None if unreadable / not detectable."""
        if path not in self._cache:
            import cv2  # noqa: PLC0415

            if self.pack is not None and str(path).startswith("pack:"):
                image = cv2.cvtColor(self.pack.image(int(str(path)[5:])), cv2.COLOR_GRAY2BGR)
            else:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            patch = self.compose(image) if image is not None else None
            if patch is not None:
                key = (str(path), self.face_size, self._accept is None, self._accept_key)
                if key not in _VERDICTS:
                    _VERDICTS[key] = self._detectable(patch)
                patch = patch if _VERDICTS[key] else None
            self._cache[path] = patch
        return self._cache[path]

    def pick(self, emotion: str, rng: random.Random) -> tuple[np.ndarray, str]:
        """A detectable face of class ``emotion``: (patch, source name)."""
        if self.faces_dir is None and self.pack is None:
            if emotion != ASTRONAUT_CLASS:
                raise ValueError(f"the built-in face library has only {ASTRONAUT_CLASS!r} faces, not {emotion!r}")
            return self.compose(self._astronaut), "skimage:astronaut"
        files = self.files.get(emotion)
        where = self.faces_dir if self.pack is None else "the demo face pack"
        if not files:
            raise ValueError(f"no {emotion!r} faces in {where}")
        for _ in range(200):
            path = files[rng.randrange(len(files))]
            patch = self.load(path)
            if patch is not None:
                return patch, str(path)
        if self.pack is not None and self.agreeing:  # no agreeing face is detectable in this ward's geometry
            others = [Path(f"pack:{i}") for i in self.pack.indices(emotion)]
            for path in rng.sample(others, len(others)):
                patch = self.load(path)
                if patch is not None:
                    log.warning(
                        "synthetic ward: no %r face the model agrees with is detectable here; "
                        "showing one it may label otherwise",
                        emotion,
                    )
                    return patch, str(path)
        raise ValueError(f"no detectable {emotion!r} face found in {where} in 200 tries")


_CASCADE = None
_VERDICTS: dict[tuple[Any, ...], bool] = {}  # (image, composition, checks) -> detectable: checked once per process


def _cascade_singleton():  # noqa: ANN202
    global _CASCADE  # noqa: PLW0603 - one cascade per process; OpenCV cascades are not cheap to load
    if _CASCADE is None:
        _CASCADE = _haar_cascade()
    return _CASCADE


@dataclass(frozen=True)
class BedLayout:
    """Where bed ``index`` is drawn, in pixels: its rectangle and the centre of the face on its pillow."""

    index: int
    x0: int
    y0: int
    x1: int
    y1: int
    face_cx: int
    face_cy: int

    def normalized(self, width: int, height: int) -> tuple[float, float, float, float]:
        return (self.x0 / width, self.y0 / height, self.x1 / width, self.y1 / height)


@dataclass
class SyntheticWard:
    """Renders ward frames for a scenario; deterministic for a seed."""

    beds: int = 3
    width: int = 1280
    height: int = 720
    faces_dir: str | Path | None = None
    scenario: Scenario | None = None
    seed: int = 0
    face_size: int = 0  # pixels; 0 = as large as the bed layout allows (at most MAX_FACE_SIZE)
    segment_s: float = 10.0
    duration: float = 120.0
    check_detectors: tuple[str, ...] = ("blazeface", "haar")  # cheapest, most selective first
    agreeing_faces: bool = True  # demo pack: only faces its model labels as their class (see facepack)
    library: FaceLibrary = field(init=False)

    def __post_init__(self) -> None:
        if self.beds < 1 or self.beds > 12:
            raise ValueError(f"beds must be 1..12, got {self.beds}")
        if self.face_size <= 0:
            rows = 1 if self.beds <= 4 else 2
            slot_w = self.width / -(-self.beds // rows)
            row_h = self.height * 0.78 / rows
            self.face_size = int(min(MAX_FACE_SIZE, slot_w * 0.6, row_h * 0.45))
        if self.face_size < 24:
            raise ValueError(f"faces of {self.face_size} px are too small to detect: fewer beds or a bigger frame")
        self.library = FaceLibrary(
            self.faces_dir,
            face_size=self.face_size,
            accept=self._detectable,
            accept_key=(self.width, self.height, self.beds, self.check_detectors),
            agreeing=self.agreeing_faces,
        )
        self._detectors: list[Any] | None = None
        if self.scenario is None:
            classes = self.library.areya4_classes() or self.library.classes
            self.scenario = Scenario.generate(
                self.beds, classes, duration=self.duration, segment_s=self.segment_s, seed=self.seed
            )
        if self.scenario.beds != self.beds:
            raise ValueError(f"scenario is for {self.scenario.beds} beds, ward has {self.beds}")
        self._patches: dict[tuple[int, int], tuple[np.ndarray, str] | None] = {}

    # -- geometry ------------------------------------------------------------------------------
    @cached_property
    def layout(self) -> list[BedLayout]:
        rows = 1 if self.beds <= 4 else 2
        per_row = -(-self.beds // rows)
        slot_w = self.width / per_row
        band_top = self.height * 0.22
        row_h = (self.height - band_top) / rows
        out = []
        for i in range(self.beds):
            r, c = divmod(i, per_row)
            x0 = int(c * slot_w + slot_w * 0.08)
            x1 = int((c + 1) * slot_w - slot_w * 0.08)
            y0 = int(band_top + r * row_h + row_h * 0.04)
            y1 = int(band_top + (r + 1) * row_h - row_h * 0.04)
            cy = y0 + int(min(row_h * 0.30, self.face_size * 0.8))
            out.append(BedLayout(i, x0, y0, x1, y1, (x0 + x1) // 2, cy))
        return out

    def zones(self) -> list[tuple[int, tuple[float, float, float, float]]]:
        """(bed index, normalized rectangle x0, y0, x1, y1) of each bed: the bed zones to register."""
        return [(b.index, b.normalized(self.width, self.height)) for b in self.layout]

    @cached_property
    def background(self) -> np.ndarray:
        import cv2  # noqa: PLC0415

        img = np.empty((self.height, self.width, 3), np.uint8)
        wall_h = int(self.height * 0.22)
        img[:wall_h] = (196, 206, 214)  # pale wall
        img[wall_h:] = (150, 160, 150)  # floor
        cv2.line(img, (0, wall_h), (self.width, wall_h), (110, 120, 120), 3)
        for b in self.layout:
            cv2.rectangle(img, (b.x0, b.y0), (b.x1, b.y1), (70, 80, 90), -1)  # frame
            m = max(4, (b.x1 - b.x0) // 40)
            cv2.rectangle(img, (b.x0 + m, b.y0 + m), (b.x1 - m, b.y1 - m), (228, 226, 220), -1)  # mattress
            pw, ph = int((b.x1 - b.x0) * 0.36), int(self.face_size * 0.55)
            cv2.ellipse(img, (b.face_cx, b.face_cy), (pw, ph), 0, 0, 360, (248, 248, 246), -1)  # pillow
            blanket_top = b.face_cy + int(self.face_size * 0.75)
            if blanket_top < b.y1 - m:
                cv2.rectangle(img, (b.x0 + m, blanket_top), (b.x1 - m, b.y1 - m), (170, 120, 80), -1)
            cv2.putText(
                img,
                f"Bed {b.index + 1}",
                (b.x0 + 2 * m, b.y1 - 2 * m),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.7,
                (250, 250, 250),
                2,
                cv2.LINE_AA,
            )
        return img

    # -- face selection ------------------------------------------------------------------------
    def _face_detectors(self) -> list[Any]:
        if self._detectors is None:
            self._detectors = []
            for name in self.check_detectors:
                try:
                    from areya.detectors import create_detector  # noqa: PLC0415

                    try:  # a margin over the detector's default threshold: borderline faces come and go
                        self._detectors.append(create_detector(name, min_score=CHECK_MIN_SCORE))
                    except ValueError:
                        self._detectors.append(create_detector(name))
                except (ImportError, RuntimeError, ValueError) as exc:
                    log.warning("synthetic ward: face detector %r unavailable for checking faces: %s", name, exc)
        return self._detectors

    def _detectable(self, patch: np.ndarray) -> bool:
        """Is the face found, once on a pillow of this ward, by every checking detector (one face, in place)?"""
        detectors = self._face_detectors()
        if not detectors:  # no detector package: OpenCV's cascade on the patch alone
            return FaceLibrary(None, face_size=self.face_size).haar_finds(patch)
        ph, pw = patch.shape[:2]
        for bed, (dx, dy) in ((self.layout[0], (3, 2)), (self.layout[-1], (-3, -2))):
            x, y = bed.face_cx - pw // 2 + dx, bed.face_cy - ph // 2 + dy
            frame = self.background.copy()
            x0, y0, x1, y1 = max(0, x), max(0, y), min(self.width, x + pw), min(self.height, y + ph)
            frame[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]
            for detector in detectors:
                boxes = detector.detect(frame)
                centres = [(b.x + b.w / 2, b.y + b.h / 2) for b in boxes]
                if len(boxes) != 1 or not (x0 <= centres[0][0] <= x1 and y0 <= centres[0][1] <= y1):
                    return False
        return True

    # -- rendering -----------------------------------------------------------------------------
    def truth_at(self, t: float) -> dict[int, str | None]:
        """Ground truth at scenario time ``t``: bed index -> FER-7 class shown (None: empty bed)."""
        assert self.scenario is not None
        return {b: self.scenario.emotion_at(b, t) for b in range(self.beds)}

    def _patch(self, bed: int, t: float) -> tuple[np.ndarray, str] | None:
        assert self.scenario is not None
        found = self.scenario.segment_at(bed, t)
        if found is None or found[1].emotion is None:
            return None
        key = (bed, found[0])
        if key not in self._patches:
            digest = hashlib.sha256(f"{self.seed}:{bed}:{found[0]}".encode()).digest()
            rng = random.Random(int.from_bytes(digest[:8], "big"))
            self._patches[key] = self.library.pick(found[1].emotion, rng)
        return self._patches[key]

    def face_boxes_at(self, t: float) -> dict[int, tuple[int, int, int, int]]:
        """Pixel box (x, y, w, h) of the face patch pasted on each occupied bed at time ``t``."""
        out = {}
        for b in self.layout:
            found = self._patch(b.index, t)
            if found is None:
                continue
            ph, pw = found[0].shape[:2]
            dx, dy = self._sway(b.index, t)
            out[b.index] = (b.face_cx - pw // 2 + dx, b.face_cy - ph // 2 + dy, pw, ph)
        return out

    def _sway(self, bed: int, t: float) -> tuple[int, int]:
        """A few pixels of head movement so consecutive frames differ."""
        return int(round(3 * np.sin(0.9 * t + bed))), int(round(2 * np.cos(0.7 * t + 2 * bed)))

    def render(self, t: float) -> np.ndarray:
        """The BGR frame at scenario time ``t`` (seconds)."""
        frame = self.background.copy()
        for bed, (x, y, w, h) in self.face_boxes_at(t).items():
            patch = self._patch(bed, t)
            assert patch is not None
            x0, y0 = max(0, x), max(0, y)
            x1, y1 = min(self.width, x + w), min(self.height, y + h)
            frame[y0:y1, x0:x1] = patch[0][y0 - y : y1 - y, x0 - x : x1 - x]
        return frame

    def write_video(self, path: str | Path, seconds: float, fps: float = 5.0) -> int:
        """Write ``seconds`` of the scenario to a video file (mp4v/MJPG by suffix); returns frames written."""
        import cv2  # noqa: PLC0415

        path = Path(path)
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
        writer = cv2.VideoWriter(str(path), fourcc, fps, (self.width, self.height))
        if not writer.isOpened():
            raise OSError(f"cannot write video {path}")
        n = int(seconds * fps)
        try:
            for i in range(n):
                writer.write(self.render(i / fps))
        finally:
            writer.release()
        return n


def parse_synthetic_uri(uri: str) -> dict[str, str]:
    """``synthetic:`` or ``synthetic:beds=4,faces=/dir,seed=3,segment=10`` -> options (``&`` or ``,`` separated)."""
    if not uri.startswith("synthetic:"):
        raise ValueError(f"not a synthetic camera URI: {uri!r}")
    rest = uri[len("synthetic:") :].lstrip("?")
    options: dict[str, str] = {}
    for part in rest.replace("&", ",").split(","):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"synthetic camera option must be key=value, got {part!r}")
        options[key.strip()] = value.strip()
    allowed = {"beds", "faces", "seed", "segment", "duration", "width", "height", "face_size", "story"}
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"unknown synthetic camera option(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return options


def ward_from_uri(uri: str) -> SyntheticWard:
    """``faces=``: a FER-layout folder, ``builtin`` (the demo face pack) or nothing (the astronaut);
    ``story=FILE``: beds and scenario from a story file (:mod:`areya.camera.story`; faces default to the pack)."""
    options = parse_synthetic_uri(uri)
    if "story" in options:
        try:
            story = load_story(options["story"])
            return SyntheticWard(
                beds=len(story.beds),
                width=int(options.get("width", 1280)),
                height=int(options.get("height", 720)),
                faces_dir=options.get("faces") or BUILTIN_FACES,
                scenario=story.scenario(),
                seed=int(options.get("seed", 0)),
                face_size=int(options.get("face_size", 0)),
                agreeing_faces=story.faces == "agreeing",
            )
        except ValueError as exc:
            raise ValueError(f"bad synthetic camera URI {uri!r}: {exc}") from exc
    try:
        return SyntheticWard(
            beds=int(options.get("beds", 3)),
            width=int(options.get("width", 1280)),
            height=int(options.get("height", 720)),
            faces_dir=options.get("faces") or None,
            seed=int(options.get("seed", 0)),
            face_size=int(options.get("face_size", 0)),
            segment_s=float(options.get("segment", 10.0)),
            duration=float(options.get("duration", 120.0)),
        )
    except ValueError as exc:
        raise ValueError(f"bad synthetic camera URI {uri!r}: {exc}") from exc
