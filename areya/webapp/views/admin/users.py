"""Admin: users and roles, ward coverage, activation, passwords, API tokens (listed and revoked; each user creates
their own on their account page: a token acts only for the user who made it)."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from areya.admin import add_user, list_users, set_password, set_user_active, set_user_wards
from areya.admin.users import set_user_email, set_user_role
from areya.db.models import ROLES, User, Ward
from areya.webapp.forms import Form
from areya.webapp.security import ADMIN, roles
from areya.webapp.services import actor, db, services
from areya.webapp.tokens import list_tokens, revoke_token, token_expires_at
from areya.webapp.views.admin.blueprint import bp
from areya.webapp.views.admin.common import run_operation

HINTS = (
    ("username", "username"),
    ("e-mail", "email"),
    ("admin", "role"),
    ("user", "username"),
    ("role", "role"),
    ("password", "password"),
    ("ward", "ward_ids"),
    ("token", "token_name"),
)


def _page(
    forms: dict[str, Form] | None = None,
    row_errors: dict[int, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    session = db()
    tokens: dict[int, list] = {}
    max_age = timedelta(days=services().settings.api_token_days)
    expires = {}
    for token in list_tokens(session):
        tokens.setdefault(token.user_id, []).append(token)
        expires[token.id] = token_expires_at(token, max_age)
    return render_template(
        "admin/users.html",
        users=list_users(session),
        wards=list(session.scalars(select(Ward).order_by(Ward.name))),
        roles=ROLES,
        forms=forms or {},
        add=(forms or {}).get("add") or Form(),
        row_errors=row_errors or {},
        tokens=tokens,
        expires=expires,
    ), status


def _user(user_id: int) -> User:
    user = db().get(User, user_id)
    if user is None:
        abort(404, description=f"no user {user_id}")
    return user


def _ward_names(form: Form) -> list[str]:
    ids = [int(v) for v in form.values("ward_ids") if v.isascii() and v.isdigit() and len(v) <= 10]
    wards = list(db().scalars(select(Ward).where(Ward.id.in_(ids)))) if ids else []
    if len(wards) != len(set(ids)):
        form.error("ward_ids", "choose wards from the list")
    return [w.name for w in wards]


def _password(form: Form) -> str:
    password = form.value("password")
    if not password:
        form.error("password", "password is required")
    elif password != form.value("password2"):
        form.error("password2", "the two passwords differ")
    return password


@bp.route("/users", methods=["GET", "POST"])
@roles(*ADMIN)
def users() -> Response | tuple[str, int]:
    if request.method == "GET":
        return _page()
    form = Form(request.form)
    username = form.text("username", "username", max_len=64)
    role = form.choice("role", "role", ROLES)
    password = _password(form)
    wards = _ward_names(form)
    user = run_operation(
        form, lambda: add_user(db(), username, role, password, wards, actor=actor()), HINTS, "username"
    )
    if user is None:
        return _page({"add": form}, status=400)
    flash(f"User {user.username} ({user.role}) added.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/wards", methods=["POST"])
@roles(*ADMIN)
def user_wards(user_id: int) -> Response | tuple[str, int]:
    user = _user(user_id)
    form = Form(request.form)
    wards = _ward_names(form)
    if (
        run_operation(form, lambda: set_user_wards(db(), user.username, wards, actor=actor()), HINTS, "ward_ids")
        is None
    ):
        return _page(row_errors={user.id: next(iter(form.errors.values()))}, status=400)
    flash(f"Wards of {user.username} saved.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/email", methods=["POST"])
@roles(*ADMIN)
def user_email(user_id: int) -> Response | tuple[str, int]:
    user = _user(user_id)
    form = Form(request.form)
    email = form.text("email", "e-mail address", required=False, max_len=254)
    if run_operation(form, lambda: set_user_email(db(), user.username, email, actor=actor()), HINTS, "email") is None:
        return _page(row_errors={user.id: next(iter(form.errors.values()))}, status=400)
    flash(f"E-mail of {user.username} {'saved' if email else 'removed'}.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@roles(*ADMIN)
def user_role(user_id: int) -> Response | tuple[str, int]:
    user = _user(user_id)
    form = Form(request.form)
    role = form.choice("role", "role", ROLES)
    if run_operation(form, lambda: set_user_role(db(), user.username, role, actor=actor()), HINTS, "role") is None:
        return _page(row_errors={user.id: next(iter(form.errors.values()))}, status=400)
    flash(f"{user.username} is now a {role}.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@roles(*ADMIN)
def user_active(user_id: int) -> Response | tuple[str, int]:
    user = _user(user_id)
    form = Form(request.form)
    active = form.value("active") == "1"
    if not active and user.id == g.user.id:
        form.error("active", "you cannot deactivate yourself")
    if (
        run_operation(form, lambda: set_user_active(db(), user.username, active, actor=actor()), HINTS, "active")
        is None
    ):
        return _page(row_errors={user.id: next(iter(form.errors.values()))}, status=400)
    flash(f"User {user.username} {'activated' if active else 'deactivated'}.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@roles(*ADMIN)
def user_password(user_id: int) -> Response | tuple[str, int]:
    user = _user(user_id)
    form = Form(request.form)
    password = _password(form)
    if (
        run_operation(form, lambda: set_password(db(), user.username, password, actor=actor()), HINTS, "password")
        is None
    ):
        return _page(row_errors={user.id: next(iter(form.errors.values()))}, status=400)
    flash(f"Password of {user.username} changed.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@roles(*ADMIN)
def token_revoke(token_id: int) -> Response | tuple[str, int]:
    form = Form(request.form)
    if run_operation(form, lambda: revoke_token(db(), token_id, actor=actor()), HINTS, "token_name") is None:
        return _page(status=404 if "unknown" in next(iter(form.errors.values())) else 409)
    flash("Token revoked.", "success")
    return redirect(url_for("admin.users"))
