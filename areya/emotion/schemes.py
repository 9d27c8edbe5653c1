"""The emotion class schemes: the one definition used everywhere in Areya.

FER-2013 labels faces with seven classes in a fixed order.  Areya's alert
scheme keeps four of them; "relaxed" is FER's "neutral".  Disgust, fear and
surprise faces are not part of the 4-class scheme at all (not used for its
training nor for its test figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FER7_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
AREYA4_CLASSES: tuple[str, ...] = ("angry", "happy", "relaxed", "sad")

# FER class name -> 4-class name (absent: not part of the 4-class scheme).
FER_TO_AREYA4: dict[str, str] = {"angry": "angry", "happy": "happy", "neutral": "relaxed", "sad": "sad"}

NEGATIVE_4: frozenset[str] = frozenset({"angry", "sad"})


@dataclass(frozen=True)
class Scheme:
    """A labelling scheme: its name, its classes in output order."""

    name: str
    classes: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.classes)

    def index(self, class_name: str) -> int:
        return self.classes.index(class_name)


SCHEME7 = Scheme("7", FER7_CLASSES)
SCHEME4 = Scheme("4", AREYA4_CLASSES)
SCHEMES: dict[str, Scheme] = {"7": SCHEME7, "4": SCHEME4}


def get_scheme(name: str | int) -> Scheme:
    key = str(name)
    if key not in SCHEMES:
        raise ValueError(f"unknown scheme {name!r}: expected one of {', '.join(SCHEMES)}")
    return SCHEMES[key]


# Index maps, for vectorised relabelling of FER-7 label arrays.
FER7_TO_4_INDEX: np.ndarray = np.array(
    [AREYA4_CLASSES.index(FER_TO_AREYA4[c]) if c in FER_TO_AREYA4 else -1 for c in FER7_CLASSES],
    dtype=np.int64,
)


def fer7_to_scheme_labels(labels7: np.ndarray, scheme: Scheme) -> np.ndarray:
    """Map FER-7 integer labels to ``scheme``'s labels; -1 marks images outside the scheme."""
    labels7 = np.asarray(labels7, dtype=np.int64)
    if scheme is SCHEME7 or scheme.name == "7":
        return labels7.copy()
    return FER7_TO_4_INDEX[labels7]


def folder_to_fer7(folder: str) -> int | None:
    """Class-folder name (FER names, or Areya's 'relaxed') -> FER-7 index, or None if unknown."""
    name = folder.strip().lower()
    if name == "relaxed":
        name = "neutral"
    if name in FER7_CLASSES:
        return FER7_CLASSES.index(name)
    return None


# FER-7 column of each 4-class class, to read 4-of-7 probabilities off the 7-class head.
FOUR_OF_SEVEN_COLUMNS = [
    FER7_CLASSES.index(fer) for a4 in SCHEME4.classes for fer, a in FER_TO_AREYA4.items() if a == a4
]


def four_of_seven(probs7: np.ndarray) -> np.ndarray:
    """7-class probabilities -> 4-class ones, renormalised over angry/happy/neutral/sad."""
    sub = np.asarray(probs7)[:, FOUR_OF_SEVEN_COLUMNS]
    return sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
