"""Patients: admit (optionally to a bed), move between beds, discharge; bed look-up at a point in time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from areya.admin.encounters import begin_encounter, end_encounter, resume_encounter
from areya.admin.refs import bed_ref, clean_mrn, clean_name, flush, get_bed, get_patient
from areya.alerts.lifecycle import resolve_on_discharge, transfer_alerts
from areya.audit import SYSTEM, Actor, record
from areya.db.models import Bed, BedAssignment, Patient
from areya.db.types import utcnow
from areya.errors import Conflict, Invalid


def _now(at: datetime | None) -> datetime:
    if at is None:
        return utcnow()
    if at.tzinfo is None:
        raise Invalid("time must be timezone-aware")
    return at


def current_assignment(session: Session, patient: Patient) -> BedAssignment | None:
    return session.scalar(
        select(BedAssignment).where(BedAssignment.patient_id == patient.id, BedAssignment.end_at.is_(None))
    )


def bed_occupant(session: Session, bed: Bed) -> Patient | None:
    return session.scalar(
        select(Patient)
        .join(BedAssignment, BedAssignment.patient_id == Patient.id)
        .where(BedAssignment.bed_id == bed.id, BedAssignment.end_at.is_(None))
    )


def patient_in_bed_at(session: Session, bed_id: int, at: datetime) -> int | None:
    """The id of the patient who was in bed ``bed_id`` at time ``at`` (None if the bed was empty)."""
    return session.scalar(
        select(BedAssignment.patient_id)
        .where(
            BedAssignment.bed_id == bed_id,
            BedAssignment.start_at <= at,
            (BedAssignment.end_at.is_(None)) | (BedAssignment.end_at > at),
        )
        .order_by(BedAssignment.start_at.desc())
        .limit(1)
    )


def _require_free(session: Session, bed: Bed, at: datetime | None = None) -> None:
    """The bed is free now and, for a back-dated event at ``at``, was free from then on: a stay starting at ``at``
    must not overlap a stay the bed's history already has (its camera's readings were someone else's)."""
    occupant = bed_occupant(session, bed)
    if occupant is not None:
        raise Conflict(f"bed {bed_ref(bed)} is occupied by patient {occupant.mrn}")
    if at is not None:
        later = session.scalar(
            select(BedAssignment)
            .where(BedAssignment.bed_id == bed.id, BedAssignment.end_at > at)
            .order_by(BedAssignment.end_at.desc())
            .limit(1)
        )
        if later is not None:
            raise Invalid(
                f"bed {bed_ref(bed)} was occupied by patient {later.patient.mrn} until "
                f"{later.end_at.isoformat()}, after this event's time {at.isoformat()}: a back-dated stay would "
                "overlap it (out-of-order messages)"
            )


def _require_no_later_stay(session: Session, patient: Patient, at: datetime) -> None:
    """A patient's new stay starting at ``at`` must not overlap their own bed history (a back-dated event)."""
    later = session.scalar(
        select(BedAssignment)
        .where(BedAssignment.patient_id == patient.id, BedAssignment.end_at > at)
        .order_by(BedAssignment.end_at.desc())
        .limit(1)
    )
    if later is not None:
        raise Invalid(
            f"patient {patient.mrn} was in bed {bed_ref(later.bed)} until {later.end_at.isoformat()}, after this "
            f"event's time {at.isoformat()}: a back-dated stay would overlap it (out-of-order messages)"
        )


