"""The built-in (werkzeug) server without version disclosure: its ``Server`` header says ``areya``, not
``Werkzeug/x.y Python/x.y`` (gunicorn, in production, sends plain ``gunicorn``, without a version)."""

from __future__ import annotations

from werkzeug.serving import WSGIRequestHandler

SERVER_HEADER = "areya"


class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler with a ``Server`` header that names no software versions."""

    def version_string(self) -> str:
        return SERVER_HEADER
