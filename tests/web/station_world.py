"""A hospital of 24 beds in three wards, every bed in a state a nurse must tell apart at a glance (the central
station's fixture, for the Flask-client tests here and the browser tests in web/tests).

Ward A: bed 1 needs attention (sad, firing 12 min), bed 5's face is not clearly visible, the rest calm.
Ward B: bed 3 needs attention (angry, acknowledged by the nurse 15 min ago), bed 6 sad at times but below the
alert level, bed 8 has no camera zone, the rest calm.
Ward C: bed 2 resolved by the doctor 4 min ago and still sad, bed 5 no face seen for 20 min, bed 8 empty, the rest
calm.  Users ``nurse`` and ``doctor`` cover all three wards."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from web_helpers import add_observation

from areya import admin
from areya.alerts.lifecycle import acknowledge_alert, open_alert, resolve_alert
from areya.alerts.rules import RuleParams
from areya.alerts.window import current_evidence
from areya.audit import Actor

WARDS = ("A", "B", "C")
BEDS = 8
NAMES: tuple[str, ...] = (
    "Ada Byron",
    "Ben Okafor",
    "Cleo Marsh",
    "Dev Patel",
    "Eve Lindqvist",
    "Finn Walsh",
    "Gia Romano",
    "Hal Jensen",
    "Ines Duarte",
    "Jon Baker",
    "Kai Moana",
    "Lea Roux",
    "Max Stein",
    "Nia Evans",
    "Oto Ito",
    "Pia Berg",
    "Quin Hale",
    "Rui Costa",
    "Sam Reid",
    "Tess Nolan",
    "Uma Shah",
    "Vic Lowe",
    "Wil Grant",
    "Xan Frey",
)
# (ward, bed) -> what the bed's readings of the last minutes are
SPECIAL = {
    ("A", "1"): "sad",
    ("A", "5"): "unclear",
    ("B", "3"): "angry",
    ("B", "6"): "low",
    ("B", "8"): "uncovered",
    ("C", "2"): "sad",
    ("C", "5"): "gone",
    ("C", "8"): "empty",
}
EXPECTED_ORDER = ["attention"] * 2 + ["still"] + ["unmonitored"] * 3 + ["calm"] * 17 + ["empty"]
EXPECTED_COUNTS = {  # ward -> state -> beds
    "A": {"attention": 1, "still": 0, "unmonitored": 1, "calm": 6},
    "B": {"attention": 1, "still": 0, "unmonitored": 1, "calm": 6},
    "C": {"attention": 0, "still": 1, "unmonitored": 1, "calm": 5},
}


def _labels(kind: str, n: int, k: int) -> list[str]:
    """``n`` labels for a bed whose readings are ``kind`` (calm beds alternate happy and relaxed)."""
    if kind in ("sad", "angry"):
        return [kind if i % 5 else "relaxed" for i in range(n)]  # 80 % negative
    if kind == "low":  # 40 % sad, the most read, yet below the alert level
        return ["sad" if i % 5 < 2 else ("happy" if i % 2 else "relaxed") for i in range(n)]
    return ["happy" if (i + k) % 3 else "relaxed" for i in range(n)]


def seed_station(session: Session, now: datetime, password: str) -> dict[str, Any]:
    """Build the 24-bed hospital (module doc) with readings up to ``now``; returns ids by name."""
    ids: dict[str, Any] = {"beds": {}, "patients": {}}
    for ward in WARDS:
        admin.add_ward(session, ward)
        camera = admin.add_camera(session, ward, f"cam-{ward}", f"rtsp://10.0.{WARDS.index(ward)}.5/stream1", 2.0)
        ids[f"camera_{ward}"] = camera.id
        for b in range(1, BEDS + 1):
            label = str(b)
            bed = admin.add_bed(session, ward, label)
            ids["beds"][(ward, label)] = bed.id
            kind = SPECIAL.get((ward, label), "calm")
            if kind != "uncovered":
                x0 = (b - 1) / BEDS
                admin.set_zone(session, f"{ward}/cam-{ward}", f"{ward}/{label}", x0, 0.0, x0 + 0.9 / BEDS, 1.0)
            if kind == "empty":
                continue
            name = NAMES[WARDS.index(ward) * BEDS + b - 1]
            patient = admin.admit_patient(
                session, f"M{ward}{b:02d}", name, f"{ward}/{label}", at=now - timedelta(hours=3)
            )
            ids["patients"][(ward, label)] = patient.id
            if kind == "uncovered":
                continue
            if kind == "gone":
                ats = [now - timedelta(minutes=20, seconds=10 * i) for i in range(30)]
            else:
                ats = [now - timedelta(seconds=3 + 9 * i) for i in range(32)]  # the last 4.7 min
            quality = 0.12 if kind == "unclear" else 0.85  # below min_face_quality (0.35 by default): set aside
            for at, lab in zip(ats, _labels(kind, len(ats), b), strict=True):
                add_observation(session, patient.id, bed.id, lab, at, camera_id=camera.id).quality = quality
    users = {role: admin.add_user(session, role, role, password, list(WARDS)) for role in ("nurse", "doctor")} | {
        "admin": admin.add_user(session, "admin", "admin", password, [])
    }
    ids.update({f"user_{role}": u.id for role, u in users.items()})
    session.flush()
    patients = {pid: ids_ward for (ids_ward, _), pid in ids["patients"].items()}
    ward_ids = {w: admin.get_ward(session, w).id for w in WARDS}
    evidence = current_evidence(session, RuleParams(), now, {pid: ward_ids[w] for pid, w in patients.items()})

    def alert_for(ward: str, bed: str, opened: datetime) -> Any:
        pid = ids["patients"][(ward, bed)]
        return open_alert(
            session,
            "negative_emotion",
            now=opened,
            patient_id=pid,
            ward_id=ward_ids[ward],
            evidence=evidence[pid].to_json(),
        )

    firing = alert_for("A", "1", now - timedelta(minutes=12))
    acked = alert_for("B", "3", now - timedelta(minutes=20))
    acknowledge_alert(session, acked.id, actor=Actor(user_id=users["nurse"].id), now=now - timedelta(minutes=15))
    resolved = alert_for("C", "2", now - timedelta(minutes=10))
    resolve_alert(
        session, resolved.id, actor=Actor(user_id=users["doctor"].id), note="talked", now=now - timedelta(minutes=4)
    )
    ids.update(firing=firing.id, acknowledged=acked.id, resolved=resolved.id, ward_ids=ward_ids)
    session.commit()
    return ids
