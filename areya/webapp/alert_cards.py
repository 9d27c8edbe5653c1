"""What the alert inbox shows per alert: who, where, how bad, since when, the evidence and the history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import false, select
from sqlalchemy.orm import Session

from areya.alerts.evidence import NegativeEvidence, pct
from areya.alerts.priority import PATIENT, condition_of, sql_order
from areya.db.models import ALERT_OPEN_STATES, Alert, AlertEvent, Bed, BedAssignment, Camera, Patient, Ward
from areya.webapp.access import alert_scope_ward
from areya.webapp.bed_state import negative_label, readings_text
from areya.webapp.svg import COLORS

KIND_TITLES = {
    "negative_emotion": "Sustained negative emotion",
    "camera_offline": "Camera offline",
    "pipeline_stalled": "Camera feed not analysed",
}
TECHNICAL_NOTE = "the beds this camera covers are not monitored"


@dataclass
class AlertCard:
    alert: Alert
    patient: Patient | None = None
    bed_label: str | None = None
    ward_name: str | None = None
    camera_name: str | None = None
    events: list[AlertEvent] = field(default_factory=list)

    @property
    def title(self) -> str:
        return KIND_TITLES.get(self.alert.kind, self.alert.kind.replace("_", " "))

    @property
    def is_patient_alert(self) -> bool:
        return self.alert.patient_id is not None

    @property
    def condition(self) -> str:
        """``patient`` or ``technical`` (:mod:`areya.alerts.priority`)."""
        return condition_of(self.alert.kind)

    @property
    def is_technical(self) -> bool:
        return self.condition != PATIENT

    def _evidence(self) -> NegativeEvidence | None:
        return NegativeEvidence.from_json(self.alert.evidence) if self.alert.kind == "negative_emotion" else None

    def clinical_lines(self) -> list[tuple[str, str]]:
        """The evidence in a clinician's words, first: what was seen, how many readings over how long, when."""
        ev: dict[str, Any] = self.alert.evidence or {}
        evidence = self._evidence()
        if evidence is None:
            return [("Effect", TECHNICAL_NOTE)] if self.is_technical else []
        lines: list[tuple[str, str]] = []
        label = negative_label(evidence)
        if label is not None:
            lines.append(("Seen", readings_text(evidence, label)))
        if ev.get("first_at") and ev.get("last_at"):
            lines.append(("When", f"{_hm(ev['first_at'])} – {_hm(ev['last_at'], zone=True)}"))
        aside = evidence.set_aside_text()
        if aside is not None:  # readings below min_face_quality, which the score leaves out
            lines.append(("Set aside", aside))
        if evidence.baseline_applied and evidence.baseline is not None and evidence.raised_by > 0:
            raised = pct(evidence.open_at)
            lines.append(("Usually", f"often looks low: this patient's alert level is raised to {raised}"))
        return lines

    def evidence_lines(self) -> list[tuple[str, str]]:
        """The technical measure (folded under "details" on the card): score, thresholds, counts, baseline."""
        ev: dict[str, Any] = self.alert.evidence or {}
        lines: list[tuple[str, str]] = []
        evidence = self._evidence()
        if evidence is not None:  # the one evidence object (areya.alerts.evidence), as on every surface
            lines.append(
                (
                    evidence.name,
                    f"{pct(evidence.score)} ({evidence.threshold_text()}, resolves below {pct(evidence.close_below)})",
                )
            )
            usual = evidence.baseline_text()
            if usual is not None:  # the per-patient baseline the thresholds were set from
                lines.append(("Usual level", usual))
            lines.append(("Labels", f"{evidence.counts_text()} observations in {evidence.window_text()}"))
            lines.append(("Measure", evidence.description))
            if evidence.latest_score is not None and self.alert.state != "resolved":
                lines.append(("Latest tick", f"{evidence.name} {pct(evidence.latest_score)}"))
            return lines
        for key, value in ev.items():
            if value in (None, "") or key.startswith("_"):
                continue
            lines.append((key.replace("_", " ").capitalize(), str(value)))
        return lines

    def evidence_bar(self) -> list[tuple[str, float, str]]:
        """(label, share, colour) of the evidence counts, for a small bar."""
        counts = (self.alert.evidence or {}).get("counts") or {}
        total = sum(int(v) for v in counts.values() if isinstance(v, int | float)) or 0
        if not total:
            return []
        return [(lab, int(counts.get(lab, 0)) / total, COLORS[lab]) for lab in ("angry", "sad", "relaxed", "happy")]


