"""``areya web``: serve the dashboard (werkzeug's threaded server by default, gunicorn with ``--gunicorn``)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from typing import Any

import click

from areya.cli.context import CliContext


@click.command("web")
@click.option("--host", default=None, help="Bind address (default: web_host setting).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default: web_port setting).")
@click.option(
    "--gunicorn",
    "use_gunicorn",
    is_flag=True,
    help="Run under gunicorn (gthread workers) instead of the built-in threaded server.",
)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="gunicorn workers.")
@click.option(
    "--threads",
    type=click.IntRange(1, 1000),
    default=32,
    show_default=True,
    help="gunicorn threads per worker (each live view holds one).",
)
@click.pass_obj
def web(obj: CliContext, host: str | None, port: int | None, use_gunicorn: bool, workers: int, threads: int) -> None:
    """Serve the Areya dashboard (nurse ward view, doctor alert inbox, admin pages, JSON API, /metrics).

    Create the schema first (`areya db upgrade`) and an admin (`areya user add NAME --role admin`).
    """
    settings = obj.settings
    host = host or settings.web_host
    port = settings.web_port if port is None else port
    if use_gunicorn:
        caps = stream_caps_below(settings, threads)
        if caps:
            click.echo(
                f"dashboard: live views capped at {caps['AREYA_SSE_MAX_STREAMS']} per process, below "
                f"--threads {threads} (sse_max_streams is {settings.sse_max_streams})",
                err=True,
            )
            os.environ.update(caps)
        exe = shutil.which("gunicorn")
        if exe is None:
            raise click.ClickException("gunicorn is not installed: `pip install gunicorn`, or run without --gunicorn")
        if obj.config_file:
            os.environ["AREYA_CONFIG"] = obj.config_file
        argv = [
            exe,
            "-k",
            "gthread",
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "-b",
            f"{host}:{port}",
            "--timeout",
            "120",
            "--access-logfile",
            "-",
            "areya.webapp.wsgi:app",
        ]
        click.echo(f"dashboard: gunicorn on http://{host}:{port}/", err=True)
        sys.stdout.flush()
        os.execv(exe, argv)  # noqa: S606 - replaces this process with gunicorn
    _check_schema(settings)
    from werkzeug.serving import run_simple

    from areya.comms.redis_server import stop_owned_servers
    from areya.webapp import create_app

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        app = create_app(settings)
        click.echo(f"dashboard: http://{host}:{port}/ (development server; use --gunicorn in production)", err=True)
        from areya.webapp.serving import QuietRequestHandler

        run_simple(
            host, port, app, threaded=True, use_reloader=False, use_debugger=False, request_handler=QuietRequestHandler
        )  # no Werkzeug/Python versions in the Server header
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_owned_servers()  # an embedded Redis this process started
        click.echo("dashboard: stopped", err=True)


def stream_caps_below(settings: Any, threads: int) -> dict[str, str]:
    """Environment that lowers the live-view caps below ``threads`` (a quarter of them, at least one, stay free for
    logins and pages); empty when the configured caps already leave them."""
    limit = max(1, threads - max(1, threads // 4))
    if settings.sse_max_streams <= limit:
        return {}
    return {"AREYA_SSE_MAX_STREAMS": str(limit), "AREYA_SSE_MAX_PER_USER": str(min(settings.sse_max_per_user, limit))}


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _check_schema(settings: object) -> None:
    from areya.db.migrate import current_revision, head_revision

    try:
        current, head = current_revision(settings), head_revision(settings)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001
        raise click.ClickException(f"database not reachable: {exc}") from None
    if current != head:
        raise click.ClickException(f"database schema is at {current or 'nothing'}, not {head}: run `areya db upgrade`")
