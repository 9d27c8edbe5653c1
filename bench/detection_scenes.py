"""Generated ward scenes with ground-truth face boxes, for ``bench/bench_detection.py``.

A scene is a 1280x720 or 1920x1080 ward seen from a high camera: 2-4 bed columns in 1 or 2 rows, each bed a
mattress, blanket and pillow whose rectangle is the bed zone.  1-6 FER-2013 faces (48x48 grayscale, upscaled to
32-200 px, skin-tinted) lie on pillows (a second face in a bed is a visitor); each face keeps a ring of its own
border, smeared outwards, as context and is pasted with a feathered elliptical mask, rolled by up to +-90
degrees (half the faces upright within +-10).  Some frames are dim or low-contrast, with sensor noise; every
frame goes through JPEG at quality 50-90.  Deterministic by seed.

The truth box of a face is a square of the face's size around its centre (for a rolled face too): on upright FER
faces upscaled alone, BlazeFace's box is about the central 86 % of the 48 px image and Haar's 97 %, so the face is
taken as the central :data:`FACE_SHARE` of the image.

That fixed share is a noisy label: FER-2013's images frame their faces differently (a face fills more or less of
its image, and sits higher or lower).  On 400 publictest faces upscaled alone, BlazeFace's and Haar's boxes agree
on that framing (correlation 0.75 for the size, 0.89 / 0.68 for the horizontal / vertical centre) although the two
detectors share nothing, and BlazeFace's box spans 0.77-1.15 x the fixed box in size (10th-90th percentile).  So a
scene can also carry each face's **own box** (``Truth.own``): the fixed box corrected by a :data:`FaceFrame` per
FER image, which ``bench_detection.face_frames`` measures on the face alone (the mean of the two detectors'
corrections, each relative to its median over the sample, so the convention's average size and centre stay those
of the fixed box).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from areya.detectors import FaceBox

FACE_SHARE = 0.9  # the face box is this share of the FER image side, around its centre
FACE_OFFSET = (0.04, 0.07)  # the face box's top-left corner in the FER image, as a share of its side
RING = 0.3  # context around the FER image: its border extended by this share of its side on each side
FRAME_SIZES = ((1280, 720), (1920, 1080))
SIZE_BUCKETS = ((32, 48), (48, 80), (80, 128), (128, 201))
ROLL_BUCKETS = ((0, 15), (15, 45), (45, 75), (75, 91))
FaceFrame = tuple[float, float, float]  # a FER image's own face box against the fixed one: side x, centre dx, dy


@dataclass(frozen=True)
class Truth:
    box: FaceBox  # square of the face's size around its centre, frame pixels
    size: int  # face side in pixels
    roll: float  # degrees the face is rolled (counter-clockwise positive)
    bed: int  # index of the bed zone holding its centre
    own: FaceBox | None = None  # the face's own box (its FaceFrame applied, rolled with the face), when known


@dataclass
class Scene:
    image: np.ndarray  # BGR, after JPEG
    faces: list[Truth]
    zones: list[tuple[float, float, float, float]]  # normalized x0, y0, x1, y1 per bed
    dim: bool
    quality: int
    meta: dict[str, object] = field(default_factory=dict)


def size_bucket(size: int) -> str:
    for lo, hi in SIZE_BUCKETS:
        if lo <= size < hi:
            return f"{lo}-{hi - 1}px"
    return f">={SIZE_BUCKETS[-1][1]}px" if size >= SIZE_BUCKETS[-1][1] else f"<{SIZE_BUCKETS[0][0]}px"


def roll_bucket(roll: float) -> str:
    a = abs(roll)
    for lo, hi in ROLL_BUCKETS:
        if lo <= a < hi:
            return f"roll {lo}-{min(hi, 90)}"
    return "roll 90"


def load_faces(folder: Path, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` FER images (48x48 gray) drawn from every class folder of ``folder``, in a seeded order."""
    files = sorted(p for p in folder.glob("*/*") if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    if not files:
        raise SystemExit(f"no FER-2013 images under {folder}")
    picked = rng.choice(len(files), size=min(count, len(files)), replace=False)
    return [img for i in picked if (img := cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE)) is not None]


