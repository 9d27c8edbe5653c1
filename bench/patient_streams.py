"""Patient streams as a ward camera sees them: one person per bed, faces held for minutes, nights, sleep, visitors.

``bench_alert_rules`` draws a new random FER-2013 face (another person) every ~4 s, so a 5-minute window averages
~75 independent faces; a ward camera sees one patient, whose face holds an expression for minutes.  This module
makes patient-days that keep what a ward keeps, for ``bench_alert_streams``:

* **One identity per patient.**  FER faces have no identities, so each patient gets a small fixed set of faces,
  one per expression state: a *resting* face (FER neutral), a happy one, a sad one and an angry one.  Every frame
  of the patient is one of those four images, moved by a few degrees and pixels, lit a little differently and
  warped by a smooth sub-pixel field (small-expression jitter): :func:`render`, ``VARIANTS`` renderings per image
  and condition.  A rendering lasts a pose (exponential, mean :attr:`StreamConfig.pose_s`) and then another one of
  the same image follows.
* **Holds.**  An expression is held 30-300 s (uniform) before the next one is drawn; only a scenario boundary
  (an episode's start or end, a visit's) cuts a hold short.
* **Resting faces chosen by the model's score on them** (documented, not random): each neutral face of the pool is
  scored once as a patient's stream shows it by day (:func:`score_resting`: the mean ``P(angry) + P(sad)``, the
  rule's Negative probability, of its day renderings; the renderings alone raise a neutral face's score by about
  0.05 on average against the bare FER image, the night's by 0.18).  An *ordinary* patient's resting face is
  drawn from the neutral faces scoring below 0.25, a *mild-negative* patient's (a share
  :attr:`StreamConfig.mild_negative_share`, 25 %) from those scoring 0.25-0.50: their neutral face reads mildly
  negative all day.  Of the scoring half's 304
  neutral faces, v11 puts 132 below 0.25, 88 at 0.25-0.50 and 84 at 0.50 or more; the last (the model reads them
  as sad or angry) are no one's resting face here: a patient with such a face would read negative all day, which
  this bench does not model.  Happy, sad and angry faces are drawn at random from their class (not by score: an
  episode is what the scenario says it is, whether or not the model reads the patient's sad face as sad).
* **Day and night.**  Night is 22:00-07:00.  A face seen at night is degraded (:func:`render` with ``night``):
  rolled up to +-25 degrees more, dim (gain 0.35-0.6, gamma 1.0-1.5), small (40-64 px in the camera, back to
  48 px as the worker resizes a crop), sensor noise (sigma 3-8 grey levels at the camera's size, between
  ``bench_night_ward``'s dim 3-7 and the training augmentation's 2-10) and JPEG 60-85.
* **Sleep.**  The patient falls asleep at 22:30-00:30 and wakes at 05:30-07:00, with 0-3 awakenings of 5-30 min;
  some days (40 %) an afternoon nap of 20-60 min.  Asleep, the face is readable only in some spells (40 % of
  5-30-minute spells): the resting face with its eyes "closed" (the eye band blurred away, a proxy: no eye detail);
  otherwise no face is seen at all (turned away, under the blanket).  An episode wakes the patient.
* **Gaps.**  Besides sleep, the face is missing for 1-15 min at times (out of bed, turned away, care at the bed,
  ~every 90 min); such gaps are **informative**: twice as frequent during an episode (a distressed patient turns
  away, covers the face).  Detections are missed per frame: 15 % by day, 35 % at night, 50 % asleep.
* **Visitors.**  Some days 1-3 visits of 20-90 min between 10:00 and 20:00 (Poisson, mean 0.8 a day): another
  identity (drawn as a patient's) whose faces (resting 55 %, happy 35 %, sad 10 % of its holds) take a share
  (20-50 %) of the holds of a visit whose visitor the worker's bedside roles take for the patient
  (:attr:`StreamConfig.visitor_taken` of the visits, drawn per visit: a role once given holds while the track
  lives); in the other visits the worker counts the visitor as someone else and those holds show the patient's
  own face as they would without the visit.  ``visitor_taken`` 1 is the bench before bedside roles: every
  visitor's face read as the patient's.
* **Episodes from the scenario.**  A day holds Poisson(:attr:`StreamConfig.episodes_per_day`) episodes at uniform
  times over the 24 h (none within 30 min of another), each 10-60 min of negative state (sad or angry, even
  odds): 80 % of the episode's holds show the patient's sad or angry face, the rest the resting one.  Ground
  truth is the scenario's, whatever the classifier reads.

A stream covers ``[-history_h, 24 h + tail)`` around the counted day (the same patient's previous hours: the
per-patient baseline's history; the tail lets an episode late in the day be seen to its end).  Each distinct
(image, condition, rendering) is one :class:`VariantTable` entry, classified once (:func:`classify_table`); a
stream refers to entries, so a patient-day costs no classification beyond its few dozen renderings.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bench.bench_alert_rules import DAY_S, FACE_FOLDERS, Episode, Timeline

CLASSES = tuple(FACE_FOLDERS)  # angry, happy, relaxed, sad: Areya's 4 classes, LABELS4 order
CONDITIONS = ("day", "night", "day-closed", "night-closed")  # light x eyes
DAY, NIGHT, DAY_CLOSED, NIGHT_CLOSED = range(4)
NIGHT_HOURS = (22.0, 7.0)  # night: from 22:00 to 07:00
RESTING_BANDS = {"ordinary": (0.0, 0.25), "mild-negative": (0.25, 0.50)}  # resting face's own P(angry)+P(sad)
SPLIT_SEED = 20261201  # PublicTest's tuning / scoring halves
DAY_SIDE_PX = 96  # a face's side in the camera by day (the ward's 64-112 px; the quality model gives size no weight)
RENDER_VERSION = 1  # bump when render() changes: disk caches keyed by it
Classify = Callable[[Sequence[np.ndarray]], np.ndarray]  # 48x48 uint8 images -> calibrated (n, 4) LABELS4 order


# --------------------------------------------------------------------------- faces


@dataclass(eq=False)
class Face:
    key: str  # stable name, e.g. "sad/PublicTest_123.jpg"
    label: str  # Areya class (angry, happy, relaxed, sad)
    image: np.ndarray  # 48x48 uint8


@dataclass
class FacePool:
    """The faces patients are made of, with the model's score of each resting (neutral) face as it is."""

    faces: list[Face]
    by_label: dict[str, list[int]] = field(default_factory=dict)
    resting_score: dict[int, float] = field(default_factory=dict)  # resting face -> its score (score_resting)

    def __post_init__(self) -> None:
        if not self.by_label:
            self.by_label = {c: [i for i, f in enumerate(self.faces) if f.label == c] for c in CLASSES}

    @classmethod
    def of(cls, images: dict[str, list[tuple[str, np.ndarray]]]) -> FacePool:
        """``images``: Areya class -> (key, 48x48 image) pairs."""
        return cls(
            [Face(key, label, np.asarray(img, np.uint8)) for label, items in images.items() for key, img in items]
        )

    def resting_band(self, group: str) -> list[int]:
        lo, hi = RESTING_BANDS[group]
        return [i for i, s in self.resting_score.items() if lo <= s < hi]


