"""MSH-10 makes a message applied once: a resend (the same message, perhaps stamped again in MSH-7) is acknowledged
AA without applying it twice; the same control id on a different message is refused (AR 205) and audited - before,
it was silently acknowledged as a duplicate and the new message lost."""

from __future__ import annotations

import pytest
from adt_helpers import ack_fields, adt, audit_rows, bed_of, state
from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.db.models import AdtMessage
from areya.integrations.hl7.access import Origin
from areya.integrations.hl7.messages import fingerprint
from areya.integrations.hl7.service import AdtProcessor

pytestmark = pytest.mark.postgres  # a migration adds the fingerprint column

PEER = Origin("10.20.30.40:51234", "mirth.genhosp.test")


def test_a_resend_is_acknowledged_and_a_reused_control_id_refused(processor: AdtProcessor, session: Session) -> None:
    first = adt("A01", "C100", location="ICU^101^A", at="20240109080000")
    assert processor.handle(first, PEER).code == "AA"
    assert session.scalar(select(AdtMessage.content_sha256)) == fingerprint(first)
    before = state(session)
    again = processor.handle(first.replace("\r", "\n"), PEER)  # the same message (LF segments: the same to Areya)
    assert again.code == "AA" and again.text.startswith("duplicate of message C100")
    restamped = first.replace("|20240109080000||ADT", "|20240109080500||ADT", 1)  # a new MSH-7 only
    assert restamped != first and processor.handle(restamped, PEER).code == "AA"
    # a different message with the same control id: a discharge that would otherwise be lost
    reused = ack_fields(processor.handle(adt("A03", "C100", at="20240109090000"), PEER).ack)
    assert reused["code"] == "AR" and reused["error_code"] == "205" and reused["location"] == "MSH^1^10", reused
    assert "was used by a different message" in reused["error"]
    assert state(session) == before
    (refused,) = audit_rows(session, "adt.refused")
    assert refused["stage"] == "control id" and refused["control_id"] == "C100" and refused["event"] == "A03"
    assert refused["peer"] == "10.20.30.40:51234" and refused["client_cert"] == "mirth.genhosp.test"
    assert bed_of(session, "MRN001") == "ICU/1"
    assert processor.handle(adt("A03", "C101", at="20240109090000"), PEER).code == "AA"


def test_messages_applied_before_the_fingerprint_was_kept_are_still_duplicates(
    processor: AdtProcessor, session: Session
) -> None:
    first = adt("A01", "OLD1", location="ICU^101^A")
    assert processor.handle(first).code == "AA"
    session.rollback()
    session.execute(AdtMessage.__table__.update().values(content_sha256=None))
    session.commit()
    assert processor.handle(adt("A03", "OLD1")).text.startswith("duplicate of message OLD1")
