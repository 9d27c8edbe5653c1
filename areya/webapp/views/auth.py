"""Login and logout (argon2 verification in areya.admin.users; attempts limited per username and per client IP;
server-side sessions in areya.admin.sessions: logout ends the session, not just the cookie)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from areya.admin.sessions import end_session, start_session
from areya.admin.users import find_login, note_login, verify_login
from areya.audit import Actor, record
from areya.db.engine import run_write
from areya.webapp.forms import Form
from areya.webapp.security import ALL_ROLES, csrf_token, public, roles
from areya.webapp.services import db, security_audit, services
from areya.webapp.session_keys import SESSION_ID_KEY

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths (no scheme, no host, no '//' tricks)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def home_for(role: str) -> str:
    if role == "admin":
        return url_for("admin.index")
    if role == "doctor":
        return url_for("alerts.inbox")
    return url_for("ward.station")  # a nurse: every bed she covers, ordered by need


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | str | tuple[str, int]:
    if g.get("user") is not None and request.method == "GET":
        return redirect(home_for(g.user.role))
    form = Form(request.form if request.method == "POST" else {"next": request.args.get("next", "")})
    if request.method == "GET":
        csrf_token()
        return render_template("login.html", form=form)
    username = form.text("username", "username", max_len=64).lower()
    password = form.value("password")
    if not password:
        form.error("password", "password is required")
    if not form.ok:
        return render_template("login.html", form=form), 400
    limiter = services().limiter
    ip = request.remote_addr or "?"
    anonymous = Actor(None, "web:anonymous")
    wait = limiter.reserve(ip, username)  # counted before the password check: parallel guesses are limited too
    if wait:
        security_audit("auth.login_rate_limited", anonymous, detail={"username": username, "ip": ip})
        form.error("username", f"too many failed logins: try again in {wait} s")
        return render_template("login.html", form=form), 429
    candidate = find_login(db(), username)
    db().commit()  # no transaction (nor connection) held during the slow password check
    if candidate is None or not verify_login(candidate, password[:1024]):
        security_audit("auth.login_failed", anonymous, detail={"username": username, "ip": ip})
        form.error("password", "unknown username or wrong password")
        return render_template("login.html", form=form), 401
    limiter.succeeded(ip, username)

    previous = session.get(SESSION_ID_KEY)  # a login over an existing one replaces it
    idle_minutes = services().settings.session_idle_minutes
    idle = timedelta(minutes=idle_minutes) if idle_minutes else None

    def note(dbs: Session) -> tuple[str, str]:
        user = note_login(dbs, candidate.user_id, password[:1024])
        end_session(dbs, previous)
        session_id = start_session(dbs, user.id, idle=idle)
        record(dbs, Actor(user.id, f"web:{user.username}"), "auth.login", target=f"user:{user.id}", detail={"ip": ip})
        return session_id, user.role

    session_id, role = run_write(services().sessions, note)  # the session and audit rows commit with the login
    session.clear()  # no session fixation: a fresh session (and CSRF token) after login
    session.permanent = True
    session[SESSION_ID_KEY] = session_id
    csrf_token()
    return redirect(_safe_next(form.value("next")) or home_for(role))


@bp.route("/logout", methods=["POST"])
@roles(*ALL_ROLES)
def logout() -> Response:
    user = g.user
    end_session(db(), session.get(SESSION_ID_KEY))  # a copy of the cookie is worthless from now on
    record(db(), Actor(user.id, f"web:{user.username}"), "auth.logout", target=f"user:{user.id}")
    db().commit()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/")
@roles(*ALL_ROLES)
def index() -> Response:
    return redirect(home_for(g.user.role))
