"""FHIR Encounters from the ADT feed: one Encounter per hospital stay with its own id, a status history that
follows the events (a cancelled discharge keeps the start, a cancelled admission is ``cancelled``, an outpatient
registration is ambulatory and ``arrived``), valid R4 (fhir.resources)."""

from __future__ import annotations

from typing import Any

from adt_helpers import ack_fields, adt
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.admin.encounters import encounter_stays
from areya.db.models import Encounter, Patient
from areya.integrations.fhir.resources import encounter_resource
from areya.integrations.hl7.service import AdtProcessor

BED = "ICU^101^A"  # ICU/1 in the tests' location map
ED = "ED^05^A"  # the emergency department: not monitored


def apply(processor: AdtProcessor, *messages: str) -> None:
    for message in messages:
        fields = ack_fields(processor.handle(message).ack)
        assert fields["code"] == "AA", fields


def encounters(session: Session, mrn: str = "MRN001") -> list[dict[str, Any]]:
    """The patient's Encounters as FHIR resources, oldest first, each validated as R4."""
    session.rollback()
    patient = session.scalars(select(Patient).where(Patient.mrn == mrn)).one()
    out = []
    for row in session.scalars(select(Encounter).where(Encounter.patient_id == patient.id).order_by(Encounter.id)):
        resource = encounter_resource(row, patient, encounter_stays(session, row))
        get_fhir_model_class("Encounter").model_validate(resource)
        out.append(resource)
    return out


def test_a_readmission_is_a_new_encounter_and_the_first_keeps_its_history(
    processor: AdtProcessor, session: Session
) -> None:
    apply(
        processor,
        adt("A01", "R1", location=BED, at="20240109080000"),
        adt("A03", "R2", at="20240109120000"),
        adt("A01", "R3", location=BED, at="20240110090000"),
    )
    first, second = encounters(session)
    assert first["id"] != second["id"]
    assert first["status"] == "finished" and first["period"] == {
        "start": "2024-01-09T08:00:00+00:00",
        "end": "2024-01-09T12:00:00+00:00",
    }
    assert [h["status"] for h in first["statusHistory"]] == ["in-progress", "finished"]
    assert [loc["period"]["start"] for loc in first["location"]] == ["2024-01-09T08:00:00+00:00"]
    assert second["status"] == "in-progress" and second["period"] == {"start": "2024-01-10T09:00:00+00:00"}
    assert second["class"]["code"] == "IMP"


def test_a_cancelled_discharge_reopens_the_stay_from_its_start(processor: AdtProcessor, session: Session) -> None:
    apply(
        processor,
        adt("A01", "C1", location=BED, at="20240109080000"),
        adt("A03", "C2", at="20240109120000"),
        adt("A13", "C3", location=BED, at="20240109121000"),
    )
    (encounter,) = encounters(session)
    assert encounter["status"] == "in-progress"
    assert encounter["period"] == {"start": "2024-01-09T08:00:00+00:00"}  # not reset to the A13's time
    assert encounter["statusHistory"] == [{"status": "in-progress", "period": {"start": "2024-01-09T08:00:00+00:00"}}]
    patient = session.scalars(select(Patient).where(Patient.mrn == "MRN001")).one()
    assert patient.admitted_at.isoformat() == "2024-01-09T08:00:00+00:00"
    # the bed stays show the gap the discharge made
    assert [loc["status"] for loc in encounter["location"]] == ["completed", "active"]


def test_a_cancelled_admission_is_cancelled_not_finished(processor: AdtProcessor, session: Session) -> None:
    apply(processor, adt("A01", "X1", location=BED, at="20240109080000"), adt("A11", "X2", at="20240109083000"))
    (encounter,) = encounters(session)
    assert encounter["status"] == "cancelled"
    assert encounter["period"]["end"] == "2024-01-09T08:30:00+00:00"
    assert [h["status"] for h in encounter["statusHistory"]] == ["in-progress", "cancelled"]


def test_an_outpatient_registration_is_ambulatory_until_admitted(processor: AdtProcessor, session: Session) -> None:
    apply(processor, adt("A04", "O1", location=ED, at="20240109080000"))
    (registered,) = encounters(session)
    assert registered["class"]["code"] == "AMB" and registered["status"] == "arrived"  # not an inpatient in progress
    apply(processor, adt("A01", "O2", location=BED, at="20240109093000"))
    (admitted,) = encounters(session)
    assert admitted["id"] == registered["id"]  # the same stay
    assert admitted["class"]["code"] == "IMP" and admitted["status"] == "in-progress"
    assert admitted["period"] == {"start": "2024-01-09T08:00:00+00:00"}
    assert [(h["class"]["code"], h["period"]) for h in admitted["classHistory"]] == [
        ("AMB", {"start": "2024-01-09T08:00:00+00:00", "end": "2024-01-09T09:30:00+00:00"}),
        ("IMP", {"start": "2024-01-09T09:30:00+00:00"}),
    ]
    assert [h["status"] for h in admitted["statusHistory"]] == ["arrived", "in-progress"]
    session.rollback()
    assert session.scalars(select(Encounter.version)).one() == 2  # meta.versionId: one change
