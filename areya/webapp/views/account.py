"""The signed-in user's own account: the e-mail address alert e-mails go to (validated, audited)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from areya.admin.users import set_user_email
from areya.webapp.forms import Form
from areya.webapp.security import ALL_ROLES, roles
from areya.webapp.services import actor, db, require_user
from areya.webapp.views.admin.common import run_operation

bp = Blueprint("account", __name__)


@bp.route("/account", methods=["GET", "POST"])
@roles(*ALL_ROLES)
def account() -> Response | tuple[str, int]:
    user = require_user()
    if request.method == "GET":
        return render_template("account.html", form=Form({"email": user.email or ""})), 200
    form = Form(request.form)
    email = form.text("email", "e-mail address", required=False, max_len=254)
    if run_operation(form, lambda: set_user_email(db(), user.username, email, actor=actor()), (), "email") is None:
        return render_template("account.html", form=form), 400
    flash("E-mail address saved." if email else "E-mail address removed.", "success")
    return redirect(url_for("account.account"))
