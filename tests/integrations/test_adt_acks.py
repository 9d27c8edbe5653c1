"""ACKs as each version's receiver expects them: MSH-9 with one, two or three components, ERR-1 before 2.5 and
ERR-2/3/4/8 from 2.5, MSH-3 configurable, and ERR-3 207 only for an internal error (a rule that refuses a message
has its own code)."""

from __future__ import annotations

import hl7
import pytest
from adt_helpers import ack_fields, adt

from areya.config import ConfigError, Settings
from areya.integrations.hl7.service import AdtProcessor


def versioned(message: str, version: str) -> str:
    segments = message.split("\r")
    fields = segments[0].split("|")
    fields[11] = version
    if version in ("2.1", "2.2", "2.3"):
        fields[8] = fields[8].rsplit("^", 1)[0]  # no message structure before 2.3.1
    segments[0] = "|".join(fields)
    return "\r".join(segments)


@pytest.mark.parametrize(
    ("version", "message_type"),
    [("2.1", "ACK"), ("2.2", "ACK^A01"), ("2.3", "ACK^A01"), ("2.3.1", "ACK^A01^ACK"), ("2.5.1", "ACK^A01^ACK")],
)
def test_msh_9_and_12_follow_the_message_version(processor: AdtProcessor, version: str, message_type: str) -> None:
    msh = hl7.parse(processor.handle(versioned(adt("A01", "V1"), version)).ack).segment("MSH")
    assert (str(msh[9]), str(msh[12]), str(msh[3])) == (message_type, version, "AREYA")


def test_err_before_2_5_is_err_1(processor: AdtProcessor) -> None:
    cerner = versioned(adt("A03", "E1", mrn="NOBODY"), "2.3")
    ack = hl7.parse(processor.handle(cerner).ack)
    assert str(ack["MSA.F1"]) == "AE"
    err = ack.segment("ERR")
    assert len(err) == 2  # ERR-1 only
    assert str(err[1]) == "PID^1^3^204&Unknown key identifier&HL70357"


def test_err_from_2_5(processor: AdtProcessor) -> None:
    epic = versioned(adt("A03", "E2", mrn="NOBODY"), "2.5.1")
    fields = ack_fields(processor.handle(epic).ack)
    assert (fields["code"], fields["error_code"], fields["location"]) == ("AE", "204", "PID^1^3")
    err = hl7.parse(processor.handle(epic).ack).segment("ERR")
    assert str(err[1]) == "" and str(err[4]) == "E"


@pytest.mark.parametrize(
    ("messages", "error_code", "says"),
    [
        ([adt("A01", "R1", location="ICU^101^A"), adt("A01", "R2", location="ICU^102^A")], "205", "already admitted"),
        (
            [adt("A01", "R3", location="ICU^101^A"), adt("A01", "R4", mrn="MRN002", location="ICU^101^A")],
            "205",
            "occupied by patient MRN001",
        ),
        (
            [adt("A01", "R5", location="ICU^101^A", at="20240109100000"), adt("A03", "R6", at="20240109090000")],
            "100",
            "before",
        ),
    ],
)
def test_refusals_by_rule_are_not_internal_errors(
    processor: AdtProcessor, messages: list[str], error_code: str, says: str
) -> None:
    *setup, last = messages
    for message in setup:
        assert processor.handle(message).code == "AA"
    fields = ack_fields(processor.handle(last).ack)
    assert fields["code"] == "AE" and fields["error_code"] == error_code and says in fields["error"], fields


def test_207_is_an_internal_error(processor: AdtProcessor, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr("areya.integrations.hl7.service.apply_event", broken)
    fields = ack_fields(processor.handle(adt("A01", "I1")).ack)
    assert fields["code"] == "AE" and fields["error_code"] == "207" and "internal error" in fields["error"]


def test_ack_application_is_configurable(processor: AdtProcessor, settings: Settings) -> None:
    configured = AdtProcessor.from_settings(settings.replace(adt_ack_application="AREYA_PROD"), processor.factory)
    assert str(hl7.parse(configured.handle(adt("A01", "M1")).ack).segment("MSH")[3]) == "AREYA_PROD"
    with pytest.raises(ConfigError, match="AREYA_ADT_ACK_APPLICATION: must not be empty"):
        settings.replace(adt_ack_application="")