def split_half(names: Sequence[str], half: str, seed: int = SPLIT_SEED, salt: str = "") -> list[str]:
    """The ``tuning`` or ``scoring`` half of ``names`` (sorted first; a fixed permutation by ``seed`` and
    ``salt``): the halves are disjoint, together all of ``names``, and the same on every run."""
    if half not in ("tuning", "scoring"):
        raise ValueError(f"half must be tuning or scoring, got {half!r}")
    names = sorted(names)
    perm = np.random.default_rng([seed, zlib.crc32(salt.encode())]).permutation(len(names))
    cut = len(names) // 2
    chosen = perm[:cut] if half == "tuning" else perm[cut:]
    return [names[i] for i in chosen]


FER7_FOLDERS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # PublicTest's class folders
LABEL_SOURCES = ("fer2013", "ferplus")


def ferplus_classes(data: Path) -> dict[str, str]:
    """``"folder/file"`` -> the Areya class of the FER+ majority of that PublicTest face (the unique class with the
    most of ten annotators' votes among the seven, as :func:`areya.emotion.ferplus.majority7`), for the faces whose
    majority is angry, happy, neutral (relaxed) or sad; from ``ferplus_votes.csv`` beside ``data``'s parent."""
    from areya.emotion.ferplus import FerPlusVotes, default_votes_path, majority7
    from areya.emotion.schemes import FER7_CLASSES, FER_TO_AREYA4

    votes = FerPlusVotes.load(default_votes_path(data.parent))
    keys = list(votes.rows)
    major = majority7(votes.votes[[votes.rows[k] for k in keys]])
    out: dict[str, str] = {}
    for (fer_label, name), m in zip(keys, major.tolist(), strict=True):
        if m < 0 or FER7_CLASSES[m] not in FER_TO_AREYA4:
            continue
        out[f"{fer_label}/{name}"] = FER_TO_AREYA4[FER7_CLASSES[m]]
    return out


def publictest_pool(
    data: Path, half: str, per_class: int = 0, split_seed: int = SPLIT_SEED, labels: str = "fer2013"
) -> FacePool:
    """PublicTest's ``half`` (tuning or scoring, :func:`split_half` per class folder); ``per_class`` > 0 keeps the
    first that many of each class's half (in the half's fixed order).

    ``labels``: what a face is. ``fer2013``: its folder (the one FER-2013 label), four folders read.
    ``ferplus``: the FER+ majority of ten annotators (:func:`ferplus_classes`), every folder's half read, faces
    without a majority among angry, happy, neutral and sad (or without FER+ votes) left out: a patient's sad face
    is then one most people read as sad, whatever its FER-2013 label."""
    if labels not in LABEL_SOURCES:
        raise ValueError(f"labels must be one of {', '.join(LABEL_SOURCES)}, got {labels!r}")
    relabel = ferplus_classes(data) if labels == "ferplus" else None
    folders = FER7_FOLDERS if relabel is not None else tuple(FACE_FOLDERS.values())
    label_of = {folder: label for label, folder in FACE_FOLDERS.items()}
    images: dict[str, list[tuple[str, np.ndarray]]] = {label: [] for label in FACE_FOLDERS}
    for folder in folders:
        if not (data / folder).is_dir():
            if relabel is not None and folder not in label_of:
                continue
            raise SystemExit(f"no faces under {data / folder}")
        names = [p.name for p in (data / folder).iterdir() if p.suffix.lower() in (".jpg", ".png")]
        if not names:
            raise SystemExit(f"no faces under {data / folder}")
        for name in split_half(names, half, split_seed, folder):
            key = f"{folder}/{name}"
            label = label_of[folder] if relabel is None else relabel.get(key)
            if label is None:
                continue
            img = cv2.imread(str(data / folder / name), cv2.IMREAD_GRAYSCALE)
            if img is not None:
                images[label].append((key, cv2.resize(img, (48, 48)) if img.shape != (48, 48) else img))
    if per_class > 0:
        images = {label: items[:per_class] for label, items in images.items()}
    return FacePool.of(images)


