"""Knowledge distillation: a served model (the teacher, e.g. an ensemble with mirror TTA) labels the training
images once, and a single network (the student) learns from a mix of those soft labels and the hard labels.

The teacher's labels are stored per image in an ``.npz`` file, keyed by a digest of the image's pixels, so the
file does not depend on the order the images are read in, and training refuses a file that lacks any of its
images.  Only the training part is looked up: the validation part, on which the student is chosen and
calibrated, never reaches the student through its teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from areya.emotion.dataset import image_digests
from areya.emotion.schemes import SCHEME4, SCHEME7, fer7_to_scheme_labels, four_of_seven


@dataclass(frozen=True)
class TeacherLabels:
    """The teacher's probabilities for a set of faces: ``probs4`` (N, 4) from its 4-class head, ``probs7``
    (N, 7) from its 7-class head (raw: averaged over members and TTA, not calibrated), ``digests`` (N,)."""

    digests: np.ndarray
    probs4: np.ndarray
    probs7: np.ndarray
    teacher: str

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:  # np.savez would append .npz to a name without it
            np.savez_compressed(
                fh, digests=self.digests, probs4=self.probs4, probs7=self.probs7, teacher=np.array(self.teacher)
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> TeacherLabels:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"teacher labels not found: {path} (write them with `areya models "
                "teacher-labels MODEL_DIR --data DIR --out FILE`)"
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                labels = cls(
                    data["digests"],
                    data["probs4"].astype(np.float32),
                    data["probs7"].astype(np.float32),
                    str(data["teacher"]),
                )
        except (KeyError, ValueError, OSError) as exc:
            raise ValueError(f"{path}: not a teacher-labels file ({exc})") from None
        n = labels.digests.shape[0]
        if labels.probs4.shape != (n, SCHEME4.size) or labels.probs7.shape != (n, SCHEME7.size):
            raise ValueError(
                f"{path}: expected ({n}, 4) and ({n}, 7) probabilities, got {labels.probs4.shape} "
                f"and {labels.probs7.shape}"
            )
        return labels

    def lookup(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The teacher's (probs4, probs7) for each of ``images``; ValueError when any image is not in the file."""
        index = {d: i for i, d in enumerate(self.digests.tolist())}
        rows = np.array([index.get(d, -1) for d in image_digests(images).tolist()], dtype=np.int64)
        missing = int((rows < 0).sum())
        if missing:
            raise ValueError(
                f"the teacher labels ({self.teacher}) lack {missing} of the {len(rows)} training "
                "images: write them again from the same data"
            )
        return self.probs4[rows], self.probs7[rows]


def label_with_teacher(classifier, images: np.ndarray, teacher: str, batch: int = 512, report=None) -> TeacherLabels:
    """Run ``classifier`` (an :class:`~areya.emotion.inference.EmotionClassifier`, as served: its members and
    TTA, before calibration) over (N, 48, 48) uint8 ``images``."""
    p4, p7 = [], []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch].astype(np.float32)[..., None]
        a4, a7 = classifier.predict_raw(chunk)
        p4.append(a4)
        p7.append(a7)
        if report is not None:
            report(min(start + batch, len(images)), len(images))
    empty4, empty7 = np.zeros((0, SCHEME4.size), np.float32), np.zeros((0, SCHEME7.size), np.float32)
    return TeacherLabels(
        image_digests(images), np.concatenate(p4) if p4 else empty4, np.concatenate(p7) if p7 else empty7, teacher
    )


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` row-wise: T > 1 flattens the teacher's answer, T = 1 keeps it."""
    logp = np.log(np.clip(probs.astype(np.float64), 1e-8, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    out = np.exp(logp)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def distilled_targets(
    targets: dict[str, np.ndarray], labels7: np.ndarray, teacher7: np.ndarray, weight: float, temperature: float
) -> dict[str, np.ndarray]:
    """Mix the hard ``targets`` (:func:`areya.emotion.train.training_targets`, unweighted) with the teacher's
    softened probabilities: ``(1 - weight) * hard + weight * teacher``.

    The 7-class row mixes with the teacher's 7-class answer.  The 4-class row stays all zero for faces outside
    the 4-class scheme (that head does not learn from them) and otherwise mixes with the teacher's 7-class answer
    restricted to angry / happy / neutral / sad, which is the 4-class answer Areya serves by default.
    """
    from areya.emotion.network import OUTPUT4, OUTPUT7

    if not 0 <= weight <= 1:
        raise ValueError("distillation weight must be in [0, 1]")
    y7 = (1 - weight) * targets[OUTPUT7] + weight * soften(teacher7, temperature)
    inside = (fer7_to_scheme_labels(labels7, SCHEME4) >= 0)[:, None]
    teacher_four = soften(four_of_seven(teacher7), temperature)
    y4 = np.where(inside, (1 - weight) * targets[OUTPUT4] + weight * teacher_four, 0.0)
    return {OUTPUT7: y7.astype(np.float32), OUTPUT4: y4.astype(np.float32)}
