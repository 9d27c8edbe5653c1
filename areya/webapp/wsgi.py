"""WSGI entry point for production servers: ``gunicorn -k gthread --threads 32 -w 2 'areya.webapp.wsgi:app'``
(threads, because every open live view holds one server-sent-events connection).
Settings come from AREYA_* variables / AREYA_CONFIG."""

from __future__ import annotations

import atexit

from areya.private_files import restrict_umask

restrict_umask()  # before anything is created in the data dir (DB, WAL, secret key, Redis socket)

from areya.comms.redis_server import stop_owned_servers  # noqa: E402
from areya.config import load_settings  # noqa: E402
from areya.webapp import create_app  # noqa: E402

app = create_app(load_settings())
atexit.register(stop_owned_servers)  # an embedded Redis: this worker's lease ends with it (the last user stops it)
