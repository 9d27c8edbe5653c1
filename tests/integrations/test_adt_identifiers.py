"""PID-3 carries several identifiers (MRN, SSN, account, visit numbers...): the MRN is the one whose type (PID-3.5)
is ``adt_identifier_type`` (default MR), never the first one whatever its type."""

from __future__ import annotations

import pytest
from adt_helpers import ack_fields, adt, snapshot
from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.config import ConfigError, Settings
from areya.db.models import Patient
from areya.integrations.hl7.service import AdtProcessor


def with_pid3(message: str, pid3: str) -> str:
    segments = message.split("\r")
    fields = segments[2].split("|")
    fields[3] = pid3
    segments[2] = "|".join(fields)
    return "\r".join(segments)


def mrns(session: Session) -> list[str]:
    session.rollback()
    return list(session.scalars(select(Patient.mrn).order_by(Patient.id)))


def test_the_mrn_is_the_identifier_of_type_mr_not_the_ssn(processor: AdtProcessor, session: Session) -> None:
    epic = with_pid3(adt("A01", "I1"), "123-45-6789^^^SSA^SS~E1234567^^^EPI^MR~99001^^^GENHOSP^AN")
    assert processor.handle(epic).code == "AA"
    assert mrns(session) == ["E1234567"]


def test_an_untyped_identifier_is_taken_only_when_none_has_the_type(processor: AdtProcessor, session: Session) -> None:
    cerner_23 = with_pid3(adt("A01", "I2", name="Hopper^Grace"), "123-45-6789^^^SSA^SS~445566^^^GENHOSP")
    assert processor.handle(cerner_23).code == "AA"
    assert mrns(session) == ["445566"]
    before = snapshot(session)
    only_ssn = ack_fields(processor.handle(with_pid3(adt("A01", "I3"), "123-45-6789^^^SSA^SS")).ack)
    assert only_ssn["code"] == "AR" and only_ssn["error_code"] == "101" and only_ssn["location"] == "PID^1^3"
    assert "no identifier of type 'MR' (or no type)" in only_ssn["error"]
    assert snapshot(session) == before


def test_the_type_and_authority_are_configurable(session: Session, processor: AdtProcessor) -> None:
    mrn_typed = AdtProcessor(processor.factory, processor.locations, authority="GENHOSP", identifier_type="MRN")
    message = with_pid3(adt("A01", "I4"), "111^^^OTHER^MRN~222^^^GENHOSP^MR~333^^^GENHOSP^MRN")
    assert mrn_typed.handle(message).code == "AA"
    assert mrns(session) == ["333"]
    any_type = AdtProcessor(processor.factory, processor.locations, identifier_type="")
    assert any_type.handle(with_pid3(adt("A01", "I5"), "444^^^SSA^SS~555^^^GENHOSP^MR")).code == "AA"
    assert mrns(session) == ["333", "444"]  # empty: the first identifier, as before


def test_identifier_type_setting(settings: Settings) -> None:
    assert settings.adt_identifier_type == "MR"
    assert settings.replace(adt_identifier_type="MRN").adt_identifier_type == "MRN"
    assert settings.replace(adt_identifier_type="").adt_identifier_type == ""
    with pytest.raises(ConfigError, match="AREYA_ADT_IDENTIFIER_TYPE: must be an HL7 code"):
        settings.replace(adt_identifier_type="M R")
