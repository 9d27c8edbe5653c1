"""MSH-11 (processing id) and MSH-12 (version): a training (T) or debugging (D) message never changes production,
and a message of a version Areya does not read is refused: AR 202 / AR 203 (HL7 table 0357). Before, both were
applied (versions 3.0, 9.9, XYZ and an empty one included)."""

from __future__ import annotations

import hl7
import pytest
from adt_helpers import LOCATIONS, ack_fields, adt, snapshot
from sqlalchemy.orm import Session

from areya.config import ConfigError, Settings
from areya.integrations.hl7.service import AdtProcessor


def with_msh(message: str, *, processing: str = "P", version: str = "2.5") -> str:
    segments = message.split("\r")
    fields = segments[0].split("|")
    fields[10], fields[11] = processing, version
    segments[0] = "|".join(fields)
    return "\r".join(segments)


@pytest.mark.parametrize("version", ["3.0", "9.9", "XYZ", "", "2.9", "2.10", "2", "v2.5"])
def test_unsupported_versions_get_ar_203(processor: AdtProcessor, session: Session, version: str) -> None:
    before = snapshot(session)
    result = processor.handle(with_msh(adt("A01", "V1", location="ICU^101^A"), version=version))
    fields = ack_fields(result.ack)
    assert fields["code"] == "AR" and fields["error_code"] == "203" and fields["location"] == "MSH^1^12", fields
    assert str(hl7.parse(result.ack)["MSH.F12"]) == "2.5"  # answered in a version the sender can read
    assert snapshot(session) == before


@pytest.mark.parametrize("version", ["2.1", "2.3", "2.3.1", "2.4", "2.5.1", "2.6", "2.7.1", "2.8", "2.8.2"])
def test_v2_versions_are_read(processor: AdtProcessor, version: str) -> None:
    result = processor.handle(with_msh(adt("A01", "V2"), version=version))
    assert result.code == "AA", result.text
    assert str(hl7.parse(result.ack)["MSH.F12"]) == version


@pytest.mark.parametrize("processing", ["T", "D", ""])
def test_training_and_debug_messages_do_not_change_production(
    processor: AdtProcessor, session: Session, processing: str
) -> None:
    before = snapshot(session)
    result = processor.handle(with_msh(adt("A01", "T1", location="ICU^101^A"), processing=processing))
    fields = ack_fields(result.ack)
    assert fields["code"] == "AR" and fields["error_code"] == "202" and fields["location"] == "MSH^1^11", fields
    assert "adt_processing_ids: P" in fields["error"]
    assert snapshot(session) == before


def test_a_test_instance_may_apply_training_messages(processor: AdtProcessor, settings: Settings) -> None:
    configured = settings.replace(adt_processing_ids="T, P", adt_location_map=LOCATIONS)
    assert configured.adt_processing_ids == ("T", "P")
    test_instance = AdtProcessor.from_settings(configured, processor.factory)
    result = test_instance.handle(with_msh(adt("A01", "T2", location="ICU^101^A"), processing="T"))
    assert result.code == "AA", result.text
    assert str(hl7.parse(result.ack)["MSH.F11"]) == "T"  # the ACK mirrors the processing id
    with pytest.raises(ConfigError, match="AREYA_ADT_PROCESSING_IDS: must be one or more of P, T, D"):
        settings.replace(adt_processing_ids="X")
    with pytest.raises(ConfigError, match="AREYA_ADT_PROCESSING_IDS"):
        settings.replace(adt_processing_ids="")
