"""Patient page: emotion timeline (4-class shares per bucket, 7-class on demand), alert history, bed and camera."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from areya.alerts.rules import RuleParams
from areya.alerts.window import current_evidence
from areya.db.models import LABELS4, LABELS7, Alert, AlertSnooze, BedAssignment, BedZone, Camera
from areya.db.types import utcnow
from areya.errors import AdminError
from areya.webapp import alert_actions
from areya.webapp.access import require_patient
from areya.webapp.alert_cards import describe
from areya.webapp.forms import MAX_TEXT, Form
from areya.webapp.security import ADMIN, CLINICAL, roles
from areya.webapp.services import actor, audit, db, services
from areya.webapp.svg import COLORS, stacked_bars
from areya.webapp.tiles import camera_statuses, latest_observation, load_tiles, quality_summaries
from areya.webapp.timeline import DEFAULT_RANGE, RANGES, patient_timeline
from areya.worker.bedside import ACTIONS as ROLE_ACTIONS
from areya.worker.bedside import others_present, post_correction, read_state

bp = Blueprint("patients", __name__, url_prefix="/patients")
ROLE_ACTION_TEXT = {
    "patient": "That face is now taken for the patient while it stays in view.",
    "not_patient": "The face taken for the patient is now counted as someone else while it stays in view.",
    "auto": "Who the patient is is decided automatically again.",
}


def _page(patient_id: int, form: Form | None = None, status: int = 200) -> tuple[str, int]:
    patient = require_patient(patient_id)
    session = db()
    now = utcnow()
    range_name = request.args.get("range", DEFAULT_RANGE)
    if range_name not in RANGES:
        range_name = DEFAULT_RANGE
    detail7 = request.args.get("detail") == "7"
    hospital_tz = ZoneInfo(services().settings.timezone)
    buckets4, bucket_min = patient_timeline(session, patient.id, range_name, now, scheme=4)
    chart4 = stacked_bars(
        buckets4,
        LABELS4,
        width=960,
        height=180,
        axis=True,
        bucket_minutes=bucket_min,
        tz=hospital_tz,
        title=f"4-class emotion share per {bucket_min} min, last {range_name}",
    )
    chart7 = None
    if detail7:
        buckets7, _ = patient_timeline(session, patient.id, range_name, now, scheme=7)
        chart7 = stacked_bars(
            buckets7,
            LABELS7,
            width=960,
            height=180,
            axis=True,
            bucket_minutes=bucket_min,
            tz=hospital_tz,
            title=f"7-class emotion share per {bucket_min} min, last {range_name}",
        )
    observed = sum(b.total for b in buckets4)
    totals = {lab: sum(b.counts.get(lab, 0) for b in buckets4) for lab in LABELS4}
    assignment = session.scalar(
        select(BedAssignment).where(BedAssignment.patient_id == patient.id, BedAssignment.end_at.is_(None))
    )
    cameras = []
    if assignment is not None:
        statuses = camera_statuses(session, assignment.bed.ward_id, services().redis)
        cam_ids = session.scalars(
            select(BedZone.camera_id)
            .join(Camera, Camera.id == BedZone.camera_id)
            .where(BedZone.bed_id == assignment.bed_id)
        ).all()
        cameras = [statuses[c] for c in cam_ids if c in statuses]
    stays = list(
        session.scalars(
            select(BedAssignment).where(BedAssignment.patient_id == patient.id).order_by(BedAssignment.start_at.desc())
        )
    )
    alerts = list(
        session.scalars(select(Alert).where(Alert.patient_id == patient.id).order_by(Alert.opened_at.desc()).limit(100))
    )
    cards = describe(session, alerts, with_events=True)
    snoozes = list(
        session.scalars(
            select(AlertSnooze)
            .where(AlertSnooze.patient_id == patient.id, AlertSnooze.until > now)
            .order_by(AlertSnooze.until.desc())
        )
    )
    latest = latest_observation(session, patient.id)
    window = None
    base = RuleParams.from_settings(services().settings)
    if patient.status == "admitted":  # the evidence the alert rule reads now (areya.alerts.evidence)
        window = current_evidence(session, base, now, {patient.id: assignment.bed.ward_id if assignment else None}).get(
            patient.id
        )
    bedside = _bedside(assignment.bed_id) if assignment is not None else None
    state = None  # the bed's one state, as its tile says it (areya.webapp.bed_state)
    if patient.status == "admitted" and assignment is not None:
        tz = services().settings.timezone
        bed_tiles = load_tiles(session, assignment.bed.ward_id, services().redis, now, {assignment.bed_id}, base, tz)
        state = bed_tiles[0].state if bed_tiles else None
    quality_since = now - timedelta(seconds=window.window_s if window is not None else base.window_s)
    recent_quality = quality_summaries(session, [patient.id], quality_since, now, base.min_quality).get(patient.id)
    audit(
        "patient.view",
        patient_id=patient.id,
        target=f"patient:{patient.id}",
        detail={"range": range_name, "detail7": detail7},
    )
    html = render_template(
        "patient.html",
        patient=patient,
        assignment=assignment,
        cameras=cameras,
        stays=stays,
        cards=cards,
        snoozes=snoozes,
        latest=latest,
        window=window,
        state=state,
        recent_quality=recent_quality,
        quality_period=f"{(now - quality_since).total_seconds() / 60:g} min",
        min_quality=base.min_quality,
        chart4=chart4,
        chart7=chart7,
        range_name=range_name,
        ranges=list(RANGES),
        detail7=detail7,
        observed=observed,
        totals=totals,
        colors=COLORS,
        labels4=LABELS4,
        labels7=LABELS7,
        form=form or Form(),
        snooze_choices=alert_actions.SNOOZE_CHOICES_MIN,
        bucket_min=bucket_min,
        bedside=bedside,
    )
    return html, status


def _bedside(bed_id: int) -> dict[str, Any] | None:
    """The bed's face tracks and roles as the worker last published them (areya.worker.bedside), times as
    datetimes; None when none is known (no worker, Redis away, nobody seen lately)."""
    state = read_state(services().redis, bed_id) if services().redis is not None else None
    if not state:
        return None
    tracks = []
    for t in state.get("tracks") or []:
        try:
            tracks.append(
                {
                    **t,
                    "first": datetime.fromtimestamp(float(t["first_at"]), UTC),
                    "last": datetime.fromtimestamp(float(t["last_at"]), UTC),
                }
            )
        except (KeyError, TypeError, ValueError):
            continue
    return {"tracks": tracks, "others": others_present(state, time.time())}


@bp.route("/<int:patient_id>/bedside-role", methods=["POST"])
@roles(*ADMIN)
def bedside_role(patient_id: int) -> Response | tuple[str, int]:
    """An admin corrects who the patient is among the faces at the patient's bed (audited)."""
    patient = require_patient(patient_id)
    form = Form(request.form)
    action = form.choice("action", "correction", ROLE_ACTIONS)
    track = form.integer("track", "face track", required=action == "patient", lo=1, hi=2**53)
    assignment = db().scalar(
        select(BedAssignment).where(BedAssignment.patient_id == patient.id, BedAssignment.end_at.is_(None))
    )
    if assignment is None:
        form.error("action", "the patient is not in a bed")
    client = services().redis
    if not form.ok or assignment is None or client is None:
        flash(next(iter(form.errors.values()), "no Redis: the workers cannot be told"), "error")
        return _page(patient.id, form, 400)
    try:
        fix = post_correction(client, assignment.bed_id, action, track, actor().label)
    except Exception as exc:  # noqa: BLE001 - Redis away: nothing changed, say so
        flash(f"Not corrected: the workers could not be told ({type(exc).__name__}).", "error")
        return _page(patient.id, form, 503)
    audit(
        "bedside_role.correct",
        patient_id=patient.id,
        target=f"bed:{assignment.bed_id}",
        detail={"action": action, "track": track, "n": fix["n"]},
    )
    flash(ROLE_ACTION_TEXT[action], "success")
    return redirect(url_for("patients.patient_page", patient_id=patient.id))


@bp.route("/<int:patient_id>")
@roles(*CLINICAL)
def patient_page(patient_id: int) -> tuple[str, int]:
    return _page(patient_id)


@bp.route("/<int:patient_id>/snooze", methods=["POST"])
@roles("nurse", "doctor")
def snooze(patient_id: int) -> Response | tuple[str, int]:
    patient = require_patient(patient_id)
    form = Form(request.form)
    reason = form.text("reason", "reason", max_len=MAX_TEXT)
    minutes = form.integer("minutes", "snooze duration", lo=1, hi=7 * 24 * 60)
    if form.ok:
        try:
            alert_actions.snooze(patient.id, int(minutes or 0), reason)
            flash(f"New alerts for {patient.display_name} snoozed for {minutes} min.", "success")
            return redirect(url_for("patients.patient_page", patient_id=patient.id))
        except AdminError as exc:
            db().rollback()
            form.error("reason", str(exc))
    return _page(patient.id, form, 400)
