"""Jinja filters: times (in the hospital time zone, setting ``timezone``; relative), percentages, priorities.

Storage and the JSON API stay UTC (``iso``); only what people read is local."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from areya.alerts.priority import PRIORITY_RANK


def utc(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local(value: datetime | None, tz_name: str = "UTC", pattern: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    """``value`` (aware; naive = UTC) in the hospital time zone, with the zone's abbreviation (GMT, BST, ...)."""
    if value is None:
        return "—"
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(zone(tz_name)).strftime(pattern)


def iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value is not None else ""


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        minutes = seconds % 3600 // 60
        return f"{seconds // 3600} h" + (f" {minutes} min" if minutes else "")
    hours = seconds % 86400 // 3600
    return f"{seconds // 86400} d" + (f" {hours} h" if hours else "")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    now = now or datetime.now(UTC)
    return duration((now - value).total_seconds()) + " ago"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def bed_name(label: str | None) -> str:
    """``"1"`` -> ``"Bed 1"``; a label that already says bed (``"Bed 1"``) is kept as it is."""
    text = (label or "").strip()
    return text if text.lower().startswith("bed") else f"Bed {text}"


def priority_rank(value: str | None) -> int:
    """A priority's place in a list, highest first: high 0, medium 1, low 2 (unknown: 3)."""
    return PRIORITY_RANK.get(value or "", len(PRIORITY_RANK))
