"""Admin: the audit log (who viewed or changed what, when), filterable, paginated."""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import select
from werkzeug.exceptions import BadRequest

from areya.db.models import AuditEvent, Patient, User
from areya.webapp.forms import has_control_characters
from areya.webapp.security import ADMIN, roles
from areya.webapp.services import db
from areya.webapp.views.admin.blueprint import bp

PAGE = 100


@bp.route("/audit")
@roles(*ADMIN)
def audit_log() -> str:
    session = db()
    action = (request.args.get("action") or "").strip()[:64]
    username = (request.args.get("user") or "").strip().lower()[:64]
    patient = (request.args.get("patient") or "").strip()[:64]
    if any(has_control_characters(v) for v in (action, username, patient)):
        raise BadRequest("Audit filters must not contain control characters.")  # PostgreSQL refuses NUL in text
    page_arg = request.args.get("page", "1")
    page = int(page_arg) if page_arg.isascii() and page_arg.isdigit() and 0 < int(page_arg) < 100_000 else 1
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if username:
        query = query.join(User, User.id == AuditEvent.user_id).where(User.username == username)
    if patient:
        query = query.join(Patient, Patient.id == AuditEvent.patient_id).where(Patient.mrn == patient)
    events = list(session.scalars(query.limit(PAGE + 1).offset((page - 1) * PAGE)))
    more = len(events) > PAGE
    events = events[:PAGE]
    users = dict(session.execute(select(User.id, User.username)).all())
    patients = dict(
        session.execute(
            select(Patient.id, Patient.mrn).where(Patient.id.in_({e.patient_id for e in events if e.patient_id}))
        ).all()
    )
    return render_template(
        "admin/audit.html",
        events=events,
        users=users,
        patients=patients,
        page=page,
        more=more,
        filters={"action": action, "user": username, "patient": patient},
    )
