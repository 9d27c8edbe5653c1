"""HL7 merges: A40 (merge patient) and A34 (merge patient, id only) fold the record of MRG-1 into PID-3's, A47
changes a patient's identifier. Refused before: AR 201."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from adt_helpers import LOCATIONS, ack_fields, adt, audit_rows, bed_of, snapshot
from sqlalchemy import select
from sqlalchemy.orm import Session

from areya import admin
from areya.admin.refs import bed_ref
from areya.alerts.lifecycle import open_alert
from areya.db.models import AdtMessage, Alert, AuditEvent, ObservationMinute, Patient
from areya.integrations.hl7.locations import LocationMap
from areya.integrations.hl7.mllp import MllpClient
from areya.integrations.hl7.service import AdtListener, AdtProcessor

pytestmark = pytest.mark.postgres  # bulk updates of every table that points at a patient


@pytest.fixture
def client(session: Session, session_factory: Callable[[], Session]) -> Iterator[MllpClient]:
    admin.add_ward(session, "ICU")
    admin.add_bed(session, "ICU", "1")
    admin.add_bed(session, "ICU", "2")
    session.commit()
    processor = AdtProcessor(session_factory, LocationMap.from_pairs(LOCATIONS), authority="GENHOSP")  # type: ignore[arg-type]
    listener = AdtListener(processor, "127.0.0.1", 0).start()
    with MllpClient("127.0.0.1", listener.port, timeout=30) as connection:
        yield connection
    listener.stop()


def merge(event: str, control_id: str, surviving: str, prior: str, *, name: str = "Lovelace^Ada") -> str:
    """An A40 / A34 / A47: PID-3 the surviving identifier, MRG-1 the prior one (Epic-style, with types)."""
    segments = adt(event, control_id, surviving, name=name, at="20240109120000").split("\r")
    segments.insert(3, f"MRG|{prior}^^^GENHOSP^MR~123-45-6789^^^SSA^SS")
    return "\r".join(segments)


def minute(session: Session, mrn: str, hour: int, minute: int = 0) -> None:
    session.rollback()  # a fresh transaction: one begun before the listener's last write cannot write (SQLite)
    patient = session.scalar(select(Patient).where(Patient.mrn == mrn))
    assert patient is not None
    at = datetime(2024, 1, 9, hour, minute, tzinfo=UTC)
    session.add(ObservationMinute(patient_id=patient.id, minute=at, n_obs=1, n_sad=1, mean_p_sad=0.9))
    session.commit()


def ok(client: MllpClient, message: str) -> dict[str, str]:
    fields = ack_fields(client.send(message))
    assert fields["code"] == "AA", fields
    return fields


def test_a40_folds_the_prior_record_into_the_surviving_one(client: MllpClient, session: Session) -> None:
    # MRN001's earlier stay; then the emergency registration under a temporary MRN999, admitted into ICU/1
    ok(client, adt("A01", "P1", "MRN001", location="ICU^102^A", at="20240108080000"))
    ok(client, adt("A03", "P2", "MRN001", at="20240108180000"))
    ok(client, adt("A01", "P3", "MRN999", name="Unknown^Female", location="ICU^101^A", at="20240109080000"))
    minute(session, "MRN001", 9)  # both have readings, at different minutes
    minute(session, "MRN999", 10)
    temporary = session.scalar(select(Patient).where(Patient.mrn == "MRN999"))
    assert temporary is not None
    open_alert(session, "negative_emotion", patient_id=temporary.id, ward_id=temporary.assignments[0].bed.ward_id)
    session.commit()
    fields = ok(client, merge("A40", "P4", "MRN001", "MRN999"))
    assert fields["text"] == "merged MRN999 into MRN001"
    session.rollback()
    assert session.scalar(select(Patient).where(Patient.mrn == "MRN999")) is None
    survivor = session.scalar(select(Patient).where(Patient.mrn == "MRN001"))
    assert survivor is not None and survivor.status == "admitted" and survivor.display_name == "Ada Lovelace"
    assert bed_of(session, "MRN001") == "ICU/1"  # the current stay is the survivor's: the camera's faces are hers
    stays = [(bed_ref(a.bed), a.end_at is None) for a in survivor.assignments]
    assert stays == [("ICU/2", False), ("ICU/1", True)]
    assert session.scalar(select(Alert.patient_id)) == survivor.id
    minutes = session.scalars(select(ObservationMinute.patient_id)).all()
    assert minutes == [survivor.id, survivor.id]
    assert set(session.scalars(select(AdtMessage.patient_id))) == {survivor.id}
    admits = session.scalars(select(AuditEvent.patient_id).where(AuditEvent.action == "patient.admit")).all()
    assert admits == [survivor.id, survivor.id]  # the prior record's audit trail is the survivor's now
    (merged,) = audit_rows(session, "patient.merge")
    assert merged["prior_mrn"] == "MRN999" and merged["mrn"] == "MRN001" and merged["by"] == "adt:GENHOSP"
    assert merged["rows_moved"]["bed_assignments"] == 1 and merged["rows_moved"]["alerts"] == 1
    message_rows = audit_rows(session, "adt.message")
    assert message_rows[-1]["event"] == "A40" and message_rows[-1]["prior_mrn"] == "MRN999"
    # the merged MRN is gone: a message for it is an unknown patient; the survivor goes on
    gone = ack_fields(client.send(adt("A03", "P5", "MRN999", at="20240109130000")))
    assert gone["code"] == "AE" and gone["error_code"] == "204"
    ok(client, adt("A03", "P6", "MRN001", at="20240109130000"))


def test_a40_to_a_new_identifier_renames_and_a_prior_unknown_is_nothing_to_merge(
    client: MllpClient, session: Session
) -> None:
    ok(client, adt("A01", "N1", "TEMP42", location="ICU^101^A"))
    assert ok(client, merge("A40", "N2", "MRN042", "TEMP42"))["text"] == "TEMP42 is now MRN042"
    assert bed_of(session, "MRN042") == "ICU/1"
    before = snapshot(session)["patients"]
    assert ok(client, merge("A34", "N3", "MRN042", "NEVERSEEN"))["text"] == "nothing to merge: NEVERSEEN is not known"
    assert snapshot(session)["patients"] == before


def test_a_merge_of_two_patients_in_beds_is_refused(client: MllpClient, session: Session) -> None:
    ok(client, adt("A01", "B1", "MRN001", location="ICU^101^A"))
    ok(client, adt("A01", "B2", "MRN002", name="Hopper^Grace", location="ICU^102^A"))
    before = snapshot(session)
    both = ack_fields(client.send(merge("A40", "B3", "MRN001", "MRN002")))
    assert both["code"] == "AE" and both["error_code"] == "205" and "both in a monitored bed" in both["error"]
    same = ack_fields(client.send(merge("A40", "B4", "MRN001", "MRN001")))
    assert same["code"] == "AR" and same["error_code"] == "205"
    no_mrg = ack_fields(client.send(adt("A40", "B5", "MRN001")))
    assert no_mrg["code"] == "AR" and "segment MRG is missing" in no_mrg["error"]
    assert snapshot(session) == before
    # both with readings for the same minute: two people for Areya
    ok(client, adt("A03", "B6", "MRN002", at="20240109090000"))
    minute(session, "MRN001", 8, 30)
    minute(session, "MRN002", 8, 30)
    before = snapshot(session)
    overlap = ack_fields(client.send(merge("A40", "B7", "MRN001", "MRN002")))
    assert overlap["code"] == "AE" and "same minutes" in overlap["error"]
    assert snapshot(session) == before


def test_a34_merges_and_a47_changes_the_identifier(client: MllpClient, session: Session) -> None:
    ok(client, adt("A01", "C1", "MRN001", location="ICU^101^A", at="20240109080000"))
    ok(client, adt("A03", "C2", "MRN001", at="20240109083000"))
    ok(client, adt("A01", "C3", "MRN777", location="ICU^102^A", at="20240109090000"))
    assert ok(client, merge("A34", "C4", "MRN001", "MRN777"))["text"] == "merged MRN777 into MRN001"
    assert bed_of(session, "MRN001") == "ICU/2"
    assert ok(client, merge("A47", "C5", "MRN100", "MRN001"))["text"] == "MRN001 is now MRN100"
    assert bed_of(session, "MRN100") == "ICU/2"
    (changed,) = audit_rows(session, "patient.mrn_change")
    assert changed["prior_mrn"] == "MRN001" and changed["mrn"] == "MRN100"
    ok(client, adt("A01", "C6", "MRN200", name="Hopper^Grace"))
    before = snapshot(session)
    taken = ack_fields(client.send(merge("A47", "C7", "MRN200", "MRN100")))
    assert taken["code"] == "AE" and taken["error_code"] == "205" and "that is a merge (A40)" in taken["error"]
    assert snapshot(session) == before
