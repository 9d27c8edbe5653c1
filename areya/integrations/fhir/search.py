"""FHIR R4 search values: ``date`` with its prefixes and precision ranges, ``_count``, string matching.

A date value stands for the range its precision covers (``2024`` is the whole year, ``2024-01-09`` the day,
``2024-01-09T10:00:00Z`` that second), in UTC when no offset is given. Against a point in time ``t`` the prefixes
mean (R4 3.1.1.4.9, the search range ``[lo, hi)``): ``eq`` lo <= t < hi; ``ne`` not eq; ``lt`` / ``eb`` t < lo;
``le`` t < hi; ``gt`` / ``sa`` t >= hi; ``ge`` t >= lo. A bound past what a timestamp holds (``lt0001-01-01``,
``le9999-12-31T23:59:59-14:00``) is open on that side, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, true

PREFIXES: tuple[str, ...] = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb")
_DATE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


class SearchValueError(ValueError):
    """A search value that does not parse (answered 400 with an OperationOutcome)."""


@dataclass(frozen=True)
class DateParam:
    """One ``date=`` value: its prefix and the UTC range ``[lo, hi)`` its precision covers (None: open)."""

    prefix: str
    lo: datetime | None
    hi: datetime | None

    def condition(self, column: Any) -> ColumnElement[bool]:
        """SQL for a point-in-time ``column`` matching this value."""

        def before(bound: datetime | None) -> ColumnElement[bool]:  # column < bound (None: +inf)
            return true() if bound is None else column < bound

        def from_(bound: datetime | None) -> ColumnElement[bool]:  # column >= bound (None: -inf)
            return true() if bound is None else column >= bound

        below = false() if self.lo is None else column < self.lo
        above = false() if self.hi is None else column >= self.hi
        inside = and_(from_(self.lo), before(self.hi))
        return {
            "eq": inside,
            "ne": not_(inside) if self.lo is not None or self.hi is not None else false(),
            "lt": below,
            "eb": below,
            "le": before(self.hi),
            "gt": above,
            "sa": above,
            "ge": from_(self.lo),
        }[self.prefix]

    def matches(self, when: datetime) -> bool:
        """The same test in Python (for the tests and for values already read)."""
        inside = (self.lo is None or when >= self.lo) and (self.hi is None or when < self.hi)
        below = self.lo is not None and when < self.lo
        above = self.hi is not None and when >= self.hi
        return {
            "eq": inside,
            "ne": not inside,
            "lt": below,
            "eb": below,
            "le": self.hi is None or when < self.hi,
            "gt": above,
            "sa": above,
            "ge": self.lo is None or when >= self.lo,
        }[self.prefix]


def _shift(naive: datetime, offset: timedelta) -> datetime:
    """``naive`` local time at UTC ``offset`` as aware UTC, held to datetime's range (year 1 to 9999)."""
    try:
        return (naive - offset).replace(tzinfo=UTC)
    except OverflowError:
        return (datetime.min if offset > timedelta(0) else datetime.max).replace(tzinfo=UTC)


def parse_date(text: str) -> DateParam:
    """``[prefix]YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|+hh:mm]]]]`` (R4 date / dateTime / instant)."""
    prefix, value = (text[:2], text[2:]) if text[:2] in PREFIXES else ("eq", text)
    match = _DATE.match(value)
    usage = f"date must be [{'|'.join(PREFIXES)}]YYYY[-MM[-DD[Thh:mm[:ss][Z|+hh:mm]]]], got {text[:80]!r}"
    if match is None:
        raise SearchValueError(usage)
    part = {k: v for k, v in match.groupdict().items() if v is not None}
    try:
        start = datetime(
            int(part["year"]),
            int(part.get("month", 1)),
            int(part.get("day", 1)),
            int(part.get("hour", 0)),
            int(part.get("minute", 0)),
            int(part.get("second", 0)),
            int(part.get("fraction", "0").ljust(6, "0")[:6]),
        )
    except ValueError:  # month 13, day 31 of April, hour 24, year 0
        raise SearchValueError(usage) from None
    tz = part.get("tz", "Z")
    offset = timedelta(0)
    if tz != "Z":
        hours, minutes = int(tz[1:3]), int(tz[4:6])
        if hours > 14 or minutes > 59:
            raise SearchValueError(f"a time zone offset is at most 14:00, got {tz!r}")
        offset = timedelta(hours=hours, minutes=minutes) * (1 if tz[0] == "+" else -1)
        timezone(offset)  # valid
    if "fraction" in part:
        width: timedelta | None = timedelta(microseconds=1)
        end: datetime | None = None
    elif "second" in part:
        width = timedelta(seconds=1)
    elif "minute" in part:
        width = timedelta(minutes=1)
    elif "day" in part:
        width = timedelta(days=1)
    else:
        width = None
    try:
        if width is not None:
            end = start + width
        elif "month" in part:
            end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
        else:
            end = start.replace(year=start.year + 1)
    except (OverflowError, ValueError):  # past year 9999
        end = None
    lo = _shift(start, offset)
    hi = _shift(end, offset) if end is not None else None
    return DateParam(prefix, lo, hi)


def date_conditions(texts: list[str], column: Any) -> list[ColumnElement[bool]]:
    """Every ``date`` value as a condition on ``column`` (repeated values: all must hold)."""
    return [parse_date(text).condition(column) for text in texts]


def clamp_count(text: str | None, default: int, cap: int) -> int:
    """``_count``: a non-negative integer, larger ones clamped to ``cap`` (R4: the server may return fewer)."""
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()):  # int("²") fails
        raise SearchValueError(f"_count must be a non-negative integer, got {text[:40]!r}")
    return min(int(text[:12]), cap)


def like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def name_condition(column: Any, value: str) -> ColumnElement[bool]:
    """R4 string search: the name or any of its words starts with ``value``, case-insensitive."""
    pattern = like_escape(value.strip().lower())
    text = func.lower(column)
    return or_(text.like(f"{pattern}%", escape="\\"), text.like(f"% {pattern}%", escape="\\"))


__all__ = [
    "PREFIXES",
    "DateParam",
    "SearchValueError",
    "clamp_count",
    "date_conditions",
    "like_escape",
    "name_condition",
    "parse_date",
]
