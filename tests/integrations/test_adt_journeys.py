"""A patient's journey through places Areya monitors and places it does not (the emergency department, a general
ward): a PV1-3 location not in ``adt_location_map`` is "not in a monitored bed" (``adt_unknown_location =
"unmonitored"``, the default), or refused with AE 103 (``"reject"``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from adt_helpers import LOCATIONS, ack_fields, adt, bed_of, snapshot
from sqlalchemy import select
from sqlalchemy.orm import Session

from areya import admin
from areya.admin.patients import patient_in_bed_at
from areya.admin.refs import bed_ref, get_bed
from areya.db.models import AuditEvent, Patient
from areya.integrations.hl7.locations import LocationMap
from areya.integrations.hl7.mllp import MllpClient
from areya.integrations.hl7.service import AdtListener, AdtProcessor

ED = "ED^05^A"  # the emergency department: not in the location map
WARD = "GEN^301^B"  # a general ward: not in the location map either


@pytest.fixture
def wards(session: Session) -> None:
    admin.add_ward(session, "ICU")
    admin.add_ward(session, "Surgery")
    admin.add_bed(session, "ICU", "1")
    admin.add_bed(session, "ICU", "2")
    admin.add_bed(session, "Surgery", "1")
    session.commit()


def start(session_factory: Callable[[], Session], unknown: str = "unmonitored") -> AdtListener:
    processor = AdtProcessor(session_factory, LocationMap.from_pairs(LOCATIONS, unknown), authority="GENHOSP")  # type: ignore[arg-type]
    return AdtListener(processor, "127.0.0.1", 0).start()


@pytest.fixture
def client(wards: None, session_factory: Callable[[], Session]) -> Iterator[MllpClient]:
    listener = start(session_factory)
    with MllpClient("127.0.0.1", listener.port, timeout=30) as connection:
        yield connection
    listener.stop()


def send(client: MllpClient, message: str) -> dict[str, str]:
    fields = ack_fields(client.send(message))
    assert fields["code"] == "AA", fields
    return fields


def status(session: Session, mrn: str) -> str | None:
    session.rollback()
    return session.scalar(select(Patient.status).where(Patient.mrn == mrn))


def test_from_the_emergency_department_into_the_icu(client: MllpClient, session: Session) -> None:
    """The review's journey: an A04 at ED^05^A got AE and the patient was never created, so the A02 into the ICU
    got AE too."""
    registered = send(client, adt("A04", "J1", location=ED, at="20240109080000"))
    assert registered["text"] == "admitted MRN001, not in a monitored bed (ED^05^A)"
    assert status(session, "MRN001") == "admitted" and bed_of(session, "MRN001") is None
    send(client, adt("A02", "J2", location="ICU^101^A", prior=ED, at="20240109090000"))
    assert bed_of(session, "MRN001") == "ICU/1"
    # the Epic variant: A04 in the ED, then A01 admits the registered patient into a bed
    send(client, adt("A04", "J3", mrn="MRN002", name="Hopper^Grace", location=ED, at="20240109081000"))
    send(client, adt("A01", "J4", mrn="MRN002", name="Hopper^Grace", location="ICU^102^A", at="20240109091000"))
    assert bed_of(session, "MRN002") == "ICU/2"


def test_from_the_icu_to_a_general_ward_frees_the_bed(client: MllpClient, session: Session) -> None:
    """The review's journey: the A02 to a general ward got AE and Areya kept the patient in the ICU bed, so the next
    admission there was refused and the camera's readings went to the wrong patient."""
    send(client, adt("A01", "W1", location="ICU^101^A", at="20240109080000"))
    moved = send(client, adt("A02", "W2", location=WARD, prior="ICU^101^A", at="20240109100000"))
    assert moved["text"] == "moved MRN001 out of ICU/1, not in a monitored bed (GEN^301^B)"
    assert status(session, "MRN001") == "admitted" and bed_of(session, "MRN001") is None
    patient = session.scalar(select(Patient).where(Patient.mrn == "MRN001"))
    assert patient is not None
    stays = [(bed_ref(a.bed), a.start_at, a.end_at) for a in patient.assignments]
    assert stays == [("ICU/1", datetime(2024, 1, 9, 8, tzinfo=UTC), datetime(2024, 1, 9, 10, tzinfo=UTC))]
    icu1 = get_bed(session, "ICU/1").id
    assert patient_in_bed_at(session, icu1, datetime(2024, 1, 9, 9, tzinfo=UTC)) == patient.id
    assert patient_in_bed_at(session, icu1, datetime(2024, 1, 9, 10, 30, tzinfo=UTC)) is None  # faces: nobody's
    moves = session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.move")).all()
    assert [m.detail["from"] for m in moves] == ["ICU/1"] and moves[0].detail["location"] == WARD
    # the bed is free for the next admission; the first patient can come back from the ward
    send(client, adt("A01", "W3", mrn="MRN002", name="Hopper^Grace", location="ICU^101^A", at="20240109110000"))
    assert bed_of(session, "MRN002") == "ICU/1"
    send(client, adt("A02", "W4", location="ICU^102^A", prior=WARD, at="20240109120000"))
    assert bed_of(session, "MRN001") == "ICU/2"
    # from one unmonitored place to another: acknowledged, nothing to change; then discharged from there
    send(client, adt("A02", "W5", location=WARD, prior="ICU^102^A", at="20240109130000"))
    send(client, adt("A02", "W6", location="GEN^302^A", prior=WARD, at="20240109140000"))
    send(client, adt("A03", "W7", at="20240109150000"))
    assert status(session, "MRN001") == "discharged"
    # discharge cancelled back to the ward: admitted, in no bed
    send(client, adt("A13", "W8", location=WARD, at="20240109151000"))
    assert status(session, "MRN001") == "admitted" and bed_of(session, "MRN001") is None


