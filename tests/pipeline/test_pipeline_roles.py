"""Only the patient's face counts for the patient, through the worker (real embedded Redis, real migrated database):
a visitor's face beside the pillow is counted, not classified or stored; the patient's face at the pillow is
stored; the patient's track keeps the role when someone else appears at the pillow; an admin's correction reaches
the worker; the pillow region drawn with ``areya zone set --pillow`` is the one the worker reads.

Faces are white squares (``detector_fakes.blob_boxes``) in a 320x240 frame; bed 1's zone is x 0.1-0.4, y 0.3-0.7,
its default pillow region the top 35 % of the zone, the middle 70 % of its width."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import redis
from click.testing import CliRunner
from pipeline_helpers import STREAM, fast_config, pending
from sqlalchemy import select
from test_pipeline_assign import Blobs, faces_at  # white squares: 16 px faces in a 320x240 frame

from areya import admin
from areya.comms.frames import FramePublisher, make_frame
from areya.db.engine import session_scope
from areya.db.models import BedZone, Observation
from areya.worker import Worker
from areya.worker.bedside import BEDSIDE_TEXT, bedside_presence, post_correction, read_state

ZONE = (0.1, 0.3, 0.4, 0.7)
PILLOW = (0.25, 0.37)  # the patient's face, in the default pillow region
BESIDE = (0.115, 0.54)  # a visitor seated at the bed's left edge, half-way down
AT_PILLOW_TOO = (0.33, 0.37)  # a nurse's face leaning in beside the patient's, in the pillow region too
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


class CountingClassifier:
    """'relaxed' for every crop; remembers how many crops it was given."""

    model_version = "counting-test"

    def __init__(self) -> None:
        self.crops = 0

    def classify(self, crops: Sequence[np.ndarray]) -> list[Any]:
        from areya.emotion.inference import EmotionResult

        self.crops += len(crops)
        p4 = np.array([0.1, 0.1, 0.7, 0.1], np.float32)
        p7 = np.full(7, 1 / 7, np.float32)
        return [EmotionResult(p4, p7) for _ in crops]


def ward(session_factory: Any) -> tuple[int, int, int]:
    """Ward A, bed 1 with ZONE on a camera, a patient admitted before T0; (camera id, bed id, patient id)."""
    with session_scope(session_factory) as s:
        admin.add_ward(s, "Ward A")
        bed = admin.add_bed(s, "Ward A", "1")
        camera = admin.add_camera(s, "Ward A", "cam", "/nonexistent/areya-test.mp4", 2.0)
        admin.set_zone(s, "Ward A/cam", "Ward A/1", *ZONE)
        patient = admin.admit_patient(s, "MRN-1", "Patient One", "Ward A/1", at=T0 - timedelta(hours=1))
        return camera.id, bed.id, patient.id


def feed(
    rclient: redis.Redis, worker: Worker, camera_id: int, frames: list[list[tuple[float, float]]], start: int = 0
) -> None:
    """Publish one frame per list of face centres (2 s apart from T0 + 2 s x ``start``) and process them all."""
    pub = FramePublisher(rclient, STREAM, maxlen=10_000)
    for k, centres in enumerate(frames):
        captured = T0 + timedelta(seconds=2 * (start + k))
        pub.publish(make_frame(camera_id, start + k, faces_at(*centres), captured_at=captured.timestamp(), quality=95))
    worker.run(idle_exit_s=0.3)
    assert pending(rclient) == 0


def stored_centres(session_factory: Any) -> list[tuple[float, float]]:
    with session_factory() as s:
        rows = s.scalars(select(Observation).order_by(Observation.captured_at)).all()
        return [(round(r.box_x + r.box_w / 2, 2), round(r.box_y + r.box_h / 2, 2)) for r in rows]


def near(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) <= 0.02 and abs(a[1] - b[1]) <= 0.02


def test_a_visitor_beside_the_bed_is_counted_not_classified_or_stored_and_the_tile_says_so(
    rclient: redis.Redis, engine: Any, session_factory: Any
) -> None:
    camera_id, bed_id, _ = ward(session_factory)
    classifier = CountingClassifier()
    worker = Worker(rclient, engine, Blobs(), classifier, fast_config())
    feed(rclient, worker, camera_id, [[BESIDE, PILLOW]] * 6)

    centres = stored_centres(session_factory)
    assert len(centres) == 6 and all(near(c, PILLOW) for c in centres)  # only the patient's face
    assert classifier.crops == 6  # the visitor's face never reached the classifier
    assert worker.metrics.total("areya_bedside_faces_total", camera=camera_id, role="other") == 6
    assert worker.metrics.total("areya_bedside_faces_total", camera=camera_id, role="patient") == 6
    state = read_state(rclient, bed_id)
    assert state is not None and state["others"] == 1
    assert {t["role"]: t["where"] for t in state["tracks"]} == {
        "patient": "at the pillow",
        "other": "at the left side of the bed",
    }
    last = (T0 + timedelta(seconds=10)).timestamp()
    assert bedside_presence(rclient, bed_id, now=last + 30) == (1, BEDSIDE_TEXT)
    assert bedside_presence(rclient, bed_id, now=last + 90) == (0, None)  # over a minute ago


def test_the_patient_keeps_the_role_when_a_nurse_leans_in_at_the_pillow(
    rclient: redis.Redis, engine: Any, session_factory: Any
) -> None:
    camera_id, _, _ = ward(session_factory)
    worker = Worker(rclient, engine, Blobs(), CountingClassifier(), fast_config())
    frames = [[PILLOW]] * 4 + [[PILLOW, AT_PILLOW_TOO]] * 10 + [[PILLOW]] * 2  # the nurse for 20 s
    feed(rclient, worker, camera_id, frames)
    centres = stored_centres(session_factory)
    assert len(centres) == 16 and all(near(c, PILLOW) for c in centres)


def test_an_admins_correction_reaches_the_worker(rclient: redis.Redis, engine: Any, session_factory: Any) -> None:
    camera_id, bed_id, _ = ward(session_factory)
    worker = Worker(rclient, engine, Blobs(), CountingClassifier(), fast_config())
    feed(rclient, worker, camera_id, [[BESIDE, PILLOW]] * 3)
    state = read_state(rclient, bed_id)
    assert state is not None
    visitor = next(t["track"] for t in state["tracks"] if t["role"] == "other")

    post_correction(rclient, bed_id, "patient", visitor, "test")  # "that face is the patient"
    feed(rclient, worker, camera_id, [[BESIDE, PILLOW]] * 3, start=3)
    assert [near(c, BESIDE) for c in stored_centres(session_factory)] == [False] * 3 + [True] * 3
    state = read_state(rclient, bed_id)
    assert state is not None
    assert {t["track"]: (t["role"], t["fixed"]) for t in state["tracks"]}[visitor] == ("patient", "patient")

    post_correction(rclient, bed_id, "auto", None, "test")
    feed(rclient, worker, camera_id, [[BESIDE, PILLOW]] * 4, start=6)
    assert all(near(c, PILLOW) for c in stored_centres(session_factory)[-3:])  # the cues decide again


def test_the_pillow_drawn_with_the_cli_is_the_one_the_worker_reads(
    rclient: redis.Redis, engine: Any, session_factory: Any, db_settings: Any
) -> None:
    """A pillow region drawn at the bottom of the zone (the bed's head is at the bottom of the picture): the face
    there is the patient, the one at the top (the default pillow region) is not."""
    from areya.cli import cli

    camera_id, bed_id, _ = ward(session_factory)
    env = {"AREYA_DATA_DIR": str(db_settings.data_dir), "AREYA_DATABASE_URL": db_settings.database_url}
    runner = CliRunner()
    zone_set = ["zone", "set", "--camera", "Ward A/cam", "--bed", "Ward A/1", "--pillow"]
    result = runner.invoke(cli, [*zone_set, "0.15", "0.55", "0.35", "0.7", *map(str, ZONE)], env=env)
    assert result.exit_code == 0, result.output
    assert "pillow 0.15 0.55 0.35 0.7" in result.output
    with session_factory() as s:
        zone = s.scalar(select(BedZone).where(BedZone.bed_id == bed_id))
        assert zone is not None and zone.head == (0.15, 0.55, 0.35, 0.7)
    listed = runner.invoke(cli, ["zone", "list", "--json"], env=env)
    assert '"pillow": "0.15 0.55 0.35 0.7"' in listed.output
    bad = runner.invoke(cli, [*zone_set, "0.0", "0.55", "0.35", "0.7", *map(str, ZONE)], env=env)
    assert bad.exit_code != 0 and "inside the bed zone" in bad.output
    with session_factory() as s:  # refused: nothing changed
        assert s.scalar(select(BedZone).where(BedZone.bed_id == bed_id)).head == (0.15, 0.55, 0.35, 0.7)
    worker = Worker(rclient, engine, Blobs(), CountingClassifier(), fast_config())
    bottom = (0.25, 0.63)
    feed(rclient, worker, camera_id, [[PILLOW, bottom]] * 4)
    centres = stored_centres(session_factory)
    assert len(centres) == 4 and all(near(c, bottom) for c in centres)
