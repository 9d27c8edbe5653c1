"""Face -> bed -> patient through the worker (real embedded Redis, real migrated database): a face counts for a bed
only when its centre lies inside the bed's zone in both directions, and for the patient who was in that bed when
the frame was captured (admission, transfer and discharge times decide, not who is in the bed now)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import redis
from detector_fakes import blob_boxes
from pipeline_helpers import STREAM, fast_config, pending
from pipeline_standins import FixedClassifier
from sqlalchemy import select

from areya import admin
from areya.comms.frames import FramePublisher, make_frame
from areya.db.engine import session_scope
from areya.db.models import Observation
from areya.detectors import FaceBox
from areya.worker import Worker

W, H = 320, 240
FACE = 16  # px: a white square stands in for a face (see Blobs)
ZONE_1 = (0.1, 0.3, 0.4, 0.7)
ZONE_2 = (0.6, 0.3, 0.9, 0.7)
IN_1 = (0.25, 0.5)  # zone centres
IN_2 = (0.75, 0.5)
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


class Blobs:
    """A stand-in detector: every white square of the frame is a face, boxed tightly."""

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        return blob_boxes(frame_bgr)


def faces_at(*centres: tuple[float, float]) -> np.ndarray:
    """A black frame with a white FACE x FACE square centred on each normalized point."""
    image = np.zeros((H, W, 3), np.uint8)
    for cx, cy in centres:
        x, y = round(cx * W) - FACE // 2, round(cy * H) - FACE // 2
        image[y : y + FACE, x : x + FACE] = 255
    return image


def ward_with_two_zones(session_factory: Any) -> int:
    """Ward A: beds 1 and 2, a camera with ZONE_1 for bed 1 and ZONE_2 for bed 2 (nobody admitted); the camera id."""
    with session_scope(session_factory) as s:
        admin.add_ward(s, "Ward A")
        admin.add_bed(s, "Ward A", "1")
        admin.add_bed(s, "Ward A", "2")
        camera = admin.add_camera(s, "Ward A", "cam", "/nonexistent/areya-test.mp4", 2.0)
        admin.set_zone(s, "Ward A/cam", "Ward A/1", *ZONE_1)
        admin.set_zone(s, "Ward A/cam", "Ward A/2", *ZONE_2)
        return camera.id


def bed_ids(session_factory: Any) -> dict[str, int]:
    with session_factory() as s:
        return {label: admin.get_bed(s, f"Ward A/{label}").id for label in ("1", "2")}


def run_worker(rclient: redis.Redis, engine: Any, camera_id: int, frames: list[tuple[datetime, np.ndarray]]) -> Worker:
    """Publish the frames (with their capture times) and let a worker process them all."""
    pub = FramePublisher(rclient, STREAM, maxlen=10_000)
    for seq, (captured, image) in enumerate(frames):
        pub.publish(make_frame(camera_id, seq, image, captured_at=captured.timestamp(), quality=95))
    worker = Worker(rclient, engine, Blobs(), FixedClassifier(), fast_config())
    worker.run(idle_exit_s=0.3)
    assert pending(rclient) == 0
    return worker


def observations(session_factory: Any) -> list[Observation]:
    with session_factory() as s:
        return list(s.scalars(select(Observation).order_by(Observation.captured_at, Observation.bed_id)))


def centre(obs: Observation) -> tuple[float, float]:
    return (round(obs.box_x + obs.box_w / 2, 2), round(obs.box_y + obs.box_h / 2, 2))


def test_a_face_above_below_or_beside_a_zone_is_not_that_beds(
    rclient: redis.Redis, engine: Any, session_factory: Any
) -> None:
    """Mutant killed: the zone test compares only one coordinate (only x: a face above or below a bed's zone, in
    its columns, is given to that bed's patient; or only y: a face between two zones, at their height, is)."""
    camera_id = ward_with_two_zones(session_factory)
    with session_scope(session_factory) as s:
        p1 = admin.admit_patient(s, "MRN-1", "Patient One", "Ward A/1", at=T0).id
        p2 = admin.admit_patient(s, "MRN-2", "Patient Two", "Ward A/2", at=T0).id
    above, below, between = (0.25, 0.12), (0.25, 0.88), (0.5, 0.5)
    captured = T0 + timedelta(hours=1)
    worker = run_worker(rclient, engine, camera_id, [(captured, faces_at(IN_1, IN_2, above, below, between))])

    rows = observations(session_factory)
    assert sorted((r.patient_id, centre(r)) for r in rows) == sorted([(p1, IN_1), (p2, IN_2)])
    assert worker.metrics.total("areya_faces_detected_total", camera=camera_id) == 5
    assert worker.metrics.total("areya_faces_unassigned_total", camera=camera_id, reason="outside_zones") == 3


def test_the_capture_time_decides_the_patient(rclient: redis.Redis, engine: Any, session_factory: Any) -> None:
    """Mutants killed: a bed stay's start or end is not checked against the frame's capture time (a frame
    captured before the patient's admission, or after the patient was moved out of the bed or discharged, is
    still given to the patient), or a boundary is taken on the wrong side (at the moment of a transfer the face
    in the old bed still counts for the patient, or the face in the new bed does not yet)."""
    camera_id = ward_with_two_zones(session_factory)
    beds = bed_ids(session_factory)
    hour = timedelta(hours=1)
    with session_scope(session_factory) as s:
        p = admin.admit_patient(s, "MRN-P", "Patient P", "Ward A/1", at=T0 + 1 * hour).id
    with session_scope(session_factory) as s:
        admin.move_patient(s, "MRN-P", "Ward A/2", at=T0 + 2 * hour)  # P: bed 1 -> bed 2
    with session_scope(session_factory) as s:
        q = admin.admit_patient(s, "MRN-Q", "Patient Q", "Ward A/1", at=T0 + 3 * hour).id
    with session_scope(session_factory) as s:
        admin.discharge_patient(s, "MRN-Q", at=T0 + 4 * hour)

    both = faces_at(IN_1, IN_2)  # a face in each bed's zone, in every frame
    times = [T0 + h * hour for h in (0.5, 1.5, 2, 2.5, 3.5, 4.5)]
    run_worker(rclient, engine, camera_id, [(t, both) for t in times])

    got = [(r.captured_at, r.bed_id, r.patient_id) for r in observations(session_factory)]
    one, two = beds["1"], beds["2"]
    assert got == [
        # 0.5 h: before P's admission, both beds empty: nobody
        (T0 + 1.5 * hour, one, p),  # P in bed 1; bed 2 still empty
        (T0 + 2 * hour, two, p),  # the transfer's moment: P is in bed 2 (and no longer in bed 1)
        (T0 + 2.5 * hour, two, p),  # after the transfer bed 1 is empty
        (T0 + 3.5 * hour, one, q),  # Q admitted to bed 1
        (T0 + 3.5 * hour, two, p),
        # 4.5 h: Q discharged: bed 1 is nobody's; P still in bed 2
        (T0 + 4.5 * hour, two, p),
    ]
