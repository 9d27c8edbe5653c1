"""Every integrity rule of the domain model, enforced by the database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from areya.db.models import (
    Alert,
    AlertEvent,
    Bed,
    BedAssignment,
    BedZone,
    Camera,
    Observation,
    ObservationMinute,
    Patient,
    User,
    UserWard,
    Ward,
)
from areya.source_url import SourceUrlError

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def violates(session: Session, change: Callable[[], object]) -> bool:
    """Apply ``change`` in a savepoint and flush: True if the database refused it (then rolled back)."""
    savepoint = session.begin_nested()
    try:
        change()
        session.flush()
    except IntegrityError:
        savepoint.rollback()
        return True
    savepoint.rollback()
    return False


@pytest.fixture
def ward(session: Session) -> Ward:
    ward = Ward(name="ICU")
    session.add(ward)
    session.flush()
    session.add_all([Bed(ward_id=ward.id, label="1"), Bed(ward_id=ward.id, label="2")])
    session.add(Camera(ward_id=ward.id, name="cam", source_url="rtsp://u:p@cam.local/s", sample_fps=2.0))
    session.add_all(
        [Patient(mrn="M1", display_name="One", admitted_at=T0), Patient(mrn="M2", display_name="Two", admitted_at=T0)]
    )
    session.flush()
    return ward


def ids(session: Session) -> dict[str, int]:
    beds = {b.label: b.id for b in session.scalars(select(Bed))}
    patients = {p.mrn: p.id for p in session.scalars(select(Patient))}
    camera = session.scalar(select(Camera.id))
    assert camera is not None
    return {"bed1": beds["1"], "bed2": beds["2"], "m1": patients["M1"], "m2": patients["M2"], "cam": camera}


def observation(k: dict[str, int], frame_id: str = "1-1", face_index: int = 0, **over: object) -> Observation:
    values: dict[str, object] = dict(
        patient_id=k["m1"], bed_id=k["bed1"], camera_id=k["cam"], captured_at=T0, frame_id=frame_id,
        face_index=face_index, box_x=0.1, box_y=0.1, box_w=0.2, box_h=0.2, p_angry=0.7, p_happy=0.1,
        p_relaxed=0.1, p_sad=0.1, probs7=[0.7, 0, 0, 0.1, 0.1, 0, 0.1], label4="angry", label7="angry",
        confidence4=0.7, model_version="test",
    )  # fmt: skip
    values.update(over)
    return Observation(**values)


def test_ward_name_and_bed_label_are_unique(session: Session, ward: Ward) -> None:
    assert violates(session, lambda: session.add(Ward(name="ICU")))
    assert violates(session, lambda: session.add(Bed(ward_id=ward.id, label="1")))
    other = Ward(name="Other")
    session.add(other)
    session.flush()
    assert not violates(session, lambda: session.add(Bed(ward_id=other.id, label="1")))  # same label, other ward


def test_patient_mrn_unique_and_status_consistent(session: Session, ward: Ward) -> None:
    assert violates(session, lambda: session.add(Patient(mrn="M1", display_name="dup", admitted_at=T0)))
    assert violates(session, lambda: session.add(Patient(mrn="M9", display_name="x", admitted_at=T0, status="gone")))
    assert violates(
        session, lambda: session.add(Patient(mrn="M9", display_name="x", admitted_at=T0, status="discharged"))
    )
    assert not violates(
        session,
        lambda: session.add(Patient(mrn="M9", display_name="x", admitted_at=T0, status="discharged", discharged_at=T0)),
    )


def test_one_patient_per_bed_and_one_bed_per_patient(session: Session, ward: Ward) -> None:
    k = ids(session)
    session.add(BedAssignment(patient_id=k["m1"], bed_id=k["bed1"], start_at=T0))
    session.flush()
    # a second current stay in the same bed, or a second current bed for the same patient: refused
    assert violates(session, lambda: session.add(BedAssignment(patient_id=k["m2"], bed_id=k["bed1"], start_at=T0)))
    assert violates(session, lambda: session.add(BedAssignment(patient_id=k["m1"], bed_id=k["bed2"], start_at=T0)))
    # ended stays are history and do not block
    current = session.scalar(select(BedAssignment))
    assert current is not None
    current.end_at = T0 + timedelta(hours=1)
    session.flush()
    session.add(BedAssignment(patient_id=k["m2"], bed_id=k["bed1"], start_at=T0 + timedelta(hours=1)))
    session.add(BedAssignment(patient_id=k["m1"], bed_id=k["bed2"], start_at=T0 + timedelta(hours=1)))
    session.flush()
    assert session.scalar(select(func.count()).select_from(BedAssignment)) == 3


def test_bed_assignment_cannot_end_before_it_starts(session: Session, ward: Ward) -> None:
    k = ids(session)
    assert violates(
        session,
        lambda: session.add(
            BedAssignment(patient_id=k["m1"], bed_id=k["bed1"], start_at=T0, end_at=T0 - timedelta(seconds=1))
        ),
    )


@pytest.mark.parametrize(
    "box",
    [
        (0.5, 0.1, 0.5, 0.9),  # x0 == x1
        (0.6, 0.1, 0.5, 0.9),  # x0 > x1
        (0.1, 0.9, 0.5, 0.2),  # y0 > y1
        (-0.1, 0.1, 0.5, 0.9),  # outside [0,1]
        (0.1, 0.1, 1.2, 0.9),
        (0.1, 0.1, 0.5, 1.01),
    ],
)
def test_zone_checks(session: Session, ward: Ward, box: tuple[float, float, float, float]) -> None:
    k = ids(session)
    x0, y0, x1, y1 = box
    assert violates(
        session, lambda: session.add(BedZone(camera_id=k["cam"], bed_id=k["bed1"], x0=x0, y0=y0, x1=x1, y1=y1))
    )


def test_zone_unique_per_camera_and_bed(session: Session, ward: Ward) -> None:
    k = ids(session)
    session.add(BedZone(camera_id=k["cam"], bed_id=k["bed1"], x0=0, y0=0, x1=0.5, y1=1))
    session.flush()
    assert violates(
        session, lambda: session.add(BedZone(camera_id=k["cam"], bed_id=k["bed1"], x0=0.5, y0=0, x1=1, y1=1))
    )
    assert not violates(
        session, lambda: session.add(BedZone(camera_id=k["cam"], bed_id=k["bed2"], x0=0.5, y0=0, x1=1, y1=1))
    )


def test_camera_rules_and_masked_repr(session: Session, ward: Ward) -> None:
    cam = session.scalar(select(Camera))
    assert cam is not None
    assert "p@" not in repr(cam) and "u:***@cam.local" in repr(cam)
    assert violates(session, lambda: session.add(Camera(ward_id=ward.id, name="cam", source_url="device:0")))
    assert violates(
        session, lambda: session.add(Camera(ward_id=ward.id, name="c2", source_url="device:1", sample_fps=0))
    )
    assert violates(
        session, lambda: session.add(Camera(ward_id=ward.id, name="c3", source_url="device:1", health_status="meh"))
    )
    with pytest.raises(SourceUrlError):
        Camera(ward_id=ward.id, name="bad", source_url="rtsp://")


def test_delete_camera_cascades_to_zones_and_keeps_observations(session: Session, ward: Ward) -> None:
    k = ids(session)
    session.add(BedZone(camera_id=k["cam"], bed_id=k["bed1"], x0=0, y0=0, x1=0.5, y1=1))
    session.add(observation(k))
    session.flush()
    session.execute(delete(Camera).where(Camera.id == k["cam"]))
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(BedZone)) == 0
    obs = session.scalar(select(Observation))
    assert obs is not None and obs.camera_id is None


def test_restrict_rules(session: Session, ward: Ward) -> None:
    k = ids(session)
    session.add(observation(k))
    session.add(BedAssignment(patient_id=k["m2"], bed_id=k["bed2"], start_at=T0))
    session.flush()
    assert violates(session, lambda: session.execute(delete(Ward).where(Ward.id == ward.id)))  # ward has beds
    assert violates(session, lambda: session.execute(delete(Patient).where(Patient.id == k["m1"])))  # observations
    assert violates(session, lambda: session.execute(delete(Patient).where(Patient.id == k["m2"])))  # bed history
    assert violates(session, lambda: session.execute(delete(Bed).where(Bed.id == k["bed2"])))
    empty = Ward(name="Empty")
    session.add(empty)
    session.flush()
    assert not violates(session, lambda: session.execute(delete(Ward).where(Ward.id == empty.id)))


def test_observation_unique_per_frame_and_face(session: Session, ward: Ward) -> None:
    k = ids(session)
    session.add(observation(k, "7-42", 0))
    session.flush()
    assert violates(session, lambda: session.add(observation(k, "7-42", 0)))
    assert not violates(session, lambda: session.add(observation(k, "7-42", 1)))
    assert violates(session, lambda: session.add(observation(k, "7-43", 0, label4="disgust")))
    assert violates(session, lambda: session.add(observation(k, "7-44", -1)))


def test_observation_minute_unique_and_consistent(session: Session, ward: Ward) -> None:
    k = ids(session)
    session.add(ObservationMinute(patient_id=k["m1"], minute=T0, n_obs=2, n_angry=1, n_sad=1))
    session.flush()
    assert violates(session, lambda: session.add(ObservationMinute(patient_id=k["m1"], minute=T0, n_obs=0)))
    assert violates(
        session, lambda: session.add(ObservationMinute(patient_id=k["m1"], minute=T0 + timedelta(minutes=1), n_obs=3))
    )


def test_at_most_one_open_alert_per_kind_and_patient(session: Session, ward: Ward) -> None:
    k = ids(session)

    def alert(**over: object) -> Alert:
        values: dict[str, object] = dict(kind="negative_emotion", patient_id=k["m1"], ward_id=ward.id, opened_at=T0)
        values.update(over)
        return Alert(**values)

    first = alert()
    session.add(first)
    session.flush()
    assert violates(session, lambda: session.add(alert(state="acknowledged")))
    assert not violates(session, lambda: session.add(alert(patient_id=k["m2"])))
    assert not violates(session, lambda: session.add(alert(kind="camera_offline", patient_id=None, camera_id=k["cam"])))
    first.state, first.resolved_at, first.resolution = "resolved", T0, "auto"
    session.flush()
    assert not violates(session, lambda: session.add(alert()))  # a new episode after resolution
    assert violates(session, lambda: session.add(alert(kind="bogus", patient_id=k["m2"])))
    assert violates(session, lambda: session.add(alert(patient_id=k["m2"], state="resolved")))  # no resolved_at


def test_alert_events_follow_their_alert(session: Session, ward: Ward) -> None:
    k = ids(session)
    alert = Alert(kind="negative_emotion", patient_id=k["m1"], ward_id=ward.id, opened_at=T0)
    session.add(alert)
    session.flush()
    session.add(AlertEvent(alert_id=alert.id, at=T0, from_state=None, to_state="firing"))
    session.flush()
    assert violates(session, lambda: session.add(AlertEvent(alert_id=alert.id, at=T0, to_state="sleeping")))
    session.execute(delete(Alert).where(Alert.id == alert.id))
    assert session.scalar(select(func.count()).select_from(AlertEvent)) == 0


def test_user_rules(session: Session, ward: Ward) -> None:
    session.add(User(username="ann", role="nurse", password_hash="x"))
    session.flush()
    assert violates(session, lambda: session.add(User(username="ann", role="doctor", password_hash="x")))
    assert violates(session, lambda: session.add(User(username="bob", role="janitor", password_hash="x")))
    user = session.scalar(select(User))
    assert user is not None
    session.add(UserWard(user_id=user.id, ward_id=ward.id))
    session.flush()
    assert violates(session, lambda: session.add(UserWard(user_id=user.id, ward_id=ward.id)))


def test_datetimes_are_stored_and_returned_as_utc(session: Session, ward: Ward) -> None:
    cet = timezone(timedelta(hours=1))
    local = datetime(2026, 3, 1, 13, 30, tzinfo=cet)
    session.add(Patient(mrn="TZ", display_name="tz", admitted_at=local))
    session.commit()
    session.expire_all()
    got = session.scalar(select(Patient.admitted_at).where(Patient.mrn == "TZ"))
    assert got == datetime(2026, 3, 1, 12, 30, tzinfo=UTC) and got.utcoffset() == timedelta(0)
    # comparisons in SQL use UTC too
    assert session.scalar(select(Patient.mrn).where(Patient.admitted_at > datetime(2026, 3, 1, 12, 29, tzinfo=UTC)))
    session.add(Patient(mrn="NAIVE", display_name="n", admitted_at=datetime(2026, 3, 1, 12, 0)))
    with pytest.raises(StatementError, match="naive datetime"):
        session.flush()


def test_sqlite_foreign_keys_are_on(session: Session, db_backend: str) -> None:
    if db_backend != "sqlite":
        pytest.skip("SQLite pragma")
    assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
