"""Helpers shared by the alert tests: the injected clock's origin, a small hospital, observation rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from areya.alerts.rules import WindowStats
from areya.db.models import Bed, BedAssignment, Camera, Observation, Patient, User, UserWard, Ward

T0 = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)

# class -> (p_angry, p_happy, p_relaxed, p_sad): a confident classifier's output
PROBS: dict[str, tuple[float, float, float, float]] = {
    "angry": (0.8, 0.05, 0.1, 0.05),
    "happy": (0.03, 0.9, 0.05, 0.02),
    "relaxed": (0.06, 0.1, 0.77, 0.07),
    "sad": (0.05, 0.05, 0.1, 0.8),
}


@dataclass
class Hospital:
    """Ids of what :func:`hospital` created."""

    ward_id: int
    other_ward_id: int
    camera_id: int
    other_camera_id: int
    beds: list[int]  # in ward A
    patients: list[int]  # patient i in beds[i]
    other_patient: int  # in ward B
    other_bed: int
    users: dict[str, int] = field(default_factory=dict)


def create_hospital(session_factory: Callable[[], Session]) -> Hospital:
    """Ward A (3 beds, 3 patients, camera A covering them), ward B (1 bed, 1 patient, camera B); users."""
    created = T0 - timedelta(days=30)
    with session_factory() as s, s.begin():
        wa, wb = Ward(name="Ward A", created_at=created), Ward(name="Ward B", created_at=created)
        s.add_all([wa, wb])
        s.flush()
        beds = [Bed(ward_id=wa.id, label=f"A{i + 1}") for i in range(3)]
        bed_b = Bed(ward_id=wb.id, label="B1")
        s.add_all([*beds, bed_b])
        s.flush()
        patients = [
            Patient(mrn=f"MRN-A{i + 1}", display_name=f"Patient A{i + 1}", admitted_at=created) for i in range(3)
        ]
        patient_b = Patient(mrn="MRN-B1", display_name="Patient B1", admitted_at=created)
        s.add_all([*patients, patient_b])
        s.flush()
        for p, b in [*zip(patients, beds, strict=True), (patient_b, bed_b)]:
            s.add(BedAssignment(patient_id=p.id, bed_id=b.id, start_at=created))
        # network cameras: a video-file camera without a bed zone is not played, so never offline (camera.waiting)
        cam_a = Camera(ward_id=wa.id, name="cam-a", source_url="rtsp://10.0.0.1/a", created_at=created)
        cam_b = Camera(ward_id=wb.id, name="cam-b", source_url="rtsp://10.0.0.2/b", created_at=created)
        s.add_all([cam_a, cam_b])
        s.flush()
        users = {}
        for username, role, ward, email in [
            ("dr-a", "doctor", wa, "dr.a@hospital.example"),
            ("dr-a2", "doctor", wa, "dr.a2@hospital.example"),
            ("dr-b", "doctor", wb, "dr.b@hospital.example"),
            ("dr-noemail", "doctor", wa, None),
            ("nurse-a", "nurse", wa, "nurse.a@hospital.example"),
            ("admin", "admin", None, "admin@hospital.example"),
        ]:
            user = User(username=username, role=role, password_hash="x", email=email, active=True)
            s.add(user)
            s.flush()
            if ward is not None:
                s.add(UserWard(user_id=user.id, ward_id=ward.id))
            users[username] = user.id
        inactive = User(
            username="dr-gone", role="doctor", password_hash="x", email="gone@hospital.example", active=False
        )
        s.add(inactive)
        s.flush()
        s.add(UserWard(user_id=inactive.id, ward_id=wa.id))
        return Hospital(
            wa.id,
            wb.id,
            cam_a.id,
            cam_b.id,
            [b.id for b in beds],
            [p.id for p in patients],
            patient_b.id,
            bed_b.id,
            users,
        )


_frame_seq = iter(range(10**9))


def observation_rows(
    patient_id: int,
    bed_id: int,
    camera_id: int | None,
    start: datetime,
    count: int,
    *,
    every_s: float = 5.0,
    label: str | Callable[[int], str] = "relaxed",
) -> list[dict[str, Any]]:
    """``count`` observations every ``every_s`` seconds from ``start`` (label fixed or per index)."""
    rows = []
    for i in range(count):
        name = label(i) if callable(label) else label
        pa, ph, pr, ps = PROBS[name]
        rows.append(
            {
                "patient_id": patient_id,
                "bed_id": bed_id,
                "camera_id": camera_id,
                "captured_at": start + timedelta(seconds=i * every_s),
                "frame_id": f"f{next(_frame_seq)}",
                "face_index": 0,
                "box_x": 0.1,
                "box_y": 0.1,
                "box_w": 0.2,
                "box_h": 0.2,
                "p_angry": pa,
                "p_happy": ph,
                "p_relaxed": pr,
                "p_sad": ps,
                "probs7": [1 / 7] * 7,
                "label4": name,
                "label7": {"relaxed": "neutral"}.get(name, name),
                "confidence4": max(pa, ph, pr, ps),
                "model_version": "test",
                "created_at": start + timedelta(seconds=i * every_s),
            }
        )
    return rows


def add_observations(session_factory: Callable[[], Session], rows: list[dict[str, Any]]) -> None:
    if rows:
        with session_factory() as s, s.begin():
            s.execute(insert(Observation), rows)


def next_message(pubsub: Any, timeout: float = 5.0) -> dict[str, Any] | None:
    """The next published message (skipping subscribe confirmations), or None after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message is not None and message.get("type") == "message":
            return message
    return None


def window_stats(n: int, score: float, now: datetime, span_s: float) -> WindowStats:
    """A rule window of ``n`` observations ending at ``now`` whose mean negative mass is ``score`` (labels: that
    share sad, the rest happy), the first ``span_s`` seconds before ``now``."""
    n_neg = round(n * score)
    return WindowStats(
        1,
        n,
        {"angry": 0, "happy": n - n_neg, "relaxed": 0, "sad": n_neg},
        score * n,
        {"angry": 0.0, "happy": (1 - score) * n, "relaxed": 0.0, "sad": score * n},
        now - timedelta(seconds=span_s),
        now,
    )