# --------------------------------------------------------------------------- renderings


def close_eyes(img: np.ndarray) -> np.ndarray:
    """A proxy for closed eyes: the eye band (rows 11-27 of 48, feathered) replaced by a heavy blur of itself."""
    blurred = cv2.GaussianBlur(img, (0, 0), 3.5)
    mask = np.zeros_like(img, np.float32)
    mask[11:27, 5:43] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), 2.0)
    return img * (1 - mask) + blurred * mask


def render(image: np.ndarray, condition: int, rng: np.random.Generator) -> np.ndarray:
    """One rendering of a 48x48 face under ``condition``: :func:`render_sized` without the size."""
    return render_sized(image, condition, rng)[0]


def render_sized(image: np.ndarray, condition: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """One rendering of a 48x48 face under ``condition`` (:data:`CONDITIONS`): pose (roll +-8 degrees, scale
    0.94-1.06, a yaw-like squeeze 0.92-1.0, shift +-2 px), a smooth displacement field of 0.3-1.0 px
    (small-expression jitter) in one resampling, then light; at night also roll +-25 degrees more, gain 0.35-0.6
    with gamma 1.0-1.5, the face 40-64 px in the camera with sensor noise (sigma 3-8) and JPEG 60-85 there, back
    to 48 px as ``prepare_crops`` resizes.  ``*-closed``: :func:`close_eyes` first.  Also the face's side in the
    camera (px): the night's drawn side, by day :data:`DAY_SIDE_PX`."""
    night = condition in (NIGHT, NIGHT_CLOSED)
    img = np.asarray(image, np.float32)
    if condition in (DAY_CLOSED, NIGHT_CLOSED):
        img = close_eyes(img)
    h, w = img.shape
    angle = rng.uniform(-8, 8) + (rng.uniform(-25, 25) if night else 0.0)
    scale = rng.uniform(0.94, 1.06)
    squeeze = rng.uniform(0.92, 1.0)
    centre = (w / 2 - 0.5, h / 2 - 0.5)
    m = cv2.getRotationMatrix2D(centre, angle, scale)
    m[0, :2] *= squeeze
    m[0, 2] = centre[0] - m[0, 0] * centre[0] - m[0, 1] * centre[1] + rng.uniform(-2, 2)
    m[1, 2] += rng.uniform(-2, 2)
    inv = cv2.invertAffineTransform(m)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    amp = rng.uniform(0.3, 1.0)
    field_xy = []
    for _ in range(2):
        f = cv2.GaussianBlur(rng.normal(size=(h, w)).astype(np.float32), (0, 0), 5.0)
        field_xy.append(f * (amp / max(float(np.abs(f).max()), 1e-6)))
    map_x = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2] + field_xy[0]
    map_y = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2] + field_xy[1]
    map_x, map_y = map_x.astype(np.float32), map_y.astype(np.float32)
    img = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if night:
        x = np.clip(img, 0, 255) / 255.0
        img = 255.0 * rng.uniform(0.35, 0.6) * x ** rng.uniform(1.0, 1.5)
        side = int(rng.integers(40, 65))
        small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA if side < w else cv2.INTER_LINEAR)
        small = small + rng.normal(0, rng.uniform(3, 8), small.shape)
        small = np.clip(np.round(small), 0, 255).astype(np.uint8)
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(60, 86))])
        if ok:
            small = cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)
        interp = cv2.INTER_AREA if side > w else cv2.INTER_LINEAR  # as prepare_crops resizes a crop
        return (cv2.resize(small, (w, h), interpolation=interp) if side != w else small), side
    mean = float(img.mean())
    img = (img - mean) * rng.uniform(0.85, 1.15) + mean
    x = np.clip(img, 0, 255) / 255.0
    img = 255.0 * rng.uniform(0.85, 1.1) * x ** rng.uniform(0.85, 1.15)
    img = img + rng.normal(0, rng.uniform(1, 3), img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), DAY_SIDE_PX


