"""An alert tick is one write transaction from its start: on SQLite a plain transaction that read first failed at
its first write ("database is locked", the tick lost) whenever a worker or the dashboard committed meanwhile (the
security review counted 4 of ~40 ticks of an idle demo, 37 of ~189 under load)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from alerts_helpers import T0, Hospital, add_observations, observation_rows
from sqlalchemy.orm import Session

from areya.alerts import open_alert, take_notices
from areya.alerts.engine import AlertEngine
from areya.config import Settings
from areya.db.models import Alert


def _camera_alert(session_factory: Callable[[], Session], hospital: Hospital) -> int:
    """A firing camera alert opened 20 minutes before T0: unacknowledged past escalate_after_s (900 s)."""
    with session_factory() as s, s.begin():
        alert = open_alert(
            s, "camera_offline", now=T0 - timedelta(minutes=20), ward_id=hospital.ward_id, camera_id=hospital.camera_id
        )
        take_notices(s)
        return alert.id


def _write_observation(session_factory: Callable[[], Session], hospital: Hospital, errors: list[BaseException]):  # type: ignore[no-untyped-def]
    """What a worker does meanwhile: commit a batch of observations (another connection)."""
    try:
        rows = observation_rows(hospital.other_patient, hospital.other_bed, None, T0 - timedelta(minutes=1), 3)
        add_observations(session_factory, rows)
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def test_a_commit_between_the_ticks_read_and_its_write_does_not_fail_it(
    alert_settings: Settings, session_factory: Callable[[], Session], hospital: Hospital
) -> None:
    alert_id = _camera_alert(session_factory, hospital)
    engine = AlertEngine(alert_settings, session_factory)
    escalate = engine.escalate
    errors: list[BaseException] = []
    writers: list[threading.Thread] = []

    def escalate_after_a_commit(session: Session, now, report) -> None:  # type: ignore[no-untyped-def]
        # the rules have read; a worker commits now (it waits for the tick's write lock where it has one)
        writer = threading.Thread(target=_write_observation, args=(session_factory, hospital, errors))
        writer.start()
        writers.append(writer)
        writer.join(1.0)
        escalate(session, now, report)

    engine.escalate = escalate_after_a_commit  # type: ignore[method-assign]
    report = engine.tick(T0, retention=False)  # raised OperationalError "database is locked" on SQLite
    for writer in writers:
        writer.join(30)
    assert report.escalated == 1 and not errors
    with session_factory() as s:
        assert s.get(Alert, alert_id).escalation_level == 1


def test_ticks_never_fail_beside_a_busy_writer(
    alert_settings: Settings, session_factory: Callable[[], Session], hospital: Hospital
) -> None:
    alert_id = _camera_alert(session_factory, hospital)
    engine = AlertEngine(alert_settings, session_factory)
    stop = threading.Event()
    errors: list[BaseException] = []
    commits = 0

    def worker() -> None:
        nonlocal commits
        while not stop.is_set():
            _write_observation(session_factory, hospital, errors)
            commits += 1
            time.sleep(0.001)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    failures: list[BaseException] = []
    escalated = 0
    try:
        for i in range(20):  # each tick escalates the alert again (16 min after its last notification)
            try:
                escalated += engine.tick(T0 + timedelta(minutes=16 * i), retention=False).escalated
            except Exception as exc:  # noqa: BLE001 - counted, as the scheduler's safe_tick does
                failures.append(exc)
    finally:
        stop.set()
        thread.join(30)
    assert failures == [] and errors == []
    assert escalated >= 20 and commits > 0  # (camera B's offline alert, opened by the first tick, escalates too)
    with session_factory() as s:
        assert s.get(Alert, alert_id).escalation_level == 20
