"""The night ward: how many faces the worker finds, and how well it reads them, in dim light, small, lying, in IR
grey, blurred by motion and under a blanket.

Scenes: a 1280x720 ward of six beds (3 x 2, ``detection_scenes.draw_ward``), one PublicTest face per bed on its
pillow (feathered into it with its context ring, ``detection_scenes.paste_face``), every frame through JPEG at
quality 50-90.  The faces are angry, happy, neutral and sad ones in equal numbers, drawn by a seed fixed here, and
only those BlazeFace or Haar finds upright and alone at 120 px (``bench_detection.face_frames``: about a quarter
of FER's images - profiles, hands, crops - are found by neither at any size); every bucket uses the same faces,
so buckets differ by their condition only.  A face is found when a detection has IoU >= 0.5 with the face's own
box (its FER image's framing, ``detection_scenes.Truth.own``).

Buckets (faces 64-112 px unless said):

* ``lit upright``: the reference; ward light, rolled at most 10 degrees;
* ``dim``: frame gain 0.35-0.6, rolling-shutter flicker (horizontal bands, 3-10 %), sensor noise (sigma 3-7);
* ``small``: faces 40-63 px, lit;
* ``lying``: rolled 60-90 degrees to either side, lit;
* ``IR grey``: an infrared night picture: grey, flat (contrast 0.6-0.85), soft, noisy, darker at the edges;
* ``motion blur``: each face smeared 6-16 % of its side along a random direction, lit;
* ``blanket``: a blanket drawn up over the chin (its edge 26-40 % of the face's side below its centre: the chin,
  sometimes the lower lip), lit;
* ``night``: the combined condition: dim (7 in 10) or IR grey, any roll up to 90 degrees, 3 in 10 faces under a
  blanket, 1 in 4 blurred;
* ``very poor``: faces 28-44 px in a dark frame (gain 0.12-0.3, flicker, sensor noise sigma 4-8), half of them
  blurred, 3 in 10 under a blanket: what the face quality must set aside (it widens the range the quality model
  is fitted on).

Per bucket: detection recall and precision; 4-class accuracy of the faces found, read through the worker's own
path (the configured detector as the worker runs it on a camera's frame that gets a full zone scan,
``areya.detectors.detect_for_camera``: each scene is the first frame of a camera of its own; the worker's crop
``areya.worker.worker.crop``, the configured classifier); the share read right of all faces shown; the mean
negative probability (P(angry) + P(sad)) of the neutral faces found, and the share of them read as angry or sad.

Labels (``--labels``): ``fer2013``, a face's FER-2013 class folder (the table as it always was); ``ferplus``, the
FER+ majority of its ten annotators (``bench.patient_streams.ferplus_classes``: the unique class with the most
votes among the seven, kept when it is angry, happy, neutral or sad), which the table's reading columns then use,
faces without such a majority left out of them (recall and precision stay over every face); ``both`` (the default
when ``ferplus_votes.csv`` is beside ``publictest/``): the FER-2013 table, then a second one of the faces with a
FER+ majority read against it and, on the same faces, against their FER-2013 folder.  The face quality's figures
use the FER-2013 labels whatever the choice.

    nice -n 5 python -m bench.bench_night_ward [--faces 480] [--buckets dim,lying] [--detector-option NAME=VALUE]
                                               [--crop-light clahe|gamma] [--labels fer2013|ferplus|both] [--quick]

``--quick``: 6 faces (one scene) per bucket.  Without ``../shared/data/fer2013/publictest`` it says so and exits 0.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench import detection_scenes as ds

FER_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013" / "publictest"
SEED = 20261207  # the faces, scenes and conditions of the recorded runs
FRAME = (1280, 720)
GRID = (3, 2)  # six beds
CLASSES = ("angry", "happy", "neutral", "sad")  # FER folders of the 4-class scheme (neutral = relaxed)
IOU = 0.5


@dataclass(frozen=True)
class Bucket:
    name: str
    size: tuple[int, int] = (64, 112)  # face side in px, inclusive
    roll: str = "upright"  # upright (+-10), lying (60-90 either side), any (+-90)
    light: str = "lit"  # lit, dim, dark, ir, night (dim or ir)
    blur: float = 0.0  # share of faces motion-blurred
    blanket: float = 0.0  # share of faces with a blanket over the chin


BUCKETS = (
    Bucket("lit upright"),
    Bucket("dim", light="dim"),
    Bucket("small", size=(40, 63)),
    Bucket("lying", roll="lying"),
    Bucket("IR grey", light="ir"),
    Bucket("motion blur", blur=1.0),
    Bucket("blanket", blanket=1.0),
    Bucket("night", roll="any", light="night", blur=0.25, blanket=0.3),
    Bucket("very poor", size=(28, 44), light="dark", blur=0.5, blanket=0.3),
)


# --------------------------------------------------------------------------- scenes


def _roll(rng: np.random.Generator, kind: str) -> float:
    a, b, side = rng.uniform(-10, 10), rng.uniform(60, 90), rng.choice([-1.0, 1.0])
    c = rng.uniform(-90, 90)
    return float(a if kind == "upright" else side * b if kind == "lying" else c)


def motion_blur(length: float, angle: float) -> Any:
    """A patch filter smearing patch and mask ``length`` px along ``angle`` degrees (a head that moved)."""
    n = max(3, int(round(length)) | 1)
    kernel = np.zeros((n, n), np.float32)
    kernel[n // 2, :] = 1.0
    turn = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, turn, (n, n))
    kernel /= max(float(kernel.sum()), 1e-6)

    def apply(patch: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return cv2.filter2D(patch, -1, kernel, borderType=cv2.BORDER_REPLICATE), cv2.filter2D(mask, -1, kernel)

    return apply


def blanket_over(
    frame: np.ndarray, rng: np.random.Generator, box: Any, bed: ds.Bed, edge: float, colour: np.ndarray
) -> None:
    """A blanket drawn up to ``edge`` x the face's side below its centre, across the bed, with a soft wavy edge."""
    h, w = frame.shape[:2]
    cx, cy = box.center()
    top = cy + edge * box.w
    x0, x1 = max(bed.x + 6, 0), min(bed.x + bed.w - 6, w)
    y1 = min(bed.y + bed.h - 6, h)
    if top >= y1 or x1 <= x0:
        return
    xs = np.arange(x0, x1)
    wave = top + 0.04 * box.w * np.sin(xs / max(box.w * 0.4, 1.0) + rng.uniform(0, 2 * math.pi))
    mask = np.zeros((h, w), np.float32)
    rows = np.arange(h)[:, None]
    mask[:, x0:x1] = (rows >= wave[None, :]) & (rows < y1)
    mask = cv2.GaussianBlur(mask, (0, 0), 1.5)[:, :, None]
    folds = 1.0 + 0.06 * np.sin(rows / max(box.w * 0.15, 1.0))[:, :, None]
    cloth = np.broadcast_to(colour, frame.shape) * folds
    frame[:] = np.clip(frame * (1 - mask) + cloth * mask, 0, 255).astype(np.uint8)


