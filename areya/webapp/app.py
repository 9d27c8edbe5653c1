"""The Flask application factory."""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app, g, jsonify, make_response, redirect, render_template, request, session, url_for
from flask.globals import request_ctx
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response

from areya.admin.sessions import SESSION_LIFETIME, keep_alive, session_user
from areya.config import Settings, load_settings
from areya.db.engine import begin_write, create_db_engine, create_session_factory
from areya.webapp.access import MAX_ID
from areya.webapp.live_limits import StreamSlots
from areya.webapp.paths import web_dir
from areya.webapp.request_input import AreyaRequest
from areya.webapp.security import (
    PUBLIC_ATTR,
    ROLES_ATTR,
    UNSAFE_METHODS,
    LoginLimiter,
    add_security_headers,
    check_csrf,
    csrf_token,
)
from areya.webapp.services import EXTENSION, WebServices, actor, close_db, db, security_audit, services
from areya.webapp.session_keys import SESSION_ID_KEY

log = logging.getLogger(__name__)
JSON_PREFIXES = ("/api/", "/events", "/fhir/")


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
    app.request_class = AreyaRequest  # malformed JSON bodies are a 400 with a message, never a 500
    secret = settings.secret_key or secrets.token_urlsafe(48)
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="areya_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
        TEMPLATES_AUTO_RELOAD=False,
    )
    if settings.trusted_proxies:  # only then is X-Forwarded-For the client's address (login limits, audit)
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=0, x_port=0, x_prefix=0)  # type: ignore[method-assign]
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
    from areya.webapp.views import account, admin, alerts, api, auth, events, fhir, ops, patients, ward

    app.url_map.converters["int"] = BoundedIntConverter

    for module in (auth, ward, alerts, patients, admin, api, fhir, ops, events, account):
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
    """The user of the cookie's server-side session: a logged-out, expired or ended session (password change,
    deactivation) is anonymous, whatever the signed cookie still says."""
    g.user = None
    session_id = session.get(SESSION_ID_KEY)
    if session_id is None:
        if "uid" in session:  # a cookie from before server-side sessions: log in again
            session.clear()
        return
    user = session_user(db(), session_id)
    if user is None:
        session.clear()
        return
    g.user = user
    g.session_id = session_id
    # a request the user made keeps the session alive (idle timeout); a live view's stream does not, so a ward PC
    # left showing the ward view logs out after session_idle_minutes
    if request.endpoint != "events.stream":
        idle = services().settings.session_idle_minutes
        if keep_alive(db(), session_id, idle=timedelta(minutes=idle) if idle else None):
            db().commit()


def _install_hooks(app: Flask) -> None:
    @app.before_request
    def authenticate() -> Response | None:
        if request_ctx.url_adapter is None:  # a Host header werkzeug cannot bind (2,000 characters, bad IDNA)
            return _plain_error(400, "bad request: malformed Host header")
        if _token_path(request.path) or request.path == "/metrics":
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
    app.after_request(_audit_token_use)
    app.after_request(_audit_refusal)  # runs before _audit_token_use (after_request runs in reverse order)
    app.teardown_appcontext(close_db)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        _rollback()
        if exc.code == 403:
            g.refusal = exc.description or ""
        return _error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        _rollback()  # the error page must not meet the failed transaction (PendingRollbackError)
        return _error_response(500, "internal error: the problem was logged")


def _token_path(path: str) -> bool:
    """A URL of the token-authenticated APIs (the api and fhir blueprints), routed or not: an unknown /api or /fhir
    URL belongs to no blueprint, yet a valid token must get the routing error (404 / 405), not the login's 401."""
    return any(path == prefix or path.startswith(f"{prefix}/") for prefix in ("/api", "/fhir"))


def _audit_refusal(response: Response) -> Response:
    """A 403 (a role, ward or alert policy refused the request) leaves an ``access.denied`` audit row: who, what,
    and why, in a transaction of its own (the request's uncommitted work, and its write lock, go first)."""
    user = g.get("user")
    if response.status_code == 403 and user is not None:
        _rollback()
        reason = g.get("refusal") or ""
        if not reason and response.is_json:
            reason = str((response.get_json(silent=True) or {}).get("error") or "")
        security_audit(
            "access.denied",
            actor(),
            target=request.path[:200],
            detail={"method": request.method, "status": 403, "reason": reason[:300]},
        )
        g.audited = True  # the refusal is the token request's audit row too
    return response


def _audit_token_use(response: Response) -> Response:
    """Every API request made with a token leaves an audit row naming the token (and who issued it): the view's
    own row if it wrote one, else an ``api.request`` row written here (Prometheus scrapes of /metrics excepted:
    no patient data, and a row every 15 s would drown the log)."""
    by = g.get("token_actor")
    if by is not None and not g.get("audited") and request.path != "/metrics":
        _rollback()  # what the view left uncommitted (a refused request) goes; and its write lock with it
        security_audit(
            "api.request",
            by,
            target=request.path[:200],
            detail={"method": request.method, "status": response.status_code},
        )
    return response


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


def _plain_error(code: int, message: str) -> Response:
    """An error answer that needs no URL building nor template (the request could not be bound to a URL)."""
    if _wants_json():
        response = Response(json.dumps({"error": message, "status": code}), status=code, mimetype="application/json")
    else:
        response = Response(message + "\n", status=code, mimetype="text/plain")
    return response


def _error_response(code: int, message: str) -> Response:
    if request_ctx.url_adapter is None:  # no URLs can be built (malformed Host): the page would fail in turn
        return _plain_error(code, message)
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
        ago=fmt.ago,
        utc=fmt.utc,
        iso=fmt.iso,
        pct=fmt.pct,
        priority_rank=fmt.priority_rank,
        duration=fmt.duration,
        bed=fmt.bed_name,
    )
    from areya.webapp.people import install_people_helpers

    install_people_helpers(app)  # localtime filter (hospital time zone), who(user_id), alert_policy

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
