"""The Flask application factory."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app, g, jsonify, make_response, redirect, render_template, request, session, url_for
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response

from areya.config import Settings, load_settings
from areya.db.engine import begin_write, create_db_engine, create_session_factory
from areya.db.models import User
from areya.webapp.access import MAX_ID
from areya.webapp.live_limits import StreamSlots
from areya.webapp.paths import web_dir
from areya.webapp.security import (
    PUBLIC_ATTR,
    ROLES_ATTR,
    UNSAFE_METHODS,
    LoginLimiter,
    add_security_headers,
    check_csrf,
    csrf_token,
)
from areya.webapp.services import EXTENSION, WebServices, close_db, db

log = logging.getLogger(__name__)
SESSION_HOURS = 12
JSON_PREFIXES = ("/api/", "/events")


def _connect_redis(settings: Settings) -> Any:
    try:
        from areya.comms.redis_server import connect

        client = connect(settings)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - the dashboard still works without Redis (no live alert events)
        log.warning("dashboard without Redis (%s): no live alert events, login limits kept in memory", exc)
        return None


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    redis_client: Any = "connect",
    sse_max_s: float = 300.0,
    sse_poll_s: float = 2.0,
) -> Flask:
    """The dashboard for ``settings`` (database and Redis from the settings unless given)."""
    settings = settings or load_settings()
    root = web_dir()
    app = Flask(
        "areya.webapp",
        template_folder=str(root / "templates"),
        static_folder=str(root / "static"),
        static_url_path="/static",
    )
    secret = settings.secret_key or secrets.token_urlsafe(48)
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="areya_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
        TEMPLATES_AUTO_RELOAD=False,
    )
    engine = engine or create_db_engine(settings)
    client = _connect_redis(settings) if redis_client == "connect" else redis_client
    count, window = settings.login_rate_limit_pair
    app.extensions[EXTENSION] = WebServices(
        settings=settings,
        engine=engine,
        sessions=create_session_factory(engine),
        redis=client,
        limiter=LoginLimiter(count, window, client),
        streams=StreamSlots(settings.sse_max_streams, settings.sse_max_per_user),
        options={"sse_max_s": sse_max_s, "sse_poll_s": sse_poll_s},
    )
    _register_blueprints(app)
    _install_hooks(app)
    _install_template_helpers(app)
    _check_every_view_guarded(app)
    return app


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` URL parts limited to database id range (a huge number is a 404, not an overflow)."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def _register_blueprints(app: Flask) -> None:
    from areya.webapp.views import admin, alerts, api, auth, events, ops, patients, ward

    app.url_map.converters["int"] = BoundedIntConverter

    for module in (auth, ward, alerts, patients, admin, api, ops, events):
        app.register_blueprint(module.bp)


def _is_public(endpoint: str | None) -> bool:
    if endpoint is None:
        return False
    if endpoint == "static":
        return True
    view = current_app.view_functions.get(endpoint)
    return bool(getattr(view, PUBLIC_ATTR, False))


def _wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES) or request.path == "/metrics"


def _load_session_user() -> None:
    g.user = None
    uid = session.get("uid")
    if not isinstance(uid, int):
        return
    user = db().get(User, uid)
    issued = session.get("at")
    fresh = isinstance(issued, int | float) and (
        datetime.now(UTC).timestamp() - issued < SESSION_HOURS * 3600
    )
    if user is None or not user.active or not fresh or session.get("pwh") != user.password_hash[-16:]:
        session.clear()
        return
    g.user = user


def _install_hooks(app: Flask) -> None:
    @app.before_request
    def authenticate() -> Response | None:
        if request.blueprint == "api" or request.path == "/metrics":
            from areya.webapp.views.api import authenticate_bearer

            if authenticate_bearer():
                _begin_writes()
                return None  # token requests carry no cookie: no CSRF check needed
        _load_session_user()
        if g.user is None and not _is_public(request.endpoint):
            if _wants_json() or request.method != "GET":
                return _error_response(401, "login required")
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        check_csrf()
        _begin_writes()
        return None

    app.after_request(add_security_headers)
    app.teardown_appcontext(close_db)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        _rollback()
        return _error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        _rollback()  # the error page must not meet the failed transaction (PendingRollbackError)
        return _error_response(500, "internal error: the problem was logged")


def _begin_writes() -> None:
    """A state-changing request runs in a write transaction (SQLite: BEGIN IMMEDIATE, waiting its turn for the
    write lock) from here on. Login is the exception: it must not hold one during its slow password check."""
    if request.method in UNSAFE_METHODS and request.endpoint != "auth.login":
        begin_write(db())


def _rollback() -> None:
    session = g.get("db")
    if session is None:
        return
    try:
        session.rollback()
    except Exception:  # noqa: BLE001 - a dead connection: the session is closed at teardown anyway
        log.warning("rollback after an error failed", exc_info=True)


def _error_response(code: int, message: str) -> Response:
    if _wants_json():
        response = jsonify({"error": message, "status": code})
    else:
        response = make_response(render_template("error.html", code=code, message=message), code)
    response.status_code = code
    if code == 401 and request.path.startswith("/api/"):
        response.headers["WWW-Authenticate"] = 'Bearer realm="areya"'
    return response


def _install_template_helpers(app: Flask) -> None:
    from areya.webapp import fmt

    app.jinja_env.globals.update(csrf_token=csrf_token)
    app.jinja_env.filters.update(
        ago=fmt.ago, utc=fmt.utc, iso=fmt.iso, pct=fmt.pct, severity=fmt.severity_label, duration=fmt.duration
    )

    @app.context_processor
    def inject_user() -> dict[str, Any]:
        return {"user": g.get("user"), "now": datetime.now(UTC)}


def _check_every_view_guarded(app: Flask) -> None:
    """Fail at start-up if a view has neither a role requirement nor an explicit public mark."""
    for endpoint, view in app.view_functions.items():
        if endpoint == "static":
            continue
        if not (getattr(view, ROLES_ATTR, None) or getattr(view, PUBLIC_ATTR, False)):
            raise RuntimeError(f"view {endpoint!r} has no @roles(...) or @public mark")
