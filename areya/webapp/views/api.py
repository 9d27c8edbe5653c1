"""JSON API for integrations: bearer-token auth (tokens per user, hashed), the same roles and ward scoping as the
pages, audited; described by the OpenAPI document at ``/api/openapi.json``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, g, jsonify, request
from sqlalchemy import select
from werkzeug.wrappers import Response

from areya.alerts.priority import condition_of
from areya.alerts.rules import RuleParams
from areya.db.models import ALERT_OPEN_STATES, FINDINGS, Alert, AlertEvent, Bed, BedAssignment, Patient, Ward
from areya.db.types import utcnow
from areya.errors import AdminError, Conflict, NotFound
from areya.webapp import alert_actions
from areya.webapp.access import (
    alert_scope_ward,
    parse_id,
    require_alert,
    require_alert_action,
    require_patient,
    require_ward,
)
from areya.webapp.forms import MAX_TEXT, has_control_characters
from areya.webapp.openapi import openapi_document
from areya.webapp.security import ALL_ROLES, CLINICAL, public, roles
from areya.webapp.services import audit, db, services, user_ward_ids
from areya.webapp.tiles import latest_observation, load_tiles
from areya.webapp.timeline import RANGES, patient_timeline

bp = Blueprint("api", __name__, url_prefix="/api")
MAX_LIMIT = 500


def authenticate_bearer() -> bool:
    """Set g.user from an ``Authorization: Bearer <token>`` header; a bad token is refused outright (401)."""
    header = request.headers.get("Authorization", "")
    if not header:
        return False
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        abort(401, description="use Authorization: Bearer <token>")
    from areya.webapp.tokens import token_actor, token_user

    max_age = timedelta(days=services().settings.api_token_days)
    found = token_user(db(), token.strip(), max_age=max_age)
    if found is None:
        abort(401, description="invalid, expired, revoked or unknown API token")
    row, user = found
    g.user = user
    g.via_token = True
    g.token_actor = token_actor(db(), row, user)  # every audit row of this request names the token (and issuer)
    return True


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _alert_json(alert: Alert, events: list[AlertEvent] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": alert.id,
        "kind": alert.kind,
        "priority": alert.priority,
        "condition": condition_of(alert.kind),
        "severity": alert.severity,
        "state": alert.state,
        "ward_id": alert.ward_id,
        "patient_id": alert.patient_id,
        "camera_id": alert.camera_id,
        "opened_at": _iso(alert.opened_at),
        "acknowledged_at": _iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by,
        "resolved_at": _iso(alert.resolved_at),
        "resolved_by": alert.resolved_by,
        "resolution": alert.resolution,
        "finding": alert.finding,
        "note": alert.note,
        "escalation_level": alert.escalation_level,
        "evidence": alert.evidence or {},
    }
    if events is not None:
        out["events"] = [
            {"at": _iso(e.at), "from_state": e.from_state, "to_state": e.to_state, "user_id": e.user_id, "note": e.note}
            for e in events
        ]
    return out


def _bad(message: str, status: int = 400) -> Response:
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    return response


def _error(exc: AdminError) -> Response:
    status = (
        403
        if type(exc).__name__ == "Forbidden"
        else 404
        if isinstance(exc, NotFound)
        else 409
        if isinstance(exc, Conflict)
        else 400
    )
    db().rollback()
    return _bad(str(exc), status)


def _json_body() -> dict[str, Any] | Response:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _bad("send a JSON object (Content-Type: application/json)")
    return data


def _text(data: dict[str, Any], key: str, *, required: bool) -> str | Response | None:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return _bad(f"'{key}' is required") if required else None
    if not isinstance(value, str):
        return _bad(f"'{key}' must be a string")
    if len(value) > MAX_TEXT:
        return _bad(f"'{key}' must be at most {MAX_TEXT} characters")
    if has_control_characters(value):  # as the forms: no NUL, escape or other control characters stored
        return _bad(f"'{key}' must not contain control characters")
    return value.strip()


# --------------------------------------------------------------------------- documents


@bp.route("/openapi.json")
@public
def openapi() -> Response:
    return jsonify(openapi_document())


@bp.route("/me")
@roles(*ALL_ROLES)
def me() -> Response:
    user = g.user
    return jsonify({"id": user.id, "username": user.username, "role": user.role, "ward_ids": sorted(user_ward_ids())})


# --------------------------------------------------------------------------- wards


@bp.route("/wards")
@roles(*CLINICAL)
def wards() -> Response:
    ids = user_ward_ids()
    rows = list(db().scalars(select(Ward).where(Ward.id.in_(ids)).order_by(Ward.name))) if ids else []
    return jsonify(
        {
            "wards": [
                {"id": w.id, "name": w.name, "beds": [{"id": b.id, "label": b.label} for b in w.beds]} for w in rows
            ]
        }
    )


@bp.route("/wards/<int:ward_id>/tiles")
@roles(*CLINICAL)
def ward_tiles(ward_id: int) -> Response:
    ward = require_ward(ward_id)
    from areya.webapp.services import services

    tiles = load_tiles(
        db(),
        ward.id,
        services().redis,
        utcnow(),
        params=RuleParams.from_settings(services().settings),
        tz_name=services().settings.timezone,
    )
    shown = [t.patient_id for t in tiles if t.patient_id is not None]
    audit("api.ward.view", target=f"ward:{ward.id}", patient_ids=shown, detail={"patients": shown})
    return jsonify({"ward": {"id": ward.id, "name": ward.name}, "tiles": [t.as_dict() for t in tiles]})


# --------------------------------------------------------------------------- alerts


@bp.route("/alerts")
@roles(*CLINICAL)
def alerts() -> Response:
    state = request.args.get("state", "open")
    if state not in ("open", "all"):
        return _bad("state must be 'open' or 'all'")
    limit_arg = request.args.get("limit", "100")
    if not (limit_arg.isascii() and limit_arg.isdigit()) or not 1 <= int(limit_arg) <= MAX_LIMIT:
        return _bad(f"limit must be an integer in [1, {MAX_LIMIT}]")
    ward_ids = user_ward_ids()
    ward_arg = request.args.get("ward_id")
    if ward_arg is not None:
        wanted = parse_id(ward_arg)
        if wanted is None:
            return _bad("ward_id must be a positive integer")
        ward_ids = {require_ward(wanted).id}
    scope = alert_scope_ward().in_(ward_ids)  # a patient's alert belongs to the patient's current ward
    if g.user.role == "admin" and ward_arg is None:
        scope = scope | Alert.ward_id.is_(None)
    query = select(Alert).where(scope).order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(int(limit_arg))
    if state == "open":
        query = query.where(Alert.state.in_(ALERT_OPEN_STATES))
    rows = list(db().scalars(query))
    audit(
        "api.alerts.view",
        patient_ids=[a.patient_id for a in rows if a.patient_id is not None],
        detail={"alerts": [a.id for a in rows]},
    )
    return jsonify({"alerts": [_alert_json(a) for a in rows]})


@bp.route("/alerts/<int:alert_id>")
@roles(*CLINICAL)
def alert(alert_id: int) -> Response:
    row = require_alert(alert_id)
    events = list(
        db().scalars(select(AlertEvent).where(AlertEvent.alert_id == row.id).order_by(AlertEvent.at, AlertEvent.id))
    )
    audit("api.alert.view", patient_id=row.patient_id, target=f"alert:{row.id}")
    return jsonify(_alert_json(row, events))


@bp.route("/alerts/<int:alert_id>/acknowledge", methods=["POST"])
@roles(*CLINICAL)  # acknowledge_roles policy, checked by the lifecycle
def acknowledge(alert_id: int) -> Response:
    return _note_action(alert_id, alert_actions.acknowledge, note_required=False)


@bp.route("/alerts/<int:alert_id>/resolve", methods=["POST"])
@roles(*CLINICAL)  # resolve_roles policy, checked by the lifecycle
def resolve(alert_id: int) -> Response:
    return _note_action(alert_id, alert_actions.resolve, note_required=True)


def _note_action(alert_id: int, action: Callable[..., Any], note_required: bool) -> Response:
    """An alert transition that takes a JSON body ``{"note": ...}`` (resolve: and an optional ``"finding"``)."""
    resolving = action is alert_actions.resolve
    require_alert_action(alert_id, "resolve" if resolving else "acknowledge")
    data = _json_body()
    if isinstance(data, Response):
        return data
    note = _text(data, "note", required=note_required)
    if isinstance(note, Response):
        return note
    extra: dict[str, Any] = {}
    if resolving:
        finding = data.get("finding")
        if finding is not None and finding not in FINDINGS:
            return _bad(f"'finding' must be one of {', '.join(FINDINGS)} or null")
        extra["finding"] = finding
    try:
        row = action(alert_id, note, **extra)
    except AdminError as exc:
        return _error(exc)
    return jsonify(_alert_json(row))


# --------------------------------------------------------------------------- patients


def _patient_json(patient: Patient) -> dict[str, Any]:
    assignment = db().scalar(
        select(BedAssignment).where(BedAssignment.patient_id == patient.id, BedAssignment.end_at.is_(None))
    )
    bed: Bed | None = assignment.bed if assignment is not None else None
    obs = latest_observation(db(), patient.id)
    return {
        "id": patient.id,
        "mrn": patient.mrn,
        "name": patient.display_name,
        "status": patient.status,
        "admitted_at": _iso(patient.admitted_at),
        "discharged_at": _iso(patient.discharged_at),
        "bed": None
        if bed is None
        else {
            "id": bed.id,
            "label": bed.label,
            "ward_id": bed.ward_id,
            "since": _iso(assignment.start_at if assignment else None),
        },
        "latest_observation": None
        if obs is None
        else {
            "at": _iso(obs.captured_at),
            "label4": obs.label4,
            "confidence4": obs.confidence4,
            "probs4": dict(zip(("angry", "happy", "relaxed", "sad"), obs.probs4, strict=True)),
            "label7": obs.label7,
        },
    }


@bp.route("/patients/<int:patient_id>")
@roles(*CLINICAL)
def patient(patient_id: int) -> Response:
    row = require_patient(patient_id)
    body = _patient_json(row)
    audit("api.patient.view", patient_id=row.id, target=f"patient:{row.id}")
    return jsonify(body)


@bp.route("/patients/<int:patient_id>/timeline")
@roles(*CLINICAL)
def timeline(patient_id: int) -> Response:
    row = require_patient(patient_id)
    range_name = request.args.get("range", "1h")
    if range_name not in RANGES:
        return _bad(f"range must be one of {', '.join(RANGES)}")
    scheme_arg = request.args.get("scheme", "4")
    if scheme_arg not in ("4", "7"):
        return _bad("scheme must be 4 or 7")
    buckets, minutes = patient_timeline(db(), row.id, range_name, utcnow(), scheme=int(scheme_arg))
    audit(
        "api.patient.timeline",
        patient_id=row.id,
        target=f"patient:{row.id}",
        detail={"range": range_name, "scheme": int(scheme_arg)},
    )
    return jsonify(
        {
            "patient_id": row.id,
            "range": range_name,
            "scheme": int(scheme_arg),
            "bucket_minutes": minutes,
            "buckets": [{"start": b.start.isoformat(), "n": b.total, "counts": b.counts} for b in buckets],
        }
    )


@bp.route("/patients/<int:patient_id>/snooze", methods=["POST"])
@roles("nurse", "doctor")
def snooze(patient_id: int) -> Response:
    row = require_patient(patient_id)
    data = _json_body()
    if isinstance(data, Response):
        return data
    reason = _text(data, "reason", required=True)
    if isinstance(reason, Response):
        return reason
    minutes = data.get("minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 7 * 24 * 60:
        return _bad("'minutes' must be an integer in [1, 10080]")
    try:
        created = alert_actions.snooze(row.id, minutes, str(reason))
    except AdminError as exc:
        return _error(exc)
    return jsonify({"patient_id": row.id, "until": _iso(created.until), "reason": created.reason})
