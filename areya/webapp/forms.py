"""Small form handling: typed field parsing with one message per field, shown next to the field."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from werkzeug.datastructures import MultiDict

MAX_TEXT = 2000


def has_control_characters(value: str) -> bool:
    """C0 controls but tab and line breaks (NUL, escape, ...), DEL and the C1 controls: refused in free text
    from forms and the JSON API alike."""
    return any((ord(ch) < 32 and ch not in "\r\n\t") or 0x7F <= ord(ch) <= 0x9F for ch in value)


class Form:
    """Parses submitted fields; each problem is kept as ``errors[field]`` (the first one per field)."""

    def __init__(self, data: Mapping[str, Any] | MultiDict[str, Any] | None = None) -> None:
        self.data: MultiDict[str, Any] = data if isinstance(data, MultiDict) else MultiDict(data or {})
        self.errors: dict[str, str] = {}

    # ----------------------------------------------------------------- state
    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def value(self, name: str, default: str = "") -> str:
        value = self.data.get(name, default)
        return value if isinstance(value, str) else default

    def values(self, name: str) -> list[str]:
        return [v for v in self.data.getlist(name) if isinstance(v, str)]

    # ----------------------------------------------------------------- parsers
    def text(self, name: str, label: str, *, required: bool = True, max_len: int = 200) -> str:
        value = self.value(name).strip()
        if not value:
            if required:
                self.error(name, f"{label} is required")
            return ""
        if len(value) > max_len:
            self.error(name, f"{label} must be at most {max_len} characters")
        elif has_control_characters(value):
            self.error(name, f"{label} must not contain control characters")
        return value

    def integer(
        self, name: str, label: str, *, required: bool = True, lo: int | None = None, hi: int | None = None
    ) -> int | None:
        raw = self.value(name).strip()
        if not raw:
            if required:
                self.error(name, f"{label} is required")
            return None
        if not re.fullmatch(r"[+-]?\d{1,12}", raw):
            self.error(name, f"{label} must be a whole number")
            return None
        value = int(raw)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.error(name, f"{label} must be between {lo} and {hi}")
            return None
        return value

    def number(
        self, name: str, label: str, *, required: bool = True, lo: float | None = None, hi: float | None = None
    ) -> float | None:
        raw = self.value(name).strip()
        if not raw:
            if required:
                self.error(name, f"{label} is required")
            return None
        try:
            value = float(raw)
        except ValueError:
            self.error(name, f"{label} must be a number")
            return None
        if not math.isfinite(value):
            self.error(name, f"{label} must be a finite number")
            return None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.error(name, f"{label} must be between {lo:g} and {hi:g}")
            return None
        return value

    def choice(self, name: str, label: str, options: Sequence[str], *, required: bool = True) -> str:
        value = self.value(name).strip()
        if not value:
            if required:
                self.error(name, f"choose a {label}")
            return ""
        if value not in options:
            self.error(name, f"unknown {label} {value!r}")
            return ""
        return value

    def checkbox(self, name: str) -> bool:
        return self.value(name) in ("1", "on", "true", "yes")


def field_for_message(message: str, hints: Iterable[tuple[str, str]], default: str) -> str:
    """Which form field an operation's error sentence is about (first hint word found in it)."""
    lowered = message.lower()
    for word, name in hints:
        if word in lowered:
            return name
    return default
