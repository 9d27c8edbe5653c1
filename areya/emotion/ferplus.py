"""FER+ votes as training targets and as a second set of test labels.

FER+ (Barsoum et al., ICMI 2016) had ten annotators label every FER-2013 face with one of neutral, happiness,
surprise, sadness, anger, disgust, fear, contempt, "unknown" or "not a face" (NF).  ``ferplus_votes.csv`` (beside
the data directory's ``train/``) holds those counts per file: ``split, file, original_label, ferplus_image`` and the
ten vote columns.  A row is found by its FER-2013 class folder and file name (the class is part of the key: one
Training file name occurs in two class folders, as two different faces).

The vote rule (one rule for training targets and for the FER+ test labels):

* The seven FER+ emotions map one-to-one onto Areya's FER-7 classes (happiness -> happy, sadness -> sad,
  anger -> angry, the others by name).
* Contempt, unknown and NF votes are dropped and the remaining votes renormalised.  Areya has no contempt class,
  and folding those votes into disgust or angry would invent labels the annotators did not give; unknown and NF
  say nothing about which of the seven classes a face shows.
* A face is unusable when fewer than half of its votes fall on the seven classes (most annotators said unknown,
  contempt or not a face: 0.5 % of the faces, including every NF-majority face and the few with no seven-class
  vote).  Its seven-class distribution would rest on a minority of the annotators, so training drops it rather
  than fall back to a FER-2013 label FER+ disputes, and the FER+ test labels leave it out.
* Single votes are kept.  The FER+ paper's code removes them as outliers; here the target is the annotators'
  distribution itself (the "probability" / cross-entropy scheme, the best of the paper's four), which is also what
  the served probabilities should be calibrated against.

Training target of a usable face with votes: ``ferplus_weight * votes + (1 - ferplus_weight) * one-hot(FER-2013
label)``; a face without a FER+ row (FER+ dropped 149 of the 28,709 Training files) keeps its one-hot label.
The 4-class target is the 7-class target restricted to angry / happy / neutral (relaxed) / sad and renormalised,
as ``four_of_seven`` reads the 4-class answer off the 7-class head, for faces whose largest 7-class share is one of
those four (the soft analogue of "the label is in the 4-class scheme"); other faces get an all-zero row and teach
the 4-class head nothing, as disgust / fear / surprise faces do with FER-2013 labels.

The FER+ test label of a face is its *majority*: the class with the most of its seven-class votes when exactly
one class has the most (ties and unusable faces are left out).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from areya.emotion.dataset import FaceDataset, ImportReport
from areya.emotion.schemes import AREYA4_CLASSES, FER7_CLASSES, FER_TO_AREYA4, SCHEME4, SCHEME7

VOTES_FILE = "ferplus_votes.csv"
VOTE_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
FERPLUS_TO_FER7: dict[str, str] = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
}
# vote column of each FER-7 class, in FER-7 order
_SEVEN_COLUMNS = np.array(
    [VOTE_COLUMNS.index(next(f for f, c in FERPLUS_TO_FER7.items() if c == fer)) for fer in FER7_CLASSES],
    dtype=np.int64,
)
# FER-7 column of each 4-class class (the same restriction as evaluate.four_of_seven)
FOUR_COLUMNS = np.array(
    [FER7_CLASSES.index(fer) for a4 in AREYA4_CLASSES for fer, a in FER_TO_AREYA4.items() if a == a4], dtype=np.int64
)
_OTHER_COLUMNS = np.array([i for i in range(SCHEME7.size) if i not in FOUR_COLUMNS], dtype=np.int64)


def default_votes_path(data_dir: str | Path) -> Path:
    """``ferplus_votes.csv`` in the data directory (beside ``train/``), or beside a FER CSV file."""
    data_dir = Path(data_dir)
    return (data_dir.parent if data_dir.is_file() else data_dir) / VOTES_FILE


def votes_beside(folder: str | Path) -> Path | None:
    """``ferplus_votes.csv`` in a class-folder tree (e.g. ``publictest/``) or beside it (the data directory), or
    None when neither holds one."""
    folder = Path(folder)
    return next((p for p in (folder / VOTES_FILE, folder.parent / VOTES_FILE) if p.is_file()), None)


@dataclass(frozen=True)
class FerPlusVotes:
    """Vote counts (M, 10) in :data:`VOTE_COLUMNS` order, keyed by (FER-2013 class, file name)."""

    votes: np.ndarray
    rows: dict[tuple[str, str], int]
    source: str

    @classmethod
    def load(cls, path: str | Path) -> FerPlusVotes:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"FER+ votes not found: {path}")
        votes: list[list[int]] = []
        rows: dict[tuple[str, str], int] = {}
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = ({"file", "original_label"} | set(VOTE_COLUMNS)) - set(reader.fieldnames or [])
            if missing:
                raise ValueError(f"{path}: not a FER+ votes CSV, missing column(s) {', '.join(sorted(missing))}")
            for line, row in enumerate(reader, start=2):
                label = (row["original_label"] or "").strip().lower()
                if label == "relaxed":
                    label = "neutral"
                key = (label, Path(row["file"].strip()).name)
                if label not in FER7_CLASSES:
                    raise ValueError(f"{path}:{line}: unknown original_label {row['original_label']!r}")
                try:
                    counts = [int(row[c]) for c in VOTE_COLUMNS]
                except (TypeError, ValueError):
                    raise ValueError(f"{path}:{line}: vote counts must be integers") from None
                if min(counts) < 0:
                    raise ValueError(f"{path}:{line}: negative vote count")
                if key in rows:
                    if votes[rows[key]] != counts:
                        raise ValueError(f"{path}:{line}: {key[0]}/{key[1]} has two rows with different votes")
                    continue
                rows[key] = len(votes)
                votes.append(counts)
        arr = np.array(votes, dtype=np.int64).reshape(-1, len(VOTE_COLUMNS))
        return cls(arr, rows, str(path))

    def lookup(self, data: FaceDataset) -> tuple[np.ndarray, np.ndarray]:
        """(votes (N, 10), found (N,) bool) for ``data``'s faces by class folder and file name; a face without a
        row gets zero votes and ``found`` False."""
        if data.sources is None:
            raise ValueError(f"{data.report.source}: FER+ votes need each face's file name (a class-folder tree)")
        index = np.array(
            [
                self.rows.get((FER7_CLASSES[int(label)], Path(str(src)).name), -1)
                for label, src in zip(data.labels7, data.sources, strict=True)
            ],
            dtype=np.int64,
        )
        found = index >= 0
        out = np.zeros((len(index), len(VOTE_COLUMNS)), np.int64)
        out[found] = self.votes[index[found]]
        return out, found


def seven_class_votes(votes: np.ndarray) -> np.ndarray:
    """(N, 10) FER+ votes -> (N, 7) votes for the FER-7 classes, in FER-7 order (contempt, unknown, NF dropped)."""
    return np.asarray(votes, np.int64)[:, _SEVEN_COLUMNS]


def usable(votes: np.ndarray) -> np.ndarray:
    """(N,) bool: at least half of a face's votes (and at least one) fall on the seven classes."""
    votes = np.asarray(votes, np.int64)
    seven = seven_class_votes(votes).sum(axis=1)
    return (seven > 0) & (2 * seven >= votes.sum(axis=1))