def admit_patient(
    session: Session,
    mrn: str,
    display_name: str,
    bed: str | None = None,
    *,
    at: datetime | None = None,
    actor: Actor = SYSTEM,
    encounter_class: str = "IMP",
    resume: bool = False,
) -> Patient:
    """Admit a new patient (or re-admit a discharged one), optionally into bed ``WARD/BED``: a new encounter of
    ``encounter_class`` (IMP inpatient, AMB outpatient, EMER emergency); ``resume``: a cancelled discharge, the
    last encounter goes on (its start kept)."""
    mrn = clean_mrn(mrn)
    display_name = clean_name(display_name, "patient name", 200)
    now = _now(at)
    target = get_bed(session, bed) if bed is not None else None
    patient = session.scalar(select(Patient).where(Patient.mrn == mrn))
    if patient is not None and patient.status == "admitted":
        raise Conflict(f"patient {mrn} is already admitted")
    if patient is not None and patient.discharged_at is not None and now < patient.discharged_at:
        raise Invalid(
            f"patient {mrn} was discharged at {patient.discharged_at.isoformat()}, after this admission's time "
            f"{now.isoformat()} (out-of-order messages)"
        )
    if target is not None:
        _require_free(session, target, now)
    readmission = patient is not None
    if patient is None:
        patient = Patient(mrn=mrn, display_name=display_name, admitted_at=now, status="admitted")
        session.add(patient)
    else:
        patient.display_name = display_name
        patient.admitted_at = now
        patient.discharged_at = None
        patient.status = "admitted"
    flush(session, f"admit patient {mrn}")
    resumed = resume_encounter(session, patient) if resume else None
    if resumed is not None:
        patient.admitted_at = resumed.start_at
    else:
        begin_encounter(session, patient, now, encounter_class)
    flush(session, f"record the stay of patient {mrn}")
    if target is not None:
        session.add(BedAssignment(patient_id=patient.id, bed_id=target.id, start_at=now))
        flush(session, f"assign patient {mrn} to bed {bed_ref(target)}")
    record(
        session,
        actor,
        "patient.readmit" if readmission else "patient.admit",
        patient_id=patient.id,
        target=f"patient:{patient.id}",
        detail={"bed": bed_ref(target) if target else None},
    )
    return patient


def move_patient(
    session: Session, mrn: str, bed: str, *, at: datetime | None = None, actor: Actor = SYSTEM
) -> BedAssignment:
    """Move an admitted patient to another (free) bed; the bed history keeps the old stay."""
    patient = get_patient(session, mrn)
    if patient.status != "admitted":
        raise Conflict(f"patient {patient.mrn} is discharged")
    target = get_bed(session, bed)
    now = _now(at)
    current = current_assignment(session, patient)
    if current is not None and current.bed_id == target.id:
        raise Conflict(f"patient {patient.mrn} is already in bed {bed_ref(target)}")
    _require_free(session, target, now)
    if current is None:
        _require_no_later_stay(session, patient, now)
    previous = None
    if current is not None:
        if now < current.start_at:
            raise Invalid("a move cannot happen before the current bed stay started")
        current.end_at = now
        previous = bed_ref(current.bed)
        flush(session, f"end bed stay of patient {patient.mrn}")
    assignment = BedAssignment(patient_id=patient.id, bed_id=target.id, start_at=now)
    session.add(assignment)
    flush(session, f"move patient {patient.mrn} to bed {bed_ref(target)}")
    transfer_alerts(
        session,
        patient.id,
        ward_id=target.ward_id,
        now=now,
        actor=actor,
        note=f"patient moved from {previous or 'no bed'} to {bed_ref(target)}",
    )
    record(
        session,
        actor,
        "patient.move",
        patient_id=patient.id,
        target=f"patient:{patient.id}",
        detail={"from": previous, "to": bed_ref(target)},
    )
    return assignment


