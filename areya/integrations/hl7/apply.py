"""Apply an :class:`AdtEvent` through the admin operations (audited as ``adt:<sending facility>``), once per
MSH-10: the ``adt_messages`` row is written in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.admin import Actor, AdminError, Conflict, Invalid, NotFound, record
from areya.admin.encounters import admit_encounter
from areya.admin.merge import change_mrn, merge_patients
from areya.admin.patients import (
    admit_patient,
    current_assignment,
    discharge_patient,
    move_patient,
    release_bed,
    rename_patient,
)
from areya.admin.refs import bed_ref, clean_mrn, clean_name, flush
from areya.db.models import AdtMessage, Patient
from areya.integrations.hl7.errors import (
    DATA_TYPE_ERROR,
    DUPLICATE_KEY,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE,
    UNKNOWN_KEY,
    AdtError,
    error,
    reject,
)
from areya.integrations.hl7.locations import LocationMap
from areya.integrations.hl7.messages import EVENTS, AdtEvent


@dataclass(frozen=True)
class Outcome:
    applied: bool  # False: a resent message, acknowledged without applying it again
    text: str


def actor_for(event: AdtEvent, origin: tuple[tuple[str, Any], ...] = ()) -> Actor:
    """``adt:<MSH-4>``, with the control id, the event and where the message really came from (``origin``: the
    peer address and client certificate the listener saw)."""
    return Actor(
        None,
        f"adt:{event.header.sending_facility}",
        context=(("hl7_control_id", event.header.control_id), ("hl7_event", event.event), *origin),
    )


class ControlIdReused(AdtError):
    """MSH-10 of an applied message, from the same facility, on a different message (AR 205; audited)."""


def apply_event(
    session: Session,
    event: AdtEvent,
    locations: LocationMap,
    origin: tuple[tuple[str, Any], ...] = (),
    digest: str | None = None,
) -> Outcome:
    """Apply ``event`` in ``session`` (the caller commits, or rolls back on an exception). ``digest``: the
    message's fingerprint (:func:`~areya.integrations.hl7.messages.fingerprint`): a resend with the same control
    id must have the same one."""
    header = event.header
    seen = session.scalar(
        select(AdtMessage).where(
            AdtMessage.sending_facility == header.sending_facility, AdtMessage.control_id == header.control_id
        )
    )
    if seen is not None:
        if digest is not None and seen.content_sha256 is not None and seen.content_sha256 != digest:
            raise ControlIdReused(
                "AR",
                DUPLICATE_KEY,
                f"MSH-10 {header.control_id!r} was used by a different message applied at "
                f"{seen.applied_at.isoformat()} ({seen.event}): a new message needs a new control id",
                "MSH^1^10",
            )
        return Outcome(False, f"duplicate of message {header.control_id} applied at {seen.applied_at.isoformat()}")
    try:
        clean_mrn(event.mrn)
        if event.prior_mrn is not None:
            clean_mrn(event.prior_mrn)
        if event.name is not None:
            clean_name(event.name, "patient name", 200)
    except Invalid as exc:
        raise reject(DATA_TYPE_ERROR, str(exc), "PID^1^3" if "MRN" in str(exc) else "PID^1^5") from None
    actor = actor_for(event, origin)
    try:
        text, patient_id = _HANDLERS[event.event](session, event, locations, actor)
    except NotFound as exc:
        raise error(UNKNOWN_KEY, str(exc)) from None
    except Conflict as exc:  # already admitted, an occupied bed, already in that bed; a moved patient discharged
        code = SEGMENT_SEQUENCE if str(exc).endswith("is discharged") else DUPLICATE_KEY
        raise error(code, str(exc)) from None
    except Invalid as exc:  # a time that does not fit the history (back-dated, out of order)
        raise error(SEGMENT_SEQUENCE, str(exc)) from None
    session.add(
        AdtMessage(
            sending_facility=header.sending_facility,
            control_id=header.control_id,
            event=event.event,
            patient_id=patient_id,
            content_sha256=digest,
        )
    )
    flush(session, f"record ADT message {header.control_id}")
    record(
        session,
        actor,
        "adt.message",
        patient_id=patient_id,
        target=f"patient:{patient_id}" if patient_id is not None else None,
        detail={
            "event": event.event,
            "meaning": EVENTS[event.event],
            "mrn": event.mrn,
            **({"prior_mrn": event.prior_mrn} if event.prior_mrn is not None else {}),
            "assigning_authority": event.authority,
            "location": event.location,
            "result": text,
        },
    )
    return Outcome(True, text)


def _bed(event: AdtEvent, locations: LocationMap, *, required: bool) -> str | None:
    """PV1-3's Areya bed; None when PV1-3 is empty (AR 101 if ``required``) or names a place Areya does not
    monitor (``adt_unknown_location = "unmonitored"``; with ``"reject"`` that is AE 103)."""
    if event.location is None:
        if required:
            raise reject(REQUIRED_FIELD_MISSING, f"{event.event} needs PV1-3 (assigned patient location)", "PV1^1^3")
        return None
    return locations.resolve(event.location)


def _where(event: AdtEvent, bed: str | None) -> str:
    if bed is not None:
        return f" to {bed}"
    return f", not in a monitored bed ({event.location})" if event.location else " (no bed)"


def _patient(session: Session, event: AdtEvent) -> Patient:
    patient = session.scalar(select(Patient).where(Patient.mrn == event.mrn))
    if patient is None:
        raise error(UNKNOWN_KEY, f"unknown patient MRN {event.mrn!r}", "PID^1^3")
    return patient


def _admit(session: Session, event: AdtEvent, locations: LocationMap, actor: Actor) -> tuple[str, int]:
    if event.name is None:
        raise reject(REQUIRED_FIELD_MISSING, f"{event.event} needs PID-5 (patient name)", "PID^1^5")
    bed = _bed(event, locations, required=False)
    existing = session.scalar(select(Patient).where(Patient.mrn == event.mrn))
    if existing is not None and existing.status == "admitted" and current_assignment(session, existing) is None:
        # registered where Areya does not monitor (an A04 in the emergency department), now admitted: a placement
        if event.event == "A01":  # the registered outpatient / emergency stay becomes an inpatient one
            admit_encounter(session, existing, event.at)
        if bed is None:
            return f"{event.mrn} already admitted" + _where(event, bed), existing.id
        move_patient(session, event.mrn, bed, at=event.at, actor=actor)
        return f"admitted {event.mrn} (already registered) to {bed}", existing.id
    encounter_class = "AMB" if event.event == "A04" else "IMP"
    patient = admit_patient(
        session, event.mrn, event.name, bed, at=event.at, actor=actor, encounter_class=encounter_class
    )
    return f"admitted {event.mrn}" + _where(event, bed), patient.id


def _move(session: Session, event: AdtEvent, locations: LocationMap, actor: Actor) -> tuple[str, int]:
    bed = _bed(event, locations, required=True)
    patient = _patient(session, event)
    if patient.status != "admitted":
        raise error(SEGMENT_SEQUENCE, f"patient {event.mrn} is not admitted", "PID^1^3")
    current = current_assignment(session, patient)
    if event.prior_location is not None and event.event == "A02":  # PV1-6: where the sender believes they are
        prior = locations.resolve(event.prior_location, "PV1^1^6")
        if (bed_ref(current.bed) if current else None) != prior:
            where = bed_ref(current.bed) if current else "no monitored bed"
            says = prior or f"{event.prior_location} (not monitored)"
            raise error(SEGMENT_SEQUENCE, f"PV1-6 says {says} but patient {event.mrn} is in {where}", "PV1^1^6")
    if bed is not None:
        move_patient(session, event.mrn, bed, at=event.at, actor=actor)
        return f"moved {event.mrn} to {bed}", patient.id
    # to a place Areya does not monitor: never keep them in the bed the feed says they left
    left = release_bed(session, event.mrn, at=event.at, actor=actor, to=event.location or "")
    if left is None:
        return f"moved {event.mrn}, not in a monitored bed ({event.location})", patient.id
    return f"moved {event.mrn} out of {bed_ref(left.bed)}, not in a monitored bed ({event.location})", patient.id


def _discharge(session: Session, event: AdtEvent, locations: LocationMap, actor: Actor) -> tuple[str, int]:
    patient = _patient(session, event)
    if patient.status != "admitted":
        raise error(SEGMENT_SEQUENCE, f"patient {event.mrn} is not admitted", "PID^1^3")
    discharge_patient(session, event.mrn, at=event.at, actor=actor, cancelled=event.event == "A11")
    if event.event == "A11":
        return f"admission of {event.mrn} cancelled", patient.id
    return f"discharged {event.mrn}", patient.id


def _update(session: Session, event: AdtEvent, locations: LocationMap, actor: Actor) -> tuple[str, int]:
    patient = _patient(session, event)
    if event.name is None or event.name == patient.display_name:
        return f"no change to {event.mrn}", patient.id
    rename_patient(session, event.mrn, event.name, actor=actor)
    return f"updated name of {event.mrn}", patient.id


def _cancel_discharge(session: Session, event: AdtEvent, locations: LocationMap, actor: Actor) -> tuple[str, int]:
    patient = _patient(session, event)
    if patient.status != "discharged":
        raise error(SEGMENT_SEQUENCE, f"patient {event.mrn} is not discharged", "PID^1^3")
    bed = _bed(event, locations, required=False)
    admit_patient(session, event.mrn, event.name or patient.display_name, bed, at=event.at, actor=actor, resume=True)
    if bed is None and event.location:
        return f"discharge of {event.mrn} cancelled, not in a monitored bed ({event.location})", patient.id
    return f"discharge of {event.mrn} cancelled" + (f", back in {bed}" if bed else ""), patient.id


def _merge(session: Session, event: AdtEvent, locations: LocationMap, actor: Actor) -> tuple[str, int | None]:
    """A40 / A34: the record of MRG-1 folds into PID-3's (which takes PID-5's name if given)."""
    assert event.prior_mrn is not None
    prior = session.scalar(select(Patient).where(Patient.mrn == event.prior_mrn))
    survivor = session.scalar(select(Patient).where(Patient.mrn == event.mrn))
    if event.prior_mrn == event.mrn:
        raise reject(DUPLICATE_KEY, f"MRG-1 and PID-3 are the same identifier {event.mrn!r}", "MRG^1^1")
    if prior is None:  # never in a monitored area: nothing of theirs in Areya
        return f"nothing to merge: {event.prior_mrn} is not known", survivor.id if survivor else None
    try:
        merged = merge_patients(session, event.prior_mrn, event.mrn, display_name=event.name, at=event.at, actor=actor)
    except Conflict as exc:
        raise error(DUPLICATE_KEY, str(exc), "MRG^1^1") from None
    if survivor is None:
        return f"{event.prior_mrn} is now {event.mrn}", merged.id
    return f"merged {event.prior_mrn} into {event.mrn}", merged.id


def _change_identifier(
    session: Session, event: AdtEvent, locations: LocationMap, actor: Actor
) -> tuple[str, int | None]:
    """A47: the patient of MRG-1 is now known by PID-3 (AE 205 if PID-3 is another patient: send an A40)."""
    assert event.prior_mrn is not None
    patient = session.scalar(select(Patient).where(Patient.mrn == event.prior_mrn))
    if patient is None:
        existing = session.scalar(select(Patient.id).where(Patient.mrn == event.mrn))
        return f"nothing to change: {event.prior_mrn} is not known", existing
    try:
        change_mrn(session, event.prior_mrn, event.mrn, display_name=None, actor=actor)
    except Conflict as exc:
        raise error(DUPLICATE_KEY, str(exc), "PID^1^3") from None
    return f"{event.prior_mrn} is now {event.mrn}", patient.id


_HANDLERS = {
    "A01": _admit,
    "A04": _admit,
    "A02": _move,
    "A12": _move,  # cancel transfer: PV1-3 is the location the patient returns to
    "A03": _discharge,
    "A11": _discharge,  # cancel admit: the stay ends (the record and its audit stay)
    "A08": _update,
    "A13": _cancel_discharge,
    "A34": _merge,
    "A40": _merge,
    "A47": _change_identifier,
}

__all__ = ["AdminError", "AdtError", "Outcome", "actor_for", "apply_event"]
