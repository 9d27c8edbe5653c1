"""The admin CLI: happy paths, and every bad input -> one clear stderr line, exit != 0, database unchanged."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select

from areya.cli import cli
from areya.config import Settings
from areya.db.models import AuditEvent, Base

Invoke = Callable[..., Result]
CAM_URL = "rtsp://admin:pw123@10.1.1.1:554/live"


@pytest.fixture
def run(db_settings: Settings) -> Invoke:
    env = {"AREYA_DATA_DIR": str(db_settings.data_dir), "AREYA_DATABASE_URL": db_settings.database_url}
    env["AREYA_CAMERA_ALLOW_NETWORKS"] = "10.0.0.0/8"  # the test cameras' network (areya.camera.url_policy)

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, input=input)

    return invoke


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    with engine.connect() as conn:
        return {
            table.name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture
def populated(run: Invoke) -> Invoke:
    steps = [
        ("ward", "add", "ICU"),
        ("ward", "add", "Surgery"),
        ("bed", "add", "ICU", "1", "2", "3"),
        ("bed", "add", "Surgery", "1"),
        ("patient", "admit", "M1", "--name", "Ann", "--bed", "ICU/1"),
        ("camera", "add", "--ward", "ICU", "--name", "cam", "--url", CAM_URL, "--fps", "2"),
        ("zone", "set", "--camera", "ICU/cam", "--bed", "ICU/1", "0", "0", "0.5", "1"),
    ]  # fmt: skip
    for step in steps:
        result = run(*step)
        assert result.exit_code == 0, (step, result.output)
    result = run(
        "user", "add", "nurse1", "--role", "nurse", "--ward", "ICU", "--password-stdin", input="s3cret-pass-9x\n"
    )
    assert result.exit_code == 0, result.output
    return run


def test_happy_path_listing(populated: Invoke) -> None:
    run = populated
    assert run("patient", "move", "M1", "--bed", "ICU/2").exit_code == 0
    listing = run("patient", "list")
    assert listing.exit_code == 0 and "M1" in listing.stdout and "ICU/2" in listing.stdout
    cams = run("camera", "list")
    assert "rtsp://admin:***@10.1.1.1:554/..." in cams.stdout and "pw123" not in cams.stdout
    assert "ICU/cam" in run("zone", "list").stdout
    assert "nurse1" in run("user", "list").stdout
    beds = run("bed", "list", "--json")
    assert beds.exit_code == 0 and '"patient": "M1"' in beds.stdout
    assert run("camera", "disable", "ICU/cam").exit_code == 0
    assert '"enabled": false' in run("camera", "list", "--json").stdout
    assert run("user", "deactivate", "nurse1").exit_code == 0
    assert run("patient", "discharge", "M1").exit_code == 0
    assert "M1" not in run("patient", "list").stdout and "M1" in run("patient", "list", "--all").stdout


def test_interactive_password_prompt_with_confirmation(populated: Invoke) -> None:
    mismatch = populated("user", "add", "doc", "--role", "doctor", input="password-one\npassword-two\n" * 3)
    assert mismatch.exit_code != 0
    ok = populated("user", "add", "doc", "--role", "doctor", input="pangolin-rides-7\npangolin-rides-7\n")
    assert ok.exit_code == 0, ok.output
    assert "pangolin-rides-7" not in ok.stdout


BAD_INPUTS: list[tuple[tuple[str, ...], str, str | None]] = [
    (("ward", "add", "ICU"), "ward 'ICU' already exists", None),
    (("bed", "add", "ICU", "4", "1"), "bed '1' already exists", None),  # the whole command is one transaction
    (("bed", "add", "Nowhere", "1"), "unknown ward 'Nowhere'", None),
    (("patient", "admit", "M1", "--name", "Dup", "--bed", "ICU/2"), "patient M1 is already admitted", None),
    (("patient", "admit", "M2", "--name", "Bob", "--bed", "ICU/1"), "bed ICU/1 is occupied by patient M1", None),
    (("patient", "admit", "M2", "--name", "Bob", "--bed", "ICU/99"), "unknown bed '99' in ward 'ICU'", None),
    (("patient", "admit", "M2", "--name", "Bob", "--bed", "Nope/1"), "unknown ward 'Nope'", None),
    (("patient", "admit", "M 2", "--name", "Bob"), "MRN 'M 2' must be", None),
    (("patient", "move", "M1", "--bed", "ICU/1"), "already in bed ICU/1", None),
    (("patient", "move", "M404", "--bed", "ICU/2"), "unknown patient MRN 'M404'", None),
    (("patient", "discharge", "M404"), "unknown patient MRN 'M404'", None),
    (("camera", "add", "--ward", "ICU", "--name", "c2", "--url", "ftp://h/x"), "unsupported camera URL scheme", None),
    (("camera", "add", "--ward", "ICU", "--name", "c2", "--url", "rtsp://:554/x"), "no host", None),
    (("camera", "add", "--ward", "ICU", "--name", "c2", "--url", "device:abc"), "device:N", None),
    (("camera", "add", "--ward", "ICU", "--name", "cam", "--url", "device:0"), "already exists", None),
    (("camera", "add", "--ward", "ICU", "--name", "c2", "--url", "device:0", "--fps", "0"), "sample fps", None),
    (("camera", "add", "--ward", "Nope", "--name", "c2", "--url", "device:0"), "unknown ward", None),
    (("camera", "enable", "ICU/none"), "unknown camera 'none'", None),
    (("zone", "set", "--camera", "ICU/cam", "--bed", "ICU/2", "0.6", "0", "1.2", "1"), "within [0, 1]", None),
    (("zone", "set", "--camera", "ICU/cam", "--bed", "ICU/2", "-0.1", "0", "0.4", "1"), "within [0, 1]", None),
    (("zone", "set", "--camera", "ICU/cam", "--bed", "ICU/2", "0.8", "0", "0.6", "1"), "x0 < x1", None),
    (("zone", "set", "--camera", "ICU/cam", "--bed", "ICU/2", "0.6", "0.5", "0.9", "0.5"), "y0 < y1", None),
    (("zone", "set", "--camera", "ICU/cam", "--bed", "ICU/2", "0.4", "0", "0.9", "1"), "overlaps", None),
    (("zone", "set", "--camera", "ICU/cam", "--bed", "Surgery/1", "0.6", "0", "0.9", "1"), "not in camera", None),
    (("zone", "set", "--camera", "ICU/cam", "--bed", "ICU/9", "0.6", "0", "0.9", "1"), "unknown bed", None),
    (("user", "add", "x", "--role", "boss", "--password-stdin"), "unknown role 'boss'", "long-enough-pw\n"),
    (("user", "add", "nurse1", "--role", "nurse", "--password-stdin"), "'nurse1' already exists", "pw-long-enough\n"),
    (("user", "add", "y", "--role", "nurse", "--password-stdin"), "at least 12 characters", "short\n"),
    (("user", "add", "y", "--role", "nurse", "--ward", "Nope", "--password-stdin"), "unknown ward", "long-enough-pw\n"),
    (("user", "deactivate", "ghost"), "unknown user 'ghost'", None),
    (("ward", "delete", "ICU"), "is not empty", None),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message", "stdin"), BAD_INPUTS, ids=[" ".join(b[0])[:60] for b in BAD_INPUTS])
def test_bad_input_changes_nothing(
    populated: Invoke, engine: Engine, args: tuple[str, ...], message: str, stdin: str | None
) -> None:
    before = snapshot(engine)
    result = populated(*args, input=stdin)
    assert result.exit_code != 0
    assert message in result.stderr, result.output
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(engine) == before


def test_changes_are_audited(populated: Invoke, engine: Engine) -> None:
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(select(AuditEvent.action).order_by(AuditEvent.id))]
        details = [r[0] for r in conn.execute(select(AuditEvent.detail))]
    assert actions[:3] == ["ward.add", "ward.add", "bed.add"]
    assert {"patient.admit", "camera.add", "zone.set", "user.add"} <= set(actions)
    assert all(d["by"].startswith("cli:") for d in details)
    assert "pw123" not in str(details) and "s3cret" not in str(details)


def test_help_lists_commands_and_is_light() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from areya.cli import cli; "
        "r = CliRunner().invoke(cli, ['--help']); print(r.output); "
        "print('HEAVY' if {'tensorflow', 'keras', 'cv2'} & set(sys.modules) else 'LIGHT')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    for name in ("db", "ward", "bed", "patient", "camera", "zone", "user", "config"):
        assert f"  {name} " in out
    assert out.strip().endswith("LIGHT")