@dataclass
class VariantTable:
    """Every distinct (face, condition, rendering) the streams use, numbered in order of first use."""

    pool: FacePool
    aug_seed: int = 0
    keys: list[tuple[int, int, int]] = field(default_factory=list)
    _ids: dict[tuple[int, int, int], int] = field(default_factory=dict)

    def ids(self, face: np.ndarray, condition: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Entry numbers of the (face, condition, k) triples, adding the new ones."""
        code = (face.astype(np.int64) * 16 + condition.astype(np.int64)) * 4096 + k.astype(np.int64)
        uniq, inverse = np.unique(code, return_inverse=True)
        out = np.empty(len(uniq), np.int64)
        for j, c in enumerate(uniq.tolist()):
            key = (c // (16 * 4096), (c // 4096) % 16, c % 4096)
            got = self._ids.get(key)
            if got is None:
                got = self._ids[key] = len(self.keys)
                self.keys.append(key)
            out[j] = got
        return out[inverse.reshape(-1)]

    def name(self, i: int) -> str:
        face, condition, k = self.keys[i]
        return f"{self.pool.faces[face].key}|{CONDITIONS[condition]}|{k}|seed{self.aug_seed}|r{RENDER_VERSION}"

    def image(self, i: int) -> np.ndarray:
        """The rendering of entry ``i``: the same pixels on every run (its own seed from its name)."""
        return self.image_sized(i)[0]

    def image_sized(self, i: int) -> tuple[np.ndarray, int]:
        """The rendering of entry ``i`` and the face's side in the camera (:func:`render_sized`)."""
        face, condition, k = self.keys[i]
        seed = [self.aug_seed, zlib.crc32(self.pool.faces[face].key.encode()), condition, k, RENDER_VERSION]
        return render_sized(self.pool.faces[face].image, condition, np.random.default_rng(seed))


def classify_table(
    table: VariantTable,
    classify: Classify,
    known: dict[str, np.ndarray] | None = None,
    through_ward: Callable[[np.ndarray, int], np.ndarray | None] | None = None,
    ids: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> np.ndarray:
    """(entries, 4) calibrated probabilities of the entries ``ids`` (default all; the others' rows NaN),
    classifying only those not in ``known`` (name -> probabilities; updated in place: the cache).
    ``through_ward(image, seed)``: the crop the worker would classify (a ward scene, the detector, its crop rule),
    None when the detector misses it: that entry's row is NaN (its frames yield no observation)."""
    known = {} if known is None else known
    ids = np.arange(len(table.keys)) if ids is None else np.unique(ids)
    prefix = "ward|" if through_ward is not None else ""
    names = {int(i): prefix + table.name(int(i)) for i in ids}
    todo = [i for i, n in names.items() if n not in known]
    crops: list[np.ndarray] = []
    rows: list[int] = []
    for j, i in enumerate(todo):
        img = table.image(i)
        if through_ward is not None:
            crop = through_ward(img, zlib.crc32(names[i].encode()))
            if crop is None:
                known[names[i]] = np.full(4, np.nan)
                continue
            img = crop
        crops.append(img)
        rows.append(i)
        if progress is not None and (j + 1) % 1000 == 0:
            progress(f"  rendered {j + 1} of {len(todo)} new renderings")
    for start in range(0, len(crops), 2048):
        probs = np.asarray(classify(crops[start : start + 2048]), np.float64)
        for i, p in zip(rows[start : start + 2048], probs, strict=True):
            known[names[i]] = p
    out = np.full((len(table.keys), 4), np.nan)
    for i, n in names.items():
        out[i] = known[n]
    return out


def entry_quality(
    table: VariantTable, probs: np.ndarray, ids: np.ndarray | None = None, detector_score: float | None = None
) -> np.ndarray:
    """(entries,) face quality of the entries ``ids`` (default all; the others and those without probabilities
    NaN) as the worker computes it (:func:`areya.detectors.quality.face_quality`): from the rendering as the
    classifier reads it (sharpness of the 48x48 input, exposure of its middle), the face's side in the camera
    (:func:`render_sized`), the classifier's probabilities (``probs``, from :func:`classify_table`: confidence,
    entropy), no roll left after alignment (the worker turns the crop by the eyes) and a detector score of
    ``detector_score`` (default: the quality fit's mean, which moves the score neither way: the streams have no
    detector)."""
    from areya.detectors.boxes import FaceBox
    from areya.detectors.quality import face_quality
    from areya.detectors.quality_fit import FEATURES, MEAN

    score = MEAN[FEATURES.index("detector_score")] if detector_score is None else detector_score
    ids = np.arange(len(table.keys)) if ids is None else np.unique(ids)
    out = np.full(len(table.keys), np.nan)
    for i in ids.tolist():
        p = probs[i]
        if not np.isfinite(p).all():
            continue
        img, side = table.image_sized(i)
        out[i] = face_quality(img, FaceBox(0, 0, side, side, score=float(score)), p)
    return out


def score_resting(
    pool: FacePool, table: VariantTable, classify: Classify, variants: int, known: dict[str, np.ndarray] | None = None
) -> None:
    """Each resting (neutral) face's score as a patient's stream shows it by day: the mean ``P(angry) + P(sad)``
    of its ``variants`` day renderings (classified directly, also for ``--through-ward``: the choice of faces
    must not cost a ward scene each).  The renderings are the ones the streams use."""
    idx = np.array(pool.by_label["relaxed"], np.int64)
    if not len(idx):
        pool.resting_score = {}
        return
    face = np.repeat(idx, variants)
    k = np.tile(np.arange(variants), len(idx))
    ids = table.ids(face, np.full(len(face), DAY), k)
    probs = classify_table(table, classify, known, ids=ids)[ids]
    neg = (probs[:, 0] + probs[:, 3]).reshape(len(idx), variants).mean(axis=1)
    pool.resting_score = {int(i): float(v) for i, v in zip(idx, neg, strict=True)}


# --------------------------------------------------------------------------- scenario


@dataclass
class StreamConfig:
    episodes_per_day: float = 0.5
    episode_min: tuple[float, float] = (10.0, 60.0)  # episode length, minutes (uniform)
    episode_gap_s: float = 1800.0  # at least this long between two episodes
    purity: float = 0.8  # share of an episode's holds with the negative face
    hold_s: tuple[float, float] = (30.0, 300.0)  # an expression held this long (uniform)
    pose_s: float = 6.0  # mean seconds one rendering (pose, light) lasts
    resting_share: tuple[float, float] = (0.55, 0.85)  # the patient's share of resting (vs happy) holds
    rate: tuple[float, float] = (1.0, 2.0)  # observations per second while the face is seen
    miss: tuple[float, float, float] = (0.15, 0.35, 0.5)  # missed detections: day, night, asleep
    away_mean_s: float = 90 * 60.0  # mean time between gaps (outside episodes; twice as often inside)
    away_min: tuple[float, float] = (1.0, 15.0)  # gap length, minutes
    sleep_onset_h: tuple[float, float] = (22.5, 24.5)
    wake_h: tuple[float, float] = (5.5, 7.0)
    awakenings: int = 3  # at most this many a night (uniform 0..awakenings)
    awake_min: tuple[float, float] = (5.0, 30.0)
    nap_p: float = 0.4
    nap_h: tuple[float, float] = (13.0, 16.0)  # a nap starts in these hours
    nap_min: tuple[float, float] = (20.0, 60.0)
    readable_sleep: float = 0.4  # share of asleep spells with a readable (eyes-closed) face
    sleep_spell_min: tuple[float, float] = (5.0, 30.0)
    visits_per_day: float = 0.8
    visit_h: tuple[float, float] = (10.0, 20.0)
    visit_min: tuple[float, float] = (20.0, 90.0)
    visitor_share: tuple[float, float] = (0.2, 0.5)  # share of a visit's holds showing the visitor
    visitor_mix: tuple[float, float, float] = (0.55, 0.35, 0.10)  # visitor's resting, happy, sad holds
    # share of visits whose visitor the bedside roles take for the patient: about the upper 95 % bound of the roles
    # bench's 0 of 48 visitor beds (rule of three: 6 %), rounded up for what those scenes lack (a visitor at the
    # pillow while the patient is out of bed, two people at the pillow); 1: every visitor read (no roles)
    visitor_taken: float = 0.1
    mild_negative_share: float = 0.25  # patients whose resting face reads mildly negative
    variants: int = 8  # renderings per (face, condition)
    history_h: float = 12.0  # the same patient's hours before the day (the baseline's history; not counted)
    tail_s: float = 3600.0 + 600.0  # after the day: an episode late in the day seen to its end


@dataclass
class Identity:
    resting: int  # pool face indices
    happy: int
    sad: int
    angry: int
    group: str  # ordinary | mild-negative

    def faces(self) -> tuple[int, int, int, int]:
        return (self.resting, self.happy, self.sad, self.angry)


def draw_identity(pool: FacePool, group: str, rng: np.random.Generator, avoid: Collection[int] = ()) -> Identity:
    """Faces for one person: the resting face from its group's score band (the nearest-scoring neutral faces when
    the band has none left, as in tiny test pools), the others at random from their class; none in ``avoid``
    (unless a class has no other face)."""

    def pick(candidates: list[int]) -> int:
        free = [i for i in candidates if i not in avoid] or list(candidates)
        if not free:
            raise ValueError("the face pool lacks a class")
        return int(free[int(rng.integers(len(free)))])

    band = [i for i in pool.resting_band(group) if i not in avoid]
    if not band:
        lo, hi = RESTING_BANDS[group]
        free = [i for i in pool.resting_score if i not in avoid] or list(pool.resting_score)
        ranked = sorted(free, key=lambda i: abs(pool.resting_score[i] - (lo + hi) / 2))
        band = ranked[: max(1, len(ranked) // 4)]
    return Identity(
        pick(band),
        pick(pool.by_label["happy"]),
        pick(pool.by_label["sad"]),
        pick(pool.by_label["angry"]),
        group,
    )


@dataclass
class PatientStream:
    """One patient's observations around one counted day (times in s since the day's midnight)."""

    patient: int
    identity: Identity
    visitors: list[Identity]
    times: np.ndarray
    variant: np.ndarray  # VariantTable entry of each observation
    face: np.ndarray  # pool face index of each observation
    condition: np.ndarray  # CONDITIONS index of each observation
    visitor: np.ndarray  # bool: the face seen is a visitor's
    episodes: list[Episode]  # every episode of the stream (those in the history end >= 30 min before the day)
    hold_start: np.ndarray
    hold_end: np.ndarray
    hold_face: np.ndarray
    hold_cut: np.ndarray  # bool: ended early at a scenario boundary (episode, visit) or the stream's end
    visits: list[tuple[float, float]]
    visitor_taken: list[bool]  # per visit: its visitor taken for the patient (their faces read)
    asleep: list[tuple[float, float]]
    gaps: list[tuple[float, float]]
    start: float
    end: float

    @property
    def counted_episodes(self) -> list[Episode]:
        """The episodes of the counted day (starting in [0, 24 h))."""
        return [e for e in self.episodes if 0 <= e.start < DAY_S]

    def timeline(self, probs: np.ndarray, read: np.ndarray | None = None) -> Timeline:
        """As ``bench_alert_rules``' :class:`Timeline` (what its replay reads), with the classified probabilities
        of the entries (``probs`` from :func:`classify_table`); entries with NaN rows (missed in the ward) drop,
        and so do entries whose ``read`` (per entry, e.g. a face quality >= the rule's minimum) is False: set
        aside, they count for nothing in the rule's window, as in the engine."""
        p = probs[self.variant]
        ok = np.isfinite(p).all(axis=1)
        if read is not None:
            ok &= np.asarray(read, bool)[self.variant]
        return Timeline(
            self.times[ok], p[ok], p[ok].argmax(axis=1), self.episodes, self.identity.group, start=self.start
        )


def is_night(times: np.ndarray | float) -> np.ndarray:
    hour = np.mod(times, DAY_S) / 3600.0
    return (hour >= NIGHT_HOURS[0]) | (hour < NIGHT_HOURS[1])


def in_spans(times: np.ndarray, spans: Sequence[tuple[float, float]]) -> np.ndarray:
    out = np.zeros(len(times), bool)
    for a, b in spans:
        lo, hi = np.searchsorted(times, [a, b])
        out[lo:hi] = True
    return out


def subtract(spans: list[tuple[float, float]], cuts: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out = list(spans)
    for c0, c1 in cuts:
        nxt = []
        for a, b in out:
            if c1 <= a or c0 >= b:
                nxt.append((a, b))
                continue
            if a < c0:
                nxt.append((a, c0))
            if c1 < b:
                nxt.append((c1, b))
        out = nxt
    return out


def draw_episodes(rng: np.random.Generator, cfg: StreamConfig, start: float) -> list[Episode]:
    """Poisson(rate) episodes in the counted day and Poisson(rate x history / 24 h) in the history, at uniform
    times, 10-60 min each, at least ``episode_gap_s`` apart; history episodes end >= 30 min before the day."""
    lo_min, hi_min = cfg.episode_min

    def place(n: int, lo: float, hi: float, tail: float) -> list[Episode]:
        for _ in range(200):
            lengths = rng.uniform(lo_min, hi_min, n) * 60
            starts = np.sort(rng.uniform(lo, hi, n))
            ok = all(starts[i] + lengths[i] + cfg.episode_gap_s <= starts[i + 1] for i in range(n - 1))
            ok = ok and (n == 0 or starts[-1] + lengths[-1] <= tail)
            if ok:
                labels = ["sad" if rng.random() < 0.5 else "angry" for _ in range(n)]
                return [Episode(float(s), float(s + d), lab) for s, d, lab in zip(starts, lengths, labels, strict=True)]
        return place(n - 1, lo, hi, tail) if n > 0 else []

    history = []
    if start < -1800 - lo_min * 60:
        n_hist = int(rng.poisson(cfg.episodes_per_day * (-start) / DAY_S))
        history = place(n_hist, start, -1800 - lo_min * 60, -1800.0)
    day = place(int(rng.poisson(cfg.episodes_per_day)), 0.0, float(DAY_S), float(DAY_S) + cfg.tail_s - 600)
    return history + day


def make_stream(
    pool: FacePool, table: VariantTable, cfg: StreamConfig, seed: int, patient: int, group: str | None = None
) -> PatientStream:
    """One patient's stream (see the module doc).  Randomness comes from separate streams of ``(seed, patient)``
    per part (identity, sleep, visits, holds, gaps, frames, episodes), so two episode rates of the same seed and
    patient share the person, the nights and the visits and differ by the episodes (and what follows from them)."""

    def part(i: int) -> np.random.Generator:
        return np.random.default_rng([seed, patient, i])

    r_id, r_sleep, r_visit, r_hold, r_gap, r_frame, r_ep, r_role = (part(i) for i in range(8))
    start, end = -cfg.history_h * 3600.0, DAY_S + cfg.tail_s
    if group is None:
        group = "mild-negative" if r_id.random() < cfg.mild_negative_share else "ordinary"
    ident = draw_identity(pool, group, r_id)
    episodes = draw_episodes(r_ep, cfg, start)
    ep_spans = [(e.start, e.end) for e in episodes]

    # nights, awakenings, naps; visits
    days = range(math.floor(start / DAY_S) - 1, math.ceil(end / DAY_S) + 1)
    sleep: list[tuple[float, float]] = []
    awake: list[tuple[float, float]] = []
    visits: list[tuple[float, float]] = []
    for d in days:
        onset = (d - 1) * DAY_S + r_sleep.uniform(*cfg.sleep_onset_h) * 3600
        wake = d * DAY_S + r_sleep.uniform(*cfg.wake_h) * 3600
        sleep.append((onset, wake))
        for _ in range(int(r_sleep.integers(0, cfg.awakenings + 1))):
            a = r_sleep.uniform(onset, wake)
            awake.append((a, a + r_sleep.uniform(*cfg.awake_min) * 60))
        if r_sleep.random() < cfg.nap_p:
            a = d * DAY_S + r_sleep.uniform(*cfg.nap_h) * 3600
            sleep.append((a, a + r_sleep.uniform(*cfg.nap_min) * 60))
        for _ in range(int(r_visit.poisson(cfg.visits_per_day))):
            a = d * DAY_S + r_visit.uniform(*cfg.visit_h) * 3600
            visits.append((a, a + r_visit.uniform(*cfg.visit_min) * 60))
    visits.sort()
    visitors = [draw_identity(pool, "ordinary", r_visit, avoid=set(ident.faces())) for _ in visits]
    share = [r_visit.uniform(*cfg.visitor_share) for _ in visits]
    taken = [bool(r_role.random() < cfg.visitor_taken) for _ in visits]  # its own stream: the rest stays the same
    asleep = subtract(sorted(sleep), [*awake, *ep_spans, *visits])
    asleep = [(a, b) for a, b in asleep if b > start and a < end]
    readable: list[tuple[float, float]] = []
    for a, b in asleep:
        t = a
        while t < b:
            u = min(b, t + r_sleep.uniform(*cfg.sleep_spell_min) * 60)
            if r_sleep.random() < cfg.readable_sleep:
                readable.append((t, u))
            t = u

    # holds: 30-300 s each, cut at episode and visit boundaries
    edges = np.array(sorted({x for sp in (*ep_spans, *visits) for x in sp if start < x < end}))
    resting_share = r_hold.uniform(*cfg.resting_share)
    h_start, h_end, h_face, h_cut, h_visitor = [], [], [], [], []
    t = start
    while t < end:
        nxt = t + r_hold.uniform(*cfg.hold_s)
        j = np.searchsorted(edges, t, side="right")
        cut = False
        if j < len(edges) and edges[j] < nxt:
            nxt, cut = float(edges[j]), True
        if nxt >= end:
            nxt, cut = end, True
        ep = next((e for e in episodes if e.start <= t < e.end), None)
        v = next((i for i, (a, b) in enumerate(visits) if a <= t < b), None)
        u = r_hold.random()
        if v is not None and r_hold.random() < share[v] and taken[v]:
            who = visitors[v]
            mix = np.cumsum(cfg.visitor_mix)
            face = who.resting if u < mix[0] else who.happy if u < mix[1] else who.sad
            is_visitor = True
        else:
            if ep is not None:
                face = (ident.sad if ep.label == "sad" else ident.angry) if u < cfg.purity else ident.resting
            else:
                face = ident.resting if u < resting_share else ident.happy
            is_visitor = False
        h_start.append(t)
        h_end.append(nxt)
        h_face.append(face)
        h_cut.append(cut)
        h_visitor.append(is_visitor)
        t = nxt
    hold_start, hold_face = np.array(h_start), np.array(h_face, np.int64)

    # gaps: ~every away_mean_s outside episodes, twice as often inside (thinning of a doubled Poisson process)
    gaps: list[tuple[float, float]] = []
    t = start + r_gap.exponential(cfg.away_mean_s / 2)
    while t < end:
        inside = any(a <= t < b for a, b in ep_spans)
        length = r_gap.uniform(*cfg.away_min) * 60
        if inside or r_gap.random() < 0.5:
            gaps.append((t, t + length))
            t += length
        t += r_gap.exponential(cfg.away_mean_s / 2)

    # frames
    rate = r_frame.uniform(*cfg.rate)
    times = np.arange(start + r_frame.uniform(0, 1 / rate), end, 1 / rate)
    times = np.sort(times + r_frame.uniform(-0.2, 0.2, len(times)) / rate)
    times = times[(times >= start) & (times < end)]
    h = np.searchsorted(hold_start, times, side="right") - 1
    face = hold_face[h]
    visitor = np.array(h_visitor, bool)[h]
    night = is_night(times)
    sleeping = in_spans(times, asleep)
    condition = np.where(night, NIGHT, DAY)
    condition = np.where(sleeping, np.where(night, NIGHT_CLOSED, DAY_CLOSED), condition)
    face = np.where(sleeping, ident.resting, face)
    visitor &= ~sleeping
    keep = ~sleeping | in_spans(times, readable)
    keep &= ~in_spans(times, gaps)
    miss = np.where(sleeping, cfg.miss[2], np.where(night, cfg.miss[1], cfg.miss[0]))
    keep &= r_frame.random(len(times)) >= miss
    pose_edges = np.cumsum(r_frame.exponential(cfg.pose_s, int((end - start) / cfg.pose_s * 1.5) + 64)) + start
    pose_k = r_frame.integers(0, cfg.variants, len(pose_edges) + 1)
    k = pose_k[np.searchsorted(pose_edges, times)]
    times, face, condition, visitor, k = times[keep], face[keep], condition[keep], visitor[keep], k[keep]
    variant = table.ids(face, condition, k)
    return PatientStream(
        patient,
        ident,
        visitors,
        times,
        variant,
        face,
        condition.astype(np.int8),
        visitor,
        episodes,
        hold_start,
        np.array(h_end),
        hold_face,
        np.array(h_cut, bool),
        visits,
        taken,
        asleep,
        gaps,
        start,
        end,
    )


# --------------------------------------------------------------------------- scoring


@dataclass
class PatientResult:
    """What one rule did on one patient-day, against the scenario's episodes."""

    group: str
    episodes: list[tuple[bool, float | None, int]]  # per counted episode: at night, delay to 1st alert (s), alerts
    false_day: int  # false alerts opened 07:00-22:00
    false_night: int  # false alerts opened 22:00-07:00
    false_visit: int  # of those, opened during a visit or within one window after it
    alerts: int  # all alerts of the day (episode alerts + false)
    false_asleep: int = 0  # of those, opened on a window of mostly eyes-closed faces

    @property
    def false(self) -> int:
        return self.false_day + self.false_night


def bedside_finding(stream: PatientStream, window_s: int) -> Callable[[float], str]:
    """What the clinician who resolves an alert opened at ``t`` finds at the bedside: distress when ``t`` falls in
    one of the stream's episodes (from its start to one window after its end, as :func:`score_patient` counts an
    alert as the episode's), no distress otherwise (a visitor's sad face, a misread resting face)."""

    def finding(t: float) -> str:
        during = any(ep.start <= t <= ep.end + window_s for ep in stream.episodes)
        return "distress_seen" if during else "no_distress_seen"

    return finding


def score_patient(stream: PatientStream, opens: Sequence[float], window_s: int) -> PatientResult:
    """An alert opened from an episode's start to one window after its end belongs to the episode (as in
    ``bench_alert_rules``); any other opened during the counted day is false, by day or at night by its time."""
    opens = sorted(opens)
    claimed = [False] * len(opens)
    episodes = []
    for ep in stream.counted_episodes:
        mine = [i for i, t in enumerate(opens) if ep.start <= t <= ep.end + window_s]
        for i in mine:
            claimed[i] = True
        delay = opens[mine[0]] - ep.start if mine else None
        episodes.append((bool(is_night(ep.start)), delay, len(mine)))
    false = [t for t, c in zip(opens, claimed, strict=True) if not c and 0 <= t < DAY_S]
    night = [t for t in false if is_night(t)]
    in_visit = [t for t in false if any(a <= t <= b + window_s for a, b in stream.visits)]
    closed = np.isin(stream.condition, [DAY_CLOSED, NIGHT_CLOSED])
    asleep = 0
    for t in false:
        lo, hi = np.searchsorted(stream.times, [t - window_s, t], side="right")
        asleep += bool(hi > lo and closed[lo:hi].mean() > 0.5)
    matched = sum(n for _, _, n in episodes)
    return PatientResult(
        stream.identity.group,
        episodes,
        len(false) - len(night),
        len(night),
        len(in_visit),
        matched + len(false),
        asleep,
    )


def _rate(num: float, den: float) -> float:
    return num / den if den else float("nan")


@dataclass
class Figures:
    """The figures of one set of patient-days (one seed, or several pooled)."""

    patient_days: int
    episodes_day: int
    episodes_night: int
    sensitivity_day: float
    sensitivity_night: float
    sensitivity: float
    false_per_day: float  # over all patients
    false_day_hours: float  # false alerts opened 07:00-22:00, per patient-day
    false_night_hours: float  # opened 22:00-07:00, per patient-day
    worst_decile: float  # mean false alerts per day of the worst 10 % of patients
    ppv: float  # share of alerts that belong to an episode
    alerts_per_bed_day: float
    median_min: float  # time to the first alert of detected episodes
    p90_min: float
    alerts_per_episode: float  # per detected episode
    false_ordinary: float  # per patient-day, by resting-face group
    false_mild_negative: float
    false_visits: float  # per patient-day, opened during a visit
    false_asleep: float  # per patient-day, opened on a window of mostly eyes-closed faces

    @classmethod
    def of(cls, results: Sequence[PatientResult]) -> Figures:
        n = len(results)
        eps = [e for r in results for e in r.episodes]
        day = [e for e in eps if not e[0]]
        night = [e for e in eps if e[0]]
        delays = [e[1] for e in eps if e[1] is not None]
        detected = [e for e in eps if e[1] is not None]
        false = sorted((r.false for r in results), reverse=True)
        worst = false[: max(1, math.ceil(n / 10))] if n else []
        alerts = sum(r.alerts for r in results)
        by_group = {g: [r for r in results if r.group == g] for g in RESTING_BANDS}
        return cls(
            n,
            len(day),
            len(night),
            _rate(sum(e[1] is not None for e in day), len(day)),
            _rate(sum(e[1] is not None for e in night), len(night)),
            _rate(len(detected), len(eps)),
            _rate(sum(false), n),
            _rate(sum(r.false_day for r in results), n),
            _rate(sum(r.false_night for r in results), n),
            float(np.mean(worst)) if worst else float("nan"),
            _rate(alerts - sum(false), alerts),
            _rate(alerts, n),
            float(np.median(delays)) / 60 if delays else float("nan"),
            float(np.percentile(delays, 90)) / 60 if delays else float("nan"),
            _rate(sum(e[2] for e in detected), len(detected)),
            _rate(sum(r.false for r in by_group["ordinary"]), len(by_group["ordinary"])),
            _rate(sum(r.false for r in by_group["mild-negative"]), len(by_group["mild-negative"])),
            _rate(sum(r.false_visit for r in results), n),
            _rate(sum(r.false_asleep for r in results), n),
        )


# t(0.975, df) for a 95 % interval of a mean over few seeds
_T975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23}


def seed_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """95 % interval of the mean of per-seed values (Student t; None with fewer than two finite values)."""
    v = np.array([x for x in values if np.isfinite(x)], float)
    if len(v) < 2:
        return None
    half = _T975.get(len(v) - 1, 2.0) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)