def test_a_stale_pv1_6_is_still_an_error(client: MllpClient, session: Session) -> None:
    send(client, adt("A01", "S1", location="ICU^101^A", at="20240109080000"))
    before = snapshot(session)
    stale = ack_fields(client.send(adt("A02", "S2", location="ICU^102^A", prior=ED, at="20240109090000")))
    assert (
        stale["code"] == "AE" and "PV1-6 says ED^05^A (not monitored) but patient MRN001 is in ICU/1" in stale["error"]
    )
    assert snapshot(session) == before


def test_the_reject_policy_refuses_unknown_locations(
    wards: None, session: Session, session_factory: Callable[[], Session]
) -> None:
    listener = start(session_factory, "reject")
    try:
        with MllpClient("127.0.0.1", listener.port, timeout=30) as client:
            before = snapshot(session)
            for message in (adt("A04", "R1", location=ED), adt("A01", "R2", location="ICU^999^Q")):
                fields = ack_fields(client.send(message))
                assert fields["code"] == "AE" and fields["error_code"] == "103", fields
                assert "not in adt_location_map" in fields["error"] and fields["location"] == "PV1^1^3"
            assert snapshot(session) == before
            send(client, adt("A01", "R3", location="ICU^101^A"))
            refused = ack_fields(client.send(adt("A02", "R4", location=WARD, at="20240109090000")))
            assert refused["code"] == "AE" and refused["error_code"] == "103"
        assert bed_of(session, "MRN001") == "ICU/1"
    finally:
        listener.stop()


def test_unknown_location_setting(tmp_path: object) -> None:
    from areya.config import ConfigError, load_settings

    env = {"AREYA_DATA_DIR": str(tmp_path)}
    assert load_settings(env=env).adt_unknown_location == "unmonitored"
    assert load_settings(env={**env, "AREYA_ADT_UNKNOWN_LOCATION": "reject"}).adt_unknown_location == "reject"
    with pytest.raises(ConfigError, match="AREYA_ADT_UNKNOWN_LOCATION: must be one of unmonitored, reject"):
        load_settings(env={**env, "AREYA_ADT_UNKNOWN_LOCATION": "guess"})
