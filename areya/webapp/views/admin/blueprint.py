"""The admin blueprint and its index page; the sections' views (modules beside this one) register on :data:`bp`."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from areya.db.models import Camera, Patient, User, Ward
from areya.webapp.security import ADMIN, roles
from areya.webapp.services import db

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("")
@roles(*ADMIN)
def index() -> str:
    session = db()
    counts = {
        "wards": session.scalar(select(func.count()).select_from(Ward)) or 0,
        "patients": session.scalar(select(func.count()).select_from(Patient).where(Patient.status == "admitted")) or 0,
        "cameras": session.scalar(select(func.count()).select_from(Camera)) or 0,
        "users": session.scalar(select(func.count()).select_from(User)) or 0,
    }
    return render_template("admin/index.html", counts=counts)
