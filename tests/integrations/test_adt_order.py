"""Back-dated messages (a feed replayed out of order, a late correction) must not create bed stays that overlap
the history the worker attributes camera readings by: such a message is refused (AE) and changes nothing."""

from __future__ import annotations

from adt_helpers import ack_fields, adt, bed_of, snapshot
from sqlalchemy.orm import Session

from areya.integrations.hl7.service import AdtProcessor


def ok(processor: AdtProcessor, message: str) -> None:
    result = processor.handle(message)
    assert result.code == "AA", result.text


def refused(processor: AdtProcessor, session: Session, message: str, says: str) -> None:
    before = snapshot(session)
    fields = ack_fields(processor.handle(message).ack)
    assert fields["code"] == "AE" and says in fields["error"], fields
    assert snapshot(session) == before


def test_a_back_dated_admission_cannot_overlap_the_beds_history(processor: AdtProcessor, session: Session) -> None:
    ok(processor, adt("A01", "H1", location="ICU^101^A", at="20240109080000"))
    ok(processor, adt("A02", "H2", location="ICU^102^A", at="20240109100000"))
    # ICU/1 is free now, but was MRN001's until 10:00: an admission into it at 09:00 would make 09:00-10:00 two
    # patients' (before: accepted, and the worker's readings of that hour went to the later patient)
    late = adt("A01", "H3", mrn="MRN002", name="Hopper^Grace", location="ICU^101^A", at="20240109090000")
    refused(processor, session, late, "was occupied by patient MRN001 until 2024-01-09T10:00:00+00:00")
    ok(processor, adt("A01", "H4", mrn="MRN002", name="Hopper^Grace", location="ICU^101^A", at="20240109103000"))
    assert bed_of(session, "MRN002") == "ICU/1"


def test_a_back_dated_discharge_or_readmission_is_refused(processor: AdtProcessor, session: Session) -> None:
    ok(processor, adt("A01", "D1", location="ICU^101^A", at="20240109080000"))
    ok(processor, adt("A02", "D2", location="ICU^102^A", at="20240109100000"))
    # before: the stay in ICU/2 was cut to nothing and the discharge recorded at 09:00
    refused(processor, session, adt("A03", "D3", at="20240109090000"), "before the current bed stay started")
    ok(processor, adt("A03", "D4", at="20240109120000"))
    refused(processor, session, adt("A01", "D5", location="ICU^101^A", at="20240109110000"), "was discharged at")
    ok(processor, adt("A01", "D6", location="ICU^101^A", at="20240109130000"))


def test_a_back_dated_return_to_a_bed_is_refused(processor: AdtProcessor, session: Session) -> None:
    ok(processor, adt("A01", "R1", location="ICU^101^A", at="20240109080000"))
    ok(processor, adt("A02", "R2", location="GEN^301^B", at="20240109100000"))  # to a ward Areya does not monitor
    back = adt("A02", "R3", location="ICU^102^A", at="20240109090000")
    refused(processor, session, back, "was in bed ICU/1 until 2024-01-09T10:00:00+00:00")
    ok(processor, adt("A02", "R4", location="ICU^102^A", at="20240109110000"))
    assert bed_of(session, "MRN001") == "ICU/2"
