"""Import FER-2013 in both of its published forms.

* a tree of class folders, ``<root>/<class>/*.jpg`` (class names as in FER);
* the original ``fer2013.csv`` with columns ``emotion, pixels, Usage``.

Every image comes back as a 48x48 uint8 grayscale array with its FER-7 label.
Files that cannot be read are counted and skipped, wrongly sized ones are
counted and resized: the :class:`ImportReport` says what happened, so nothing
is dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from areya.emotion.schemes import FER7_CLASSES, folder_to_fer7

log = logging.getLogger(__name__)

IMAGE_SIZE = 48
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
CSV_USAGE_SPLITS = {"train": "Training", "publictest": "PublicTest", "privatetest": "PrivateTest"}


@dataclass
class ImportReport:
    """What an import read, and what it had to skip or fix."""

    source: str
    loaded: int = 0
    per_class: Counter = field(default_factory=Counter)
    corrupt: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    ignored_folders: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.source}: {self.loaded} images"]
        if self.resized:
            parts.append(f"{len(self.resized)} resized to {IMAGE_SIZE}x{IMAGE_SIZE}")
        if self.corrupt:
            parts.append(f"{len(self.corrupt)} corrupt or empty skipped")
        if self.ignored_folders:
            parts.append(f"folders ignored (not a FER class): {', '.join(sorted(self.ignored_folders))}")
        return "; ".join(parts)


@dataclass
class FaceDataset:
    images: np.ndarray  # (N, 48, 48) uint8
    labels7: np.ndarray  # (N,) int64, FER-7 order
    report: ImportReport
    # (N,) where each face came from: its file's path for a folder tree, "file.csv:row" for a CSV (None: not known);
    # FER+ votes (areya.emotion.ferplus) are looked up by class folder and file name
    sources: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels7.shape[0])

    def subset(self, mask: np.ndarray, report: ImportReport) -> FaceDataset:
        """The faces where ``mask`` (bool, or indices) holds, with ``report``."""
        sources = None if self.sources is None else self.sources[mask]
        return FaceDataset(self.images[mask], self.labels7[mask], report, sources)


class _Collector:
    """Accumulates faces and labels into a :class:`FaceDataset`, recording resized images in the report."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        self.images: list[np.ndarray] = []
        self.labels: list[int] = []
        self.sources: list[str] = []

    def add(self, img: np.ndarray, label: int, where: str) -> None:
        face, resized = _to_face(img)
        if resized:
            self.report.resized.append(where)
        self.images.append(face)
        self.labels.append(label)
        self.sources.append(where)
        self.report.per_class[FER7_CLASSES[label]] += 1

    def finish(self) -> FaceDataset:
        report = self.report
        report.loaded = len(self.labels)
        if report.corrupt or report.resized:
            log.warning(report.summary())
        arr = np.stack(self.images) if self.images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        return FaceDataset(arr, np.asarray(self.labels, dtype=np.int64), report, np.array(self.sources, dtype=str))


def _to_face(img: np.ndarray) -> tuple[np.ndarray, bool]:
    """Grayscale 48x48 uint8 face from any decoded image; returns (face, was_resized)."""
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY if img.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    resized = img.shape != (IMAGE_SIZE, IMAGE_SIZE)
    if resized:
        img = cv2.resize(img, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img, dtype=np.uint8), resized


