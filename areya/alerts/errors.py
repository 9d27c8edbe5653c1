"""Errors of alert operations (subclasses of :mod:`areya.errors`: the CLI prints them as one line, exit 1)."""

from __future__ import annotations

from areya.errors import AdminError, Conflict, Invalid, NotFound


class Forbidden(AdminError):
    """The user's role or ward coverage does not allow this alert operation."""


__all__ = ["AdminError", "Conflict", "Forbidden", "Invalid", "NotFound"]
