"""HL7 v2 ADT over MLLP: a real listener on a free loopback port, driven by a real socket client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from adt_helpers import FACILITY, LOCATIONS, ack_fields, adt, bed_of, snapshot
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from areya import admin
from areya.admin.refs import bed_ref
from areya.db.models import AdtMessage, AuditEvent, Patient
from areya.integrations.hl7.locations import LocationMap
from areya.integrations.hl7.mllp import MllpClient
from areya.integrations.hl7.service import AdtListener, AdtProcessor

pytestmark = pytest.mark.postgres


@pytest.fixture
def wards(session: Session) -> None:
    admin.add_ward(session, "ICU")
    admin.add_ward(session, "Surgery")
    for label in ("1", "2"):
        admin.add_bed(session, "ICU", label)
    admin.add_bed(session, "Surgery", "1")
    session.commit()


@pytest.fixture
def listener(wards: None, session_factory: Callable[[], Session]) -> Iterator[AdtListener]:
    processor = AdtProcessor(session_factory, LocationMap.from_pairs(LOCATIONS), authority="GENHOSP")  # type: ignore[arg-type]
    running = AdtListener(processor, "127.0.0.1", 0).start()
    yield running
    running.stop()


@pytest.fixture
def client(listener: AdtListener) -> Iterator[MllpClient]:
    with MllpClient("127.0.0.1", listener.port, timeout=30) as connection:
        yield connection


def send(client: MllpClient, message: str) -> dict[str, str]:
    return ack_fields(client.send(message))


def test_a_days_sequence_moves_the_patient_through_the_beds(client: MllpClient, session: Session) -> None:
    steps = [
        (adt("A01", "M1", location="ICU^101^A", at="20240109080000"), "ICU/1", "admitted"),
        (adt("A02", "M2", location="SURG^201^A", prior="ICU^101^A", at="20240109090000"), "Surgery/1", "admitted"),
        (adt("A08", "M3", name="King^Ada^Augusta", at="20240109091500"), "Surgery/1", "admitted"),
        (adt("A03", "M4", name="King^Ada^Augusta", at="20240109120000"), None, "discharged"),
        (
            adt("A13", "M5", name="King^Ada^Augusta", location="SURG^201^A", at="20240109121000"),
            "Surgery/1",
            "admitted",
        ),
    ]
    for message, bed, status in steps:
        fields = send(client, message)
        assert fields["code"] == "AA", fields
        assert fields["type"].startswith("ACK")
        assert bed_of(session, "MRN001") == bed
        assert session.scalar(select(Patient.status).where(Patient.mrn == "MRN001")) == status
    patient = session.scalar(select(Patient).where(Patient.mrn == "MRN001"))
    assert patient is not None and patient.display_name == "Ada Augusta King"
    hour = lambda h, m=0: datetime(2024, 1, 9, h, m, tzinfo=UTC)  # noqa: E731
    history = [(bed_ref(a.bed), a.start_at, a.end_at) for a in patient.assignments]
    assert history == [
        ("ICU/1", hour(8), hour(9)),
        ("Surgery/1", hour(9), hour(12)),  # EVN-2 times
        ("Surgery/1", hour(12, 10), None),
    ]
    rows = list(session.scalars(select(AuditEvent).where(AuditEvent.patient_id == patient.id).order_by(AuditEvent.id)))
    actions = [r.action for r in rows]
    for action in ("patient.admit", "patient.move", "patient.rename", "patient.discharge", "patient.readmit"):
        assert action in actions
    assert actions.count("adt.message") == 5
    assert {r.detail["by"] for r in rows if r.action.startswith(("patient.", "adt."))} == {f"adt:{FACILITY}"}
    assert session.scalar(select(func.count()).select_from(AdtMessage)) == 5


def test_a_resent_message_is_acknowledged_but_applied_once(client: MllpClient, session: Session) -> None:
    first = send(client, adt("A01", "DUP1", location="ICU^101^A"))
    assert first["code"] == "AA" and first["control_id"] == "DUP1"
    before = snapshot(session)
    again = send(client, adt("A01", "DUP1", location="ICU^101^A"))
    assert again["code"] == "AA" and again["control_id"] == "DUP1"
    assert snapshot(session) == before  # nothing applied or recorded a second time
    # the same control id from another facility is another message (here: refused, the patient is in)
    other = send(client, adt("A01", "DUP1", location="ICU^102^A").replace(f"|{FACILITY}|", "|OTHERHOSP|", 1))
    assert other["code"] == "AE" and "already admitted" in other["error"]


@pytest.mark.parametrize(
    ("message", "code", "error_code", "says"),
    [
        (adt("A01", "E2", location="ICU^199^Z"), "AE", "204", "unknown bed"),
        (adt("A03", "E3", mrn="NOBODY"), "AE", "204", "unknown patient MRN 'NOBODY'"),
        (adt("A02", "E4", mrn="NOBODY", location="ICU^102^A"), "AE", "204", "unknown patient"),
        (adt("A02", "E5", location=""), "AR", "101", "PV1-3"),
        (adt("A99", "E6"), "AR", "201", "event 'A99' is not handled"),
        (adt("A01", "E7").replace("ADT^A01", "ORU^R01"), "AR", "200", "is not ADT"),
        (adt("A01", "E8", name=""), "AR", "101", "PID-5"),
        (adt("A01", "E9", authority="ELSEWHERE"), "AR", "101", "assigning authority 'GENHOSP'"),
        (adt("A01", "E10", at="2026XX29"), "AR", "102", "not an HL7 date/time"),
        ("\r".join(adt("A01", "E11").split("\r")[:2]), "AR", "100", "segment PID is missing"),
    ],
)
def test_refused_messages_get_an_err_and_change_nothing(
    client: MllpClient, session: Session, message: str, code: str, error_code: str, says: str
) -> None:
    before = snapshot(session)
    fields = send(client, message)
    assert fields["code"] == code, fields
    assert fields["error_code"] == error_code, fields
    assert says in fields["error"], fields
    assert snapshot(session) == before


def test_out_of_order_messages_are_errors_and_change_nothing(client: MllpClient, session: Session) -> None:
    assert send(client, adt("A01", "O1", location="ICU^101^A", at="20240109100000"))["code"] == "AA"
    assert send(client, adt("A01", "O2", mrn="MRN002", name="Hopper^Grace", location="ICU^102^A"))["code"] == "AA"
    before = snapshot(session)
    occupied = send(client, adt("A02", "O3", location="ICU^102^A"))
    assert occupied["code"] == "AE" and "occupied by patient MRN002" in occupied["error"]
    again = send(client, adt("A01", "O4", location="SURG^201^A"))
    assert again["code"] == "AE" and "already admitted" in again["error"]
    early = send(client, adt("A02", "O5", location="SURG^201^A", at="20240109090000"))  # before the admission
    assert early["code"] == "AE" and "before the current bed stay" in early["error"]
    wrong_prior = send(client, adt("A02", "O6", location="SURG^201^A", prior="ICU^102^A"))
    assert wrong_prior["code"] == "AE" and "PV1-6 says ICU/2" in wrong_prior["error"]
    not_discharged = send(client, adt("A13", "O7", location="ICU^101^A"))
    assert not_discharged["code"] == "AE" and "is not discharged" in not_discharged["error"]
    assert snapshot(session) == before
    assert send(client, adt("A03", "O8", at="20240109110000"))["code"] == "AA"
    twice = send(client, adt("A03", "O9", at="20240109110000"))
    assert twice["code"] == "AE" and "is not admitted" in twice["error"]


def test_malformed_input_is_rejected_and_the_listener_keeps_serving(
    listener: AdtListener, client: MllpClient, session: Session
) -> None:
    before = snapshot(session)
    garbage = ack_fields(client.send("this is not HL7"))
    assert garbage["code"] == "AR" and garbage["error_code"] == "100"
    no_start_block = ack_fields(client.send_raw(b"MSH|^~\\&|x\x1c\r"))
    assert no_start_block["code"] == "AR" and "MLLP" in no_start_block["error"]
    broken_msh = ack_fields(client.send("MSH|^~\\&|PAS|GENHOSP|AREYA|WARD|20240109||ADT^A01|||2.5\rPID|1||X"))
    assert broken_msh["code"] == "AR" and "MSH-10" in broken_msh["error"]
    assert snapshot(session) == before
    # the same connection, then a new one, still work
    assert ack_fields(client.send(adt("A01", "OK1", location="ICU^101^A")))["code"] == "AA"
    with MllpClient("127.0.0.1", listener.port) as second:
        assert ack_fields(second.send(adt("A03", "OK2")))["code"] == "AA"
    assert bed_of(session, "MRN001") is None


def test_cancel_admit_and_cancel_transfer(client: MllpClient, session: Session) -> None:
    assert send(client, adt("A01", "C1", location="ICU^101^A", at="20240109080000"))["code"] == "AA"
    assert send(client, adt("A02", "C2", location="ICU^102^A", at="20240109081000"))["code"] == "AA"
    assert bed_of(session, "MRN001") == "ICU/2"
    assert send(client, adt("A12", "C3", location="ICU^101^A", prior="ICU^102^A", at="20240109082000"))["code"] == "AA"
    assert bed_of(session, "MRN001") == "ICU/1"
    assert send(client, adt("A11", "C4", at="20240109083000"))["code"] == "AA"
    assert bed_of(session, "MRN001") is None
    assert session.scalar(select(Patient.status).where(Patient.mrn == "MRN001")) == "discharged"
