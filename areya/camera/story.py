"""A ward story: which emotion each bed's patient shows, phase by phase, read from a small TOML file.

The demo ward's default story is ``areya/demo/story.toml`` (copy it, edit it, ``areya demo --story FILE``)::

    duration_s = 900        # then the story starts again
    face_change_s = 30      # a new face of the same emotion every N seconds (0: one face per phase)
    faces = "agreeing"      # demo pack: only faces the shipped model labels as their class ("any": all)
    [alerts]                # rule settings for the demo ward (a ward rule override; see `areya alerts override`)
    negative_window_s = 60
    [[bed]]
    patient = "Ada Lovelace"
    phases = [{ at = 0, emotion = "relaxed" }, { at = 20, emotion = "sad" }]

Emotions are Areya's (angry, happy, relaxed, sad) or FER-2013's names; ``none`` is an empty bed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from areya.camera.scenario import Scenario, Segment
from areya.emotion.schemes import FER7_CLASSES, folder_to_fer7

DEFAULT_STORY = Path(__file__).resolve().parent.parent / "demo" / "story.toml"
FACE_POLICIES = ("agreeing", "any")


class StoryError(ValueError):
    """The story file is malformed (the message names the file and the entry)."""


@dataclass(frozen=True)
class Phase:
    at: float
    emotion: str | None  # FER-7 name; None = empty bed


@dataclass(frozen=True)
class BedStory:
    patient: str
    phases: tuple[Phase, ...]

    def emotion_at(self, t: float) -> str | None:
        current = None
        for phase in self.phases:
            if phase.at <= t:
                current = phase.emotion
        return current


@dataclass(frozen=True)
class Story:
    beds: tuple[BedStory, ...]
    duration_s: float = 900.0
    face_change_s: float = 30.0
    faces: str = "agreeing"
    alerts: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def scenario(self) -> Scenario:
        """The synthetic ward's scenario: each phase cut into ``face_change_s`` pieces (a face each)."""
        segments: list[Segment] = []
        for index, bed in enumerate(self.beds):
            for k, phase in enumerate(bed.phases):
                end = bed.phases[k + 1].at if k + 1 < len(bed.phases) else self.duration_s
                start = phase.at
                while start < end:
                    stop = min(end, start + self.face_change_s) if self.face_change_s > 0 else end
                    segments.append(Segment(index, start, stop, phase.emotion))
                    start = stop
        return Scenario(beds=len(self.beds), segments=segments, duration=self.duration_s)


def _emotion(value: Any, where: str) -> str | None:
    if isinstance(value, str) and value.strip().lower() in ("none", "empty", ""):
        return None
    index = folder_to_fer7(value) if isinstance(value, str) else None
    if index is None:
        raise StoryError(
            f"{where}: unknown emotion {value!r} (angry, happy, relaxed, sad, "
            f"{', '.join(c for c in FER7_CLASSES if c not in ('angry', 'happy', 'sad'))} or none)"
        )
    return FER7_CLASSES[index]


def _number(table: dict[str, Any], key: str, default: float, where: str, *, minimum: float = 0.0) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise StoryError(f"{where}: {key} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def parse_story(data: dict[str, Any], where: str = "story") -> Story:
    duration = _number(data, "duration_s", 900.0, where, minimum=1.0)
    face_change = _number(data, "face_change_s", 30.0, where)
    faces = data.get("faces", "agreeing")
    if faces not in FACE_POLICIES:
        raise StoryError(f"{where}: faces must be one of {', '.join(FACE_POLICIES)}, got {faces!r}")
    alerts = data.get("alerts", {})
    if not isinstance(alerts, dict):
        raise StoryError(f"{where}: [alerts] must be a table")
    raw_beds = data.get("bed")
    if not isinstance(raw_beds, list) or not 1 <= len(raw_beds) <= 12:
        raise StoryError(f"{where}: needs 1 to 12 [[bed]] entries")
    beds = []
    for n, raw in enumerate(raw_beds, start=1):
        bed_where = f"{where}: bed {n}"
        if not isinstance(raw, dict) or not isinstance(raw.get("phases"), list) or not raw["phases"]:
            raise StoryError(f'{bed_where}: needs phases = [{{ at = 0, emotion = "happy" }}, ...]')
        phases = []
        for phase in raw["phases"]:
            if not isinstance(phase, dict):
                raise StoryError(f"{bed_where}: a phase must be {{ at = SECONDS, emotion = NAME }}")
            phases.append(Phase(_number(phase, "at", 0.0, bed_where), _emotion(phase.get("emotion"), bed_where)))
        if phases[0].at != 0 or any(b.at <= a.at for a, b in zip(phases, phases[1:], strict=False)):
            raise StoryError(f"{bed_where}: phases must start at 0 and go forward in time")
        if phases[-1].at >= duration:
            raise StoryError(f"{bed_where}: a phase starts after duration_s ({duration:g})")
        patient = str(raw.get("patient") or f"Demo patient {n}").strip()
        beds.append(BedStory(patient, tuple(phases)))
    return Story(tuple(beds), duration, face_change, faces, dict(alerts))


def load_story(path: str | Path | None = None) -> Story:
    """The story in ``path`` (default: the demo ward's, shipped with Areya)."""
    target = Path(path).expanduser() if path else DEFAULT_STORY
    try:
        data = tomllib.loads(target.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StoryError(f"story file {target}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise StoryError(f"story file {target}: {exc}") from None
    story = parse_story(data, where=f"story file {target}")
    return Story(story.beds, story.duration_s, story.face_change_s, story.faces, story.alerts, target.resolve())
