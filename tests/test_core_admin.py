"""Admin domain operations (used by CLI and web): rules, clear refusals, bed history, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from areya import admin
from areya.admin import Actor, AdminError, Conflict, Invalid, NotFound
from areya.db.models import Alert, AlertEvent, AuditEvent, BedAssignment, BedZone, Camera, User

T0 = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def ward(session: Session) -> str:
    admin.add_ward(session, "ICU")
    admin.add_ward(session, "Surgery")
    for label in ("1", "2", "3"):
        admin.add_bed(session, "ICU", label)
    admin.add_bed(session, "Surgery", "1")
    admin.add_camera(session, "ICU", "cam", "rtsp://u:secret@10.0.0.5/s", 2.0)
    session.commit()
    return "ICU"


def audit_actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_wards_and_beds(session: Session, ward: str) -> None:
    with pytest.raises(Conflict, match="already exists"):
        admin.add_ward(session, "ICU")
    with pytest.raises(Conflict, match="bed '1' already exists in ward 'ICU'"):
        admin.add_bed(session, "ICU", "1")
    with pytest.raises(NotFound, match="unknown ward 'Nope'"):
        admin.add_bed(session, "Nope", "1")
    with pytest.raises(Invalid, match="must not contain '/'"):
        admin.add_ward(session, "A/B")
    with pytest.raises(Invalid, match="must not be empty"):
        admin.add_bed(session, "ICU", "  ")
    with pytest.raises(Conflict, match="not empty"):
        admin.delete_ward(session, "ICU")
    admin.add_ward(session, "Empty")
    admin.delete_ward(session, "Empty")
    assert [w.name for w in admin.list_wards(session)] == ["ICU", "Surgery"]
    assert [b.label for b, _ in admin.list_beds(session, "ICU")] == ["1", "2", "3"]


def test_admit_move_discharge_keeps_bed_history(session: Session, ward: str) -> None:
    admin.admit_patient(session, "M1", "Ann", "ICU/1", at=T0)
    admin.move_patient(session, "M1", "ICU/2", at=T0 + timedelta(hours=2))
    admin.discharge_patient(session, "M1", at=T0 + timedelta(hours=5))
    session.commit()
    stays = session.scalars(select(BedAssignment).order_by(BedAssignment.start_at)).all()
    assert [(s.bed.label, s.start_at, s.end_at) for s in stays] == [
        ("1", T0, T0 + timedelta(hours=2)),
        ("2", T0 + timedelta(hours=2), T0 + timedelta(hours=5)),
    ]
    bed1, bed2 = (admin.get_bed(session, f"ICU/{n}").id for n in "12")
    patient_id = admin.get_patient(session, "M1").id
    assert admin.patient_in_bed_at(session, bed1, T0 + timedelta(hours=1)) == patient_id
    assert admin.patient_in_bed_at(session, bed1, T0 + timedelta(hours=3)) is None
    assert admin.patient_in_bed_at(session, bed2, T0 + timedelta(hours=3)) == patient_id
    assert admin.patient_in_bed_at(session, bed2, T0 + timedelta(hours=6)) is None
    assert audit_actions(session)[-3:] == ["patient.admit", "patient.move", "patient.discharge"]


def test_patient_refusals(session: Session, ward: str) -> None:
    admin.admit_patient(session, "M1", "Ann", "ICU/1")
    session.commit()
    with pytest.raises(Conflict, match="already admitted"):
        admin.admit_patient(session, "M1", "Ann again", "ICU/2")
    with pytest.raises(Conflict, match="bed ICU/1 is occupied by patient M1"):
        admin.admit_patient(session, "M2", "Bob", "ICU/1")
    with pytest.raises(NotFound, match="unknown bed '9' in ward 'ICU'"):
        admin.admit_patient(session, "M2", "Bob", "ICU/9")
    with pytest.raises(Invalid, match="WARD/BED"):
        admin.admit_patient(session, "M2", "Bob", "ICU")
    with pytest.raises(Invalid, match="MRN"):
        admin.admit_patient(session, "bad mrn!", "Bob", "ICU/2")
    with pytest.raises(Conflict, match="already in bed ICU/1"):
        admin.move_patient(session, "M1", "ICU/1")
    admin.admit_patient(session, "M2", "Bob", "ICU/2")
    with pytest.raises(Conflict, match="occupied by patient M2"):
        admin.move_patient(session, "M1", "ICU/2")
    with pytest.raises(NotFound, match="unknown patient"):
        admin.discharge_patient(session, "M404")
    admin.discharge_patient(session, "M2")
    with pytest.raises(Conflict, match="already discharged"):
        admin.discharge_patient(session, "M2")
    with pytest.raises(Conflict, match="discharged"):
        admin.move_patient(session, "M2", "ICU/3")
    with pytest.raises(AdminError):
        admin.admit_patient(session, "M3", "naive", "ICU/3", at=datetime(2026, 1, 1))  # noqa: DTZ001


def test_readmission_reuses_the_patient_row(session: Session, ward: str) -> None:
    first = admin.admit_patient(session, "M1", "Ann", "ICU/1", at=T0)
    admin.discharge_patient(session, "M1", at=T0 + timedelta(days=1))
    again = admin.admit_patient(session, "M1", "Ann B", "ICU/3", at=T0 + timedelta(days=3))
    session.commit()
    assert again.id == first.id and again.status == "admitted" and again.discharged_at is None
    assert again.display_name == "Ann B"
    assert "patient.readmit" in audit_actions(session)


def test_discharge_resolves_open_alerts(session: Session, ward: str) -> None:
    patient = admin.admit_patient(session, "M1", "Ann", "ICU/1", at=T0)
    ward_id = admin.get_ward(session, "ICU").id
    session.add(Alert(kind="negative_emotion", patient_id=patient.id, ward_id=ward_id, opened_at=T0))
    session.flush()
    admin.discharge_patient(session, "M1", at=T0 + timedelta(hours=1))
    session.commit()
    alert = session.scalar(select(Alert))
    assert alert is not None and alert.state == "resolved" and alert.resolution == "auto"
    assert alert.resolved_at == T0 + timedelta(hours=1)
    events = session.scalars(select(AlertEvent)).all()
    assert [(e.from_state, e.to_state, e.note) for e in events] == [("firing", "resolved", "patient discharged")]


def test_cameras_validate_and_mask(session: Session, ward: str) -> None:
    cams = admin.list_cameras(session)
    assert [c.masked_url for c in cams] == ["rtsp://u:***@10.0.0.5/..."]
    detail = session.scalar(select(AuditEvent.detail).where(AuditEvent.action == "camera.add"))
    assert detail is not None and "secret" not in str(detail)
    with pytest.raises(Conflict, match="already exists"):
        admin.add_camera(session, "ICU", "cam", "device:0")
    for url, fragment in [
        ("ftp://x/y", "unsupported camera URL scheme"),
        ("rtsp://", "no host"),
        ("rtsp://host:99999/s", "invalid port"),
        ("device:x", "device:N"),
        ("", "empty"),
        ("rtsp://h/a b", "spaces"),
    ]:
        with pytest.raises(Invalid, match=fragment):
            admin.add_camera(session, "ICU", "new", url)
    for fps in (0, -1, 61, float("nan")):
        with pytest.raises(Invalid, match="sample fps"):
            admin.add_camera(session, "ICU", "new", "device:0", fps)
    for url in ("rtsps://h:322/s", "http://h/mjpg", "file:///v.mp4", "clips/v.mp4", "device:0", "synthetic:beds=4"):
        admin.add_camera(session, "ICU", f"c{len(admin.list_cameras(session))}", url)
    cam = admin.set_camera_enabled(session, "ICU/cam", False)
    assert cam.enabled is False
    assert admin.get_camera(session, str(cam.id)) is cam
    with pytest.raises(NotFound):
        admin.set_camera_enabled(session, "ICU/none", True)


def test_zones(session: Session, ward: str) -> None:
    admin.set_zone(session, "ICU/cam", "ICU/1", 0.0, 0.0, 0.3, 1.0)
    admin.set_zone(session, "ICU/cam", "ICU/2", 0.3, 0.0, 0.6, 1.0)  # touching edges is fine
    admin.set_zone(session, "ICU/cam", "ICU/1", 0.0, 0.1, 0.25, 0.9)  # replace
    session.commit()
    zones = admin.list_zones(session, "ICU/cam")
    assert [(z.bed.label, z.x0, z.y0, z.x1, z.y1) for z in zones] == [
        ("1", 0.0, 0.1, 0.25, 0.9),
        ("2", 0.3, 0.0, 0.6, 1.0),
    ]
    with pytest.raises(Conflict, match="overlaps the zone of bed ICU/2"):
        admin.set_zone(session, "ICU/cam", "ICU/3", 0.5, 0.0, 0.9, 1.0)
    with pytest.raises(Invalid, match="not in camera ICU/cam's ward"):
        admin.set_zone(session, "ICU/cam", "Surgery/1", 0.7, 0.0, 0.9, 1.0)
    for box in [(0.5, 0, 0.5, 1), (0.9, 0, 0.7, 1), (0, 0.8, 1, 0.2), (-0.1, 0, 0.5, 1), (0.7, 0, 1.5, 1)]:
        with pytest.raises(Invalid, match="zone"):
            admin.set_zone(session, "ICU/cam", "ICU/3", *box)
    admin.delete_camera(session, "ICU/cam")
    session.commit()
    assert session.scalar(select(func.count()).select_from(BedZone)) == 0
    assert session.scalar(select(func.count()).select_from(Camera)) == 0


def test_users_passwords_and_authentication(session: Session, ward: str) -> None:
    user = admin.add_user(session, "Alice", "nurse", "correct horse", ["ICU"])
    session.commit()
    assert user.username == "alice" and [w.name for w in user.wards] == ["ICU"]
    assert user.password_hash.startswith("$argon2id$") and "correct horse" not in user.password_hash
    assert admin.authenticate(session, "ALICE", "correct horse") is user and user.last_login_at is not None
    assert admin.authenticate(session, "alice", "wrong password") is None
    assert admin.authenticate(session, "nobody", "correct horse") is None
    with pytest.raises(Conflict, match="already exists"):
        admin.add_user(session, "alice", "doctor", "another password")
    with pytest.raises(Invalid, match="unknown role 'boss'"):
        admin.add_user(session, "bob", "boss", "long enough pw")
    with pytest.raises(Invalid, match="at least 12"):
        admin.add_user(session, "bob", "doctor", "short")
    with pytest.raises(NotFound, match="unknown ward"):
        admin.add_user(session, "bob", "doctor", "long enough pw", ["Nope"])
    admin.set_user_active(session, "alice", False)
    assert admin.authenticate(session, "alice", "correct horse") is None
    with pytest.raises(Conflict, match="already deactivated"):
        admin.set_user_active(session, "alice", False)
    admin.set_user_active(session, "alice", True)
    admin.set_password(session, "alice", "new password!")
    assert admin.authenticate(session, "alice", "new password!") is user
    assert session.scalar(select(func.count()).select_from(User)) == 1


def test_audit_records_actor_and_patient(session: Session, ward: str) -> None:
    doctor = admin.add_user(session, "doc", "doctor", "long enough pw")
    actor = Actor(doctor.id, "web:doc")
    patient = admin.admit_patient(session, "M1", "Ann", "ICU/1", actor=actor)
    admin.list_patients(session, actor=actor)
    session.commit()
    events = session.scalars(select(AuditEvent).where(AuditEvent.user_id == doctor.id)).all()
    assert [(e.action, e.patient_id) for e in events] == [("patient.admit", patient.id), ("patient.list", patient.id)]
    assert all(e.detail and e.detail["by"] == "web:doc" for e in events)
    assert "Ann" not in str([e.detail for e in events])  # no names in the audit details