def load_folder_tree(root: str | Path, classes: Iterable[str] | None = None) -> FaceDataset:
    """Load ``root/<class>/*`` images.  ``classes`` (FER names) restricts which folders are read."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data directory not found: {root}")
    wanted = None if classes is None else {folder_to_fer7(c) for c in classes}
    report = ImportReport(source=str(root))
    faces = _Collector(report)
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        label = folder_to_fer7(sub.name)
        if label is None:
            report.ignored_folders.append(sub.name)
            continue
        if wanted is not None and label not in wanted:
            continue
        for path in sorted(sub.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            img = None
            if path.stat().st_size > 0:
                img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if img is None or img.size == 0:
                report.corrupt.append(str(path))
                continue
            faces.add(img, label, str(path))
    return faces.finish()


def load_fer_csv(path: str | Path, split: str | None = None) -> FaceDataset:
    """Load the original ``fer2013.csv``.  ``split``: train, publictest or privatetest (None: all rows)."""
    path = Path(path)
    usage = None
    if split is not None:
        if split.lower() not in CSV_USAGE_SPLITS:
            raise ValueError(f"unknown split {split!r}: expected one of {', '.join(CSV_USAGE_SPLITS)}")
        usage = CSV_USAGE_SPLITS[split.lower()]
    report = ImportReport(source=f"{path}" + (f" [{usage}]" if usage else ""))
    faces = _Collector(report)
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: not a FER-2013 CSV, missing column(s) {', '.join(sorted(missing))}")
        for row_no, row in enumerate(reader, start=2):
            if usage is not None and (row.get("Usage") or "").strip() != usage:
                continue
            where = f"{path}:{row_no}"
            try:
                label = int(row["emotion"])
                if not 0 <= label < len(FER7_CLASSES):
                    raise ValueError(label)
                pixels = np.array((row["pixels"] or "").split(), dtype=np.float64)
            except (ValueError, TypeError):
                report.corrupt.append(where)
                continue
            n = pixels.size
            side = int(round(n**0.5))
            if n == 0 or side * side != n or pixels.min() < 0 or pixels.max() > 255:
                report.corrupt.append(where)
                continue
            faces.add(pixels.reshape(side, side).astype(np.uint8), label, where)
    return faces.finish()


def load_dataset(source: str | Path, split: str | None = None) -> FaceDataset:
    """A class-folder tree (``source/split`` if ``split`` names a sub-folder) or a FER CSV file."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        return load_fer_csv(source, split)
    if split and (source / split).is_dir():
        return load_folder_tree(source / split)
    return load_folder_tree(source)


def holdout_split(data: FaceDataset, fraction: float, seed: int) -> tuple[FaceDataset, FaceDataset]:
    """A stratified, seeded split of ``data`` into (rest, held-out part of about ``fraction`` per class).

    Deterministic for a given dataset order (folder trees are read sorted) and seed, so training, model
    selection and calibration all see the same validation faces.
    """
    if not 0 <= fraction < 1:
        raise ValueError("fraction must be in [0, 1)")
    rng = np.random.default_rng(seed)
    held = np.zeros(len(data), dtype=bool)
    for label in np.unique(data.labels7):
        idx = np.flatnonzero(data.labels7 == label)
        n = int(round(idx.size * fraction))
        held[rng.permutation(idx)[:n]] = True

    def part(mask: np.ndarray, name: str) -> FaceDataset:
        report = ImportReport(source=f"{data.report.source} [{name}]", loaded=int(mask.sum()))
        report.per_class.update(FER7_CLASSES[int(lbl)] for lbl in data.labels7[mask])
        return data.subset(mask, report)

    return part(~held, f"{1 - fraction:.0%} training part"), part(held, f"{fraction:.0%} validation part")


DIGEST_BYTES = 16


def image_digests(images: np.ndarray) -> np.ndarray:
    """(N, H, W) uint8 faces -> (N,) ``S16`` digests of their pixels (equal digests: pixel-identical faces)."""
    if len(images) == 0:
        return np.array([], dtype=f"S{DIGEST_BYTES}")
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    return np.array(
        [hashlib.blake2b(row.tobytes(), digest_size=DIGEST_BYTES).digest() for row in flat], dtype=f"S{DIGEST_BYTES}"
    )


def without_copies(data: FaceDataset, reference: FaceDataset) -> FaceDataset:
    """``data`` less its faces that are pixel-identical to a face of ``reference``.

    FER-2013 repeats faces across its splits (280 of PublicTest's 3,589 faces are copies of Training faces); a model
    scores a face it trained on better than a new one, so figures on copies of training faces overstate it.  The
    report's source says how many faces were left out.
    """
    seen = set(image_digests(reference.images).tolist())
    copy = np.array([d in seen for d in image_digests(data.images).tolist()], dtype=bool)
    keep = ~copy
    report = ImportReport(
        source=f"{data.report.source} less {int(copy.sum())} copies of faces in {reference.report.source}",
        loaded=int(keep.sum()),
    )
    report.per_class.update(FER7_CLASSES[int(lbl)] for lbl in data.labels7[keep])
    return data.subset(keep, report)
