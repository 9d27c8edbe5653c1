"""Areya's Flask dashboard: nurse ward view, doctor alert inbox, admin registration, JSON API, ops view.

``create_app(settings)`` builds the application (templates and static files come from the top-level ``web/``
folder, or from ``<prefix>/share/areya/web`` when installed); ``areya web`` serves it, and
``areya.webapp.wsgi:app`` is the WSGI entry point for gunicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(settings: Any = None, **kwargs: Any) -> Flask:
    from areya.webapp.app import create_app as _create_app

    return _create_app(settings, **kwargs)


__all__ = ["create_app"]