def _hm(text: str, zone: bool = False) -> str:
    """An ISO time from stored evidence as hospital time (setting ``timezone``), e.g. ``13:05`` or ``13:05 BST``."""
    from areya.webapp.people import localtime

    try:
        return localtime(datetime.fromisoformat(text), "%H:%M %Z" if zone else "%H:%M")
    except ValueError:
        return text


def load_cards(
    session: Session,
    ward_ids: set[int],
    *,
    include_system: bool,
    open_only: bool = True,
    alert_ids: list[int] | None = None,
    limit: int = 200,
    offset: int = 0,
    with_events: bool = False,
    technical_first: bool = False,
) -> list[AlertCard]:
    """Alerts in these wards (and system-wide ones if ``include_system``), open ones by priority (at equal
    priority a patient condition first, or a technical one with ``technical_first``: an admin's list), urgency,
    then the oldest first; a patient's alert is in its patient's current ward (see :func:`alert_scope_ward`),
    not the one it was raised in."""
    scope = alert_scope_ward().in_(ward_ids) if ward_ids else false()
    if include_system:
        scope = scope | Alert.ward_id.is_(None)
    query = select(Alert).where(scope)
    if open_only:
        query = query.where(Alert.state.in_(ALERT_OPEN_STATES)).order_by(
            *sql_order(technical_first=technical_first), Alert.opened_at.asc(), Alert.id.asc()
        )
    else:
        query = query.order_by(Alert.opened_at.desc(), Alert.id.desc())
    if alert_ids is not None:
        query = query.where(Alert.id.in_(alert_ids))
    alerts = list(session.scalars(query.limit(limit).offset(offset)))
    return describe(session, alerts, with_events=with_events)


def describe(session: Session, alerts: list[Alert], *, with_events: bool = False) -> list[AlertCard]:
    patient_ids = {a.patient_id for a in alerts if a.patient_id is not None}
    patients = (
        {p.id: p for p in session.scalars(select(Patient).where(Patient.id.in_(patient_ids)))} if patient_ids else {}
    )
    beds: dict[int, tuple[str, str]] = {}
    if patient_ids:
        for pid, label, ward in session.execute(
            select(BedAssignment.patient_id, Bed.label, Ward.name)
            .join(Bed, Bed.id == BedAssignment.bed_id)
            .join(Ward, Ward.id == Bed.ward_id)
            .where(BedAssignment.patient_id.in_(patient_ids), BedAssignment.end_at.is_(None))
        ):
            beds[pid] = (label, ward)
    ward_names = dict(session.execute(select(Ward.id, Ward.name)).all())
    camera_ids = {a.camera_id for a in alerts if a.camera_id is not None}
    cameras = (
        dict(session.execute(select(Camera.id, Camera.name).where(Camera.id.in_(camera_ids))).all())
        if camera_ids
        else {}
    )
    events: dict[int, list[AlertEvent]] = {}
    if with_events and alerts:
        for ev in session.scalars(
            select(AlertEvent)
            .where(AlertEvent.alert_id.in_([a.id for a in alerts]))
            .order_by(AlertEvent.at, AlertEvent.id)
        ):
            events.setdefault(ev.alert_id, []).append(ev)
    cards = []
    for alert in alerts:
        bed = beds.get(alert.patient_id) if alert.patient_id is not None else None
        cards.append(
            AlertCard(
                alert=alert,
                patient=patients.get(alert.patient_id) if alert.patient_id is not None else None,
                bed_label=bed[0] if bed else None,
                ward_name=ward_names.get(alert.ward_id) if alert.ward_id is not None else None,
                camera_name=cameras.get(alert.camera_id) if alert.camera_id is not None else None,
                events=events.get(alert.id, []),
            )
        )
    return cards