def light(frame: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    """The frame as the camera gives it under ``kind`` (lit, dim, ir; night = dim or ir, drawn)."""
    if kind == "night":
        kind = "dim" if rng.random() < 0.7 else "ir"
    img = frame.astype(np.float32)
    h, w = img.shape[:2]
    if kind == "lit":
        img *= rng.uniform(0.85, 1.1)
        img += rng.normal(0, 1.5, img.shape)
    elif kind == "dim":
        img *= rng.uniform(0.35, 0.6)
        bands = 1.0 + rng.uniform(0.03, 0.1) * np.sin(
            2 * math.pi * np.arange(h) / rng.uniform(60, 240) + rng.uniform(0, 6.3)
        )
        img *= bands[:, None, None].astype(np.float32)
        img += rng.normal(0, rng.uniform(3, 7), img.shape)
    elif kind == "dark":
        img *= rng.uniform(0.12, 0.3)
        depth, period, phase = rng.uniform(0.03, 0.1), rng.uniform(60, 240), rng.uniform(0, 2 * math.pi)
        img *= (1.0 + depth * np.sin(2 * math.pi * np.arange(h) / period + phase))[:, None, None].astype(np.float32)
        img += rng.normal(0, rng.uniform(4, 8), img.shape)
    elif kind == "ir":
        grey = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
        grey = grey.mean() + (grey - grey.mean()) * rng.uniform(0.6, 0.85)
        grey *= rng.uniform(0.55, 0.85)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        grey *= 1.0 - rng.uniform(0.15, 0.35) * r2 / 2
        grey = cv2.GaussianBlur(grey, (0, 0), rng.uniform(0.5, 1.0))
        grey += rng.normal(0, rng.uniform(3, 6), grey.shape)
        img = np.repeat(grey[:, :, None], 3, axis=2)
    else:
        raise ValueError(f"unknown light {kind!r}")
    return np.clip(img, 0, 255).astype(np.uint8)


def night_scene(
    rng: np.random.Generator, faces: Sequence[np.ndarray], frames: Sequence[Any], bucket: Bucket
) -> ds.Scene:
    """Six beds, one face each (``faces``, with their FER framings ``frames``), as ``bucket`` says."""
    w, h = FRAME
    frame, beds = ds.draw_ward(rng, w, h, grid=GRID)
    truths = []
    for b, (bed, face, framing) in enumerate(zip(beds, faces, frames, strict=False)):
        size = int(rng.integers(bucket.size[0], bucket.size[1] + 1))
        roll = _roll(rng, bucket.roll)
        cx = bed.x + bed.w * rng.uniform(0.35, 0.65)
        cy = max(bed.y + bed.h * rng.uniform(0.17, 0.27), bed.y + 0.6 * size)
        tint = ds.skin_tint(rng)
        blurred = rng.random() < bucket.blur
        smear = motion_blur(size * rng.uniform(0.06, 0.16), rng.uniform(0, 180))
        covered = rng.random() < bucket.blanket
        edge, colour = rng.uniform(0.26, 0.4), rng.uniform(60, 200, 3)
        box, m, origin = ds.paste_face(frame, face, size, roll, (cx, cy), tint, smear if blurred else None)
        if covered:
            blanket_over(frame, rng, box, bed, edge, colour)
        own = None
        if framing is not None:
            own = ds.own_box(framing, size, m, ds.face_centre_in_patch(ds.face_patch_side(size)), origin)
        truths.append(ds.Truth(box, size, roll, b, own))
    frame = light(frame, rng, bucket.light)
    quality = int(rng.integers(50, 91))
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR) if ok else frame
    zones = [bed.zone(w, h) for bed in beds]
    return ds.Scene(image, truths, zones, bucket.light != "lit", quality, {"bucket": bucket.name})


