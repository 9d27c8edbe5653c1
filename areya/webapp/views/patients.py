"""Patient page: emotion timeline (4-class shares per bucket, 7-class on demand), alert history, bed and camera."""

from __future__ import annotations

from datetime import timedelta
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
from areya.webapp.security import CLINICAL, roles
from areya.webapp.services import audit, db, services
from areya.webapp.svg import COLORS, stacked_bars
from areya.webapp.tiles import camera_statuses, latest_observation, load_tiles, quality_summaries
from areya.webapp.timeline import DEFAULT_RANGE, RANGES, patient_timeline

bp = Blueprint("patients", __name__, url_prefix="/patients")


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
    )
    return html, status


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