def release_bed(
    session: Session, mrn: str, *, at: datetime | None = None, actor: Actor = SYSTEM, to: str = ""
) -> BedAssignment | None:
    """The patient, still admitted, leaves their bed for a place Areya does not monitor (``to`` names it, e.g.
    an HL7 location): the bed stay ends (the bed is free, its camera's faces are no longer theirs); open alerts
    stay on the ward they were raised on, with a transfer note. None if the patient was in no bed."""
    patient = get_patient(session, mrn)
    if patient.status != "admitted":
        raise Conflict(f"patient {patient.mrn} is discharged")
    current = current_assignment(session, patient)
    if current is None:
        return None
    now = _now(at)
    if now < current.start_at:
        raise Invalid("a move cannot happen before the current bed stay started")
    current.end_at = now
    previous = bed_ref(current.bed)
    flush(session, f"end bed stay of patient {patient.mrn}")
    where = f"{to} (not monitored)" if to else "no monitored bed"
    transfer_alerts(
        session,
        patient.id,
        ward_id=current.bed.ward_id,
        now=now,
        actor=actor,
        note=f"patient moved from {previous} to {where}",
    )
    record(
        session,
        actor,
        "patient.move",
        patient_id=patient.id,
        target=f"patient:{patient.id}",
        detail={"from": previous, "to": None, "location": to or None},
    )
    return current


def discharge_patient(
    session: Session, mrn: str, *, at: datetime | None = None, actor: Actor = SYSTEM, cancelled: bool = False
) -> Patient:
    """Discharge: end the bed stay, mark discharged, auto-resolve the patient's open alerts; the encounter ends
    ``finished`` (``cancelled``: a cancelled admission)."""
    patient = get_patient(session, mrn)
    if patient.status != "admitted":
        raise Conflict(f"patient {patient.mrn} is already discharged")
    now = _now(at)
    if now < patient.admitted_at:
        raise Invalid("discharge time is before admission")
    current = current_assignment(session, patient)
    if current is not None:
        if now < current.start_at:
            raise Invalid("discharge time is before the current bed stay started (out-of-order messages)")
        current.end_at = now
    patient.status = "discharged"
    patient.discharged_at = now
    end_encounter(session, patient, now, "cancelled" if cancelled else "finished")
    flush(session, f"discharge patient {patient.mrn}")
    open_alerts = resolve_on_discharge(session, patient.id, now=now, actor=actor)  # events + notices
    record(
        session,
        actor,
        "patient.discharge",
        patient_id=patient.id,
        target=f"patient:{patient.id}",
        detail={"bed": bed_ref(current.bed) if current else None, "alerts_resolved": len(open_alerts)},
    )
    return patient


def list_patients(
    session: Session, *, include_discharged: bool = False, ward: str | None = None, actor: Actor = SYSTEM
) -> list[tuple[Patient, BedAssignment | None]]:
    """Patients with their current bed stay (viewing patient data is audited: one ``patient.list`` row per patient
    listed, so that the audit log filtered by a patient finds it; one row without a patient when none is)."""
    from areya.admin.refs import get_ward

    query = (
        select(Patient, BedAssignment)
        .outerjoin(BedAssignment, (BedAssignment.patient_id == Patient.id) & BedAssignment.end_at.is_(None))
        .options(selectinload(BedAssignment.bed).selectinload(Bed.ward))
        .order_by(Patient.mrn)
    )
    if not include_discharged:
        query = query.where(Patient.status == "admitted")
    if ward is not None:
        ward_id = get_ward(session, ward).id
        query = query.join(Bed, Bed.id == BedAssignment.bed_id).where(Bed.ward_id == ward_id)
    rows = [(patient, assignment) for patient, assignment in session.execute(query)]
    detail = {"count": len(rows), "ward": ward, "include_discharged": include_discharged}
    for patient_id in [patient.id for patient, _ in rows] or [None]:
        record(session, actor, "patient.list", patient_id=patient_id, target="patients", detail=detail)
    return rows


def rename_patient(session: Session, mrn: str, display_name: str, *, actor: Actor = SYSTEM) -> Patient:
    """Change a patient's display name (e.g. an HL7 A08 update); audited with the old and new name."""
    patient = get_patient(session, mrn)
    new_name = clean_name(display_name, "patient name", 200)
    old_name = patient.display_name
    if new_name == old_name:
        return patient
    patient.display_name = new_name
    flush(session, f"rename patient {patient.mrn}")
    record(
        session,
        actor,
        "patient.rename",
        patient_id=patient.id,
        target=f"patient:{patient.id}",
        detail={"from": old_name, "to": new_name},
    )
    return patient