# --------------------------------------------------------------------------- faces


def labelled_faces(count: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    """``count`` PublicTest faces per class of :data:`CLASSES` (seeded order), as 48x48 gray, with their class."""
    faces, labels, _ = keyed_faces(count, seed)
    return faces, labels


def keyed_faces(count: int, seed: int) -> tuple[list[np.ndarray], list[str], list[str]]:
    """:func:`labelled_faces`' faces and classes, with each face's key ``"folder/file"`` (as FER+ votes are
    found: ``bench.patient_streams.ferplus_classes``)."""
    rng = np.random.default_rng(seed)
    faces, labels, keys = [], [], []
    for name in CLASSES:
        files = sorted(p for p in (FER_DIR / name).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
        for i in rng.permutation(len(files))[:count]:
            img = cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE)
            if img is not None:
                faces.append(img)
                labels.append(name)
                keys.append(f"{name}/{files[i].name}")
    return faces, labels, keys


LABELS = ("fer2013", "ferplus", "both")  # the --labels choices
VOTES = FER_DIR.parent / "ferplus_votes.csv"  # FER+ votes of every FER-2013 face (the ferplus labels)


def ferplus_labels(keys: Sequence[str], data: Path = FER_DIR) -> list[str]:
    """The FER+ majority of each face of ``keys`` (``"folder/file"`` under ``data``) as a class of :data:`CLASSES`
    (``bench.patient_streams.ferplus_classes``), or "" when it has no unique majority among those four classes
    (a tie, too few usable votes, a majority of disgust, fear or surprise, or no FER+ row)."""
    from bench.patient_streams import ferplus_classes

    areya = ferplus_classes(data)  # "folder/file" -> angry, happy, relaxed or sad
    fer = {"relaxed": "neutral"}
    return [fer.get(areya.get(k, ""), areya.get(k, "")) for k in keys]


def detectable(
    faces: list[np.ndarray], labels: list[str], per_class: int, seed: int
) -> tuple[list[np.ndarray], list[str], list[Any]]:
    """Up to ``per_class`` faces of each class that BlazeFace or Haar finds upright alone at 120 px, with their
    own framing (``bench_detection.face_frames``), interleaved by class in a seeded order."""
    from areya.detectors import create_detector
    from bench.bench_detection import RAW_BOX, face_frames

    probe = [create_detector("blazeface", **RAW_BOX), create_detector("haar")]
    kept, frames = face_frames(faces, probe)
    index = {id(f): i for i, f in enumerate(faces)}
    by_class: dict[str, list[tuple[np.ndarray, Any]]] = {name: [] for name in CLASSES}
    for face, framing in zip(kept, frames, strict=True):
        by_class[labels[index[id(face)]]].append((face, framing))
    picked = [(name, item) for name in CLASSES for item in by_class[name][:per_class]]
    order = np.random.default_rng(seed + 1).permutation(len(picked))
    out_faces = [picked[i][1][0] for i in order]
    out_labels = [picked[i][0] for i in order]
    out_frames = [picked[i][1][1] for i in order]
    return out_faces, out_labels, out_frames


# --------------------------------------------------------------------------- the ward path


@dataclass
class Reading:
    """One face shown, and what the worker made of it."""

    bucket: str
    label: str  # FER class (angry, happy, neutral, sad); "" for a detection that is no face
    size: int
    roll: float
    found: bool
    box: Any = None
    crop: np.ndarray | None = None
    probs4: np.ndarray | None = None
    signals: Any = None  # areya.detectors.quality.FaceSignals, once classified
    quality: float | None = None
    ferplus: str = ""  # the FER+ majority as a class of CLASSES; "" without one among them (ferplus_labels)

    @property
    def truth4(self) -> str:
        return "relaxed" if self.label == "neutral" else self.label or "no face"

    def label_of(self, labels: str) -> str:
        """The face's class by ``labels`` (``fer2013``: its folder, ``ferplus``: its FER+ majority; "" for none)."""
        return self.ferplus if labels == "ferplus" else self.label


@dataclass
class Tally:
    readings: list[Reading] = field(default_factory=list)
    detections: int = 0
    true_pos: int = 0
    false_faces: list[Reading] = field(default_factory=list)  # the detections that match no face
    seconds: float = 0.0


def match(truth: Sequence[Any], found: Sequence[Any]) -> tuple[list[Any], set[int]]:
    """Greedy, best score first: per truth the detection matched to it at IoU >= :data:`IOU` (or None), and the
    indices of the detections matched."""
    hit: list[Any] = [None] * len(truth)
    used: set[int] = set()
    for j in sorted(range(len(found)), key=lambda k: -found[k].score):
        det = found[j]
        best, best_iou = -1, IOU
        for i, t in enumerate(truth):
            if hit[i] is None and (v := det.iou(t)) >= best_iou:
                best, best_iou = i, v
        if best >= 0:
            hit[best] = det
            used.add(j)
    return hit, used


def run_bucket(
    bucket: Bucket,
    faces: list[np.ndarray],
    labels: list[str],
    frames: list[Any],
    detector: Any,
    seed: int,
    ferplus: Sequence[str] | None = None,
) -> Tally:
    """Every face of ``faces`` shown once in ``bucket``'s scenes (six a scene), found and cut as the worker does:
    each scene is the first frame of a camera of its own, which gets the worker's full zone scan
    (``areya.detectors.detect_for_camera``: with the default ``track=4`` and ``zone_turns=90/270``, one turned look
    per window without a face, 90 degrees on a camera's first scan).  ``ferplus``: each face's FER+ majority
    (:func:`ferplus_labels`), kept on its reading."""
    from areya.detectors import detect_for_camera
    from areya.worker.worker import crop as worker_crop

    rng = np.random.default_rng([seed, BUCKETS.index(bucket) if bucket in BUCKETS else 99])
    tally = Tally()
    per = GRID[0] * GRID[1]
    for start in range(0, len(faces), per):
        part = slice(start, start + per)
        scene = night_scene(rng, faces[part], frames[part], bucket)
        t0 = time.perf_counter()
        camera = ("night-ward", bucket.name, start)
        found = list(detect_for_camera(detector, scene.image, scene.zones, camera))
        tally.seconds += time.perf_counter() - t0
        if getattr(detector, "tracker", None) is not None:
            detector.tracker.forget(camera)
        truth = [t.own or t.box for t in scene.faces]
        hit, used = match(truth, found)
        tally.detections += len(found)
        tally.true_pos += len(used)
        for k, (t, det, label) in enumerate(zip(scene.faces, hit, labels[part], strict=False)):
            r = Reading(bucket.name, label, t.size, t.roll, det is not None, det)
            if ferplus is not None:
                r.ferplus = ferplus[start + k]
            if det is not None:
                r.crop = worker_crop(scene.image, det, 0.15)
            tally.readings.append(r)
        for j, det in enumerate(found):
            if j not in used:
                size = max(det.w, det.h)
                crop = worker_crop(scene.image, det, 0.15)
                tally.false_faces.append(Reading(bucket.name, "", size, det.roll, True, det, crop))
    return tally


CROP_LIGHT = ("none", "clahe", "gamma")


def relight(crop: np.ndarray, how: str) -> np.ndarray:
    """A face crop with low-light normalisation ``how`` (a variant the worker does not apply): ``clahe``: contrast
    limited equalisation of its grey (clip 2, 4x4 tiles), every crop; ``gamma``: a crop darker than mid-grey
    brightened by the gamma that brings its mean grey to 128; ``none``: as cut."""
    if how == "none":
        return crop
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    if how == "clahe":
        out = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(grey)
    elif how == "gamma":
        mean = float(grey.mean())
        if mean >= 128 or mean < 2:
            return crop
        gamma = math.log(128 / 255) / math.log(mean / 255)
        out = cv2.LUT(grey, np.clip(255 * (np.arange(256) / 255) ** gamma, 0, 255).astype(np.uint8))
    else:
        raise ValueError(f"unknown crop light {how!r}: {', '.join(CROP_LIGHT)}")
    return cv2.cvtColor(out, cv2.COLOR_GRAY2BGR) if crop.ndim == 3 else out


def classify(tally: Tally, classifier: Any, crop_light: str = "none") -> None:
    """Read every face found (and every detection that is no face) as the worker does, with its face quality;
    ``crop_light``: a low-light normalisation of the crops first (:func:`relight`)."""
    from areya.detectors.quality import face_signals, quality_score

    found = [r for r in tally.readings if r.found] + tally.false_faces
    if crop_light != "none":
        for r in found:
            assert r.crop is not None
            r.crop = relight(r.crop, crop_light)
    for r, res in zip(found, classifier.classify([r.crop for r in found]), strict=True):
        r.probs4 = np.asarray(res.probs4, np.float64)
        r.signals = face_signals(r.crop, r.box, r.probs4)
        r.quality = quality_score(r.signals)


# --------------------------------------------------------------------------- figures

AREYA4 = ("angry", "happy", "relaxed", "sad")


def right(r: Reading, labels: str = "fer2013") -> bool:
    """Whether the 4-class answer is the face's class by ``labels`` (:meth:`Reading.label_of`)."""
    if r.probs4 is None:
        return False
    label = r.label_of(labels)
    truth = "relaxed" if label == "neutral" else label or "no face"
    return AREYA4[int(np.argmax(r.probs4))] == truth


def negative(r: Reading) -> float:
    assert r.probs4 is not None
    return float(r.probs4[0] + r.probs4[3])


def figures(tally: Tally, labels: str = "fer2013") -> dict[str, Any]:
    """A bucket's figures.  Recall and precision over every face; the reading columns (``acc``, ``read_right``,
    the neutral faces') over the faces with a class by ``labels`` (:meth:`Reading.label_of`: with ``ferplus``,
    those with a FER+ majority among the four classes), ``labelled`` of them."""
    rs = tally.readings
    labelled = [r for r in rs if r.label_of(labels)]
    found = [r for r in labelled if r.found]
    neutral = [r for r in found if r.label_of(labels) == "neutral"]
    return {
        "faces": len(rs),
        "labelled": len(labelled),
        "recall": sum(r.found for r in rs) / max(len(rs), 1),
        "precision": tally.true_pos / tally.detections if tally.detections else float("nan"),
        "acc": sum(right(r, labels) for r in found) / len(found) if found else float("nan"),
        "n_found": len(found),
        "read_right": sum(right(r, labels) for r in found) / max(len(labelled), 1),
        "neutral_neg": float(np.mean([negative(r) for r in neutral])) if neutral else float("nan"),
        "neutral_as_neg": float(np.mean([AREYA4[int(np.argmax(r.probs4))] in ("angry", "sad") for r in neutral]))
        if neutral
        else float("nan"),
        "n_neutral": len(neutral),
        "false": len(tally.false_faces),
        "ms": 1000 * tally.seconds / max(1, math.ceil(len(rs) / (GRID[0] * GRID[1]))),
    }


def pct(v: float) -> str:
    return "-" if v != v else f"{100 * v:.1f}"


def print_table(tallies: dict[str, Tally], labels: str = "fer2013") -> None:
    """The main table; its reading columns by ``labels`` (``fer2013`` or ``ferplus``: :func:`figures`)."""
    if labels == "ferplus":
        print("Reading columns against the FER+ majority (faces without one among the four classes left out)")
    print(
        "| bucket | faces | recall % | precision % | 4-class acc. of found % | read right of all % "
        "| neutral: mean P(neg) % | neutral read angry/sad % | ms / frame |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, t in tallies.items():
        f = figures(t, labels)
        print(
            f"| {name} | {f['faces']} | {pct(f['recall'])} | {pct(f['precision'])} | {pct(f['acc'])} "
            f"| {pct(f['read_right'])} | {pct(f['neutral_neg'])} (n={f['n_neutral']}) | {pct(f['neutral_as_neg'])} "
            f"| {f['ms']:.0f} |"
        )


def print_ferplus(tallies: dict[str, Tally]) -> None:
    """The faces with a FER+ majority among the four classes, read against it and (the same faces) against their
    FER-2013 folder; and how many faces have none (left out)."""
    print("\nAgainst the FER+ majority of ten annotators (faces without one among the four classes left out):")
    print(
        "| bucket | faces with a FER+ majority | found | 4-class acc. of found, FER+ % "
        "| same faces, FER-2013 % | read right of all, FER+ % |"
    )
    print("|---|---|---|---|---|---|")
    rows = dict(tallies)
    if len(tallies) > 1:  # every bucket's faces together
        rows["all buckets"] = Tally([r for t in tallies.values() for r in t.readings])
    for name, t in rows.items():
        plus = figures(t, "ferplus")
        found = [r for r in t.readings if r.found and r.ferplus]
        fer = sum(right(r) for r in found) / len(found) if found else float("nan")
        print(
            f"| {name} | {plus['labelled']} of {plus['faces']} | {plus['n_found']} | {pct(plus['acc'])} | {pct(fer)} "
            f"| {pct(plus['read_right'])} |"
        )
    faces = next(iter(tallies.values())).readings if tallies else []
    if faces:
        out = sum(not r.ferplus for r in faces)
        same = sum(r.ferplus == r.label for r in faces if r.ferplus)
        by_class = ", ".join(f"{c} {sum(r.ferplus == c for r in faces)}" for c in CLASSES)
        print(
            f"{out} of the {len(faces)} faces have no FER+ majority among the four classes; the FER+ majority is the "
            f"FER-2013 folder for {same} of the other {len(faces) - out} (FER+ classes: {by_class})"
        )


def print_breakdown(tallies: dict[str, Tally]) -> None:
    """Recall by face size and roll where the bucket varies them."""
    sizes = ((40, 52), (53, 63), (64, 79), (80, 95), (96, 112))
    rolls = ((0, 30), (30, 60), (60, 75), (75, 91))
    for name, t in tallies.items():
        rs = t.readings
        parts = []
        for lo, hi in sizes:
            sel = [r for r in rs if lo <= r.size <= hi]
            if sel and len({r.size for r in rs}) > 1:
                parts.append(f"{lo}-{hi} px {pct(np.mean([r.found for r in sel]))} (n={len(sel)})")
        if any(abs(r.roll) >= 30 for r in rs):
            for lo, hi in rolls:
                sel = [r for r in rs if lo <= abs(r.roll) < hi]
                if sel:
                    parts.append(f"roll {lo}-{min(hi, 90)} {pct(np.mean([r.found for r in sel]))} (n={len(sel)})")
            small_flat = [r for r in rs if r.size <= 79 and abs(r.roll) >= 75]
            if small_flat:
                parts.append(
                    f"64-79 px at 75-90 deg {pct(np.mean([r.found for r in small_flat]))} (n={len(small_flat)})"
                )
        if parts:
            print(f"{name}: recall % " + "; ".join(parts))


# --------------------------------------------------------------------------- face quality

QUALITY_BANDS = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01))
FIT_MODULE = Path(__file__).resolve().parents[1] / "areya" / "detectors" / "quality_fit.py"
FIT_SETS = {  # feature subsets compared by cross-validation when fitting
    "all": None,
    "image and detector only": (
        "log2_size",
        "log_sharpness",
        "exposure_error",
        "log_contrast",
        "residual_roll",
        "detector_score",
    ),
    "classifier only": ("confidence", "entropy"),
}