def vote_distribution(votes: np.ndarray) -> np.ndarray:
    """(N, 10) votes -> (N, 7) float32 distribution over the FER-7 classes; all-zero rows for unusable faces."""
    seven = seven_class_votes(votes).astype(np.float64)
    ok = usable(votes)
    out = np.zeros_like(seven)
    out[ok] = seven[ok] / seven[ok].sum(axis=1, keepdims=True)
    return out.astype(np.float32)


def majority7(votes: np.ndarray) -> np.ndarray:
    """(N,) FER-7 index of each face's FER+ majority (the unique class with the most seven-class votes); -1 when
    the face is unusable or its top classes tie."""
    seven = seven_class_votes(votes)
    top = seven.max(axis=1, keepdims=True)
    unique = (seven == top).sum(axis=1) == 1
    out = np.where(unique & usable(votes), seven.argmax(axis=1), -1)
    return out.astype(np.int64)


def restrict_to_four(dist7: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 7) distributions -> ((N, 4) restricted to angry / happy / neutral / sad and renormalised, (N,) inside):
    ``inside`` where one of those four has the largest share (ties included); rows outside are all zero."""
    dist7 = np.asarray(dist7, np.float64)
    sub = dist7[:, FOUR_COLUMNS]
    inside = (sub.max(axis=1) >= dist7[:, _OTHER_COLUMNS].max(axis=1)) & (sub.sum(axis=1) > 0)
    out = np.zeros_like(sub)
    out[inside] = sub[inside] / sub[inside].sum(axis=1, keepdims=True)
    return out.astype(np.float32), inside


@dataclass
class FerPlusTargets:
    """Per face of a dataset: its 7-class target, whether training keeps it, whether it had a FER+ row."""

    targets7: np.ndarray  # (N, 7) float32 rows summing to 1 (0 where not kept)
    keep: np.ndarray  # (N,) bool
    found: np.ndarray  # (N,) bool

    def summary(self) -> str:
        n = len(self.keep)
        dropped = int((self.found & ~self.keep).sum())
        return (
            f"FER+ vote targets for {int((self.found & self.keep).sum())} of {n} faces; {int((~self.found).sum())} "
            f"without a FER+ row keep their FER-2013 label; {dropped} dropped (under half their votes on the seven "
            "classes)"
        )


def ferplus_targets(labels7: np.ndarray, votes: np.ndarray, found: np.ndarray, weight: float) -> FerPlusTargets:
    """Targets by the module's vote rule: ``weight`` x the vote distribution + (1 - ``weight``) x the one-hot
    FER-2013 label for faces with a usable FER+ row, the one-hot label for faces without a row."""
    if not 0 <= weight <= 1:
        raise ValueError("ferplus_weight must be in [0, 1]")
    labels7 = np.asarray(labels7, np.int64)
    found = np.asarray(found, bool)
    onehot = np.eye(SCHEME7.size, dtype=np.float32)[labels7]
    keep = ~found | usable(votes)
    dist = vote_distribution(votes)
    targets = np.where(found[:, None], weight * dist + (1 - weight) * onehot, onehot)
    targets[~keep] = 0.0
    return FerPlusTargets(targets.astype(np.float32), keep, found)


def dataset_targets(data: FaceDataset, votes: FerPlusVotes, weight: float) -> tuple[FaceDataset, np.ndarray, str]:
    """``data`` less the faces the vote rule drops, the (N_kept, 7) targets of the faces kept
    (:func:`ferplus_targets`), and a line saying how many faces had votes, kept their label or were dropped."""
    counts, found = votes.lookup(data)
    t = ferplus_targets(data.labels7, counts, found, weight)
    report = ImportReport(source=f"{data.report.source} [FER+ votes]", loaded=int(t.keep.sum()))
    kept = data.subset(t.keep, report)
    report.per_class.update(FER7_CLASSES[int(lbl)] for lbl in kept.labels7)
    return kept, t.targets7[t.keep], f"{data.report.source}: {t.summary()}"


def soft_class_weights(targets7: np.ndarray, power: float) -> np.ndarray:
    """Per-class weights (FER order) as :func:`areya.emotion.train.class_weights` gives for hard labels, with each
    face counted by its target distribution: ``(n_c / mean n)^-power`` over the soft counts ``n_c = sum y_c`` of
    the classes present, scaled so the faces' weights ``sum_c y_c w_c`` average 1 (one-hot targets: the same
    weights as ``class_weights``)."""
    targets7 = np.asarray(targets7, np.float64)
    if power == 0 or targets7.shape[0] == 0:
        return np.ones(SCHEME7.size, np.float32)
    counts = targets7.sum(axis=0)
    present = counts > 0
    weights = np.zeros(SCHEME7.size)
    weights[present] = (counts[present] / counts[present].mean()) ** -power
    weights /= (weights * counts).sum() / counts.sum()
    return weights.astype(np.float32)


def soft_training_targets(
    targets7: np.ndarray, smoothing: float, weights7: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Both heads' targets from (N, 7) target distributions, label-smoothed like
    :func:`areya.emotion.train.training_targets`: the 7-class row ``(1 - s) y + s / 7``, scaled by the face's
    class weight ``sum_c y_c w_c`` when ``weights7`` is given (so a face's loss scales, its target's shape does
    not); the 4-class row from :func:`restrict_to_four`, smoothed the same way, all zero outside."""
    from areya.emotion.network import OUTPUT4, OUTPUT7

    targets7 = np.asarray(targets7, np.float32)
    y7 = (1.0 - smoothing) * targets7 + smoothing / SCHEME7.size
    if weights7 is not None:
        y7 *= (targets7 @ np.asarray(weights7, np.float32))[:, None]
    four, inside = restrict_to_four(targets7)
    y4 = np.zeros((len(targets7), SCHEME4.size), np.float32)
    y4[inside] = (1.0 - smoothing) * four[inside] + smoothing / SCHEME4.size
    return {OUTPUT7: y7.astype(np.float32), OUTPUT4: y4}
