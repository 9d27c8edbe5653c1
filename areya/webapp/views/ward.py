"""Nurse views: the central station (every bed of every ward the user covers, ordered by need) and one ward's
tiles, both updated live over server-sent events (see views/events.py)."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from areya.alerts.rules import RuleParams
from areya.db.models import Ward
from areya.db.types import utcnow
from areya.webapp.access import require_ward
from areya.webapp.bed_state import GROUPS
from areya.webapp.security import CLINICAL, roles
from areya.webapp.services import audit, db, services, user_ward_ids
from areya.webapp.tiles import Tile, load_station, load_tiles

bp = Blueprint("ward", __name__)


@bp.route("/wards")
@roles(*CLINICAL)
def wards() -> Response | str:
    ids = user_ward_ids()
    rows = list(db().scalars(select(Ward).where(Ward.id.in_(ids)).order_by(Ward.name))) if ids else []
    if len(rows) == 1 and g.user.role == "nurse":
        return redirect(url_for("ward.ward_view", ward_id=rows[0].id))
    return render_template("wards.html", wards=rows)


def ward_counts(wards: list[Ward], tiles: list[Tile]) -> list[dict[str, object]]:
    """Per ward: its id, name and how many beds are in each state group (needs attention, still low mood, not
    monitored, calm, empty)."""
    out = []
    for ward in wards:
        counts = {key: 0 for key, _ in GROUPS}
        for tile in tiles:
            if tile.ward_id == ward.id and tile.state is not None:
                counts[tile.state.key] += 1
        out.append({"id": ward.id, "name": ward.name, "counts": counts})
    return out


@bp.route("/station")
@roles(*CLINICAL)
def station() -> str:
    """The central station: every bed of every ward the user may see, on one screen, ordered by need."""
    ids = user_ward_ids()
    wards = list(db().scalars(select(Ward).where(Ward.id.in_(ids)).order_by(Ward.name))) if ids else []
    now = utcnow()
    tiles = load_station(
        db(),
        [w.id for w in wards],
        services().redis,
        now,
        params=RuleParams.from_settings(services().settings),
        tz_name=services().settings.timezone,
    )
    shown = [t.patient_id for t in tiles if t.patient_id is not None]
    audit("station.view", target="station", patient_ids=shown, detail={"patients": shown})
    return render_template(
        "station.html", wards=wards, counts=ward_counts(wards, tiles), groups=GROUPS, tiles=tiles, now=now
    )


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