def read(tallies: dict[str, Tally]) -> list[Reading]:
    """Every reading the worker would store: the faces found and the detections that are no face."""
    return [r for t in tallies.values() for r in [*t.readings, *t.false_faces] if r.probs4 is not None]


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a right answer scores above a wrong one (ties half)."""
    pos, neg = score[y == 1], score[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    allv = np.concatenate([pos, neg])
    for v in np.unique(allv):  # average ranks of ties
        tie = allv == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 60) -> tuple[Any, Any, Any, float]:
    """Logistic regression of ``y`` (0/1) on ``x`` (standardized; L2 penalty ``l2`` on the weights, Newton
    steps): the features' means and scales, the weights and the bias."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -40, 40)))
        grad = z.T @ (p - y) + penalty * beta
        hess = z.T @ (z * (p * (1 - p))[:, None]) + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return mean, scale, beta[1:], float(beta[0])


def predict(x: np.ndarray, mean: Any, scale: Any, weights: Any, bias: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(bias + ((x - mean) / scale) @ weights, -40, 40)))


def fit_signed(x: np.ndarray, y: np.ndarray, names: Sequence[str]) -> tuple[Any, Any, Any, float]:
    """:func:`fit_logistic` with each weight held to its sign in :data:`areya.detectors.quality.SIGNS`: a
    feature whose weight comes out with the wrong sign is left out (weight 0) and the rest fitted again, until
    none is."""
    from areya.detectors.quality import SIGNS

    active = list(range(x.shape[1]))
    while True:
        mean, scale, w, b = fit_logistic(x[:, active], y)
        wrong = [active[i] for i, wi in enumerate(w) if SIGNS.get(names[active[i]], 0) * wi < 0]
        if not wrong:
            means, scales, weights = x.mean(axis=0), x.std(axis=0) + 1e-9, np.zeros(x.shape[1])
            means[active], scales[active], weights[active] = mean, scale, w
            return means, scales, weights, b
        active = [a for a in active if a not in wrong]


