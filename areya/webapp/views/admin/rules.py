"""Admin: alert rule thresholds per ward (RuleOverride rows; blank = the global setting)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from areya.db.models import RuleOverride, Ward
from areya.errors import AdminError
from areya.webapp.forms import Form
from areya.webapp.security import ADMIN, roles
from areya.webapp.services import actor, db, services
from areya.webapp.views.admin.blueprint import bp

FIELDS: tuple[tuple[str, str], ...] = (
    ("negative_window_s", "Window (s)"),
    ("negative_min_obs", "Min observations"),
    ("negative_open_share", "Open share (0-1)"),
    ("negative_close_share", "Close share (0-1)"),
    ("resolve_period_s", "Resolve after (s)"),
    ("escalate_after_s", "Escalate after (s, 0 = never)"),
)


def _overrides() -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for row in db().scalars(select(RuleOverride).where(RuleOverride.ward_id.is_not(None)).order_by(RuleOverride.id)):
        out.setdefault(row.ward_id or 0, {}).update(row.settings or {})
    return out


def _page(forms: dict[int, Form] | None = None, status: int = 200) -> tuple[str, int]:
    settings = services().settings
    defaults = {key: getattr(settings, key) for key, _ in FIELDS}
    overrides = _overrides()
    wards = list(db().scalars(select(Ward).order_by(Ward.name)))
    page_forms = {w.id: Form({k: str(v) for k, v in overrides.get(w.id, {}).items()}) for w in wards}
    page_forms.update(forms or {})
    return render_template(
        "admin/rules.html", wards=wards, fields=FIELDS, defaults=defaults, forms=page_forms, overrides=overrides
    ), status


@bp.route("/rules")
@roles(*ADMIN)
def rules() -> tuple[str, int]:
    return _page()


@bp.route("/rules/<int:ward_id>", methods=["POST"])
@roles(*ADMIN)
def rules_save(ward_id: int) -> Response | tuple[str, int]:
    from areya.alerts.overrides import clear_rule_override, parse_override_values, set_rule_override
    from areya.alerts.rules import RuleParams

    ward = db().get(Ward, ward_id)
    if ward is None:
        abort(404, description=f"no ward {ward_id}")
    form = Form(request.form)
    values: dict[str, str] = {}
    for key, label in FIELDS:
        raw = form.text(key, label, required=False, max_len=32)
        if raw:
            try:
                parse_override_values({key: raw})
                values[key] = raw
            except AdminError as exc:
                form.error(key, str(exc).split(": ", 1)[-1])
    blank = [key for key, _ in FIELDS if key not in values]
    if form.ok:
        session = db()
        try:
            if blank and _overrides().get(ward.id):
                clear_rule_override(session, ward_id=ward.id, keys=blank, actor=actor())
            if values:
                set_rule_override(
                    session, values, ward_id=ward.id, base=RuleParams.from_settings(services().settings), actor=actor()
                )
            session.commit()
        except AdminError as exc:
            session.rollback()
            message = str(exc)
            field = "negative_close_share" if "share" in message else FIELDS[0][0]
            form.error(field, message)
    if not form.ok:
        return _page({ward.id: form}, 400)
    flash(f"Rule thresholds of ward {ward.name} saved.", "success")
    return redirect(url_for("admin.rules"))
