"""Who may act (policy), lifecycle events for discharge and transfer, user e-mail and role from the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alerts_helpers import T0, Hospital
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.admin import discharge_patient, move_patient
from areya.alerts.errors import Forbidden
from areya.alerts.lifecycle import AlertPolicy, acknowledge_alert, open_alert, resolve_alert, take_notices
from areya.audit import Actor
from areya.cli import cli
from areya.comms.redis_server import EmbeddedRedis
from areya.config import ConfigError, Settings, load_settings
from areya.db.models import Alert, AlertEvent, AuditEvent, Bed, NotificationOutbox, User


def _open(session_factory: Callable[[], Session], hospital: Hospital, index: int = 0) -> int:
    with session_factory() as s, s.begin():
        return open_alert(
            s, "negative_emotion", now=T0, patient_id=hospital.patients[index], ward_id=hospital.ward_id
        ).id


def test_nurse_acknowledges_under_the_default_policy_but_not_doctors_only(
    hospital: Hospital,
    session_factory: Callable[[], Session],
    alert_settings: Settings,
) -> None:
    nurse = Actor(hospital.users["nurse-a"])
    first, second = _open(session_factory, hospital, 0), _open(session_factory, hospital, 1)
    default = AlertPolicy.from_settings(alert_settings)
    assert default.acknowledge_roles == {"nurse", "doctor"} and default.resolve_roles == {"doctor"}
    with session_factory() as s, s.begin():
        acknowledge_alert(s, first, actor=nurse, now=T0, policy=default)
    doctors_only = AlertPolicy.from_settings(alert_settings.replace(acknowledge_roles=("doctor",)))
    with session_factory() as s, pytest.raises(Forbidden, match="a nurse may not acknowledge"), s.begin():
        acknowledge_alert(s, second, actor=nurse, now=T0, policy=doctors_only)
    with session_factory() as s, pytest.raises(Forbidden, match="a nurse may not resolve"), s.begin():
        resolve_alert(s, first, actor=nurse, note="calm", now=T0, policy=default)
    with session_factory() as s:
        a1, a2 = s.get(Alert, first), s.get(Alert, second)
        # acknowledged is not resolved: still open, with who and when
        assert (a1.state, a1.acknowledged_by, a1.acknowledged_at, a1.resolved_at) == (
            "acknowledged",
            hospital.users["nurse-a"],
            T0,
            None,
        )
        assert a1.is_open and a2.state == "firing"


def test_acknowledge_roles_and_timezone_settings_are_validated(tmp_path: Path) -> None:
    def load(**env: str) -> Settings:
        return load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var"), **env})

    assert load(AREYA_ACKNOWLEDGE_ROLES="doctor").acknowledge_roles == ("doctor",)
    with pytest.raises(ConfigError, match="AREYA_ACKNOWLEDGE_ROLES"):
        load(AREYA_ACKNOWLEDGE_ROLES="nurse,porter")
    assert load(AREYA_TIMEZONE="Europe/London").timezone == "Europe/London"
    with pytest.raises(ConfigError, match="AREYA_TIMEZONE"):
        load(AREYA_TIMEZONE="Europe/Atlantis")


def test_transfer_and_discharge_are_events_and_notifications(
    hospital: Hospital,
    session_factory: Callable[[], Session],
) -> None:
    alert_id = _open(session_factory, hospital, 0)
    with session_factory() as s, s.begin():
        take_notices(s)
        spare = Bed(ward_id=hospital.other_ward_id, label="B9")
        s.add(spare)
        s.flush()
        move_patient(s, "MRN-A1", "Ward B/B9", at=T0.replace(minute=5))
        moved = take_notices(s)
    assert [(n.type, n.alert_id, n.ward_id) for n in moved] == [("alert.transferred", alert_id, hospital.other_ward_id)]
    with session_factory() as s, s.begin():
        discharge_patient(s, "MRN-A1", at=T0.replace(minute=9))
        discharged = take_notices(s)
    assert [(n.type, n.alert_id, n.note) for n in discharged] == [("alert.resolved", alert_id, "patient discharged")]
    with session_factory() as s:
        alert = s.get(Alert, alert_id)
        assert (alert.state, alert.resolution, alert.ward_id) == ("resolved", "auto", hospital.other_ward_id)
        history = [
            (e.from_state, e.to_state, e.note)
            for e in s.scalars(
                select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.at, AlertEvent.id)
            )
        ]
        assert history == [
            (None, "firing", None),
            ("firing", "firing", "patient moved from Ward A/A1 to Ward B/B9"),
            ("firing", "resolved", "patient discharged"),
        ]
        outbox = s.scalars(
            select(NotificationOutbox.event_type)
            .where(NotificationOutbox.channel == "event")
            .order_by(NotificationOutbox.id)
        ).all()
        assert outbox == ["alert.opened", "alert.transferred", "alert.resolved"]


def test_user_email_and_role_from_the_cli(
    hospital: Hospital,
    session_factory: Callable[[], Session],
    alert_settings: Settings,
    alerts_redis: EmbeddedRedis,
) -> None:
    env = {
        "AREYA_DATA_DIR": str(alert_settings.data_dir),
        "AREYA_DATABASE_URL": alert_settings.database_url,
        "AREYA_REDIS_URL": alerts_redis.url,
    }

    def run(*args: str):  # noqa: ANN202 - click Result
        return CliRunner().invoke(cli, list(args), env=env)

    for bad in ("nurse.a", "a@b", "two@@at.example", "sp ace@x.example", "x" * 250 + "@h.example"):
        result = run("user", "email", "nurse-a", bad)
        assert result.exit_code == 1 and "invalid e-mail address" in result.output, (bad, result.output)
    with session_factory() as s:
        assert s.scalar(select(User.email).where(User.username == "nurse-a")) == "nurse.a@hospital.example"
    assert run("user", "email", "nurse-a", "Nurse.A@ICU.Example").exit_code == 0
    with session_factory() as s:
        assert s.scalar(select(User.email).where(User.username == "nurse-a")) == "Nurse.A@icu.example"
    assert run("user", "email", "nurse-a", "--clear").exit_code == 0
    assert run("user", "role", "nurse-a", "doctor").exit_code == 0
    refused = run("user", "role", "admin", "nurse")  # the only active admin keeps the role
    assert refused.exit_code == 1 and "last active admin" in refused.output
    with session_factory() as s:
        user = s.scalar(select(User).where(User.username == "nurse-a"))
        assert (user.email, user.role) == (None, "doctor")
        actions = s.scalars(
            select(AuditEvent.action).where(AuditEvent.target == f"user:{user.id}").order_by(AuditEvent.id)
        ).all()
        assert actions == ["user.email", "user.email", "user.role"]