def fit_quality(readings: list[Reading], seed: int, command: str) -> None:
    """Fit the face quality model on ``readings`` (right 4-class answer = 1; a detection that is no face = 0),
    compare feature subsets by 2-fold cross-validation, and write :data:`FIT_MODULE`."""
    from areya.detectors.quality_fit import FEATURES

    x = np.array([r.signals.features() for r in readings])
    y = np.array([1.0 if right(r) else 0.0 for r in readings])
    folds = np.random.default_rng(seed).permutation(len(y)) % 2
    print(f"\nFitting face quality on {len(y)} readings ({int(y.sum())} read right); 2-fold cross-validated AUC:")
    for name, subset in FIT_SETS.items():
        cols = [FEATURES.index(f) for f in (subset or FEATURES)]
        names = [FEATURES[c] for c in cols]
        scores = np.zeros(len(y))
        for k in (0, 1):
            train = folds != k
            scores[~train] = predict(x[~train][:, cols], *fit_signed(x[train][:, cols], y[train], names))
        print(f"  {name}: AUC {auc(scores, y):.3f}")
    mean, scale, weights, bias = fit_signed(x, y, FEATURES)
    fmt = ", ".join
    text = f'''"""The face quality model's constants (:mod:`areya.detectors.quality`): a logistic regression of
"the 4-class answer is right" on the face's signals, standardized by MEAN and SCALE, each weight held to its
expected sign (a weight of 0: the signal added nothing of that sign).

Generated by ``bench/bench_night_ward.py`` (do not edit by hand: run the command again)::

    {command}

from {len(y)} readings of its generated night-ward scenes (every bucket, seed {seed}; a detection that is no face
counts as read wrong), {int(y.sum())} of them read right.
"""

FEATURES = (
{"".join(f'    "{f}",{chr(10)}' for f in FEATURES)})
MEAN = ({fmt(f"{v:.6g}" for v in mean)})
SCALE = ({fmt(f"{v:.6g}" for v in scale)})
WEIGHTS = ({fmt(f"{v:.6g}" for v in weights)})
BIAS = {bias:.6g}
'''
    FIT_MODULE.write_text(text)
    print(
        f"wrote {FIT_MODULE.relative_to(FIT_MODULE.parents[2])}: weights "
        + ", ".join(f"{f} {w:+.2f}" for f, w in zip(FEATURES, weights, strict=True))
        + f"; bias {bias:+.2f}"
    )


THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55)


def rescore(tallies: dict[str, Tally]) -> None:
    """Every reading's quality again, with the constants now in :data:`FIT_MODULE` (after a fit)."""
    import importlib

    import areya.detectors.quality as quality
    import areya.detectors.quality_fit as fit

    importlib.reload(fit)
    importlib.reload(quality)
    for r in read(tallies):
        r.quality = quality.quality_score(r.signals)


def print_thresholds(tallies: dict[str, Tally]) -> None:
    """What each candidate ``min_face_quality`` sets aside: per bucket, the share of faces found set aside and the
    neutral faces' mean P(angry) + P(sad) over the readings kept; over all buckets, the share set aside per true
    class and the accuracy kept."""
    names = list(tallies)
    print("\nCandidate thresholds: set aside % / neutral mean P(neg) kept %, per bucket; then over all buckets")
    print("| min quality | " + " | ".join(names) + " | set aside by class (a/h/n/s) % | acc. kept % |")
    print("|---" * (len(names) + 3) + "|")
    for q in (0.0, *THRESHOLDS):
        cells = []
        for t in tallies.values():
            faces = [r for r in t.readings if r.found]
            neutral = [negative(r) for r in faces if r.label == "neutral" and r.quality >= q]
            aside = np.mean([r.quality < q for r in faces]) if faces else float("nan")
            cells.append(f"{pct(aside)} / {pct(float(np.mean(neutral)) if neutral else float('nan'))}")
        faces = [r for t in tallies.values() for r in t.readings if r.found]
        by_class = "/".join(pct(np.mean([r.quality < q for r in faces if r.label == c])) for c in CLASSES)
        kept = [right(r) for r in faces if r.quality >= q]
        print(
            f"| {q:.2f} | "
            + " | ".join(cells)
            + f" | {by_class} | {pct(float(np.mean(kept)) if kept else float('nan'))} |"
        )


