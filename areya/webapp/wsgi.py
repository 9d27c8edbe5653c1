"""WSGI entry point for production servers: ``gunicorn -k gthread --threads 32 -w 2 'areya.webapp.wsgi:app'``
(threads, because every open live view holds one server-sent-events connection).
Settings come from AREYA_* variables / AREYA_CONFIG."""

from __future__ import annotations

from areya.config import load_settings
from areya.webapp import create_app

app = create_app(load_settings())
