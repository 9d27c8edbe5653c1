"""Patient identity: merge a duplicate record into the surviving one (HL7 A40 / A34), change a patient's MRN
(HL7 A47).

A merge folds everything that points at the prior record - bed stays, observations and their minutes, alerts,
snoozes, rule overrides, ADT messages and the audit trail - into the surviving patient, then deletes the prior
record (its MRN no longer exists; the audit rows keep their old ``patient:<id>`` targets and the merge itself is
audited with both MRNs). Every table with a foreign key to ``patients.id`` is folded, so a table added later is
not forgotten.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session, aliased

from areya.admin.patients import current_assignment
from areya.admin.refs import bed_ref, clean_mrn, clean_name, flush, get_patient
from areya.alerts.lifecycle import auto_resolve
from areya.audit import SYSTEM, Actor, record
from areya.db.base import Base
from areya.db.models import ALERT_OPEN_STATES, Alert, ObservationMinute, Patient
from areya.db.types import utcnow
from areya.errors import Conflict


def merge_patients(
    session: Session,
    prior_mrn: str,
    surviving_mrn: str,
    *,
    display_name: str | None = None,
    at: datetime | None = None,
    actor: Actor = SYSTEM,
) -> Patient:
    """Fold the record of ``prior_mrn`` into ``surviving_mrn`` and delete it; if the surviving MRN is not known
    yet, the prior record simply takes that MRN. Refused (Conflict) when both are in a monitored bed now or both
    have readings for the same minute: one person cannot be in two beds, so the feed must first move one."""
    prior_mrn, surviving_mrn = clean_mrn(prior_mrn), clean_mrn(surviving_mrn)
    if prior_mrn == surviving_mrn:
        raise Conflict(f"cannot merge patient {prior_mrn} into itself")
    prior = get_patient(session, prior_mrn)
    survivor = session.scalar(select(Patient).where(Patient.mrn == surviving_mrn))
    now = at or utcnow()
    if survivor is None:
        return change_mrn(session, prior_mrn, surviving_mrn, display_name=display_name, actor=actor, action="merge")
    prior_stay, surviving_stay = current_assignment(session, prior), current_assignment(session, survivor)
    if prior_stay is not None and surviving_stay is not None:
        raise Conflict(
            f"patients {prior_mrn} and {surviving_mrn} are both in a monitored bed ({bed_ref(prior_stay.bed)}, "
            f"{bed_ref(surviving_stay.bed)}): transfer or discharge one before merging"
        )
    mine, theirs = aliased(ObservationMinute), aliased(ObservationMinute)
    overlap = session.scalar(
        select(func.count())
        .select_from(mine)
        .join(theirs, and_(theirs.minute == mine.minute, theirs.patient_id == survivor.id))
        .where(mine.patient_id == prior.id)
    )
    if overlap:
        raise Conflict(
            f"patients {prior_mrn} and {surviving_mrn} both have camera readings for {overlap} of the same minutes: "
            "they were in two beds at once, so they are not one person for Areya; not merged"
        )
    # one open alert per kind and patient: the prior record's duplicate of an alert the survivor has is resolved
    surviving_kinds = set(
        session.scalars(select(Alert.kind).where(Alert.patient_id == survivor.id, Alert.state.in_(ALERT_OPEN_STATES)))
    )
    duplicates = session.scalars(
        select(Alert).where(
            Alert.patient_id == prior.id, Alert.state.in_(ALERT_OPEN_STATES), Alert.kind.in_(surviving_kinds)
        )
    ).all()
    for alert in duplicates:
        auto_resolve(session, alert, now=now, note=f"patient {prior_mrn} merged into {surviving_mrn}")
    # the survivor's admission: admitted if either is; the earliest admission of an admitted pair
    if prior.status == "admitted" and survivor.status == "admitted":
        survivor.admitted_at = min(prior.admitted_at, survivor.admitted_at)
    elif prior.status == "admitted":
        survivor.status, survivor.admitted_at, survivor.discharged_at = "admitted", prior.admitted_at, None
    elif survivor.status == "discharged" and prior.discharged_at and survivor.discharged_at:
        survivor.discharged_at = max(prior.discharged_at, survivor.discharged_at)
    if display_name is not None:
        survivor.display_name = clean_name(display_name, "patient name", 200)
    flush(session, f"merge patient {prior_mrn} into {surviving_mrn}")
    moved: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == "patients" and fk.column.name == "id":
                column = fk.parent
                result = session.execute(
                    update(table).where(column == prior.id).values({column.name: survivor.id}),
                    execution_options={"synchronize_session": False},
                )
                if result.rowcount:
                    moved[table.name] = moved.get(table.name, 0) + result.rowcount
    session.expire_all()  # the ORM's view of the moved rows (assignments, alerts, ...) is stale
    prior_id = prior.id
    session.execute(delete(Patient).where(Patient.id == prior_id), execution_options={"synchronize_session": False})
    flush(session, f"merge patient {prior_mrn} into {surviving_mrn}")
    survivor = get_patient(session, surviving_mrn)
    detail: dict[str, Any] = {
        "prior_mrn": prior_mrn,
        "prior_patient_id": prior_id,
        "mrn": surviving_mrn,
        "rows_moved": moved,
        "alerts_resolved": len(duplicates),
        "status": survivor.status,
    }
    record(session, actor, "patient.merge", patient_id=survivor.id, target=f"patient:{survivor.id}", detail=detail)
    return survivor


def change_mrn(
    session: Session,
    old_mrn: str,
    new_mrn: str,
    *,
    display_name: str | None = None,
    actor: Actor = SYSTEM,
    action: str = "mrn_change",
) -> Patient:
    """The patient known as ``old_mrn`` is now ``new_mrn`` (Conflict if that MRN is another patient's: a merge)."""
    old_mrn, new_mrn = clean_mrn(old_mrn), clean_mrn(new_mrn)
    patient = get_patient(session, old_mrn)
    if old_mrn == new_mrn:
        return patient
    if session.scalar(select(Patient.id).where(Patient.mrn == new_mrn)) is not None:
        raise Conflict(f"MRN {new_mrn} is already another patient's: that is a merge (A40), not a change of MRN")
    patient.mrn = new_mrn
    if display_name is not None:
        patient.display_name = clean_name(display_name, "patient name", 200)
    flush(session, f"change MRN {old_mrn} to {new_mrn}")
    record(
        session,
        actor,
        f"patient.{action}",
        patient_id=patient.id,
        target=f"patient:{patient.id}",
        detail={"prior_mrn": old_mrn, "mrn": new_mrn},
    )
    return patient
