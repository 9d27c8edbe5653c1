"""Value parsers shared by the configuration (:mod:`areya.config`) and the face detector options
(:mod:`areya.detectors.options`): each takes a raw value (a default, a TOML value or an environment string) and
returns the typed value, raising ``ValueError("<what is wrong>")`` on bad input.

A leaf module (standard library only), so that both import it without importing each other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any


def parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    return value.strip()


def parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise ValueError(f"must be an integer, got {value!r}")


def parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {value!r}")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError(f"must be a number, got {value!r}") from None
    else:
        raise ValueError(f"must be a number, got {value!r}")
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError(f"must be a finite number, got {value!r}")
    return result


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
    raise ValueError(f"must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}")


def parse_str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"must be a JSON list of strings or comma-separated: {exc}") from None
        else:
            return tuple(part.strip() for part in text.split(",") if part.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise ValueError(f"must be a list of strings, got {value!r}")


def non_empty(value: Any) -> str:
    text = parse_str(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        result = parse_int(value)
        if (lo is not None and result < lo) or (hi is not None and result > hi):
            raise ValueError(f"must be an integer in [{_fmt(lo)}, {_fmt(hi)}], got {result}")
        return result

    return parse


def float_range(
    lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False
) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        result = parse_float(value)
        too_low = lo is not None and (result <= lo if lo_open else result < lo)
        too_high = hi is not None and (result >= hi if hi_open else result > hi)
        if too_low or too_high:
            left, right = "(" if lo_open else "[", ")" if hi_open else "]"
            raise ValueError(f"must be a number in {left}{_fmt(lo)}, {_fmt(hi)}{right}, got {result}")
        return result

    return parse


def _fmt(bound: float | None) -> str:
    return "inf" if bound is None else f"{bound:g}"


def choice(*options: str, upper: bool = False) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = parse_str(value)
        text = text.upper() if upper else text
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {value!r}")
        return text

    return parse
