"""Dashboard test helpers (tests/web/test_web_*.py): a small hospital in a real database, logged-in clients."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from polling import wait_until  # noqa: F401 - re-exported for the tests that import it from here
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from areya import admin
from areya.alerts.priority import severity_of
from areya.config import Settings
from areya.db.engine import create_db_engine, create_session_factory
from areya.db.models import LABELS4, LABELS7, Alert, AlertEvent, Observation
from areya.db.types import utcnow
from areya.webapp import create_app

PASSWORD = "correct-horse-1"
ROLES = ("nurse", "doctor", "admin")


@dataclass
class World:
    """The app over a populated database: its engine, the ids ``populate`` created and API tokens."""

    app: Flask
    engine: Engine
    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # role -> API token

    def session(self) -> Session:
        return create_session_factory(self.engine)()


def add_observation(
    session: Session,
    patient_id: int,
    bed_id: int,
    label4: str,
    at: datetime,
    *,
    camera_id: int | None = None,
    confidence: float = 0.8,
    label7: str | None = None,
) -> Observation:
    rest = (1.0 - confidence) / 3
    probs = {lab: (confidence if lab == label4 else rest) for lab in LABELS4}
    l7 = label7 or {"angry": "angry", "happy": "happy", "relaxed": "neutral", "sad": "sad"}[label4]
    obs = Observation(
        patient_id=patient_id,
        bed_id=bed_id,
        camera_id=camera_id,
        captured_at=at,
        frame_id=f"test-{uuid.uuid4().hex}",
        face_index=0,
        box_x=0.1,
        box_y=0.1,
        box_w=0.2,
        box_h=0.2,
        p_angry=probs["angry"],
        p_happy=probs["happy"],
        p_relaxed=probs["relaxed"],
        p_sad=probs["sad"],
        probs7=[1.0 / 7] * len(LABELS7),
        label4=label4,
        label7=l7,
        confidence4=confidence,
        model_version="test",
    )
    session.add(obs)
    session.flush()
    return obs


def open_alert(
    session: Session,
    kind: str,
    *,
    ward_id: int,
    patient_id: int | None = None,
    camera_id: int | None = None,
    priority: str = "medium",
    at: datetime | None = None,
) -> Alert:
    at = at or utcnow()
    evidence: dict[str, Any] = {"rule": kind}
    if kind == "negative_emotion":
        evidence.update(
            {
                "window_s": 600,
                "n_obs": 30,
                "share": 0.7,
                "open_share": 0.6,
                "counts": {"angry": 6, "happy": 3, "relaxed": 6, "sad": 15},
            }
        )
    alert = Alert(
        kind=kind,
        priority=priority,
        severity=severity_of(priority),
        state="firing",
        ward_id=ward_id,
        patient_id=patient_id,
        camera_id=camera_id,
        opened_at=at,
        evidence=evidence,
        escalation_level=0,
    )
    session.add(alert)
    session.flush()
    session.add(AlertEvent(alert_id=alert.id, at=at, from_state=None, to_state="firing", note="opened by test"))
    session.flush()
    return alert


def populate(engine: Engine) -> tuple[dict[str, int], dict[str, str]]:
    """Wards ICU (beds 1-3 + spare, camera, patients in beds 1 and 2) and Surgery (bed 1, a patient); users for
    each role (nurse and doctor cover ICU; ``nurse2`` covers Surgery); spare ward/bed/patient/user/camera for
    destructive routes; a firing patient alert and a camera alert in ICU, one in Surgery; observations of the last
    40 minutes for the ICU patients (Alice sad/angry, Bob happy). Returns (ids, API token per role)."""
    factory = create_session_factory(engine)
    ids: dict[str, int] = {}
    now = utcnow()
    with factory() as s:
        icu = admin.add_ward(s, "ICU")
        surgery = admin.add_ward(s, "Surgery")
        spare = admin.add_ward(s, "Spare")
        beds = [admin.add_bed(s, "ICU", label) for label in ("1", "2", "3")]
        sbed = admin.add_bed(s, "Surgery", "1")
        spare_bed = admin.add_bed(s, "ICU", "spare")
        cam = admin.add_camera(s, "ICU", "cam-1", "rtsp://viewer:s3cret@10.0.0.5:554/stream1", 2.0)
        spare_cam = admin.add_camera(s, "ICU", "cam-spare", "/nonexistent/areya-test.mp4", 2.0)
        admin.set_zone(s, "ICU/cam-1", "ICU/1", 0.0, 0.0, 0.33, 1.0)
        admin.set_zone(s, "ICU/cam-1", "ICU/2", 0.34, 0.0, 0.66, 1.0)
        p1 = admin.admit_patient(s, "MRN001", "Alice Example", "ICU/1", at=now - timedelta(days=1))
        p2 = admin.admit_patient(s, "MRN002", "Bob Example", "ICU/2", at=now - timedelta(days=1))
        p3 = admin.admit_patient(s, "MRN003", "Carol Example", "Surgery/1", at=now - timedelta(days=1))
        p4 = admin.admit_patient(s, "MRN004", "Dan Spare", None, at=now - timedelta(days=1))
        users = {
            "nurse": admin.add_user(s, "nurse", "nurse", PASSWORD, ["ICU"]),
            "doctor": admin.add_user(s, "doctor", "doctor", PASSWORD, ["ICU"]),
            "admin": admin.add_user(s, "admin", "admin", PASSWORD),
            "nurse2": admin.add_user(s, "nurse2", "nurse", PASSWORD, ["Surgery"]),
            "victim": admin.add_user(s, "victim", "nurse", PASSWORD, ["ICU"]),
        }
        for i in range(40):
            add_observation(
                s, p1.id, beds[0].id, "sad" if i % 4 else "angry", now - timedelta(minutes=40 - i), camera_id=cam.id
            )
            add_observation(s, p2.id, beds[1].id, "happy", now - timedelta(minutes=40 - i), camera_id=cam.id)
        alert = open_alert(s, "negative_emotion", ward_id=icu.id, patient_id=p1.id)
        cam_alert = open_alert(s, "camera_offline", ward_id=icu.id, camera_id=cam.id)
        other_alert = open_alert(s, "negative_emotion", ward_id=surgery.id, patient_id=p3.id)
        from areya.admin.encounters import current_encounter
        from areya.webapp.tokens import create_token

        tokens = {role: create_token(s, users[role], f"{role}-token")[1] for role in ROLES}
        ids["token_id"] = create_token(s, users["victim"], "victim-token")[0].id
        s.commit()
        ids.update(
            ward_id=icu.id,
            other_ward_id=surgery.id,
            spare_ward_id=spare.id,
            bed_id=beds[0].id,
            bed2_id=beds[1].id,
            free_bed_id=beds[2].id,
            other_bed_id=sbed.id,
            spare_bed_id=spare_bed.id,
            camera_id=cam.id,
            spare_camera_id=spare_cam.id,
            patient_id=p1.id,
            encounter_id=current_encounter(s, p1.id).id,  # type: ignore[union-attr]
            patient2_id=p2.id,
            other_patient_id=p3.id,
            spare_patient_id=p4.id,
            alert_id=alert.id,
            camera_alert_id=cam_alert.id,
            other_alert_id=other_alert.id,
            victim_id=users["victim"].id,
            admin_id=users["admin"].id,
        )
        ids.update({f"user_{k}": u.id for k, u in users.items()})
    return ids, tokens


def make_world(
    settings: Settings, ids: dict[str, int], tokens: dict[str, str], *, redis_client: Any = None, **app_options: Any
) -> World:
    engine = create_db_engine(settings)
    options = {"sse_max_s": 1.0, "sse_poll_s": 0.2, **app_options}
    app = create_app(settings, engine=engine, redis_client=redis_client, **options)
    app.config["TESTING"] = True
    return World(app=app, engine=engine, ids=dict(ids), tokens=dict(tokens))


CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_of(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(app: Flask, username: str, password: str = PASSWORD) -> tuple[FlaskClient, str]:
    """A client logged in as ``username`` and its CSRF token."""
    client = app.test_client()
    token = csrf_of(client)
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client, csrf_of(client, "/alerts")


def http_login(base_url: str, username: str, password: str = PASSWORD) -> Any:
    """A ``requests`` session logged in to a real server at ``base_url`` (raises if the login is refused)."""
    import requests

    browser = requests.Session()
    page = browser.get(f"{base_url}/login", timeout=60)
    match = CSRF_RE.search(page.text)
    assert match, "no CSRF token on /login"
    answer = browser.post(
        f"{base_url}/login",
        data={"username": username, "password": password, "csrf_token": match.group(1)},
        allow_redirects=False,
        timeout=120,
    )
    assert answer.status_code == 302, answer.text[:300]
    return browser


# the World attribute whose id fills each URL argument of a route (the route tests' table; a route may name
# another in its own PARAMS)
DEFAULT_IDS = {
    "ward_id": "ward_id",
    "patient_id": "patient_id",
    "alert_id": "alert_id",
    "camera_id": "camera_id",
    "bed_id": "bed_id",
    "user_id": "victim_id",
    "token_id": "token_id",
    "location_id": "bed_id",
    "encounter_id": "encounter_id",
}  # fhir.location_read: "<id>" is a 404 (ids are bed-N / ward-N)
