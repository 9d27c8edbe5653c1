"""MSH-18: a message is decoded by its declared character set (HL7 table 0211) and answered in it; an unknown set is
refused (AR 103), bytes that are not valid in the set too (AR 102). Before: every block was read as UTF-8, so an
ISO-8859-1 "ü" was stored as "\ufffd" and acknowledged AA."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import hl7
import pytest
from adt_helpers import LOCATIONS, ack_fields, adt, snapshot
from sqlalchemy import select
from sqlalchemy.orm import Session

from areya import admin
from areya.config import HL7_CHARSETS, ConfigError, Settings
from areya.db.models import Patient
from areya.integrations.hl7.charsets import CODECS, declared
from areya.integrations.hl7.locations import LocationMap
from areya.integrations.hl7.mllp import MllpClient, frame
from areya.integrations.hl7.service import AdtListener, AdtProcessor


def with_charset(message: str, charset: str) -> str:
    """MSH-18 set (MSH-13 to MSH-17 empty)."""
    segments = message.split("\r")
    segments[0] += "|" * 6 + charset
    return "\r".join(segments)


def start(session_factory: Callable[[], Session], default: str = "UNICODE UTF-8") -> AdtListener:
    locations = LocationMap.from_pairs(LOCATIONS)
    processor = AdtProcessor(session_factory, locations, authority="GENHOSP", charset=default)  # type: ignore[arg-type]
    return AdtListener(processor, "127.0.0.1", 0).start()


@pytest.fixture
def wards(session: Session) -> None:
    admin.add_ward(session, "ICU")
    admin.add_bed(session, "ICU", "1")
    admin.add_bed(session, "ICU", "2")
    session.commit()


@pytest.fixture
def client(wards: None, session_factory: Callable[[], Session]) -> Iterator[MllpClient]:
    listener = start(session_factory)
    with MllpClient("127.0.0.1", listener.port, timeout=30) as connection:
        yield connection
    listener.stop()


def name_of(session: Session, mrn: str) -> str | None:
    session.rollback()
    return session.scalar(select(Patient.display_name).where(Patient.mrn == mrn))


def test_iso_8859_1_is_decoded_and_answered_in_it(client: MllpClient, session: Session) -> None:
    message = with_charset(adt("A01", "L1", name="Müller^Jürgen", location="ICU^101^A"), "8859/1")
    data = message.encode("iso8859-1")
    assert b"M\xfcller" in data
    ack = client.send_raw(frame(data))
    fields = ack_fields(ack)
    assert fields["code"] == "AA", fields
    assert name_of(session, "MRN001") == "Jürgen Müller"
    assert str(hl7.parse(ack)["MSH.F18"]) == "8859/1"  # the ACK says (and is written in) the same set


def test_utf_8_declared_or_by_default(client: MllpClient, session: Session) -> None:
    message = with_charset(adt("A01", "U1", name="Şahin^Zoë"), "UNICODE UTF-8")
    assert ack_fields(client.send_raw(frame(message.encode("utf-8"))))["code"] == "AA"
    assert name_of(session, "MRN001") == "Zoë Şahin"
    undeclared = adt("A01", "U2", mrn="MRN002", name="Øvergård^Åse")  # no MSH-18: adt_default_charset (UTF-8)
    fields = ack_fields(client.send_raw(frame(undeclared.encode("utf-8"))))
    assert fields["code"] == "AA", fields
    assert name_of(session, "MRN002") == "Åse Øvergård"


@pytest.mark.parametrize(
    ("message", "encoding", "error_code", "says"),
    [
        (with_charset(adt("A01", "K1"), "KLINGON"), "ascii", "103", "character set 'KLINGON' is not supported"),
        (with_charset(adt("A01", "K2"), "UNICODE UTF-16"), "ascii", "103", "cannot be carried over MLLP"),
        (with_charset(adt("A01", "K3", name="Müller^Jan"), "ASCII"), "iso8859-1", "102", "byte 0xfc"),
        (with_charset(adt("A01", "K4", name="Müller^Jan"), "UNICODE UTF-8"), "iso8859-1", "102", "not valid"),
        (adt("A01", "K5", name="Müller^Jan"), "iso8859-1", "102", "adt_default_charset 'UNICODE UTF-8'"),
    ],
)
def test_unknown_sets_and_bad_bytes_are_refused(
    client: MllpClient, session: Session, message: str, encoding: str, error_code: str, says: str
) -> None:
    before = snapshot(session)
    fields = ack_fields(client.send_raw(frame(message.encode(encoding))))
    assert fields["code"] == "AR" and fields["error_code"] == error_code, fields
    assert fields["location"] == "MSH^1^18" and says in fields["error"], fields
    assert fields["control_id"] == message.split("|")[9]  # the ACK still names the message
    assert snapshot(session) == before


def test_a_latin_1_feed_without_msh_18(wards: None, session: Session, session_factory: Callable[[], Session]) -> None:
    listener = start(session_factory, default="8859/1")
    try:
        with MllpClient("127.0.0.1", listener.port, timeout=30) as client:
            message = adt("A01", "D1", name="Grüber^Hans", location="ICU^101^A")  # a Cerner-style 2.3 feed
            assert ack_fields(client.send_raw(frame(message.encode("iso8859-1"))))["code"] == "AA"
        assert name_of(session, "MRN001") == "Hans Grüber"
    finally:
        listener.stop()


def test_charset_setting_and_table(settings: Settings) -> None:
    assert set(CODECS) == set(HL7_CHARSETS)
    assert settings.adt_default_charset == "UNICODE UTF-8"
    assert settings.replace(adt_default_charset="8859/15").adt_default_charset == "8859/15"
    with pytest.raises(ConfigError, match="AREYA_ADT_DEFAULT_CHARSET: must be an HL7 character set"):
        settings.replace(adt_default_charset="latin-1")
    assert declared(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5||||||8859/1~ISO IR87\rPID|") == "8859/1"
    assert declared(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID|") == ""
