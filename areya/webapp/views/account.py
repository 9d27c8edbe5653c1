"""The signed-in user's own account: the e-mail address alert e-mails go to (validated, audited) and the user's own
API tokens (created here only: a token acts for the user who made it; shown once; revocable)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from areya.admin.users import set_user_email
from areya.webapp.forms import Form
from areya.webapp.security import ALL_ROLES, roles
from areya.webapp.services import actor, db, require_user, services
from areya.webapp.tokens import create_token, list_tokens, revoke_token, token_expires_at
from areya.webapp.views.admin.common import run_operation

bp = Blueprint("account", __name__)


def _page(
    form: Form | None = None, token_form: Form | None = None, new_token: str | None = None, status: int = 200
) -> tuple[str, int]:
    user = require_user()
    tokens = list_tokens(db(), user.id)
    max_age = timedelta(days=services().settings.api_token_days)
    return render_template(
        "account.html",
        form=form or Form({"email": user.email or ""}),
        token_form=token_form or Form(),
        tokens=tokens,
        expires={t.id: token_expires_at(t, max_age) for t in tokens},
        new_token=new_token,
    ), status


@bp.route("/account", methods=["GET", "POST"])
@roles(*ALL_ROLES)
def account() -> Response | tuple[str, int]:
    user = require_user()
    if request.method == "GET":
        return _page()
    form = Form(request.form)
    email = form.text("email", "e-mail address", required=False, max_len=254)
    if run_operation(form, lambda: set_user_email(db(), user.username, email, actor=actor()), (), "email") is None:
        return _page(form=form, status=400)
    flash("E-mail address saved." if email else "E-mail address removed.", "success")
    return redirect(url_for("account.account"))


@bp.route("/account/tokens", methods=["POST"])
@roles(*ALL_ROLES)
def token_create() -> Response | tuple[str, int]:
    """A new API token acting for the signed-in user (never for anyone else), shown once."""
    user = require_user()
    form = Form(request.form)
    name = form.text("token_name", "token name", max_len=100)
    created = run_operation(form, lambda: create_token(db(), user, name, actor=actor()), (), "token_name")
    if created is None:
        return _page(token_form=form, status=400)
    return _page(new_token=created[1])


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@roles(*ALL_ROLES)
def token_revoke(token_id: int) -> Response | tuple[str, int]:
    user = require_user()
    form = Form(request.form)
    revoked = run_operation(
        form, lambda: revoke_token(db(), token_id, actor=actor(), owner_id=user.id), (), "token_name"
    )
    if revoked is None:
        return _page(token_form=form, status=404 if "unknown" in next(iter(form.errors.values())) else 409)
    flash("Token revoked.", "success")
    return redirect(url_for("account.account"))