def save(tallies: dict[str, Tally], path: Path) -> None:
    """Every reading's signals, quality and truth, for analysis (``np.load``)."""
    rs = read(tallies)
    np.savez_compressed(
        path,
        features=np.array([r.signals.features() for r in rs]),
        signals=np.array([r.signals.as_tuple() for r in rs]),
        quality=np.array([r.quality for r in rs]),
        right=np.array([right(r) for r in rs]),
        negative=np.array([negative(r) for r in rs]),
        bucket=np.array([r.bucket for r in rs]),
        label=np.array([r.label for r in rs]),
    )
    print(f"readings saved to {path}")


def print_quality(tallies: dict[str, Tally], min_quality: float) -> None:
    """What the face quality predicts on this run, and what setting aside readings below ``min_quality`` does."""
    print(f"\nFace quality (readings below {min_quality:.2f} set aside, as min_face_quality does):")
    print(
        "| bucket | mean quality | set aside % | 4-class acc. kept % | acc. set aside % "
        "| neutral: mean P(neg) kept % | no-face detections set aside |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, t in tallies.items():
        faces = [r for r in t.readings if r.found]
        kept = [r for r in faces if r.quality >= min_quality]
        aside = [r for r in faces if r.quality < min_quality]
        neutral = [r for r in kept if r.label == "neutral"]
        false_aside = sum(r.quality < min_quality for r in t.false_faces)

        def acc(rs: list[Reading]) -> str:
            return f"{pct(float(np.mean([right(r) for r in rs])))} (n={len(rs)})" if rs else "-"

        mean_q = float(np.mean([r.quality for r in faces])) if faces else float("nan")
        neg = float(np.mean([negative(r) for r in neutral])) if neutral else float("nan")
        print(
            f"| {name} | {mean_q:.2f} | {pct(len(aside) / max(len(faces), 1))} | {acc(kept)} | {acc(aside)} "
            f"| {pct(neg)} (n={len(neutral)}) | {false_aside} of {len(t.false_faces)} |"
        )
    faces = [r for t in tallies.values() for r in t.readings if r.found]
    everything = read(tallies)
    q = np.array([r.quality for r in faces])
    y = np.array([right(r) for r in faces], float)
    qa = np.array([r.quality for r in everything])
    ya = np.array([right(r) for r in everything], float)
    print(
        f"\nAUC of quality for a right answer: {auc(q, y):.3f} on the {len(faces)} faces found, {auc(qa, ya):.3f} "
        f"with the {len(everything) - len(faces)} detections that are no face (read wrong)"
    )
    print("calibration (all readings): quality band: readings, mean quality, share read right")
    for lo, hi in QUALITY_BANDS:
        sel = (qa >= lo) & (qa < hi)
        if sel.any():
            print(f"  {lo:.1f}-{min(hi, 1.0):.1f}: {int(sel.sum())}, {qa[sel].mean():.2f}, {ya[sel].mean():.2f}")
    above, below = q >= min_quality, q < min_quality
    print(
        f"faces found: 4-class accuracy {pct(y[above].mean() if above.any() else float('nan'))} % above "
        f"{min_quality:.2f} (n={int(above.sum())}), {pct(y[below].mean() if below.any() else float('nan'))} % below "
        f"(n={int(below.sum())})"
    )
    for scope, rs in (("lit upright", tallies.get("lit upright", Tally()).readings), ("all buckets", faces)):
        parts = []
        for c in CLASSES:
            sel = [r for r in rs if r.found and r.label == c]
            if sel:
                parts.append(f"{c} {pct(np.mean([r.quality < min_quality for r in sel]))}")
        if parts:
            print(f"set aside by true class, {scope} (%): " + ", ".join(parts))


def build_detector(options: Sequence[str]) -> Any:
    from areya.config import Settings
    from areya.detectors import detector_from_settings

    pairs = dict(o.split("=", 1) for o in options)
    return detector_from_settings(Settings(), options=pairs)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=480, help="faces per bucket (a multiple of 24 keeps classes even)")
    ap.add_argument("--buckets", default="", help="comma-separated bucket names (default: all)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--model", default=None, help="emotion model name or path (default: the configured one)")
    ap.add_argument(
        "--detector-option", action="append", default=[], metavar="NAME=VALUE", help="over the configured options"
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 6 faces (one scene) per bucket")
    ap.add_argument(
        "--crop-light",
        choices=CROP_LIGHT,
        default="none",
        help="low-light normalisation of the face crops before they are read (a variant; the worker applies none)",
    )
    ap.add_argument(
        "--min-quality", type=float, default=None, help="face quality threshold to report (default: the setting)"
    )
    ap.add_argument(
        "--labels",
        choices=LABELS,
        default=None,
        help="what a face's class is in the reading columns: its FER-2013 folder, its FER+ majority, or both "
        "tables (default: both when the FER+ votes are there, else fer2013)",
    )
    ap.add_argument("--save", type=Path, default=None, help="save every reading's signals and truth (.npz)")
    ap.add_argument(
        "--fit-quality",
        action="store_true",
        help=f"fit the face quality model on this run and write {FIT_MODULE.name} (use another --seed than the "
        "reported runs')",
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not FER_DIR.is_dir():
        print(f"skipped: FER-2013 PublicTest not found at {FER_DIR}")
        return 0
    count = 6 if args.quick else args.faces
    labels_by = args.labels or ("both" if VOTES.is_file() else "fer2013")
    if labels_by != "fer2013" and not VOTES.is_file():
        print(f"--labels {labels_by}: FER+ votes not found at {VOTES}", file=sys.stderr)
        return 2
    buckets = list(BUCKETS)
    if args.buckets:
        wanted = [b.strip() for b in args.buckets.split(",") if b.strip()]
        unknown = [w for w in wanted if w not in {b.name for b in BUCKETS}]
        if unknown:
            print(f"unknown bucket(s) {unknown}: choose from {', '.join(b.name for b in BUCKETS)}", file=sys.stderr)
            return 2
        buckets = [b for b in BUCKETS if b.name in wanted]

    from areya.emotion.inference import EmotionClassifier

    t0 = time.perf_counter()
    per_class = math.ceil(count / len(CLASSES))
    pool, pool_labels, pool_keys = keyed_faces(per_class * 2 if args.quick else math.ceil(per_class * 1.6), args.seed)
    faces, labels, frames = detectable(pool, pool_labels, per_class, args.seed)
    faces, labels, frames = faces[:count], labels[:count], frames[:count]
    key_of = {id(f): k for f, k in zip(pool, pool_keys, strict=True)}
    ferplus = ferplus_labels([key_of[id(f)] for f in faces]) if labels_by != "fer2013" else None
    detector = build_detector(args.detector_option)
    classifier = EmotionClassifier.load(args.model)
    print(
        f"{len(faces)} faces per bucket ({', '.join(f'{c} {labels.count(c)}' for c in CLASSES)}) of {len(pool)} "
        f"drawn PublicTest faces found upright alone at 120 px; seed {args.seed}; detector {detector.name} "
        f"{' '.join(args.detector_option) or '(configured options)'}; model {classifier.model_version}"
        + (f"; crops relit: {args.crop_light}" if args.crop_light != "none" else "")
        + f"; labels: {labels_by}"
    )
    tallies: dict[str, Tally] = {}
    for bucket in buckets:
        tally = run_bucket(bucket, faces, labels, frames, detector, args.seed, ferplus)
        classify(tally, classifier, args.crop_light)
        tallies[bucket.name] = tally
    print()
    print_table(tallies, "ferplus" if labels_by == "ferplus" else "fer2013")
    if labels_by == "both":
        print_ferplus(tallies)
    elif labels_by == "ferplus":
        out = sum(not r.ferplus for r in next(iter(tallies.values())).readings) if tallies else 0
        print(f"{out} of the {len(faces)} faces have no FER+ majority among the four classes: left out of them")
    print()
    print_breakdown(tallies)
    if args.fit_quality:
        given = list(argv if argv is not None else sys.argv[1:])
        if "--save" in given:  # where the readings were saved is no part of the fit
            at = given.index("--save")
            del given[at : at + 2]
        command = "python -m bench.bench_night_ward " + " ".join(given)
        fit_quality(read(tallies), args.seed, command.strip())
        rescore(tallies)  # with the model just fitted: the thresholds on the fitting seed's faces
        print_thresholds(tallies)
    else:
        from areya.config import Settings

        print_quality(tallies, Settings().min_face_quality if args.min_quality is None else args.min_quality)
        print_thresholds(tallies)
    if args.save is not None:
        save(tallies, args.save)
    print(f"\ntook {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
