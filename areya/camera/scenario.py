"""What a synthetic ward camera shows over time: :class:`Scenario`, segments of time per bed, each with an emotion
class or an empty bed.  Plain data, below both the camera (:mod:`areya.camera.synthetic`) and the story files that
describe one (:mod:`areya.camera.story`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """Bed ``bed`` shows a face of class ``emotion`` (FER-7 name; None = empty bed) during [start, end)."""

    bed: int
    start: float
    end: float
    emotion: str | None


@dataclass
class Scenario:
    """Which bed shows which emotion class over time (seconds from the camera's start)."""

    beds: int
    segments: list[Segment]
    duration: float

    def segment_at(self, bed: int, t: float) -> tuple[int, Segment] | None:
        if self.duration > 0:
            t = t % self.duration  # the scenario loops
        for i, seg in enumerate(self.segments):
            if seg.bed == bed and seg.start <= t < seg.end:
                return i, seg
        return None

    def emotion_at(self, bed: int, t: float) -> str | None:
        found = self.segment_at(bed, t)
        return found[1].emotion if found else None

    @classmethod
    def generate(
        cls,
        beds: int,
        classes: tuple[str, ...],
        *,
        duration: float = 120.0,
        segment_s: float = 10.0,
        empty_every: int = 0,
        seed: int = 0,
    ) -> Scenario:
        """Each bed cycles through ``classes`` in a seeded random order, ``segment_s`` seconds each.

        With ``empty_every=k`` every k-th segment of a bed is an empty bed.
        """
        if beds < 1:
            raise ValueError("a ward needs at least one bed")
        if not classes:
            raise ValueError("a scenario needs at least one emotion class")
        if segment_s <= 0 or duration <= 0:
            raise ValueError("segment_s and duration must be positive")
        rng = random.Random(seed)
        segments: list[Segment] = []
        for bed in range(beds):
            order = list(classes)
            rng.shuffle(order)
            t, k = 0.0, 0
            while t < duration:
                end = min(duration, t + segment_s)
                emotion = None if empty_every and (k + 1) % empty_every == 0 else order[k % len(order)]
                segments.append(Segment(bed, t, end, emotion))
                t, k = end, k + 1
        return cls(beds=beds, segments=segments, duration=duration)

    @classmethod
    def constant(cls, emotions: list[str | None], duration: float = 3600.0) -> Scenario:
        """Bed i shows class ``emotions[i]`` the whole time (None: empty)."""
        return cls(
            beds=len(emotions),
            duration=duration,
            segments=[Segment(i, 0.0, duration, e) for i, e in enumerate(emotions)],
        )
