"""Encounters: one row per hospital stay of a patient (the FHIR Encounter), kept by the admission operations.

An admission (dashboard, ``A01``) begins an inpatient (``IMP``) encounter ``in-progress``; an outpatient or
emergency registration (``A04``) an ambulatory (``AMB``) one ``arrived``, which an admission of the registered
patient turns into ``IMP`` / ``in-progress`` (``class_history`` keeps both). A discharge ends it ``finished``; a
cancelled admission (``A11``) ``cancelled``: the admission did not go ahead, yet what Areya recorded meanwhile (a
bed stay, camera readings) stays; ``entered-in-error`` is for a record that should never have existed, which Areya
cannot know. A cancelled discharge (``A13``) reopens the stay: its start is kept and the discharge leaves the
status history (it did not happen). A re-admission begins a new encounter; the earlier one keeps its id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.db.models import ENCOUNTER_CLASSES, BedAssignment, Encounter, Patient
from areya.db.types import utcnow
from areya.errors import Invalid


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _touch(encounter: Encounter) -> None:
    encounter.version = (encounter.version or 1) + 1
    encounter.updated_at = utcnow()


def _close_last(history: list[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    out = [dict(item) for item in history]
    if out and out[-1].get("end") is None:
        out[-1]["end"] = _iso(at)
    return out


def current_encounter(session: Session, patient_id: int) -> Encounter | None:
    """The patient's open encounter (the latest one without an end), or None."""
    return session.scalar(
        select(Encounter)
        .where(Encounter.patient_id == patient_id, Encounter.end_at.is_(None))
        .order_by(Encounter.start_at.desc(), Encounter.id.desc())
        .limit(1)
    )


def encounter_stays(session: Session, encounter: Encounter) -> list[BedAssignment]:
    """The bed stays within the encounter's period, oldest first."""
    query = select(BedAssignment).where(
        BedAssignment.patient_id == encounter.patient_id, BedAssignment.start_at >= encounter.start_at
    )
    if encounter.end_at is not None:
        query = query.where(BedAssignment.start_at <= encounter.end_at)
    return list(session.scalars(query.order_by(BedAssignment.start_at, BedAssignment.id)))


def begin_encounter(session: Session, patient: Patient, at: datetime, class_code: str = "IMP") -> Encounter:
    """A new stay from ``at``: ``IMP`` in-progress, ``AMB`` / ``EMER`` arrived."""
    if class_code not in ENCOUNTER_CLASSES:
        raise Invalid(f"encounter class must be one of {', '.join(ENCOUNTER_CLASSES)}, got {class_code!r}")
    status = "in-progress" if class_code == "IMP" else "arrived"
    encounter = Encounter(
        patient_id=patient.id,
        class_code=class_code,
        status=status,
        start_at=at,
        status_history=[{"status": status, "start": _iso(at), "end": None}],
        class_history=[{"class": class_code, "start": _iso(at), "end": None}],
        version=1,
        updated_at=utcnow(),
    )
    session.add(encounter)
    return encounter


def admit_encounter(session: Session, patient: Patient, at: datetime) -> Encounter:
    """The registered (``AMB``/``EMER``) patient is admitted: their open encounter becomes ``IMP`` in-progress
    from ``at`` (a new one if they have none)."""
    encounter = current_encounter(session, patient.id)
    if encounter is None:
        return begin_encounter(session, patient, at, "IMP")
    if encounter.class_code == "IMP" and encounter.status == "in-progress":
        return encounter
    at = max(at, encounter.start_at)
    if encounter.class_code != "IMP":
        encounter.class_history = [*_close_last(encounter.class_history or [], at), _entry("class", "IMP", at)]
        encounter.class_code = "IMP"
    if encounter.status != "in-progress":
        encounter.status_history = [
            *_close_last(encounter.status_history or [], at),
            _entry("status", "in-progress", at),
        ]
        encounter.status = "in-progress"
    _touch(encounter)
    return encounter


def _entry(key: str, value: str, at: datetime) -> dict[str, Any]:
    return {key: value, "start": _iso(at), "end": None}


def end_encounter(session: Session, patient: Patient, at: datetime, status: str = "finished") -> Encounter | None:
    """The open stay ends at ``at``: ``finished`` (a discharge) or ``cancelled`` (a cancelled admission)."""
    if status not in ("finished", "cancelled"):
        raise Invalid(f"an encounter ends finished or cancelled, not {status!r}")
    encounter = current_encounter(session, patient.id)
    if encounter is None:
        return None
    at = max(at, encounter.start_at)
    encounter.end_at = at
    encounter.status = status
    encounter.status_history = [*_close_last(encounter.status_history or [], at), _entry("status", status, at)]
    encounter.status_history[-1]["end"] = _iso(at)  # a final status holds no time
    encounter.class_history = _close_last(encounter.class_history or [], at)
    _touch(encounter)
    return encounter


def resume_encounter(session: Session, patient: Patient) -> Encounter | None:
    """A cancelled discharge: the patient's last finished stay is open again, from its own start (the discharge
    leaves the status history). None if they have no finished stay (a new one is begun by the caller)."""
    encounter = session.scalar(
        select(Encounter)
        .where(Encounter.patient_id == patient.id)
        .order_by(Encounter.start_at.desc(), Encounter.id.desc())
        .limit(1)
    )
    if encounter is None or encounter.status != "finished":
        return None
    history = [dict(item) for item in encounter.status_history or []]
    if history and history[-1].get("status") == "finished":
        history.pop()
    if history:
        history[-1]["end"] = None
    encounter.status_history = history
    classes = [dict(item) for item in encounter.class_history or []]
    if classes:
        classes[-1]["end"] = None
    encounter.class_history = classes
    encounter.status = history[-1]["status"] if history else "in-progress"
    encounter.end_at = None
    _touch(encounter)
    return encounter


__all__ = [
    "admit_encounter",
    "begin_encounter",
    "current_encounter",
    "encounter_stays",
    "end_encounter",
    "resume_encounter",
]
