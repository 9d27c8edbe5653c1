"""``areya adt send FILE`` replays a file of messages to a running listener; ``areya adt`` settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from adt_helpers import LOCATIONS, adt, bed_of
from click.testing import CliRunner
from sqlalchemy.orm import Session

from areya import admin
from areya.cli import cli
from areya.config import ConfigError, load_settings
from areya.integrations.hl7.locations import LocationMap
from areya.integrations.hl7.service import AdtListener, AdtProcessor


@pytest.fixture
def listener(session: Session, session_factory: Callable[[], Session]) -> Iterator[AdtListener]:
    admin.add_ward(session, "ICU")
    admin.add_bed(session, "ICU", "1")
    admin.add_bed(session, "ICU", "2")
    session.commit()
    processor = AdtProcessor(session_factory, LocationMap.from_pairs(LOCATIONS))  # type: ignore[arg-type]
    running = AdtListener(processor, "127.0.0.1", 0).start()
    yield running
    running.stop()


def test_send_replays_a_file_and_reports_each_ack(listener: AdtListener, session: Session, tmp_path: Path) -> None:
    feed = tmp_path / "day.hl7"
    messages = [
        adt("A01", "F1", location="ICU^101^A"),
        adt("A02", "F2", location="ICU^102^A", at="20240109083000"),
        adt("A02", "F3", mrn="NOBODY", location="ICU^101^A", at="20240109084000"),
    ]
    feed.write_text("\n\n".join(m.replace("\r", "\n") for m in messages) + "\n")  # LF segments, blank lines
    result = CliRunner().invoke(
        cli,
        ["adt", "send", str(feed), "--host", "127.0.0.1", "--port", str(listener.port)],
        env={"AREYA_DATA_DIR": str(tmp_path / "var")},
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("F1 ADT^A01^ADT_A01 AA admitted MRN001 to ICU/1")
    assert lines[1].startswith("F2 ADT^A02^ADT_A01 AA moved MRN001 to ICU/2")
    assert lines[2].startswith("F3 ADT^A02^ADT_A01 AE unknown patient MRN 'NOBODY'")
    assert result.exit_code == 1  # one message was not accepted
    assert bed_of(session, "MRN001") == "ICU/2"


def test_send_without_a_listener_is_one_error_line(tmp_path: Path) -> None:
    feed = tmp_path / "one.hl7"
    feed.write_text(adt("A01", "X1"))
    result = CliRunner().invoke(
        cli,
        ["adt", "send", str(feed), "--host", "127.0.0.1", "--port", "1"],
        env={"AREYA_DATA_DIR": str(tmp_path / "var")},
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ADT listener 127.0.0.1:1:")


def test_location_map_setting(tmp_path: Path) -> None:
    config = tmp_path / "areya.toml"
    config.write_text('[adt]\nadt_port = 2600\nadt_location_map = { "ICU^101^A" = "ICU/1", "ICU^^2" = "ICU/2" }\n')
    settings = load_settings(config, env={"AREYA_DATA_DIR": str(tmp_path / "var")})
    assert settings.adt_port == 2600
    assert dict(settings.adt_location_map) == {"ICU^101^A": "ICU/1", "ICU^^2": "ICU/2"}
    with pytest.raises(ConfigError, match="AREYA_ADT_LOCATION_MAP: location 'ICU' must map to WARD/BED"):
        load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var"), "AREYA_ADT_LOCATION_MAP": '{"ICU": "ICU"}'})
    with pytest.raises(ConfigError, match="AREYA_ADT_LOCATION_MAP: must be a JSON object"):
        load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var"), "AREYA_ADT_LOCATION_MAP": "ICU=1"})
    # "ICU" alone is "ICU^^" (missing trailing parts are empty), never a prefix match
    short = load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var"), "AREYA_ADT_LOCATION_MAP": '{"ICU": "ICU/1"}'})
    assert short.adt_location_map == (("ICU^^", "ICU/1"),)