def face_patch(face48: np.ndarray, face_px: int, tint: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The face upscaled so its face box is ``face_px`` wide, with its context ring, tinted BGR; and the
    feathered mask (float 0-1) it is pasted with.  Both square, face centre near the middle."""
    side48 = face48.shape[0]
    ring = round(RING * side48)
    ext = cv2.GaussianBlur(cv2.copyMakeBorder(face48, ring, ring, ring, ring, cv2.BORDER_REPLICATE), (0, 0), 2.0)
    ext[ring : ring + side48, ring : ring + face48.shape[1]] = face48  # context: the border smeared outwards
    scale = face_px / (FACE_SHARE * side48)
    side = max(8, round(ext.shape[0] * scale))
    big = cv2.resize(ext, (side, side), interpolation=cv2.INTER_CUBIC)
    bgr = np.clip(big[:, :, None].astype(np.float32) * np.array(tint, np.float32), 0, 255).astype(np.uint8)
    mask = np.zeros((side, side), np.float32)
    c = side / 2.0
    axes = (round(side * 0.40), round(side * 0.46))
    cv2.ellipse(mask, (round(c), round(c)), axes, 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, side * 0.06))
    return bgr, mask


def face_centre_in_patch(side: int, side48: int = 48) -> tuple[float, float]:
    """Where the face box's centre lies in a patch of ``side`` pixels (made by :func:`face_patch`)."""
    ring = round(RING * side48)
    unit = side / (side48 + 2 * ring)
    cx = (ring + (FACE_OFFSET[0] + FACE_SHARE / 2) * side48) * unit
    cy = (ring + (FACE_OFFSET[1] + FACE_SHARE / 2) * side48) * unit
    return cx, cy


def paste(frame: np.ndarray, patch: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """Blend ``patch`` into ``frame`` at top-left ``(x, y)`` through ``mask`` (clipped to the frame)."""
    h, w = frame.shape[:2]
    ph, pw = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + pw, w), min(y + ph, h)
    if x1 <= x0 or y1 <= y0:
        return
    m = mask[y0 - y : y1 - y, x0 - x : x1 - x, None]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    src = patch[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(region * (1 - m) + src * m, 0, 255).astype(np.uint8)


def rotate_patch(patch: np.ndarray, mask: np.ndarray, roll: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patch and mask rolled ``roll`` degrees counter-clockwise on a canvas that holds them; and the 2x3 map."""
    side = mask.shape[0]
    out = math.ceil(side * 1.42)
    m = cv2.getRotationMatrix2D((side / 2.0, side / 2.0), roll, 1.0)
    m[:, 2] += (out - side) / 2.0
    p = cv2.warpAffine(patch, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    k = cv2.warpAffine(mask, m, (out, out), flags=cv2.INTER_LINEAR, borderValue=0)
    return p, k, m


@dataclass(frozen=True)
class Bed:
    x: int
    y: int
    w: int
    h: int

    def zone(self, frame_w: int, frame_h: int) -> tuple[float, float, float, float]:
        return (self.x / frame_w, self.y / frame_h, (self.x + self.w) / frame_w, (self.y + self.h) / frame_h)


def draw_ward(
    rng: np.random.Generator, frame_w: int, frame_h: int, grid: tuple[int, int] | None = None
) -> tuple[np.ndarray, list[Bed]]:
    """A ward background (floor, wall) and a grid of beds (mattress, blanket, pillow); the beds' rectangles.
    ``grid``: ``(columns, rows)`` of beds (None: 2-4 columns in 1 or 2 rows, drawn)."""
    wall = rng.uniform(150, 215, 3)
    frame = np.empty((frame_h, frame_w, 3), np.uint8)
    frame[:] = wall
    frame[int(frame_h * 0.35) :] = np.clip(wall * rng.uniform(0.6, 0.85), 0, 255)
    if grid is None:
        cols = int(rng.integers(2, 5))
        rows = int(rng.choice([1, 2], p=[0.6, 0.4]))
    else:
        cols, rows = grid
    cell_w, cell_h = frame_w / cols, frame_h / rows
    beds = []
    for r in range(rows):
        for c in range(cols):
            bw, bh = round(cell_w * rng.uniform(0.78, 0.9)), round(cell_h * rng.uniform(0.82, 0.94))
            bx = round(c * cell_w + (cell_w - bw) / 2)
            by = round(r * cell_h + (cell_h - bh) / 2)
            bed = Bed(bx, by, bw, bh)
            beds.append(bed)
            sheet = rng.uniform(215, 245, 3)
            cv2.rectangle(frame, (bx, by), (bx + bw, by + bh), (90, 90, 95), -1)  # frame of the bed
            cv2.rectangle(frame, (bx + 6, by + 6), (bx + bw - 6, by + bh - 6), sheet.tolist(), -1)
            blanket = rng.uniform(60, 200, 3)
            top = by + round(bh * rng.uniform(0.45, 0.6))
            cv2.rectangle(frame, (bx + 6, top), (bx + bw - 6, by + bh - 6), blanket.tolist(), -1)
            pillow = (bx + bw // 2, by + round(bh * 0.2))
            cv2.ellipse(frame, pillow, (round(bw * 0.38), round(bh * 0.14)), 0, 0, 360, (246, 246, 244), -1)
    texture = rng.normal(0, 3, frame.shape)
    return np.clip(frame + texture, 0, 255).astype(np.uint8), beds


def _pick_roll(rng: np.random.Generator) -> float:
    return float(rng.uniform(-10, 10) if rng.random() < 0.5 else rng.uniform(-90, 90))


def _place(rng: np.random.Generator, bed: Bed, size: int, taken: list[FaceBox]) -> tuple[int, int] | None:
    """A face centre in ``bed`` (upper part, near the pillow) for a face of ``size`` px overlapping no other."""
    for _ in range(30):
        cx = rng.uniform(bed.x + size * 0.35, bed.x + bed.w - size * 0.35)
        cy = rng.uniform(bed.y + size * 0.35, bed.y + max(size * 0.36, bed.h * 0.55))
        box = FaceBox(round(cx - size / 2), round(cy - size / 2), size, size)
        grown = FaceBox(box.x - size // 4, box.y - size // 4, size + size // 2, size + size // 2)
        if all(grown.iou(t) == 0 and t.iou(grown) == 0 and not _touch(grown, t) for t in taken):
            return round(cx), round(cy)
    return None


def _touch(a: FaceBox, b: FaceBox) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def skin_tint(rng: np.random.Generator) -> tuple[float, float, float]:
    """A BGR multiplier that tints a gray FER face towards skin."""
    return (rng.uniform(0.75, 0.9), rng.uniform(0.85, 0.97), rng.uniform(1.0, 1.12))


def paste_face(
    frame: np.ndarray,
    face48: np.ndarray,
    size: int,
    roll: float,
    centre: tuple[float, float],
    tint: tuple[float, float, float],
    patch_filter: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[FaceBox, np.ndarray, tuple[float, float]]:
    """Paste a FER face of ``size`` px rolled ``roll`` degrees with its face box centred on ``centre`` (feathered,
    with its context ring, :func:`face_patch`); ``patch_filter`` may change the rolled patch and mask first (motion
    blur, say).  Returns the truth box, the patch's 2x3 roll map and the patch's top-left corner in the frame."""
    patch, mask = face_patch(face48, size, tint)
    patch, mask, m = rotate_patch(patch, mask, roll)
    if patch_filter is not None:
        patch, mask = patch_filter(patch, mask)
    fcx, fcy = face_centre_in_patch(face_patch_side(size))
    pcx = m[0, 0] * fcx + m[0, 1] * fcy + m[0, 2]
    pcy = m[1, 0] * fcx + m[1, 1] * fcy + m[1, 2]
    paste(frame, patch, mask, round(centre[0] - pcx), round(centre[1] - pcy))
    box = FaceBox(round(centre[0] - size / 2), round(centre[1] - size / 2), size, size)
    return box, m, (centre[0] - pcx, centre[1] - pcy)


def make_scene(
    rng: np.random.Generator,
    faces: list[np.ndarray],
    frame_size: tuple[int, int] | None = None,
    frames: Sequence[FaceFrame | None] | None = None,
) -> Scene:
    """One generated ward frame with its faces' truth and bed zones; ``frames`` (one per face, None: unknown)
    give each truth its own box.  The random draws do not depend on ``frames``: the same seed, the same scene."""
    w, h = frame_size or FRAME_SIZES[int(rng.random() < 0.35)]
    frame, beds = draw_ward(rng, w, h)
    wanted = int(rng.integers(1, 7))
    truths: list[Truth] = []
    taken: list[FaceBox] = []
    per_bed: dict[int, int] = {}
    for _ in range(wanted * 3):
        if len(truths) == wanted:
            break
        b = int(rng.integers(len(beds)))
        if per_bed.get(b, 0) >= 2:
            continue
        bed = beds[b]
        limit = min(200, round(min(bed.w, bed.h) * 0.7))
        if limit < 32:
            continue
        size = round(math.exp(rng.uniform(math.log(32), math.log(limit + 1))))
        centre = _place(rng, bed, size, taken)
        if centre is None:
            continue
        pick = int(rng.integers(len(faces)))
        tint = skin_tint(rng)
        roll = _pick_roll(rng)
        box, m, origin = paste_face(frame, faces[pick], size, roll, centre, tint)
        own = None
        if frames is not None and frames[pick] is not None:
            fcx_fcy = face_centre_in_patch(face_patch_side(size))
            own = own_box(frames[pick], size, m, fcx_fcy, origin)
        truths.append(Truth(box, size, roll, b, own))
        taken.append(box)
        per_bed[b] = per_bed.get(b, 0) + 1
    dim = bool(rng.random() < 0.35)
    frame = _light(frame, rng, dim)
    quality = int(rng.integers(50, 91))
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR) if ok else frame
    return Scene(image, truths, [bed.zone(w, h) for bed in beds], dim, quality, {"beds": len(beds)})


def own_box(
    frame: FaceFrame, size: int, m: np.ndarray, centre_in_patch: tuple[float, float], patch_origin: tuple[float, float]
) -> FaceBox:
    """A face's own box in the scene: its :data:`FaceFrame` applied to the fixed box in the patch (before the
    roll), its centre then rolled with the patch by ``m`` and placed at ``patch_origin``."""
    scale, dx, dy = frame
    px, py = centre_in_patch[0] + dx * size, centre_in_patch[1] + dy * size
    cx = m[0, 0] * px + m[0, 1] * py + m[0, 2] + patch_origin[0]
    cy = m[1, 0] * px + m[1, 1] * py + m[1, 2] + patch_origin[1]
    side = max(1, round(scale * size))
    return FaceBox(round(cx - side / 2), round(cy - side / 2), side, side)


def face_patch_side(face_px: int, side48: int = 48) -> int:
    """The side of :func:`face_patch`'s output for a face of ``face_px``."""
    ring = round(RING * side48)
    return max(8, round((side48 + 2 * ring) * face_px / (FACE_SHARE * side48)))


def _light(frame: np.ndarray, rng: np.random.Generator, dim: bool) -> np.ndarray:
    """Dim / low-contrast frames: contrast towards the mean, darker, noisier."""
    img = frame.astype(np.float32)
    if dim:
        contrast = rng.uniform(0.4, 0.75)
        img = img.mean() + (img - img.mean()) * contrast
        img *= rng.uniform(0.3, 0.6)
        img += rng.normal(0, rng.uniform(2, 5), img.shape)
    else:
        img *= rng.uniform(0.85, 1.1)
        img += rng.normal(0, 1.5, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)
