"""Helpers shared by the admin pages: run an operation in the request's transaction, map its error to a field."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import flash

from areya.errors import AdminError
from areya.webapp.forms import Form, field_for_message
from areya.webapp.services import db

T = TypeVar("T")


def run_operation(
    form: Form, op: Callable[[], T], hints: Iterable[tuple[str, str]], default_field: str, success: str | None = None
) -> T | None:
    """Run ``op`` and commit; on an AdminError roll everything back and put the message next to its field."""
    if not form.ok:
        return None
    try:
        result = op()
        db().commit()
    except AdminError as exc:
        db().rollback()
        form.error(field_for_message(str(exc), hints, default_field), str(exc))
        return None
    if success:
        flash(success, "success")
    return result


def forms_for(*names: str) -> dict[str, Form]:
    return {name: Form() for name in names}


def only(form: Form, key: str, forms: dict[str, Any]) -> dict[str, Any]:
    """The page's forms with the submitted one in place (to show its values and errors)."""
    out = dict(forms)
    out[key] = form
    return out
