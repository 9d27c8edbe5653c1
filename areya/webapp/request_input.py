"""Request bodies the handlers can trust: JSON that is too deeply nested or carries text that is not valid Unicode
(a lone surrogate such as ``"\\ud800"``) is refused with 400 and a message, not a 500 further down."""

from __future__ import annotations

from typing import Any

from flask import Request
from werkzeug.exceptions import BadRequest

MAX_JSON_DEPTH = 32


def check_json_value(value: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise BadRequest if ``value`` nests deeper than ``max_depth`` or holds a string with a lone surrogate."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest(
                    "JSON text must be valid Unicode (lone surrogate escapes such as \\ud800 are refused)"
                ) from None
            continue
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise BadRequest(f"JSON is nested deeper than {max_depth} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


class AreyaRequest(Request):
    """Flask's request with checked JSON (see the module docstring)."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            data = super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            raise BadRequest(f"JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
        check_json_value(data)
        return data
