"""Nurse ward view: a tile per bed, updated live over server-sent events (see views/events.py)."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from areya.alerts.rules import RuleParams
from areya.db.models import Ward
from areya.db.types import utcnow
from areya.webapp.access import require_ward
from areya.webapp.security import CLINICAL, roles
from areya.webapp.services import audit, db, services, user_ward_ids
from areya.webapp.tiles import load_tiles

bp = Blueprint("ward", __name__)


@bp.route("/wards")
@roles(*CLINICAL)
def wards() -> Response | str:
    ids = user_ward_ids()
    rows = list(db().scalars(select(Ward).where(Ward.id.in_(ids)).order_by(Ward.name))) if ids else []
    if len(rows) == 1 and g.user.role == "nurse":
        return redirect(url_for("ward.ward_view", ward_id=rows[0].id))
    return render_template("wards.html", wards=rows)


@bp.route("/wards/<int:ward_id>")
@roles(*CLINICAL)
def ward_view(ward_id: int) -> str:
    ward = require_ward(ward_id)
    now = utcnow()
    tiles = load_tiles(
        db(),
        ward.id,
        services().redis,
        now,
        params=RuleParams.from_settings(services().settings),
        tz_name=services().settings.timezone,
    )
    shown = [t.patient_id for t in tiles if t.patient_id is not None]
    audit("ward.view", target=f"ward:{ward.id}", patient_ids=shown, detail={"patients": shown})
    return render_template("ward.html", ward=ward, tiles=tiles, now=now)
